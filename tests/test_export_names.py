"""Group and alias names in exports are injective, whatever the category and model names.

The bug this guards: categories renamed classify -> ``x`` and extract -> ``x-2`` made the fallback policy's step-2
group of ``x`` be named ``route-x-2``, which was also ``x-2``'s route alias, so a quarter of the traffic silently went
to the wrong model. Step groups are now ``route-<slug>~<k>`` (``slug`` never produces ``~`` or ``--``), and
``litellm.check_names`` refuses any collision. Here categories and models are renamed adversarially and every
chain is walked: through the exported config's own lookup rules (many examples, fast), and in the real LiteLLM
Router (a few examples by default, more under ``-m slow``).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import routecalc
from routecalc.errors import ExportError
from routecalc.export import export_policy
from routecalc.export.plan import build_plan, slug
from routecalc.worksheet import read_yaml
from tests.conftest import WORKSHEETS

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no price-map download
BASE = read_yaml(WORKSHEETS / "support-triage.yaml")
POLICIES = ["tiered+fallback", "cheap-first", "cheap-first-routine", "tiered"]
CATEGORY_PIECES = [
    "x", "x-2", "x~2", "x-ctx", "x~ctx", "X", "x--2", "x 2", "route-x", "route-x-2", "-x-", "x.2", "x_2", "x-3",
    "x/2", "x:2", "x--gpt-4.1", "x~", "~", "--", "-", "Tier $ vs $$", "[b]",
]  # fmt: skip
MODEL_PIECES = ["route-x", "route-x~2", "route-x-2", "x", "m--n", "a/b", "gpt-4.1", "route-x--m"]
NAME = st.one_of(st.sampled_from(CATEGORY_PIECES), st.text(alphabet="xX2-~ ._/:", min_size=1, max_size=6))


def renamed(categories: list[str], models: list[str] | None = None) -> dict[str, Any]:
    """support-triage with its 5 categories (and optionally its 4 models) renamed, every reference following."""
    data = copy.deepcopy(BASE)
    cat = {t["name"]: new for t, new in zip(data["tasks"], categories, strict=True)}
    mod = {m["name"]: new for m, new in zip(data["models"], models or [], strict=False)}
    for t in data["tasks"]:
        t["name"] = cat[t["name"]]
        t["pass_rates"] = {mod.get(k, k): v for k, v in t["pass_rates"].items()}
    for m in data["models"]:
        m["name"] = mod.get(m["name"], m["name"])
    for p in data["policies"]:
        routes = {}
        for c, route in p["routes"].items():
            steps = route if isinstance(route, list) else [route]
            routes[cat[c]] = [mod.get(s, s) for s in steps]
        p["routes"] = routes
    return data


def lookup(cfg: dict[str, Any]) -> tuple[dict[str, dict], dict[str, list[str]], dict[str, str]]:
    """The config as the Router reads it: group -> its one deployment, fallbacks by name, aliases."""
    groups: dict[str, list[dict]] = {}
    for d in cfg["model_list"]:
        groups.setdefault(d["model_name"], []).append(d)
    assert all(len(v) == 1 for v in groups.values()), "every group has exactly one deployment"
    rs = cfg["router_settings"]
    fallbacks = {k: v for entry in rs.get("fallbacks", []) for k, v in entry.items()}
    return {k: v[0] for k, v in groups.items()}, fallbacks, rs.get("model_group_alias", {})


def walk(cfg: dict[str, Any], alias: str) -> list[dict]:
    """Deployments a request to ``alias`` tries, in order, when each one fails (LiteLLM: the requested name's
    fallbacks, first entry each time; an alias resolves to its group)."""
    groups, fallbacks, aliases = lookup(cfg)
    path = [groups[aliases.get(alias, alias)]]
    name = alias
    while name in fallbacks:
        name = fallbacks[name][0]
        path.append(groups[name])
        assert len(path) <= 8, "no cycles"
    return path


def export_or_slug_clash(data: dict[str, Any], policy: str) -> dict[str, Any] | None:
    """The exported LiteLLM config (as the proxy reads the file), or None when two categories share a slug (a
    refusal by design: ``Refund`` and ``refund`` cannot both be ``route-refund``)."""
    ws = routecalc.validate_worksheet(copy.deepcopy(data), "renamed")
    try:
        return yaml.safe_load(export_policy(ws, None, policy, "litellm").text)
    except ExportError as exc:
        slugs = [slug(t.name) for t in ws.tasks]
        assert "both map to route name" in str(exc) and len(set(slugs)) < len(slugs), exc
        return None


def expected_chains(data: dict[str, Any], policy: str) -> dict[str, tuple[str, list[str]]]:
    ws = routecalc.validate_worksheet(copy.deepcopy(data), "renamed")
    plan = build_plan(ws, policy)
    return {c.name: (c.alias, [c.steps[s].model for s in c.failure_path()]) for c in plan.categories}


def check_structure(data: dict[str, Any], policy: str) -> None:
    cfg = export_or_slug_clash(data, policy)
    if cfg is None:
        return
    ids = [d["model_info"]["id"] for d in cfg["model_list"]]
    assert len(set(ids)) == len(ids)
    for cat, (alias, models) in expected_chains(data, policy).items():
        got = [d["model_info"]["routecalc_model"] for d in walk(cfg, alias)]
        assert got == models, (cat, alias, got, models)


def test_the_reported_collision_routes_each_category_to_its_own_models() -> None:
    data = renamed(["x", "x-2", "faq", "refund", "dispute"])
    cfg = export_or_slug_clash(data, "tiered+fallback")
    assert cfg is not None
    names = {d["model_name"] for d in cfg["model_list"]}
    assert {"route-x", "route-x~2", "route-x-2", "route-x-2~2"} <= names
    # x (was classify) falls back gpt-4.1-mini -> claude-3-5-haiku; x-2 (was extract) gpt-4.1 -> claude-sonnet-4
    assert [d["model_info"]["routecalc_model"] for d in walk(cfg, "route-x")] == ["gpt-4.1-mini", "claude-3-5-haiku"]
    assert [d["model_info"]["routecalc_model"] for d in walk(cfg, "route-x-2")] == ["gpt-4.1", "claude-sonnet-4"]


def test_categories_sharing_a_slug_are_refused_by_name() -> None:
    ws = routecalc.validate_worksheet(renamed(["Refund", "refund", "faq", "x", "y"]), "renamed")
    with pytest.raises(ExportError, match="categories 'Refund' and 'refund' both map to route name 'refund'"):
        export_policy(ws, None, "tiered+fallback", "litellm")


def test_slug_never_makes_the_separators() -> None:
    for name in ["a~b", "a--b", "a - b", "--a--", "a~~2", "~", "A__B..C"]:
        s = slug(name)
        assert "~" not in s and "--" not in s and not s.startswith("-") and not s.endswith("-") and s


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    categories=st.lists(NAME, min_size=5, max_size=5, unique_by=slug),
    models=st.one_of(st.none(), st.lists(st.sampled_from(MODEL_PIECES), min_size=4, max_size=4, unique=True)),
    policy=st.sampled_from(POLICIES),
)
def test_any_names_give_each_category_its_own_chain(
    categories: list[str], models: list[str] | None, policy: str
) -> None:
    check_structure(renamed(categories, models), policy)


def test_check_names_refuses_a_collision_it_is_handed(monkeypatch: pytest.MonkeyPatch) -> None:
    # if the naming ever regressed to "-<k>", the check (not luck) must stop the export
    from routecalc.export import litellm as lit

    monkeypatch.setattr(lit, "step_group", lambda alias, k: f"{alias}-{k}")
    ws = routecalc.validate_worksheet(renamed(["x", "x-2", "faq", "refund", "dispute"]), "renamed")
    with pytest.raises(ExportError, match="group name collision: 'route-x-2'"):
        export_policy(ws, None, "tiered+fallback", "litellm")


# ---------------------------------------------------------------------------------------------------------
# The real Router


def router_walk(data: dict[str, Any], policy: str) -> None:
    """Every category's chain in a real litellm.Router: with the first k deployments down, the answer comes from
    deployment k, which serves the chain's k-th model; with all down, the request fails."""
    litellm = pytest.importorskip("litellm")
    cfg = export_or_slug_clash(data, policy)
    if cfg is None:
        return
    for cat, (alias, models) in expected_chains(data, policy).items():
        path = walk(cfg, alias)
        ids = [d["model_info"]["id"] for d in path]
        for k in range(len(ids) + 1):
            model_list = copy.deepcopy(cfg["model_list"])
            for d in model_list:
                down = d["model_info"]["id"] in ids[:k]
                d["litellm_params"]["mock_response"] = "litellm.InternalServerError" if down else "ok"
            r = litellm.Router(model_list=model_list, **{**cfg["router_settings"], "num_retries": 0})
            msgs = [{"role": "user", "content": "hi"}]
            if k == len(ids):
                with pytest.raises(litellm.InternalServerError):
                    r.completion(model=alias, messages=msgs)
                continue
            dep = r.completion(model=alias, messages=msgs)._hidden_params["model_id"]
            served = next(d for d in cfg["model_list"] if d["model_info"]["id"] == dep)["model_info"]["routecalc_model"]
            assert (dep, served) == (ids[k], models[k]), (cat, k)


@pytest.mark.litellm
@pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning")
def test_router_sends_the_reported_collision_to_the_right_models() -> None:
    categories = ["x", "x-2", "x~2", "route-x", "x--2"]
    router_walk(renamed(categories, ["route-x~2", "x", "m--n", "route-x-2"]), "tiered+fallback")


def _router_property(max_examples: int):  # type: ignore[no-untyped-def]
    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)
    @given(
        categories=st.lists(NAME, min_size=5, max_size=5, unique_by=slug),
        models=st.one_of(st.none(), st.lists(st.sampled_from(MODEL_PIECES), min_size=4, max_size=4, unique=True)),
        policy=st.sampled_from(["tiered+fallback", "cheap-first"]),
    )
    def prop(categories: list[str], models: list[str] | None, policy: str) -> None:
        router_walk(renamed(categories, models), policy)

    return prop


@pytest.mark.litellm
@pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning")
def test_router_walks_every_chain_under_adversarial_names() -> None:
    _router_property(2)()


@pytest.mark.slow
@pytest.mark.litellm
@pytest.mark.filterwarnings("ignore:.*using the `ReadOnly` qualifier:UserWarning")
def test_router_walks_every_chain_under_adversarial_names_many() -> None:
    _router_property(4)()
