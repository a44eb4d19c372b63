"""routecalc optimize: every candidate route, the best per category and globally, against brute force."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.decide import frontier as fr
from routecalc.decide.candidates import enumerate_routes, same_tier_partners, score
from routecalc.decide.optimize import achievable_frontier, optimize
from routecalc.decide.policy import chain_steps, route_label, with_policy
from routecalc.engine.ev import expected_values
from routecalc.errors import InputError, WorksheetError
from tests.helpers import fixed_model, two_model_sheet

FAST = {"samples": 20_000, "seed": 3}


def small_catalog(seed: int, categories: int = 2) -> dict:
    """3 models over 2 providers with failures (so fallbacks matter); the last category has no validator
    (so no cascades there). Costs per request with 1000 tokens in, 300 out are in the comments."""
    rng = np.random.default_rng(seed)
    models = [
        fixed_model("a", 1.0, 2.0, ttft=0.3, tpot=0.01, provider="p1", failure_rate=0.05),  # $0.0016
        fixed_model("b", 3.0, 6.0, ttft=0.5, tpot=0.02, provider="p2", failure_rate=0.1),  # $0.0048
        fixed_model("c", 10.0, 20.0, ttft=1.0, tpot=0.03, provider="p1", failure_rate=0.02),  # $0.016
    ]
    shares = rng.dirichlet(np.ones(categories))
    shares[-1] = 1 - shares[:-1].sum()
    tasks = []
    for k in range(categories):
        q = np.sort(rng.uniform(0.6, 0.98, 3))
        task = {
            "name": f"t{k}",
            "traffic_share": float(shares[k]),
            "tokens_in": 1000,
            "tokens_out": 300,
            "quality_threshold": float(rng.uniform(0.7, 0.95)),
            "pass_rates": {"a": float(q[0]), "b": float(q[1]), "c": float(q[2])},
            "cost_bad_answer": float(rng.uniform(0, 0.05)),
            "cost_failed": 0.01,
        }
        if k < categories - 1:
            task["validator"] = {"catch": float(rng.uniform(0.5, 0.95)), "false_reject": 0.05, "latency_s": 0.1}
        tasks.append(task)
    return {
        "name": f"catalog {seed}",
        "volume": {"requests_per_month": 100_000},
        "defaults": {"retries": 1},
        "models": models,
        "tasks": tasks,
        "policies": [],
    }


def brute_routes(ws: routecalc.Worksheet, category: int, k_max: int) -> list[list]:
    """The candidate family of optimize, written out independently as ``kind: chain`` steps."""
    task = ws.tasks[category]
    names = [m.name for m in ws.models if m.name in task.rates]
    gate = task.validator is not None
    # same-tier partner: the other-provider model with the closest expected cost (log ratio), from the engine
    single = [
        {"name": f"s-{m}", "kind": "static", "routes": {t.name: next(iter(t.rates)) for t in ws.tasks}} for m in names
    ]
    for pol, m in zip(single, names, strict=True):
        pol["routes"][task.name] = m
    problem = compile_worksheet(
        ws.model_copy(update={"policies": [routecalc.worksheet.PolicySpec.model_validate(p) for p in single]}),
        include_strongest=False,
    )
    ev = expected_values(problem)
    cost = {m: float(ev.cost[i, category]) for i, m in enumerate(names)}
    qual = {m: float(ev.quality[i, category]) for i, m in enumerate(names)}
    prov = {m.name: m.provider for m in ws.models}

    def partner(m: str) -> str:
        others = [g for g in names if g != m]
        pool = [g for g in others if prov[g] != prov[m]] or others
        return min(pool, key=lambda g: (abs(math.log(cost[g]) - math.log(cost[m])), -qual[g], names.index(g)))

    routes: list[list] = [[m] for m in names]
    for k in range(2, min(k_max, len(names)) + 1):
        for seq in itertools.permutations(names, k):
            routes.append(list(seq))  # fallback: ungated steps, next on failure
            if not gate:
                continue
            routes.append([{"model": m, "gate": True} for m in seq[:-1]] + [seq[-1]])  # cascade
            for with_fb in ([False] * (k - 1) + [True], [True] * k):
                steps, pos = [], []
                for i, m in enumerate(seq):
                    pos.append(len(steps))
                    steps.append({"model": m, "gate": i < k - 1})
                    if with_fb[i]:
                        steps.append({"model": partner(m), "gate": i < k - 1})
                chain = [s["model"] for s in steps]
                if len(set(chain)) < len(chain):
                    continue
                for i in range(k - 1):
                    if with_fb[i]:
                        steps[pos[i]]["on_reject"] = pos[i + 1]
                routes.append([{kk: v for kk, v in s.items() if not (kk == "gate" and v is False)} for s in steps])
    return routes


def brute_scores(ws: routecalc.Worksheet, k_max: int) -> list[dict[str, np.ndarray]]:
    """Per category, the expected values of every brute-force route, through the ordinary compiler and engine."""
    out = []
    for c, task in enumerate(ws.tasks):
        fill = next(iter(task.rates))
        policies = []
        for j, steps in enumerate(brute_routes(ws, c, k_max)):
            routes = {t.name: [next(iter(t.rates))] for t in ws.tasks}
            routes[task.name] = steps
            policies.append(
                routecalc.worksheet.PolicySpec.model_validate({"name": f"r{j}", "kind": "chain", "routes": routes})
            )
        del fill
        problem = compile_worksheet(ws.model_copy(update={"policies": policies}), include_strongest=False)
        ev = expected_values(problem)
        risk = ev.delivered_bad[:, c] * problem.tasks.cost_bad[c] + ev.failed[:, c] * problem.tasks.cost_failed[c]
        out.append(
            {
                "cost": ev.cost[:, c],
                "quality": ev.quality[:, c],
                "latency": ev.latency[:, c],
                "escalation": ev.escalation[:, c],
                "risk": risk,
            }
        )
    return out


OUTCOMES = {
    "independent": None,
    "correlated": {"correlation": 0.6},  # latent difficulty: 48+ outcome states per category
    "table": {"conditional": {"model": "c", "given_failed": "a", "pass_rate": 0.5}},
}


@pytest.mark.parametrize("outcomes", list(OUTCOMES))
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k_max", [2, 3])
def test_candidates_are_the_brute_force_family_scored_alike(seed: int, k_max: int, outcomes: str) -> None:
    """Same routes (as a multiset of expected values) as the independent enumeration through the ordinary
    compiler and engine, scored identically — also when a category's outcomes are a mixture of states."""
    sheet = small_catalog(seed)
    if OUTCOMES[outcomes] is not None:
        sheet["tasks"][0]["outcomes"] = OUTCOMES[outcomes]
        if outcomes == "table":  # c's pass rate on what a failed must be feasible: lie in the conditional range
            rates = sheet["tasks"][0]["pass_rates"]
            lo, hi = max(0.0, (rates["c"] - rates["a"]) / (1 - rates["a"])), min(1.0, rates["c"] / (1 - rates["a"]))
            sheet["tasks"][0]["outcomes"]["conditional"]["pass_rate"] = (lo + hi) / 2
    ws = routecalc.validate_worksheet(sheet)
    problem = compile_worksheet(ws, include_strongest=False)
    brute = brute_scores(ws, k_max)
    providers = [m.provider for m in ws.models]
    for c in range(len(ws.tasks)):
        allowed = np.arange(3)
        singles = score(problem, c, enumerate_routes(allowed, np.full(3, -1), 1, False), 1, 0.0)
        partner = same_tier_partners(allowed, singles.cost, singles.quality, providers)
        cands = enumerate_routes(allowed, partner, k_max, ws.tasks[c].validator is not None)
        got = score(problem, c, cands, 1, 0.0)
        assert len(cands) == len(brute[c]["cost"])
        for key in ("cost", "quality", "latency", "escalation"):
            assert np.allclose(np.sort(getattr(got, key)), np.sort(brute[c][key]), rtol=1e-12, atol=1e-15), key


def test_family_sizes_for_four_models() -> None:
    """4 models, K = 3: 4 singles; 12 + 24 ordered cascades and as many fallback chains; each cascade once more
    with a fallback on its last step and once with one on every step, minus chains naming a model twice."""
    partner = np.array([1, 0, 3, 2])  # a <-> b, c <-> d
    cands = enumerate_routes(np.arange(4), partner, 3, True)
    fam = np.bincount(cands.family, minlength=4)
    assert fam[:3].tolist() == [4, 36, 36]
    # last-step fallback: the partner of the last model must not be in the chain; every-step: no partner in it
    perms = [p for k in (2, 3) for p in itertools.permutations(range(4), k)]
    last = sum(partner[p[-1]] not in p for p in perms)
    every = sum(len(set(p) | {int(partner[m]) for m in p}) == 2 * len(p) for p in perms)
    assert fam[3] == last + every


@pytest.mark.parametrize("seed", range(4))
def test_every_candidate_compiles_back_to_its_arrays(seed: int) -> None:
    """The policy text optimize writes is exactly the route it scored (and reads like the docstring says)."""
    ws = routecalc.validate_worksheet(small_catalog(seed))
    cands = enumerate_routes(np.arange(3), np.array([1, 0, 1]), 3, True)
    names = tuple(m.name for m in ws.models)
    for i in range(len(cands)):
        arrays = (cands.model[i], cands.gated[i], cands.on_reject[i], cands.on_failure[i])
        steps = chain_steps(*arrays, names)
        routes = {t.name: ["a"] for t in ws.tasks} | {"t0": steps}
        pol = routecalc.worksheet.PolicySpec.model_validate({"name": "x", "kind": "chain", "routes": routes})
        compiled = routecalc.chains.chain_table(ws.model_copy(update={"policies": []}), [pol])
        L = len(steps)
        assert compiled.model[0, 0, 0, :L].tolist() == cands.model[i, :L].tolist()
        assert compiled.gated[0, 0, 0, :L].tolist() == cands.gated[i, :L].tolist()
        assert compiled.on_reject[0, 0, 0, :L].tolist() == cands.on_reject[i, :L].tolist()
        assert compiled.on_failure[0, 0, 0, :L].tolist() == [[t] * 4 for t in cands.on_failure[i, :L]]  # each type


def test_route_labels_and_steps_by_hand() -> None:
    names = ("small", "large", "small2", "large2")
    partner = np.array([2, 3, 0, 1])
    cands = enumerate_routes(np.arange(4), partner, 2, True)
    text = {
        route_label(cands.model[i], cands.gated[i], cands.on_reject[i], cands.on_failure[i], names)
        for i in range(len(cands))
    }
    assert {
        "small",
        "small → large",
        "small / large",
        "small / small2 → large / large2",
        "small → large / large2",
    } <= text
    i = next(i for i in range(len(cands)) if cands.model[i].tolist()[:4] == [0, 2, 1, 3])
    steps = chain_steps(cands.model[i], cands.gated[i], cands.on_reject[i], cands.on_failure[i], names)
    # a reject at small skips its fallback small2 (step 1) and escalates to large (step 2)
    assert steps == [
        {"model": "small", "gate": True, "on_reject": 2},
        {"model": "small2", "gate": True},
        "large",
        "large2",
    ]


OBJECTIVE_KEY = {
    "cost": lambda s: s["cost"],
    "cost+risk": lambda s: s["cost"] + s["risk"],
    "latency": lambda s: s["latency"],
}


@pytest.mark.parametrize("objective", ["cost", "cost+risk", "latency"])
@pytest.mark.parametrize("seed", range(4))
def test_best_route_per_category_equals_brute_force(seed: int, objective: str) -> None:
    sheet = small_catalog(seed, categories=3)
    sheet["tasks"][0]["constraints"] = {"max_cost_per_request": 0.012}
    sheet["constraints"] = {"max_escalation": 0.5}
    ws = routecalc.validate_worksheet(sheet)
    opt = optimize(ws, objective=objective, max_chain=3, **FAST)
    for c, (pick, s) in enumerate(zip(opt.categories, brute_scores(ws, 3), strict=True)):
        ok = s["quality"] >= ws.tasks[c].quality_threshold - 1e-12
        ok &= s["escalation"] <= 0.5 * (1 + 1e-12)
        if c == 0:
            ok &= s["cost"] <= 0.012 * (1 + 1e-12)
        if not ok.any():
            assert pick.route is None and pick.binding
            continue
        best = OBJECTIVE_KEY[objective](s)[ok].min()
        r = pick.route
        got = {"cost": r.cost, "cost+risk": r.cost + r.risk, "latency": r.latency_mean_s}[objective]
        assert got == pytest.approx(best, rel=1e-12)


def global_brute(ws: routecalc.Worksheet, floors: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every policy (one route per category): traffic-weighted cost and quality."""
    w = np.array(ws.shares)
    scores = brute_scores(ws, 2)
    keep = [
        np.flatnonzero(s["quality"] >= t.quality_threshold - 1e-12) if floors else np.arange(len(s["cost"]))
        for s, t in zip(scores, ws.tasks, strict=True)
    ]
    cost = np.zeros(1)
    qual = np.zeros(1)
    for c, s in enumerate(scores):
        cost = (cost[:, None] + w[c] * s["cost"][keep[c]][None, :]).ravel()
        qual = (qual[:, None] + w[c] * s["quality"][keep[c]][None, :]).ravel()
    return cost, qual


@pytest.mark.parametrize("floors", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_global_modes_equal_brute_force(seed: int, floors: bool) -> None:
    """--min-quality and --budget pick the exact optimum over every policy (a route per category)."""
    sheet = small_catalog(seed, categories=3)
    for t in sheet["tasks"]:
        t["quality_threshold"] = 0.6
    ws = routecalc.validate_worksheet(sheet)
    cost, qual = global_brute(ws, floors)
    vol = 100_000
    for q in np.quantile(qual, [0.2, 0.6, 0.95]):
        opt = optimize(ws, min_quality=float(q), floors=floors, max_chain=2, **FAST)
        assert opt.totals["quality"] >= q - 1e-12
        assert opt.totals["cost_per_request"] == pytest.approx(cost[qual >= q - 1e-12].min(), rel=1e-12)
    for b in np.quantile(cost, [0.2, 0.6]):
        opt = optimize(ws, budget=float(b) * vol, floors=floors, max_chain=2, **FAST)
        assert opt.totals["monthly_cost"] <= b * vol * (1 + 1e-12)
        assert opt.totals["quality"] == pytest.approx(qual[cost <= b * (1 + 1e-12)].max(), rel=1e-12)
        assert opt.mix is not None and opt.mix.monthly == pytest.approx(b * vol, rel=1e-9)
        assert opt.mix.quality >= opt.totals["quality"] - 1e-12


def latency_sheet() -> dict:
    """Fixed latencies (no randomness but the gate): small 0.5 + 500 x 0.01 = 5.5 s, large 11 s, mid 2.7 s.

    Threshold 0.9, P95 budget 10 s. Cheapest by expected cost: small → large, $0.002 + 0.26 x $0.020 = $0.0072,
    but a quarter of requests escalate and take 5.5 + 0.2 + 11 = 16.7 s: P95 16.7 s. Next: small → mid,
    $0.002 + 0.26 x $0.024 = $0.00824, escalated requests take 5.5 + 0.2 + 2.7 = 8.4 s: it passes.
    """
    sheet = two_model_sheet()
    sheet["models"].append(fixed_model("mid", 12.0, 24.0, ttft=0.2, tpot=0.005))
    task = sheet["tasks"][0]
    task["pass_rates"]["mid"] = 0.92
    task["latency_budget_s"] = 10
    return sheet


def test_p95_budget_is_checked_by_monte_carlo_like_compare() -> None:
    ws = routecalc.validate_worksheet(latency_sheet())
    opt = optimize(ws, **FAST)
    pick = opt.categories[0]
    assert pick.route.label == "small → mid"
    assert pick.route.cost == pytest.approx(0.002 + 0.26 * 0.024, rel=1e-12)
    assert pick.route.p95_s == pytest.approx(8.4, rel=0.01)
    assert pick.verified >= 2  # small → large was checked first and failed
    # compare, same samples and seed, on a worksheet with the policy: the same P95, to the last bit
    with_it = routecalc.validate_worksheet(latency_sheet() | {"policies": [opt.policy]})
    c = routecalc.compare(with_it, **FAST)
    assert c.policy("optimized").categories[0].p95_s == pick.route.p95_s
    assert c.winner == "optimized"


def test_no_route_reports_nearest_miss_and_binding_constraint() -> None:
    sheet = latency_sheet()
    sheet["tasks"][0]["latency_budget_s"] = 4  # nothing with small first fits; mid alone (2.7 s) misses quality
    sheet["tasks"][0]["constraints"] = {"forbidden_models": ["mid"]}
    opt = optimize(routecalc.validate_worksheet(sheet), **FAST)
    pick = opt.categories[0]
    assert pick.route is None and opt.policy is None and opt.totals is None
    assert any(b.startswith("P95 ≤ 4 s") for b in pick.binding)
    assert pick.nearest is not None and "mid" not in pick.nearest.label
    cap = two_model_sheet()
    cap["tasks"][0]["constraints"] = {"max_cost_per_request": 0.001}
    opt = optimize(routecalc.validate_worksheet(cap), **FAST)
    assert "cost cap $0.00100/request: the cheapest allowed route costs $0.00200" in opt.categories[0].binding


def test_model_constraints_and_context_window() -> None:
    sheet = two_model_sheet()
    sheet["tasks"][0]["tokens_in"] = {"p50": 800, "p95": 2000}
    sheet["models"][1]["context_window"] = 1500  # holds a typical prompt, not the P95 one
    sheet["tasks"][0]["quality_threshold"] = 0.7
    opt = optimize(routecalc.validate_worksheet(sheet), **FAST)
    assert opt.categories[0].route.label == "small"
    assert ("large", "context window 1,500 tokens < P95 input 2,000 tokens") in opt.categories[0].rules.excluded
    assert any("context window" in n for n in opt.notes)
    sheet = two_model_sheet(constraints={"allowed_models": ["large"]})
    opt = optimize(routecalc.validate_worksheet(sheet), **FAST)
    assert opt.categories[0].route.label == "large"
    sheet = two_model_sheet(constraints={"max_escalation": 0.0})
    opt = optimize(routecalc.validate_worksheet(sheet), **FAST)
    assert opt.categories[0].route.family != "cascade"  # every cascade escalates some requests


def test_window_smaller_than_any_prompt_is_an_input_error() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["context_window"] = 128  # 128 for 128,000: below the only category's 1,000 tokens
    with pytest.raises(WorksheetError) as info:
        optimize(routecalc.validate_worksheet(sheet), **FAST)
    assert [p.path for p in info.value.problems] == ["models[0].context_window"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"objective": "vibes"}, "--objective"),
        ({"max_chain": 9}, "--max-chain"),
        ({"min_quality": 0.9, "budget": 100.0}, "not both"),
        ({"min_quality": 1.5}, "--min-quality"),
        ({"budget": 10.0, "objective": "latency"}, "latency"),
    ],
)
def test_bad_options_are_input_errors(kw: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        optimize(routecalc.validate_worksheet(two_model_sheet()), **kw)


def test_support_triage_beats_every_qualifying_hand_written_policy(support_ws, support_cmp) -> None:
    """Done when: at least as cheap as every hand-written policy that qualifies (support_cmp: 100,000 samples)."""
    opt = optimize(support_ws, samples=100_000, seed=7)
    qualifying = [p for p in support_cmp.policies if p.meets_targets]
    assert qualifying and opt.ok
    assert opt.totals["cost_per_request"] <= min(p.cost_per_request for p in qualifying) + 1e-15
    with_it = support_ws.model_copy(
        update={"policies": [*support_ws.policies, routecalc.worksheet.PolicySpec.model_validate(opt.policy)]}
    )
    c = routecalc.compare(with_it, samples=100_000, seed=7)
    assert c.winner == "optimized"
    mine = c.policy("optimized")
    assert mine.cost_per_request == pytest.approx(opt.totals["cost_per_request"], rel=1e-12)
    assert mine.quality == pytest.approx(opt.totals["quality"], rel=1e-12)
    for got, pick in zip(mine.categories, opt.categories, strict=True):
        assert got.p95_s == pick.route.p95_s and got.ok


def test_achievable_frontier_dominates_every_hand_written_policy(support_ws, support_cmp) -> None:
    f = achievable_frontier(support_ws)
    assert f.exact
    for p in support_cmp.policies:
        reach = f.quality >= p.quality - 1e-12
        assert reach.any() and f.monthly_cost[reach].min() <= p.monthly_cost * (1 + 1e-12)


def test_with_policy_keeps_comments_and_handles_missing_or_empty_policies(tmp_path: Path) -> None:
    opt = optimize(routecalc.validate_worksheet(two_model_sheet()), **FAST)
    text = yaml.safe_dump(two_model_sheet() | {"policies": [{"name": "p", "kind": "static", "routes": {"t": "small"}}]})
    text = "# my comment\n" + text.replace("policies:", "# the policies\npolicies:")
    out = with_policy(text, "w.yaml", opt.policy, None)
    assert out.startswith("# my comment\n") and "# the policies\n" in out
    data = yaml.safe_load(out)
    assert [p["name"] for p in data["policies"]] == ["p", "optimized"]
    no_section = yaml.safe_dump({k: v for k, v in two_model_sheet().items() if k != "policies"})
    assert yaml.safe_load(with_policy(no_section, "w.yaml", opt.policy, None))["policies"][0]["name"] == "optimized"
    empty = yaml.safe_dump(two_model_sheet(), default_flow_style=None)  # policies: []
    assert "policies: []" in empty
    assert yaml.safe_load(with_policy(empty, "w.yaml", opt.policy, None))["policies"][0]["name"] == "optimized"


def test_global_frontier_solver_switch_agrees(support_ws, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MIP (used when the exact combined frontier would be too big) picks the same policy on support triage."""
    exact = optimize(support_ws, min_quality=0.965, samples=50_000, seed=1)
    monkeypatch.setattr(fr, "MAX_PAIRS", 0)
    milp = optimize(support_ws, min_quality=0.965, samples=50_000, seed=1)
    assert milp.totals["monthly_cost"] == pytest.approx(exact.totals["monthly_cost"], rel=1e-9)


# ---------------------------------------------------------------------------------------------------------
# The command


def cli(*args: str):
    from typer.testing import CliRunner

    from routecalc.cli import app

    return CliRunner().invoke(app, ["optimize", *args, "--samples", "20000"], env={"COLUMNS": "200"})


def test_cli_optimize_writes_a_worksheet_that_compare_agrees_with(tmp_path: Path, support_path: Path) -> None:
    out = tmp_path / "optimized.yaml"
    result = cli(str(support_path), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "- name: optimized" in result.output and "Cost vs quality frontier" in result.output
    text = out.read_text()
    assert text.startswith(support_path.read_text().split("policies:")[0])  # the input, comments and all
    from typer.testing import CliRunner

    from routecalc.cli import app

    compared = CliRunner().invoke(app, ["compare", str(out), "-f", "json", "--samples", "20000"])
    data = yaml.safe_load(compared.stdout)
    assert data["winner"] == "optimized"
    again = cli(str(support_path), "-o", str(out))  # never over an existing file without --force
    assert again.exit_code == 3 and "--force" in again.output
    assert cli(str(support_path), "-o", str(out), "--force").exit_code == 0


def test_cli_optimize_same_inputs_same_bytes(tmp_path: Path, support_path: Path) -> None:
    a, b = cli(str(support_path), "-f", "json"), cli(str(support_path), "-f", "json")
    assert a.exit_code == 0 and a.stdout == b.stdout
    data = yaml.safe_load(a.stdout)
    assert data["policy"]["kind"] == "chain" and len(data["categories"]) == 5
    assert cli(str(support_path), "--budget", "3000").stdout == cli(str(support_path), "--budget", "3000").stdout
    cli(str(support_path), "-o", str(tmp_path / "1.yaml"))
    cli(str(support_path), "-o", str(tmp_path / "2.yaml"))
    assert (tmp_path / "1.yaml").read_bytes() == (tmp_path / "2.yaml").read_bytes()


def test_cli_optimize_global_modes_print_the_choice_and_the_mix(support_path: Path) -> None:
    result = cli(str(support_path), "--budget", "3000")
    assert result.exit_code == 0, result.output
    assert "Budget-exact randomised mix" in result.output and "λ = " in result.output
    assert "proven optimal" in result.output
    result = cli(str(support_path), "--min-quality", "0.97", "--objective", "cost+risk")
    assert result.exit_code == 0 and "traffic-weighted quality ≥ 97.00%" in result.output


@pytest.mark.parametrize(
    ("edit", "args", "path"),
    [
        (
            lambda d: d["tasks"][0].update(constraints={"allowed_models": ["gpt-5"]}),
            [],
            "tasks[0].constraints.allowed_models[0]",
        ),
        (lambda d: d["models"][0].update(context_window=100), [], "models[0].context_window"),
        (lambda d: None, ["--min-quality", "0.9", "--budget", "100"], "not both"),
        (lambda d: None, ["--max-chain", "9"], "--max-chain"),
    ],
)
def test_cli_optimize_bad_input_exit_2(tmp_path: Path, support_path: Path, edit, args: list[str], path: str) -> None:
    data = yaml.safe_load(support_path.read_text())
    edit(data)
    sheet = tmp_path / "w.yaml"
    sheet.write_text(yaml.safe_dump(data))
    result = cli(str(sheet), *args)
    assert result.exit_code == 2, result.output
    assert path in result.output and "Traceback" not in result.output


def test_cli_optimize_no_route_exits_0_but_writes_nothing(tmp_path: Path) -> None:
    sheet = tmp_path / "w.yaml"
    data = two_model_sheet()
    data["tasks"][0]["quality_threshold"] = 0.99
    sheet.write_text(yaml.safe_dump(data))
    assert cli(str(sheet)).exit_code == 0
    result = cli(str(sheet), "-o", str(tmp_path / "out.yaml"))
    assert result.exit_code == 1 and "nothing was written" in result.output
    assert not (tmp_path / "out.yaml").exists()
