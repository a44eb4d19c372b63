"""The routing-pattern export (worksheets/support-routing.yaml) in the real LiteLLM Router (pinned 1.110.2), against
the local mock provider on 127.0.0.1: every deployment calls the mock, which fails the models a test names with a
given error type (503, 429, a content-policy refusal, a slow answer past the deadline) and logs every request.

Each lane's chain is walked with its steps failing in turn, per-error-type routes per type, deadlines with a slow
model, aliases, and the weighted split statistically. What LiteLLM cannot express (a 429 sent elsewhere than a 5xx)
is checked to behave as the export's header says it does.
"""

from __future__ import annotations

import copy
import math
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no price-map download
litellm = pytest.importorskip("litellm")

import routecalc  # noqa: E402
from routecalc.export import export_policy  # noqa: E402
from routecalc.export.litellm import choose_grouping  # noqa: E402
from routecalc.export.plan import build_plan  # noqa: E402
from routecalc.export.portkey_walk import estimate_walk  # noqa: E402
from routecalc.worksheet import read_yaml  # noqa: E402
from tests.mock_provider import MockProvider, mock_provider  # noqa: E402

pytestmark = [
    pytest.mark.litellm,
    pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning"),
    # a Router that really calls a provider (the mock) keeps httpx clients and an event loop that LiteLLM never
    # closes; each test makes several Routers, and their sockets are reported when garbage-collected
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "worksheets/support-routing.yaml"
MSGS = [{"role": "user", "content": "hello"}]
_ALIVE: list[Any] = []


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProvider]:
    with mock_provider() as m:
        yield m


@pytest.fixture(autouse=True)
def _keep_routers() -> Iterator[None]:
    yield
    _ALIVE.clear()


def routing_data() -> dict[str, Any]:
    return copy.deepcopy(read_yaml(ROUTING))


def sheet(data: dict[str, Any] | None = None) -> routecalc.Worksheet:
    return routecalc.validate_worksheet(data if data is not None else routing_data(), "routing")


def exported(ws: routecalc.Worksheet, policy: str = "patterns") -> dict[str, Any]:
    return yaml.safe_load(export_policy(ws, None, policy, "litellm").text)  # what the proxy reads: the file


def router(cfg: dict[str, Any], mock: MockProvider, **overrides: Any) -> Any:
    """A Router from the exported file, every deployment sent to the mock as ``openai/<worksheet model>``."""
    model_list = copy.deepcopy(cfg["model_list"])
    for d in model_list:
        lp = d["litellm_params"]
        lp.update(model="openai/" + d["model_info"]["routecalc_model"], api_base=mock.base + "/v1", api_key="dummy")
    r = litellm.Router(model_list=model_list, **{**cfg["router_settings"], **overrides})
    _ALIVE.append(r)
    return r


def served(resp: Any) -> str:
    return resp.model.split("/")[-1]


def units(ws: routecalc.Worksheet, policy: str = "patterns") -> list[Any]:
    return list(choose_grouping(build_plan(ws, policy)).units)


def test_config_validates_with_the_proxy_models() -> None:
    from litellm.constants import ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    from litellm.proxy._types import ConfigYAML
    from litellm.router_api import router_init_args
    from litellm.types.router import AllowedFailsPolicy, LiteLLM_Params, RetryPolicy

    cfg = exported(sheet())
    validated = ConfigYAML.model_validate(cfg)
    rs = cfg["router_settings"]
    proxy_keys = set(router_init_args()) - ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    assert set(rs) <= proxy_keys, set(rs) - proxy_keys
    assert validated.general_settings.master_key == "os.environ/LITELLM_MASTER_KEY"
    RetryPolicy.model_validate(rs["retry_policy"])
    AllowedFailsPolicy.model_validate(rs["allowed_fails_policy"])
    for policy in rs["model_group_retry_policy"].values():
        RetryPolicy.model_validate(policy)
    # per-deployment num_retries (see test_export_litellm); weight is read by simple-shuffle from litellm_params
    # (litellm/router_strategy/simple_shuffle.py; the split tests below measure it)
    params = set(LiteLLM_Params.model_fields) | {"num_retries", "weight"}
    for dep in cfg["model_list"]:
        assert set(dep["litellm_params"]) <= params, set(dep["litellm_params"]) - params
    kept = validated.router_settings.model_dump(exclude_none=True)
    for key in ("fallbacks", "context_window_fallbacks", "model_group_alias", "routing_strategy"):
        assert kept[key] == rs[key], key


def test_every_lane_falls_back_in_order(mock: MockProvider) -> None:
    """Each lane's router steps fail in turn (503): the answer comes from the next step of the estimate's chain."""
    ws = sheet()
    cfg = exported(ws)
    checked = 0
    for u in units(ws):
        lanes = u.lanes
        paths = [
            [str(lane.steps[s].model) for s in estimate_walk(lane, dict.fromkeys(range(8), "5xx"))] for lane in lanes
        ]
        for k in range(max(len(p) for p in paths) + 1):
            down = {p[i] for p in paths for i in range(min(k, len(p)))}  # a folded split: every arm's k-th model
            mock.fail(**dict.fromkeys(down, "5xx"))
            r = router(cfg, mock, num_retries=0, model_group_retry_policy={})  # no retries: the walk alone
            if all(k >= len(p) for p in paths):
                with pytest.raises(litellm.ServiceUnavailableError):
                    r.completion(model=u.base, messages=MSGS)
                continue
            answer = served(r.completion(model=u.base, messages=MSGS))
            log = mock.log()
            assert any(log == p[: k + 1] and answer == p[k] for p in paths), (u.base, k, log, paths)
            checked += 1
    # every lane's 5xx path, counted by hand: classify 2 (mini | nano, then haiku) + extract 2 + faq 1 (the tool is
    # the application's) + refund simple 2 + complex 2 + dispute 3 + summarize rule 1: 1 + else: 2 = 15
    assert checked == 15


def test_per_error_type_routes(mock: MockProvider) -> None:
    """dispute: a 5xx goes to gpt-4.1 (step 2), a refusal to claude-sonnet-4-bedrock (its content_policy_fallbacks);
    a 429 goes to gpt-4.1 too: LiteLLM's fallbacks are per group, as the header says."""
    data = routing_data()
    pol = next(p for p in data["policies"] if p["name"] == "patterns")
    pol["routes"]["dispute"][0]["on_failure"] = {"5xx": 1, "429": 2, "content_filter": 2}
    sonnet = next(m for m in data["models"] if m["name"] == "claude-sonnet-4")
    sonnet["errors"] = {"timeout": 0.2, "5xx": 0.4, "429": 0.3, "content_filter": 0.1}
    ws = sheet(data)
    result = export_policy(ws, None, "patterns", "litellm")
    cfg = yaml.safe_load(result.text)
    rs = cfg["router_settings"]
    assert {"route-dispute": ["route-dispute~3"]} in rs["content_policy_fallbacks"]
    assert "sends 429 errors to step 3 (claude-sonnet-4-bedrock)" in result.text
    for kind, expected in (("5xx", "gpt-4.1"), ("content_filter", "claude-sonnet-4-bedrock"), ("429", "gpt-4.1")):
        mock.fail(**{"claude-sonnet-4": kind})
        answer = served(router(cfg, mock, num_retries=0).completion(model="route-dispute", messages=MSGS))
        assert (answer, mock.log()) == (expected, ["claude-sonnet-4", expected]), kind


def test_content_policy_refusal_is_not_retried(mock: MockProvider) -> None:
    ws = sheet()
    cfg = exported(ws)
    assert cfg["router_settings"]["retry_policy"] == {"ContentPolicyViolationErrorRetries": 0}
    mock.fail(**{"gpt-4.1-mini": "content_filter"})  # extract: gpt-4.1-mini refuses -> gpt-4.1, without a retry
    answer = served(router(cfg, mock).completion(model="route-extract", messages=MSGS))
    assert (answer, mock.log()) == ("gpt-4.1", ["gpt-4.1-mini", "gpt-4.1"])
    mock.fail(**{"gpt-4.1-mini": "5xx"})  # a 503 is retried once (defaults.retries: 1) before the fallback
    answer = served(router(cfg, mock).completion(model="route-extract", messages=MSGS))
    assert (answer, mock.log()) == ("gpt-4.1", ["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4.1"])


def test_deadline_moves_on_without_retry(mock: MockProvider) -> None:
    """classify's deadline (0.3 s here) is the deployments' timeout; a slow answer moves on to claude-3-5-haiku
    at once (TimeoutErrorRetries: 0), while a 503 on the same group is still retried (DefaultRetries: 1)."""
    data = routing_data()
    pol = next(p for p in data["policies"] if p["name"] == "patterns")
    for arm in pol["routes"]["classify"]["split"]:
        arm["route"][0]["deadline_s"] = 0.3
    cfg = exported(sheet(data))
    mini = next(d for d in cfg["model_list"] if d["model_info"]["id"] == "route-classify--gpt-4.1-mini")
    assert mini["litellm_params"]["timeout"] == 0.3 and mini["litellm_params"]["stream_timeout"] == 0.3
    assert cfg["router_settings"]["model_group_retry_policy"] == {
        "route-classify": {"TimeoutErrorRetries": 0, "DefaultRetries": 1}
    }
    mock.fail(slow_s=1.0, **{"gpt-4.1-mini": "slow", "gpt-4.1-nano": "slow"})
    answer = served(router(cfg, mock).completion(model="route-classify", messages=MSGS))
    log = mock.log()
    assert answer == "claude-3-5-haiku" and len(log) == 2 and log[0] in ("gpt-4.1-mini", "gpt-4.1-nano"), log
    mock.fail(**{"gpt-4.1-mini": "5xx", "gpt-4.1-nano": "5xx"})
    answer = served(router(cfg, mock).completion(model="route-classify", messages=MSGS))
    log = mock.log()
    assert answer == "claude-3-5-haiku" and len(log) == 3 and set(log[:2]) <= {"gpt-4.1-mini", "gpt-4.1-nano"}, log


def test_aliases_take_the_default_lane(mock: MockProvider) -> None:
    cfg = exported(sheet())
    assert cfg["router_settings"]["model_group_alias"] == {
        "route-refund": "route-refund~simple",  # the label predicted most often (55 % = 0.6 x 0.85 + 0.4 x 0.1)
        "route-summarize": "route-summarize~else",  # a rule router's default rule
    }
    for alias, chain in (
        ("route-refund", ["gpt-4.1", "claude-sonnet-4"]),
        ("route-summarize", ["claude-sonnet-4", "gpt-4.1"]),
    ):
        mock.fail(**{chain[0]: "5xx"})  # the alias has its own fallbacks entry: LiteLLM looks them up by name
        answer = served(router(cfg, mock, num_retries=0).completion(model=alias, messages=MSGS))
        assert (answer, mock.log()) == (chain[1], chain)


def test_long_prompt_skips_the_small_window(mock: MockProvider) -> None:
    """summarize's else-lane starts at claude-sonnet-4 (200k window); a longer prompt goes to gpt-4.1 by the
    context_window_fallbacks (the pre-call check skips the deployment before any request)."""
    data = routing_data()
    sonnet = next(m for m in data["models"] if m["name"] == "claude-sonnet-4")
    sonnet["context_window"] = 300  # so a test prompt can exceed it
    cfg = exported(sheet(data))
    assert {"route-summarize~else": ["route-summarize~else~2"]} in cfg["router_settings"]["context_window_fallbacks"]
    mock.fail()
    r = router(cfg, mock, num_retries=0)
    assert served(r.completion(model="route-summarize~else", messages=MSGS)) == "claude-sonnet-4"
    mock.reset()
    long = [{"role": "user", "content": "word " * 600}]
    assert served(r.completion(model="route-summarize~else", messages=long)) == "gpt-4.1"
    assert mock.log() == ["gpt-4.1"]


SPLIT_N = 2000
SPLIT_TOL = 4 * math.sqrt(0.9 * 0.1 / SPLIT_N)  # 4 binomial standard deviations of a 10 % share: 2.7 points


def _split_counts(picks: list[str]) -> float:
    counts = Counter(picks)
    assert set(counts) == {"route-classify--gpt-4.1-mini", "route-classify--gpt-4.1-nano"}
    return counts["route-classify--gpt-4.1-nano"] / len(picks)


def test_weighted_split_selection_matches_the_weights() -> None:
    """2,000 of the router's own deployment picks for route-classify: gpt-4.1-nano's share is 10 % +- 2.7 points."""
    cfg = exported(sheet())
    r = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    _ALIVE.append(r)
    picks = [r.get_available_deployment(model="route-classify")["model_info"]["id"] for _ in range(SPLIT_N)]
    assert abs(_split_counts(picks) - 0.1) <= SPLIT_TOL


@pytest.mark.slow
def test_weighted_split_requests_match_the_weights() -> None:
    """500 whole requests through the router (mock responses; the 2,000 picks above pin the share, this checks
    that completions follow the picks): 10 % +- 5.4 points (4 binomial standard deviations)."""
    cfg = exported(sheet())
    model_list = copy.deepcopy(cfg["model_list"])
    for d in model_list:
        d["litellm_params"]["mock_response"] = "ok"
    r = litellm.Router(model_list=model_list, **cfg["router_settings"])
    _ALIVE.append(r)
    n = 500
    picks = [r.completion(model="route-classify", messages=MSGS)._hidden_params["model_id"] for _ in range(n)]
    assert abs(_split_counts(picks) - 0.1) <= 4 * math.sqrt(0.9 * 0.1 / n)
