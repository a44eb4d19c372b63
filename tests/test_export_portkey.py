"""The Portkey export against the real gateway (npm @portkey-ai/gateway@1.15.2) and a local OpenAI mock.

Install the gateway with ``.ci/portkey-setup.sh`` (into ``$ROUTECALC_PORTKEY_DIR``, default ``<repo>/.portkey``);
without node or the gateway these tests skip. Both processes listen on 127.0.0.1 only and are stopped by PID.
Every category's branch is driven (the gateway checks a target name only when its branch is taken).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
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
from routecalc.export.plan import build_plan
from tests.mock_provider import http, stop

pytestmark = pytest.mark.portkey

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent / "support"
GW_DIR = Path(os.environ.get("ROUTECALC_PORTKEY_DIR", ROOT / ".portkey"))
GW_JS = GW_DIR / "node_modules/@portkey-ai/gateway/build/start-server.js"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The running mock + gateway, with helpers."""

    def __init__(self, mock_port: int, gw_port: int):
        self.mock = f"http://127.0.0.1:{mock_port}"
        self.gw = f"http://127.0.0.1:{gw_port}"

    def control(self, **kw: Any) -> None:
        http("POST", self.mock + "/_control", kw)

    def log(self) -> list[str]:
        return [e["model"] for e in http("GET", self.mock + "/_log")[2]]

    def chat(self, config: Any, category: str | None) -> tuple[int, dict, Any, list[str]]:
        self.control(reset_log=True)
        headers = {"x-portkey-config": config if isinstance(config, str) else json.dumps(config)}
        if category is not None:
            headers["x-portkey-metadata"] = json.dumps({"category": category})
        body = {"model": "routecalc-auto", "messages": [{"role": "user", "content": "hi"}]}
        st, hd, payload = http("POST", self.gw + "/v1/chat/completions", body, headers)
        return st, hd, payload, self.log()

    def ask(
        self, config: Any, metadata: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, Any, list[dict[str, Any]]]:
        """One request with ``x-portkey-metadata``; (status, body, the mock's log entries)."""
        self.control(reset_log=True)
        sent = {"x-portkey-config": json.dumps(config), "x-portkey-metadata": json.dumps(metadata), **(headers or {})}
        body = {"model": "routecalc-auto", "messages": [{"role": "user", "content": "hi"}]}
        st, _, payload = http("POST", self.gw + "/v1/chat/completions", body, sent)
        return st, payload, http("GET", self.mock + "/_log")[2]


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
        stop(gateway)
        stop(mock)


def legs(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every leg (a target with a provider) under ``node``, in order."""
    if "provider" in node:
        return [node]
    return [leg for t in node.get("targets", []) for leg in legs(t)]


def to_mock(config: dict[str, Any], mock_base: str, retries: bool = False, timeout_ms: int | None = None) -> dict:
    """The exported config pointed at the mock: every leg an openai-compatible provider at the mock, model and
    forwarded key headers kept (a leg that forwards none gets a dummy key); retries dropped unless asked for (the
    gateway backs off 1 s, 2 s, ... between them); ``timeout_ms`` replaces every request_timeout."""
    cfg = copy.deepcopy(config)
    for leg in legs(cfg):
        leg.update(provider="openai", custom_host=mock_base + "/v1")
        if "forward_headers" not in leg:
            leg["api_key"] = "dummy"
        if not retries:
            leg.pop("retry", None)
        if timeout_ms is not None:
            leg["request_timeout"] = timeout_ms
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
        chain = [leg["override_params"]["model"] for leg in legs(route)]
        for k in range(len(chain)):
            stack.control(down=chain[:k])
            st, hd, body, log = stack.chat(cfg, category)
            assert st == 200, (category, k, body)
            assert body["model"] == chain[k]
            where = f"config.targets[{i}]" + (f".targets[{k}]" if "strategy" in route else "")
            assert hd["x-portkey-last-used-option-index"] == where
            assert log == chain[: k + 1], (category, k)  # the fallback order, as the provider saw it
        stack.control(down=chain)
        st, _, _, log = stack.chat(cfg, category)
        assert st == 503 and log == chain
    stack.control(down=[])


def test_default_route_and_exported_retry(stack: Stack, support: routecalc.Worksheet) -> None:
    exported = json.loads(export_policy(support, None, "tiered+fallback", "portkey").text)
    default = exported["strategy"]["default"]
    idx = [t["name"] for t in exported["targets"]].index(default)
    first = legs(exported["targets"][idx])[0]["override_params"]["model"]
    stack.control(down=[])
    for category in (None, "no-such-category"):
        st, hd, body, _ = stack.chat(to_mock(exported, stack.mock), category)
        assert st == 200 and body["model"] == first
        assert hd["x-portkey-last-used-option-index"] == f"config.targets[{idx}].targets[0]"
    # the exported retry (defaults.retries = 1) re-sends to the same model once before falling back (~1 s)
    cfg = to_mock(exported, stack.mock, retries=True)
    chain = [leg["override_params"]["model"] for leg in legs(cfg["targets"][0])]
    retry = {"attempts": 1, "on_status_codes": [408, 429, 500, 502, 503, 504]}  # a timeout (408) is retried too
    assert cfg["targets"][0]["targets"][0]["retry"] == retry
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


SHIPPED = [  # mmlu-cascade: 57 categories x 3 policies through the gateway
    pytest.param(n, marks=pytest.mark.slow) if n.startswith("mmlu") else n
    for n in sorted(p.name for p in (ROOT / "worksheets").glob("*.yaml"))
]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_worksheet_routes_in_the_gateway(stack: Stack, name: str) -> None:
    """Every policy of every shipped worksheet, as exported: no key or ${VAR} in the file, the gateway accepts the
    config and each category's request is answered by a model of that category's route."""
    ws = routecalc.load_worksheet(ROOT / "worksheets" / name)
    stack.control(down=[], fail_for={})
    for pol in ws.policies:
        text = export_policy(ws, None, pol.name, "portkey").text
        assert "${" not in text and "api_key" not in text, pol.name
        exported = json.loads(text)
        cfg = to_mock(exported, stack.mock)
        by_name = {t["name"]: t for t in exported["targets"]}
        for cond in exported["strategy"]["conditions"]:
            category = cond["query"]["metadata.category"]["$eq"]
            st, body, log = stack.ask(cfg, {"category": category})
            models = {leg["override_params"]["model"] for leg in legs(by_name[cond["then"]])}
            assert st == 200 and body["model"] in models and len(log) == 1, (pol.name, category, st, body)


# ---------------------------------------------------------------------------------------------------------
# The routing patterns (worksheets/support-routing.yaml): nested conditional / loadbalance / per-type fallbacks


def routing() -> routecalc.Worksheet:
    return routecalc.load_worksheet(ROOT / "worksheets/support-routing.yaml")


def lane_metadata(category: str, lane: Any) -> dict[str, Any]:
    """The metadata an application sets to reach a lane (a split arm is the gateway's draw, not the app's)."""
    meta: dict[str, Any] = {"category": category}
    for b in lane.path:
        if b.kind == "classifier":
            meta["routecalc_tier"] = b.label
        elif b.kind == "rule" and b.when is not None:
            if b.when.input_tokens_gt is not None:
                meta["routecalc_input_tokens"] = int(b.when.input_tokens_gt) + 1
            if b.when.attribute is not None:
                meta[b.when.attribute] = (b.when.in_ or [""])[0]
        elif b.kind == "rule":
            meta.setdefault("routecalc_input_tokens", 1)
    return meta


def test_patterns_every_lane_falls_back_in_order(stack: Stack) -> None:
    """Each lane's 5xx path with its steps down in turn: the answer comes from the next step, in the estimate's
    order; metadata (category, routecalc_tier, routecalc_input_tokens) picks the lane, the gateway draws the arm."""
    plan = build_plan(routing(), "patterns")
    cfg = to_mock(json.loads(export_policy(routing(), None, "patterns", "portkey").text), stack.mock)
    walked = 0
    for c in plan.categories:
        by_meta: dict[str, list[list[str]]] = {}
        for lane in c.lanes:
            path = [plan.model(str(lane.steps[s].model)).bare_model for s in lane.failure_path()]
            by_meta.setdefault(json.dumps(lane_metadata(c.name, lane)), []).append(path)
        for meta, paths in by_meta.items():
            for k in range(max(len(p) for p in paths) + 1):
                down = sorted({p[i] for p in paths for i in range(min(k, len(p)))})
                stack.control(down=down, fail_for={})
                st, body, log = stack.ask(cfg, json.loads(meta))
                models = [e["model"] for e in log]
                if all(k >= len(p) for p in paths):
                    assert st == 503 and models in paths, (meta, k, models)
                    continue
                assert st == 200, (meta, k, body)
                assert any(models == p[: k + 1] and body["model"] == p[k] for p in paths), (meta, k, models)
                walked += 1
    stack.control(down=[], fail_for={})
    assert walked == 15  # the same lanes and steps as the LiteLLM walk (tests/test_export_patterns_litellm.py)


def test_patterns_per_error_type_routes_match_the_gateway_model(stack: Stack) -> None:
    """dispute: claude-sonnet-4's 5xx go to gpt-4.1, its 429 to claude-sonnet-4-bedrock, its timeouts (408) to
    gpt-4.1; every combination of 5xx / 429 / success over the three steps walks as routecalc's model of the
    gateway says (export/portkey_walk.py), which is the estimate's walk except where the export's notes say."""
    from routecalc.export.portkey_walk import STATUS, estimate_walk, gateway_walk

    ws = routing()
    plan = build_plan(ws, "patterns")
    lane = next(c for c in plan.categories if c.name == "dispute").lanes[0]
    result = export_policy(ws, None, "patterns", "portkey")
    route = next(t for t in result.data["targets"] if t["name"] == "route-dispute")
    cfg = to_mock(result.data, stack.mock, timeout_ms=300)
    bare = [plan.model(str(st.model)).bare_model for st in lane.steps]
    for kind, expected in (("5xx", [0, 1]), ("429", [0, 2]), ("slow", [0, 1])):
        stack.control(down=[], fail_for={bare[0]: kind}, slow_s=1.0)
        st, _, log = stack.ask(cfg, {"category": "dispute"})
        assert st == 200 and [e["model"] for e in log] == [bare[s] for s in expected], kind
    by_model = {id(leg): bare.index(leg["override_params"]["model"]) for leg in legs(route)}
    differ = 0
    for combo in itertools.product([None, "5xx", "429"], repeat=3):
        fails = dict(enumerate(combo))
        stack.control(down=[], fail_for={bare[s]: t for s, t in fails.items() if t is not None})
        _, _, log = stack.ask(cfg, {"category": "dispute"})
        got = [bare.index(e["model"]) for e in log]

        def status(leg: dict[str, Any], fails: dict[int, str | None] = fails) -> int:
            t = fails[by_model[id(leg)]]
            return STATUS[t] if t else 200

        model = [by_model[id(leg)] for leg in gateway_walk(route, status)[1]]
        assert got == model, (combo, got, model)
        differ += got != estimate_walk(lane, fails)
    stack.control(down=[], fail_for={})
    # 2 of 27 differ, the family the notes name: claude-sonnet-4 5xx, gpt-4.1 5xx or 429, then bedrock's own 429
    # reaches the outer 429 fallback, which tries bedrock a second time (the estimate stops after one try)
    assert differ == 2
    assert any("dispute: when claude-sonnet-4 fails with" in w for w in result.warnings)


def test_patterns_keys_come_from_the_request(stack: Stack) -> None:
    """No key in the file: an openai leg forwards the request's Authorization, an anthropic leg its x-api-key."""
    result = export_policy(routing(), None, "patterns", "portkey")
    assert "api_key" not in result.text and "${" not in result.text
    cfg = to_mock(result.data, stack.mock)
    stack.control(down=["gpt-4.1"], fail_for={})  # refund simple: gpt-4.1 (openai) -> claude-sonnet-4 (anthropic)
    headers = {"Authorization": "Bearer sk-openai-test", "x-api-key": "sk-ant-test"}
    st, _, log = stack.ask(cfg, {"category": "refund", "routecalc_tier": "simple"}, headers)
    stack.control(down=[])
    assert st == 200 and [e["model"] for e in log] == ["gpt-4.1", "claude-sonnet-4-20250514"]
    assert log[0]["auth"] == "Bearer sk-openai-test"
    assert log[1]["x_api_key"] == "sk-ant-test"


def test_patterns_real_providers_send_the_request_keys(stack: Stack) -> None:
    """The exported legs as they are (providers openai and anthropic, no api_key) with only custom_host pointed
    at the mock: the gateway's own anthropic transform calls /v1/messages with the request's x-api-key, the
    openai one /v1/chat/completions with its Authorization; gpt-4.1 down falls back to claude-sonnet-4."""
    result = export_policy(routing(), None, "patterns", "portkey")
    cfg = copy.deepcopy(result.data)
    for leg in legs(cfg):
        leg["custom_host"] = stack.mock + "/v1"
        leg.pop("retry", None)
    refund = next(t for t in cfg["targets"] if t["name"] == "route-refund")
    simple = next(t for t in refund["targets"] if t["name"] == "simple")
    assert [(leg["provider"], leg["forward_headers"]) for leg in simple["targets"]] == [
        ("openai", ["authorization"]),
        ("anthropic", ["x-api-key"]),
    ]
    headers = {"Authorization": "Bearer sk-openai-test", "x-api-key": "sk-ant-test"}
    stack.control(down=["gpt-4.1"], fail_for={})
    st, body, log = stack.ask(cfg, {"category": "refund", "routecalc_tier": "simple"}, headers)
    stack.control(down=[], fail_for={})
    assert st == 200, body
    assert [(e["model"], e["path"], e["status"]) for e in log] == [
        ("gpt-4.1", "/v1/chat/completions", 503),
        ("claude-sonnet-4-20250514", "/v1/messages", 200),
    ]
    assert (log[0]["auth"], log[1]["x_api_key"]) == ("Bearer sk-openai-test", "sk-ant-test")
    assert body["choices"][0]["message"]["content"] == "answer from claude-sonnet-4-20250514"


@pytest.mark.slow
def test_patterns_split_draws_by_weight(stack: Stack) -> None:
    """200 classify requests: gpt-4.1-nano answers 10 % +- 8.5 points (4 binomial standard deviations; an even
    split, the weights swapped or no split at all fall outside)."""
    cfg = to_mock(json.loads(export_policy(routing(), None, "patterns", "portkey").text), stack.mock)
    stack.control(down=[], fail_for={})
    n = 200
    nano = sum(stack.ask(cfg, {"category": "classify"})[1]["model"] == "gpt-4.1-nano" for _ in range(n))
    assert abs(nano / n - 0.1) <= 4 * math.sqrt(0.09 / n)
