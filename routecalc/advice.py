"""Advice next to the comparison: what to check or change, and never a route the numbers do not back.

Every advisory is computed from the same arrays as the comparison table (the expected-value engine's means and
the compiled parameters), and one that recommends a route carries the numbers that make it better:

* **escalation** (a cascade step escalates more than 40 % of a category's requests): compared with sending the
  category straight to the cascade's last model (the engine evaluates that route, :func:`direct_variants`). It
  recommends the direct route only when it is cheaper or faster at the same or better quality; otherwise it
  says what the cascade buys (money, quality or speed);
* **direct-route**: the same comparison for cascades escalating less, said only when the direct route wins;
* **weak-validator**: a gate on a cascade's first model lets through more bad answers than the category's
  quality threshold allows: ``(1 - q) (1 - catch) > 1 - threshold``;
* **costly-gate**: a validator that costs more than :data:`GATE_COST_SHARE` of the answer it checks (both at the
  category's mean tokens: the gate's ``cost_per_call + (E[x] + E[y]) cost_per_token`` against the model's
  ``E[x] p_in + E[y] p_out`` with cached input at its price) — the check is itself an expensive LLM call;
* **failure-rate**: a model (or tool) some policy calls that fails more than :data:`FAILURE_WARN` of its tries;
* **low-volume**: under :data:`LOW_VOLUME` requests a month, routing is unlikely to pay for its complexity;
* **ignored-price**: a price the estimate never uses (a cached-input price on a model no category with cached
  prompts reaches).

:mod:`routecalc.results` calls :func:`advisories`; the report reads them from the comparison, never re-derives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.chains import RoutingProblem, direct_variants
from routecalc.engine.billing import answer_costs
from routecalc.engine.ev import Metrics, expected_values
from routecalc.format import count, money, pct
from routecalc.worksheet import Worksheet

if TYPE_CHECKING:
    from routecalc.results import PolicyResult

ESCALATION_WARN = 0.40  # share of a category's requests a cascade escalates before it is questioned
GATE_COST_SHARE = 0.50  # a gate costing more than this share of the answer it checks is "expensive"
FAILURE_WARN = 0.02  # failure rate per try above which a model is flagged
LOW_VOLUME = 1_000  # requests a month below which routing is unlikely to pay for its complexity
QUALITY_TOL = 1e-9  # "same quality" for the direct-route comparison

ESCALATION, DIRECT, WEAK_VALIDATOR, COSTLY_GATE = "escalation", "direct-route", "weak-validator", "costly-gate"
FAILURE_RATE, LOW_VOLUME_KIND, IGNORED_PRICE = "failure-rate", "low-volume", "ignored-price"


@dataclass(frozen=True)
class Advisory:
    """One piece of advice. ``recommends`` names the route it recommends (``"<category> -> <model>"``, for the
    direct route), None when it recommends none; ``numbers`` holds what backs it (EV, per request)."""

    kind: str
    text: str
    policy: str | None = None
    category: str | None = None
    model: str | None = None
    recommends: str | None = None
    numbers: dict[str, float] | None = None


def _policies_text(names: Sequence[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _steps(problem: RoutingProblem) -> np.ndarray:
    """``(P, C)`` steps in each policy's first lane."""
    return (problem.chains.model[:, :, 0] >= 0).sum(-1)


def escalation_advisories(problem: RoutingProblem, ev: Metrics, direct: Metrics) -> list[Advisory]:
    """Cascades and categories: escalation above 40 %, or a direct route that is cheaper or faster.

    ``direct`` is the engine's run of :func:`direct_variants` (one row per cascade, in policy order).
    """
    ch, tt, names = problem.chains, problem.tasks, problem.models.names
    cur, vol = problem.currency, problem.requests_per_month
    cascades = [i for i, kind in enumerate(ch.kinds) if kind == "cascade"]
    steps = _steps(problem)
    out = []
    cost, d_cost = ev.cost, direct.cost  # Metrics.cost sums a (P, C, M) array: once each
    for j, p in enumerate(cascades):
        for c, cat in enumerate(tt.names):
            if steps[p, c] < 2:
                continue
            last = names[int(ch.model[p, c, 0, steps[p, c] - 1])]
            esc = float(ev.escalation[p, c])
            q, dq = float(ev.quality[p, c]), float(direct.quality[j, c])
            k, dk = float(cost[p, c]), float(d_cost[j, c])
            lat, dlat = float(ev.latency[p, c]), float(direct.latency[j, c])
            cheaper, faster, same_q = dk < k, dlat < lat, dq >= q - QUALITY_TOL
            recommend = same_q and (cheaper or faster)
            if esc <= ESCALATION_WARN and not recommend:
                continue
            monthly = abs(dk - k) * float(tt.share[c]) * vol
            numbers = {
                "cost": k,
                "quality": q,
                "latency_s": lat,
                "direct_cost": dk,
                "direct_quality": dq,
                "direct_latency_s": dlat,
                "escalation": esc,
            }
            figures = (
                f"{money(dk, cur)} vs {money(k, cur)} per request, {dlat:.2f} vs {lat:.2f} s mean, "
                f"{pct(dq, 2)} vs {pct(q, 2)} good"
            )
            head = f"{ch.names[p]} / {cat}: "
            if esc > ESCALATION_WARN:
                head += f"{pct(esc)} of requests escalate (> {ESCALATION_WARN:.0%})"
                head += "; " if recommend else ", but "
            if recommend:
                what = " and ".join(w for w, b in (("cheaper", cheaper), ("faster", faster)) if b)
                saves = f", {money(monthly, cur, '/mo')} less" if cheaper else ""
                text = (
                    f"{head}sending {cat} straight to {last} is {what} at equal or better quality ({figures}{saves})."
                )
            else:
                text = head + _what_it_buys(cat, last, cur, monthly, k, dk, q, dq, lat, dlat)
            out.append(
                Advisory(
                    ESCALATION if esc > ESCALATION_WARN else DIRECT,
                    text,
                    policy=ch.names[p],
                    category=cat,
                    model=last,
                    recommends=f"{cat} -> {last}" if recommend else None,
                    numbers=numbers,
                )
            )
    return out


def _what_it_buys(
    cat: str, last: str, cur: str, monthly: float, k: float, dk: float, q: float, dq: float, lat: float, dlat: float
) -> str:
    """The cascade against the direct route, when the direct route is not better: what the cascade buys."""
    vs = f"sending {cat} straight to {last}"
    figures = f"{pct(q, 2)} vs {pct(dq, 2)} good, {lat:.2f} vs {dlat:.2f} s mean"
    if k < dk and q >= dq - QUALITY_TOL:
        return f"the cascade saves {money(monthly, cur, '/mo')} against {vs} at equal or better quality ({figures})."
    if k < dk:
        return (
            f"the cascade saves {money(monthly, cur, '/mo')} against {vs}, at {(dq - q) * 100:.2f} pp lower quality "
            f"({figures})."
        )
    return f"the cascade buys {(q - dq) * 100:+.2f} pp quality for {money(monthly, cur, '/mo')} more than {vs} ({figures})."


def cascade_advisories(ws: Worksheet, problem: RoutingProblem, ev: Metrics) -> list[Advisory]:
    """:func:`escalation_advisories` with the direct routes evaluated by the engine."""
    if "cascade" not in problem.chains.kinds:
        return []
    return escalation_advisories(problem, ev, expected_values(direct_variants(ws, problem)))


def mean_step_costs(problem: RoutingProblem) -> tuple[np.ndarray, np.ndarray]:
    """``(C, M)`` expected cost of one answer of each catalog entry, and of one gate check of it, at the
    category's mean tokens (the engine's formulas for a successful try and a gate, without segments)."""
    mt, tt = problem.models, problem.tasks
    ex, ey = tt.x_mean[:, None], tt.y_mean[:, None] * mt.output_ratio
    C, M = ex.shape[0], mt.price_in.shape[0]
    # the engine's bill (routecalc/engine/billing.py) at the category's batch share, without long-context tiers
    answer, _ = answer_costs(
        mt, tt, np.arange(M)[None, :], np.arange(C)[:, None], ex, ey, batch=tt.batch_share[:, None]
    )
    gate = tt.gate_cost_call[:, None] + (ex + ey) * tt.gate_cost_token[:, None]
    return answer + mt.call_cost, np.broadcast_to(gate, answer.shape)


def gate_advisories(problem: RoutingProblem) -> list[Advisory]:
    """Validators too weak for a cascade's first model, and validators that cost as much as the answer."""
    ch, tt, names = problem.chains, problem.tasks, problem.models.names
    cur = problem.currency
    valid = ch.model >= 0
    gated = valid & ch.gated
    first = gated[..., 0]  # (P, C, L): a lane whose first step is gated
    answer, gate = mean_step_costs(problem)
    out = []
    for c, cat in enumerate(tt.names):
        # weak: (1 - q)(1 - catch) of the first model's answers get past the gate bad
        allowed = 1 - float(tt.threshold[c])
        models = sorted({int(m) for m in ch.model[:, c, :, 0][first[:, c]]})
        for m in models:
            q, catch = float(tt.pass_rate[c, m]), float(tt.catch[c])
            through = (1 - q) * (1 - catch)
            if through <= allowed + 1e-12:
                continue
            pols = [ch.names[p] for p in range(len(ch.names)) if (first[p, c] & (ch.model[p, c, :, 0] == m)).any()]
            out.append(
                Advisory(
                    WEAK_VALIDATOR,
                    f"{cat}: the validator catches {pct(catch)} of bad answers, so {pct(through, 2)} of "
                    f"{names[m]}'s answers get past it bad ((1 - {q:.3g}) x (1 - {catch:.3g})), more than the "
                    f"{pct(allowed, 2)} of requests the {pct(float(tt.threshold[c]))} quality threshold allows to go "
                    f"wrong. A cascade that starts on {names[m]} ({_policies_text(pols)}) delivers them: strengthen "
                    "the check or start on a stronger model.",
                    category=cat,
                    model=names[m],
                    numbers={"bad_through": through, "allowed": allowed},
                )
            )
        # costly: the gate costs more than GATE_COST_SHARE of the answer it checks
        checked = sorted({int(m) for m in ch.model[:, c][gated[:, c]]})
        for m in checked:
            g, a = float(gate[c, m]), float(answer[c, m])
            if g <= GATE_COST_SHARE * a or g == 0:
                continue
            pols = [ch.names[p] for p in range(len(ch.names)) if (gated[p, c] & (ch.model[p, c] == m)).any()]
            out.append(
                Advisory(
                    COSTLY_GATE,
                    f"{cat}: the validator costs {money(g, cur)} per check, {g / a:.0%} of what {names[m]}'s answer "
                    f"costs ({money(a, cur)}; mean tokens) — more than {GATE_COST_SHARE:.0%}: the gate is itself an "
                    f"expensive call ({_policies_text(pols)}). A cheaper check (a schema or rule check, a smaller "
                    "judge) keeps the cascade's savings.",
                    category=cat,
                    model=names[m],
                    numbers={"gate_cost": g, "answer_cost": a},
                )
            )
    return out


def catalog_advisories(ws: Worksheet, problem: RoutingProblem) -> list[Advisory]:
    """Models (and tools) with failure rates above 2 %, and prices the estimate never uses."""
    ch, mt = problem.chains, problem.models
    used = np.zeros(len(mt.names), dtype=bool)
    for model in (ch.model, ch.hedge):
        used[model[model >= 0]] = True
    providers = {m.name: m.provider for m in ws.models}
    out = []
    for i, name in enumerate(mt.names):
        f = float(mt.fail[i])
        if used[i] and f > FAILURE_WARN:
            who = f"{name} ({providers[name]})" if name in providers else f"tool {name}"
            out.append(
                Advisory(
                    FAILURE_RATE,
                    f"{who}: {pct(f, 1)} of tries fail (> {FAILURE_WARN:.0%}). Check the figure against the "
                    "provider's status history, and give routes on it a fallback on another provider.",
                    model=name,
                    numbers={"failure_rate": f},
                )
            )
    # a cached-input price that no category with cached prompts reaches
    serves = np.zeros((len(ws.tasks), len(mt.names)), dtype=bool)
    for model in (ch.model, ch.hedge):
        p, c, lane, s = np.nonzero(model >= 0)
        serves[c, model[p, c, lane, s]] = True
    cached = problem.tasks.cached_share > 0
    unit = "1M" if ws.price_unit == "per_1m" else "1K"
    for i, m in enumerate(ws.models):
        if m.price_cache is None or not used[i] or (serves[:, i] & cached).any():
            continue
        out.append(
            Advisory(
                IGNORED_PRICE,
                f"{m.name}: price_cache ({money(m.price_cache, ws.currency)} per {unit} tokens) is given, but no "
                "category it serves has a cached_share, so the estimate never uses it. Set tasks[].cached_share to "
                "the share of input tokens that hit the prompt cache, or drop the price.",
                model=m.name,
            )
        )
    return out


def volume_advisory(problem: RoutingProblem, policies: Sequence[PolicyResult]) -> list[Advisory]:
    """Under 1,000 requests a month: what routing could save at most, against what it takes to run."""
    n = problem.requests_per_month
    if n >= LOW_VOLUME or not policies:
        return []
    cur = problem.currency
    dearest = max(p.monthly_cost for p in policies)
    qualifying = [p for p in policies if p.meets_targets]
    cheapest = min(qualifying or policies, key=lambda p: p.monthly_cost)
    return [
        Advisory(
            LOW_VOLUME_KIND,
            f"Only {count(n)} requests a month: the dearest policy costs {money(dearest, cur, '/mo')} and the "
            f"cheapest{' meeting every target' if qualifying else ''} ({cheapest.name}) "
            f"{money(cheapest.monthly_cost, cur, '/mo')}. Below {count(LOW_VOLUME)} requests a month a router, its "
            "evals and its monitoring are unlikely to pay for themselves: one model that meets the targets is "
            "simpler.",
            numbers={"requests_per_month": n, "savings_at_most": dearest - cheapest.monthly_cost},
        )
    ]


def advisories(ws: Worksheet, problem: RoutingProblem, ev: Metrics, policies: Sequence[PolicyResult]) -> list[Advisory]:
    """Every advisory of a comparison, in a fixed order: routes, gates, catalog, volume."""
    return [
        *cascade_advisories(ws, problem, ev),
        *gate_advisories(problem),
        *catalog_advisories(ws, problem),
        *volume_advisory(problem, policies),
    ]
