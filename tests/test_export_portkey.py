"""The Portkey export against the real gateway (npm @portkey-ai/gateway@1.15.2) and a local OpenAI mock.

Install the gateway with ``.ci/portkey-setup.sh`` (into ``$ROUTECALC_PORTKEY_DIR``, default ``<repo>/.portkey``);
without node or the gateway these tests skip. Both processes listen on 127.0.0.1 only and are stopped by PID.
Every category's branch is driven (the gateway checks a target name only when its branch is taken).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import routecalc
from routecalc.export import export_policy

pytestmark = pytest.mark.portkey

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent / "support"
GW_DIR = Path(os.environ.get("ROUTECALC_PORTKEY_DIR", ROOT / ".portkey"))
GW_JS = GW_DIR / "node_modules/@portkey-ai/gateway/build/start-server.js"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: Any = None, headers: dict | None = None) -> tuple[int, dict, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode(errors="replace")
        return e.code, {k.lower(): v for k, v in e.headers.items()}, payload


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()  # this PID only
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


class Stack:
    """The running mock + gateway, with helpers."""

    def __init__(self, mock_port: int, gw_port: int):
        self.mock = f"http://127.0.0.1:{mock_port}"
        self.gw = f"http://127.0.0.1:{gw_port}"

    def control(self, **kw: Any) -> None:
        _http("POST", self.mock + "/_control", kw)

    def log(self) -> list[str]:
        return [e["model"] for e in _http("GET", self.mock + "/_log")[2]]

    def chat(self, config: Any, category: str | None) -> tuple[int, dict, Any, list[str]]:
        self.control(reset_log=True)
        headers = {"x-portkey-config": config if isinstance(config, str) else json.dumps(config)}
        if category is not None:
            headers["x-portkey-metadata"] = json.dumps({"category": category})
        body = {"model": "routecalc-auto", "messages": [{"role": "user", "content": "hi"}]}
        st, hd, payload = _http("POST", self.gw + "/v1/chat/completions", body, headers)
        return st, hd, payload, self.log()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not GW_JS.exists():
        pytest.skip(f"Portkey gateway not installed in {GW_DIR} (run .ci/portkey-setup.sh)")
    mock_port, gw_port = _free_port(), _free_port()
    mock = gateway = None
    try:
        mock = subprocess.Popen(
            [sys.executable, str(SUPPORT / "mock_openai.py"), "--port", str(mock_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert mock.stdout is not None and mock.stdout.readline().strip() == f"LISTENING {mock_port}"
        gateway = subprocess.Popen(
            [
                "node",
                "--require",
                str(SUPPORT / "bind_localhost.cjs"),  # the gateway has no host option: bind 127.0.0.1 only
                "--max-http-header-size=262144",
                str(GW_JS),
                f"--port={gw_port}",
                "--headless",
            ],
            cwd=GW_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NODE_ENV": "production"},
        )
        for _ in range(300):  # <= 15 s
            if gateway.poll() is not None:
                pytest.fail(f"gateway exited early (rc={gateway.returncode})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("gateway did not become ready in 15 s")
        yield Stack(mock_port, gw_port)
    finally:
        _stop(gateway)
        _stop(mock)


def to_mock(config: dict[str, Any], mock_base: str, retries: bool = False) -> dict[str, Any]:
    """The exported config pointed at the mock: openai-compatible provider, dummy key, model kept."""
    cfg = copy.deepcopy(config)
    for route in cfg["targets"]:
        for leg in route["targets"]:
            leg.update(provider="openai", api_key="dummy", custom_host=mock_base + "/v1")
            if not retries:
                leg.pop("retry", None)  # the gateway backs off 1 s, 2 s, ... between retries
    return cfg


@pytest.fixture(scope="module")
def support() -> routecalc.Worksheet:
    return routecalc.load_worksheet(ROOT / "worksheets/support-triage.yaml")


@pytest.mark.parametrize("policy", ["tiered+fallback", "cheap-first", "today"])
def test_every_category_routes_and_falls_back_in_order(stack: Stack, support: routecalc.Worksheet, policy: str) -> None:
    exported = json.loads(export_policy(support, None, policy, "portkey").text)
    cfg = to_mock(exported, stack.mock)
    for i, route in enumerate(cfg["targets"]):
        category = cfg["strategy"]["conditions"][i]["query"]["metadata.category"]["$eq"]
        chain = [leg["override_params"]["model"] for leg in route["targets"]]
        for k in range(len(chain)):
            stack.control(down=chain[:k])
            st, hd, body, log = stack.chat(cfg, category)
            assert st == 200, (category, k, body)
            assert body["model"] == chain[k]
            assert hd["x-portkey-last-used-option-index"] == f"config.targets[{i}].targets[{k}]"
            assert log == chain[: k + 1], (category, k)  # the fallback order, as the provider saw it
        stack.control(down=chain)
        st, _, _, log = stack.chat(cfg, category)
        assert st == 503 and log == chain
    stack.control(down=[])


def test_default_route_and_exported_retry(stack: Stack, support: routecalc.Worksheet) -> None:
    exported = json.loads(export_policy(support, None, "tiered+fallback", "portkey").text)
    default = exported["strategy"]["default"]
    idx = [t["name"] for t in exported["targets"]].index(default)
    first = exported["targets"][idx]["targets"][0]["override_params"]["model"]
    stack.control(down=[])
    for category in (None, "no-such-category"):
        st, hd, body, _ = stack.chat(to_mock(exported, stack.mock), category)
        assert st == 200 and body["model"] == first
        assert hd["x-portkey-last-used-option-index"] == f"config.targets[{idx}].targets[0]"
    # the exported retry (defaults.retries = 1) re-sends to the same model once before falling back (~1 s)
    cfg = to_mock(exported, stack.mock, retries=True)
    chain = [leg["override_params"]["model"] for leg in cfg["targets"][0]["targets"]]
    assert cfg["targets"][0]["targets"][0]["retry"] == {"attempts": 1, "on_status_codes": [429, 500, 502, 503, 504]}
    stack.control(down=chain[:1])
    st, _, body, log = stack.chat(cfg, "classify")
    assert st == 200 and body["model"] == chain[1]
    assert log == [chain[0], chain[0], chain[1]]
    stack.control(down=[])


def test_invalid_configs_get_400(stack: Stack, support: routecalc.Worksheet) -> None:
    cfg = to_mock(json.loads(export_policy(support, None, "cheap-first", "portkey").text), stack.mock)
    bad_mode = copy.deepcopy(cfg)
    bad_mode["targets"][0]["strategy"]["mode"] = "roundrobin"
    bad_target = copy.deepcopy(cfg)
    bad_target["strategy"]["conditions"][0]["then"] = "route-missing"
    for bad, fragment in ((bad_mode, "Invalid config"), (bad_target, "route-missing"), ("{not json", "valid json")):
        st, _, body, log = stack.chat(bad, "classify")
        assert st == 400, body
        assert body["status"] == "failure" and fragment in body["message"]
        assert log == []
