"""The LiteLLM export against the real library (pinned litellm==1.110.2, offline, mock responses only).

Every exported config is validated with ``ConfigYAML`` (not a public API; unknown keys are silently dropped, so
the keys we rely on are checked against ``router_init_args()`` as the proxy does), loaded into ``Router``, and
each category's fallback chain is walked by marking deployments down with ``mock_response``.
"""

from __future__ import annotations

import copy
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no price-map download
litellm = pytest.importorskip("litellm")

import routecalc  # noqa: E402
from routecalc.export import export_policy  # noqa: E402
from routecalc.export.plan import build_plan  # noqa: E402
from routecalc.worksheet import read_yaml  # noqa: E402

pytestmark = [
    pytest.mark.litellm,
    # litellm 1.110.2 builds a pydantic TypeAdapter over a TypedDict with ReadOnly items when the first Router is
    # created (litellm/router_rust/routing_stores.py); pydantic warns about it. Library-internal, harmless.
    pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
DOWN = "litellm.InternalServerError"
MSGS = [{"role": "user", "content": "hello"}]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection outside loopback fails the test (mock responses never need one)."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not isinstance(address, str | bytes):
            raise AssertionError(f"network access attempted: {address!r}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class Recorder(litellm.integrations.custom_logger.CustomLogger):
    """Records every attempt in order. LiteLLM 1.110.2 only calls hooks whose parameters are named exactly
    ``(kwargs, response_obj, start_time, end_time)``; other names are silently never called."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[tuple[str, str | None]] = []

    def _rec(self, status: str, kwargs: dict) -> None:
        info = (kwargs.get("litellm_params") or {}).get("model_info") or {}
        self.attempts.append((status, info.get("id")))

    def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        self._rec("ok", kwargs)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
        self._rec("fail", kwargs)

    def wait(self, n: int) -> list[tuple[str, str | None]]:
        for _ in range(150):  # sync callbacks run on a background thread
            if len(self.attempts) >= n:
                break
            time.sleep(0.02)
        return list(self.attempts)


_ALIVE: list[Any] = []  # routers made in a test stay alive until it ends: their callbacks run on a background thread


@pytest.fixture
def recorder() -> Any:
    rec = Recorder()
    litellm.callbacks = [rec]
    yield rec
    # LiteLLM promotes callbacks into its success/failure lists and skips a new logger of the same class while an
    # old one is still there: resetting litellm.callbacks alone leaves this test's Recorder catching the next one's.
    litellm.logging_callback_manager.remove_callback_from_all_lists(rec)
    litellm.callbacks = []
    _ALIVE.clear()


def support() -> routecalc.Worksheet:
    return routecalc.load_worksheet(ROOT / "worksheets/support-triage.yaml")


def long_chain_sheet() -> routecalc.Worksheet:
    """An 8-step fallback chain (the maximum): longer than LiteLLM's default max_fallbacks of 5."""
    data = copy.deepcopy(read_yaml(ROOT / "worksheets/support-triage.yaml"))
    names = [m["name"] for m in data["models"]]
    routes: dict[str, Any] = {t["name"]: names[2] for t in data["tasks"]}
    routes["classify"] = [names[i % 4] for i in range(8)]
    data["policies"].append({"name": "long", "kind": "fallback", "routes": routes})
    return routecalc.validate_worksheet(data, "long")


def exported(ws: routecalc.Worksheet, policy: str) -> dict[str, Any]:
    text = export_policy(ws, None, policy, "litellm").text
    return yaml.safe_load(text)  # what the proxy reads: the file, not our dict


def router(cfg: dict[str, Any], down: set[str] = frozenset(), **overrides: Any) -> Any:
    """A Router from the exported file; deployments in ``down`` fail with a 500, the rest answer."""
    model_list = copy.deepcopy(cfg["model_list"])
    for d in model_list:
        dep = d["model_info"]["id"]
        d["litellm_params"]["mock_response"] = DOWN if dep in down else f"answer from {dep}"
    r = litellm.Router(model_list=model_list, **{**cfg["router_settings"], **overrides})
    _ALIVE.append(r)
    return r


def failure_path_ids(cfg: dict[str, Any], alias: str) -> list[str]:
    """Deployment ids along the exported fallbacks from the category's alias, in order."""
    groups = {d["model_name"]: d["model_info"]["id"] for d in cfg["model_list"]}
    rs = cfg["router_settings"]
    fb = {k: v for entry in rs.get("fallbacks", []) for k, v in entry.items()}
    name = alias
    ids = [groups[rs.get("model_group_alias", {}).get(alias, alias)]]
    while name in fb:
        name = fb[name][0]
        ids.append(groups[name])
    return ids


SUPPORT_POLICIES = ["today", "tiered", "tiered+fallback", "cheap-first", "cheap-first-routine", "all-to-strongest"]


@pytest.mark.parametrize("policy", SUPPORT_POLICIES)
def test_config_yaml_validates_and_keys_survive(policy: str) -> None:
    from litellm.constants import ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    from litellm.proxy._types import ConfigYAML
    from litellm.router_api import router_init_args
    from litellm.types.router import LiteLLM_Params

    cfg = exported(support(), policy)
    validated = ConfigYAML.model_validate(cfg)
    rs = cfg["router_settings"]
    # ConfigYAML drops unknown keys silently; the proxy keeps router_settings keys that Router() accepts.
    proxy_keys = set(router_init_args()) - ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    assert set(rs) <= proxy_keys, set(rs) - proxy_keys
    kept = validated.router_settings.model_dump(exclude_none=True)
    for key in ("num_retries", "timeout", "allowed_fails", "cooldown_time", "fallbacks", "model_group_alias"):
        if key in rs:
            assert kept[key] == rs[key], key
    assert all(hasattr(litellm, k) for k in cfg["litellm_settings"])  # the proxy sets them on the module
    params = set(LiteLLM_Params.model_fields) | {"num_retries"}  # per-deployment num_retries: see retry test
    for dep, model in zip(cfg["model_list"], validated.model_list, strict=True):
        assert set(dep["litellm_params"]) <= params
        assert model.model_info.id == dep["model_info"]["id"]
        assert dep["litellm_params"]["api_key"].startswith("os.environ/")


@pytest.mark.parametrize("policy", SUPPORT_POLICIES)
def test_router_walks_every_chain(policy: str, recorder: Recorder) -> None:
    ws = support()
    cfg = exported(ws, policy)
    r = router(cfg)
    assert (r.settings().fallbacks or []) == cfg["router_settings"].get("fallbacks", [])
    for cat in build_plan(ws, policy).categories:
        ids = failure_path_ids(cfg, cat.alias)
        assert len(ids) == len(cat.failure_path())
        for k in range(len(ids)):
            recorder.attempts.clear()
            # num_retries=0: LiteLLM backs off ~2 s per retry; retries are checked once below
            r = router(cfg, down=set(ids[:k]), num_retries=0)
            resp = r.completion(model=cat.alias, messages=MSGS)
            assert resp._hidden_params["model_id"] == ids[k], (cat.name, k)
            attempts = recorder.wait(k + 1)
            assert attempts == [("fail", i) for i in ids[:k]] + [("ok", ids[k])], (cat.name, k)
        with pytest.raises(litellm.InternalServerError):
            router(cfg, down=set(ids), num_retries=0).completion(model=cat.alias, messages=MSGS)


def test_mock_testing_fallbacks_and_cost(recorder: Recorder) -> None:
    ws = support()
    for policy in ("tiered+fallback", "cheap-first-routine"):
        cfg = exported(ws, policy)
        ids = failure_path_ids(cfg, "route-classify")
        resp = router(cfg).completion(model="route-classify", messages=MSGS, mock_testing_fallbacks=True)
        assert resp._hidden_params["model_id"] == ids[1]
    # spend tracking uses the worksheet's prices: mock usage is 10 prompt + 20 completion tokens
    cfg = exported(ws, "tiered")
    resp = router(cfg).completion(model="route-refund", messages=MSGS)
    assert resp._hidden_params["model_id"] == "claude-sonnet-4"
    assert resp._hidden_params["response_cost"] == pytest.approx(10 * 3e-6 + 20 * 15e-6)


def test_exported_retries_run_before_fallback(recorder: Recorder) -> None:
    cfg = exported(support(), "tiered+fallback")  # num_retries: 1 from defaults.retries
    ids = failure_path_ids(cfg, "route-refund")
    r = router(cfg, down={ids[0]})
    resp = r.completion(model="route-refund", messages=MSGS)
    assert resp._hidden_params["model_id"] == ids[1]
    assert recorder.wait(3) == [("fail", ids[0]), ("fail", ids[0]), ("ok", ids[1])]


def test_eight_step_chain_needs_and_gets_max_fallbacks(recorder: Recorder) -> None:
    ws = long_chain_sheet()
    cfg = exported(ws, "long")
    assert cfg["router_settings"]["max_fallbacks"] == 7
    ids = failure_path_ids(cfg, "route-classify")
    assert len(ids) == 8
    resp = router(cfg, down=set(ids[:-1]), num_retries=0).completion(model="route-classify", messages=MSGS)
    assert resp._hidden_params["model_id"] == ids[-1]
    with pytest.raises(litellm.InternalServerError):  # LiteLLM's default (5) would cut the chain short
        router(cfg, down=set(ids[:-1]), num_retries=0, max_fallbacks=5).completion(
            model="route-classify", messages=MSGS
        )


def test_context_window_fallback_routes_long_prompts() -> None:
    data = copy.deepcopy(read_yaml(ROOT / "worksheets/support-triage.yaml"))
    data["models"][0]["context_window"] = 200  # gpt-4.1-mini
    ws = routecalc.validate_worksheet(data, "ctx")
    cfg = exported(ws, "cheap-first")  # the cascade moves a prompt too long for gpt-4.1-mini on to step 2
    assert cfg["router_settings"]["context_window_fallbacks"]
    r = router(cfg, num_retries=0)
    short = r.completion(model="route-classify", messages=MSGS)
    assert short._hidden_params["model_id"] == "route-classify--gpt-4.1-mini"
    long = r.completion(model="route-classify", messages=[{"role": "user", "content": "word " * 400}])
    assert long._hidden_params["model_id"] == "route-classify~2--gpt-4.1"
    # a static route has nowhere to go: the estimate counts those requests failed, and so does the router
    cfg = exported(ws, "tiered")
    assert "context_window_fallbacks" not in cfg["router_settings"]
    with pytest.raises(litellm.ContextWindowExceededError):
        router(cfg, num_retries=0).completion(
            model="route-classify", messages=[{"role": "user", "content": "w " * 400}]
        )


SHIPPED = [  # mmlu-cascade: 57 categories x 3 policies, about 7 s
    pytest.param(n, marks=pytest.mark.slow) if n.startswith("mmlu") else n
    for n in sorted(p.name for p in (ROOT / "worksheets").glob("*.yaml"))
]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_worksheet_exports_and_loads(name: str) -> None:
    """Every policy of every shipped worksheet, as a user would export it: the proxy's ConfigYAML keeps the keys,
    the master key is an os.environ reference, no key or ${VAR} is in the file, and every group (aliases too)
    answers from one of its own deployments in a Router built from the file."""
    from litellm.proxy._types import ConfigYAML

    ws = routecalc.load_worksheet(ROOT / "worksheets" / name)
    assert ws.policies, name
    for pol in ws.policies:
        text = export_policy(ws, None, pol.name, "litellm").text
        assert "${" not in text and "sk-" not in text, pol.name
        cfg = yaml.safe_load(text)
        validated = ConfigYAML.model_validate(cfg)
        assert validated.general_settings.master_key == "os.environ/LITELLM_MASTER_KEY", pol.name
        assert all(d["litellm_params"]["api_key"].startswith("os.environ/") for d in cfg["model_list"]), pol.name
        r = router(cfg)
        aliases = cfg["router_settings"].get("model_group_alias") or {}
        own = {}
        for d in cfg["model_list"]:
            own.setdefault(d["model_name"], set()).add(d["model_info"]["id"])
        for group in sorted(set(own) | set(aliases)):
            answer = r.completion(model=group, messages=MSGS).choices[0].message.content
            assert answer.removeprefix("answer from ") in own[aliases.get(group, group)], (pol.name, group, answer)
