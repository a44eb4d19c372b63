// Preload (node --require) that forces every net.Server.listen(port[, undefined host]) onto 127.0.0.1.
// Needed because @portkey-ai/gateway 1.15.2 build/start-server.js calls @hono/node-server serve({fetch, port})
// without a hostname -> Node would bind all interfaces (:: / 0.0.0.0). There is no --host flag.
const net = require('net');
const orig = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (args.length === 1 || typeof args[1] === 'function' || args[1] === undefined) {
      args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
    }
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return orig.apply(this, args);
};
