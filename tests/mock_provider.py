"""The local OpenAI-compatible mock provider (tests/support/mock_openai.py) as a test helper: 127.0.0.1 only,
started and stopped by PID, with its control and request log."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SUPPORT = Path(__file__).resolve().parent / "support"


def http(method: str, url: str, body: Any = None, headers: dict | None = None) -> tuple[int, dict, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode(errors="replace")
        return e.code, {k.lower(): v for k, v in e.headers.items()}, payload


class MockProvider:
    """A running mock: ``fail(model=kind, ...)`` makes models fail ("5xx", "429", "content_filter",
    "context_length", "slow"); ``log()`` lists the models asked, in order, since the last ``fail``/``reset``."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def fail(self, slow_s: float = 3.0, **kinds: str) -> None:
        http("POST", self.base + "/_control", {"fail_for": kinds, "slow_s": slow_s, "down": [], "reset_log": True})

    def reset(self) -> None:
        http("POST", self.base + "/_control", {"reset_log": True})

    def entries(self) -> list[dict[str, Any]]:
        return http("GET", self.base + "/_log")[2]

    def log(self) -> list[str]:
        return [e["model"] for e in self.entries()]


@contextmanager
def mock_provider() -> Iterator[MockProvider]:
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "mock_openai.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["LISTENING"], line
        yield MockProvider(int(line[1]))
    finally:
        stop(proc)


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a server this test started (this PID only: terminate, then kill after 5 s) and close its pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
