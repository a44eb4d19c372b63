"""Tiny stdlib OpenAI-compatible mock (chat completions only), 127.0.0.1 only.

Usage:  python mock_openai.py [--port N] [--down m1,m2] [--log /path/requests.jsonl]
        (env fallbacks: MOCK_PORT, MOCK_DOWN, MOCK_LOG). --port 0 picks a free port.
Prints "LISTENING <port>" on stdout once ready (readiness signal).

Endpoints
  POST /v1/chat/completions  -> 200 chat.completion whose "model" echoes the request's model,
                                or 503 (OpenAI-style error JSON) if the model is "down".
  POST /v1/messages          -> the same in Anthropic's Messages format (for a gateway's real anthropic provider).
  GET  /health               -> 200 {"ok": true}
  GET  /_log                 -> 200 [ {"model":..., "status":..., "path":..., "auth":...}, ... ]
  POST /_control             -> body {"down": [...]} replaces the down set; {"reset_log": true} clears the log;
                                {"status_for": {"model": 429}} per-model status override; {"fail_for": {"model": KIND}}
                                fails that model's requests as KIND: "5xx" (503), "429", "content_filter" (400,
                                OpenAI's content_policy_violation), "context_length" (400, context_length_exceeded) or
                                "slow" (answers after "slow_s" seconds, default 3: a timeout for a shorter deadline).
                                Returns current state.
Every chat request is appended to the in-memory log and (if --log) as one JSON line to the log file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KIND_STATUS = {"5xx": 503, "429": 429, "content_filter": 400, "context_length": 400, "slow": 200}
ERRORS = {  # OpenAI's own error bodies: LiteLLM maps them to ContentPolicyViolationError / ContextWindowExceededError
    "429": {"message": "Rate limit reached", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
    "content_filter": {
        "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
        "type": "invalid_request_error",
        "param": None,
        "code": "content_policy_violation",
    },
    "context_length": {
        "message": "This model's maximum context length is exceeded.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    },
}


class State:
    def __init__(self, down: set[str], log_path: str | None):
        self.lock = threading.Lock()
        self.down = down
        self.status_for: dict[str, int] = {}
        self.fail_for: dict[str, str] = {}
        self.slow_s = 3.0
        self.log: list[dict] = []
        self.log_path = log_path


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep stderr quiet
            pass

        def _send(self, status: int, obj) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                self.wfile.write(body)

        def _body(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b"{}"
            try:
                return json.loads(raw or b"{}")
            except json.JSONDecodeError:
                return {}

        def do_GET(self):
            if self.path == "/health":
                return self._send(200, {"ok": True})
            if self.path == "/_log":
                with state.lock:
                    return self._send(200, list(state.log))
            return self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            body = self._body()
            if self.path == "/_control":
                with state.lock:
                    if "down" in body:
                        state.down = set(body["down"])
                    if "status_for" in body:
                        state.status_for = {k: int(v) for k, v in body["status_for"].items()}
                    if "fail_for" in body:
                        state.fail_for = dict(body["fail_for"])
                    if "slow_s" in body:
                        state.slow_s = float(body["slow_s"])
                    if body.get("reset_log"):
                        state.log.clear()
                    return self._send(
                        200, {"down": sorted(state.down), "status_for": state.status_for, "fail_for": state.fail_for}
                    )
            anthropic = self.path.rstrip("/").endswith("/messages")
            if anthropic or self.path.rstrip("/").endswith("/chat/completions"):
                model = body.get("model")
                with state.lock:
                    status = state.status_for.get(model, 503 if model in state.down else 200)
                    kind = state.fail_for.get(model)
                    if kind is not None:
                        status = KIND_STATUS[kind]
                    slow_s = state.slow_s
                    entry = {
                        "model": model,
                        "status": status,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "x_api_key": self.headers.get("x-api-key"),
                        "kind": kind,
                        "t": time.time(),
                    }
                    state.log.append(entry)
                    if state.log_path:
                        with open(state.log_path, "a") as f:
                            f.write(json.dumps(entry) + "\n")
                if kind == "slow":
                    time.sleep(slow_s)  # then answers (a "slow" model's status is 200)
                if anthropic:
                    if status != 200:
                        error = {"type": "api_error", "message": f"mock: model {model} fails ({status})"}
                        return self._send(status, {"type": "error", "error": error})
                    answer = {"type": "text", "text": f"answer from {model}"}
                    return self._send(
                        200,
                        {
                            "id": f"msg_mock_{len(state.log)}",
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [answer],
                            "stop_reason": "end_turn",
                            "usage": {"input_tokens": 10, "output_tokens": 20},
                        },
                    )
                elif kind in ERRORS:
                    return self._send(
                        status, {"error": {**ERRORS[kind], "message": f"mock: {ERRORS[kind]['message']}"}}
                    )
                elif status != 200:
                    return self._send(
                        status,
                        {
                            "error": {
                                "message": f"mock: model {model} is down",
                                "type": "server_error",
                                "param": None,
                                "code": str(status),
                            }
                        },
                    )
                return self._send(
                    200,
                    {
                        "id": f"chatcmpl-mock-{len(state.log)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": f"answer from {model}"},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    },
                )
            return self._send(404, {"error": {"message": "not found"}})

    return Handler


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("MOCK_PORT", "0")))
    ap.add_argument("--down", default=os.environ.get("MOCK_DOWN", ""))
    ap.add_argument("--log", default=os.environ.get("MOCK_LOG"))
    a = ap.parse_args(argv)
    state = State({m for m in a.down.split(",") if m}, a.log)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(state))
    srv.daemon_threads = True
    print(f"LISTENING {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
