"""``routecalc explain``: one policy in one category, worked out by hand, next to the engine's numbers.

For each lane of the category's route (a plain route has one; a router's lanes come with their share of the
requests), every step's reach ``R``, its failure and give-up probabilities, pass rate, accept and reject shares
and what it adds to the expected cost, quality and latency, with the arithmetic written out as MODEL.md gives it:

* tries: a try fails with ``f`` (``f_R = f (1 - c)`` of them retried, ``c`` the content-filter share); the step
  gives up with ``F = f_R^(1+r) + f c (1 - f_R^(1+r)) / (1 - f_R)``; failed tries ``f_R (1 - f_R^(1+r)) /
  (1 - f_R) + refused``;
* an answer costs ``E[x] p_in + E[y] ratio p_out + cached E[x] (p_cache - p_in)`` and takes
  ``E[ttft] + E[y] ratio E[tpot]``; a gate accepts ``q (1 - false_reject)`` good and ``(1 - q)(1 - catch)`` bad
  answers and sends the rest to ``on_reject``; ``R F`` goes to ``on_failure``.

Every parameter is read from the compiled problem (``chains.compile_worksheet``), the lane shares and token
means from the expected-value engine's rows (``engine.ev.rows_of``), and the totals are set beside
``engine.ev.expected_values``: ``exact`` says whether the hand arithmetic reproduces them. It does for chains of
models with independent pass rates; where the engine models more (a joint outcome table, correlated difficulty or
tiers, prompts longer than a context window, deadlines, hedged steps, per-error-type routing, a latency law),
the notes say what, and the engine's number is the one ``compare`` uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routecalc.chains import CONTENT_FILTER, DELIVER, FAIL, HUMAN, RoutingProblem, compile_worksheet
from routecalc.engine.ev import expected_values, needs_latency_law, row_weights, rows_of
from routecalc.errors import InputError, PolicyError
from routecalc.format import SYMBOLS
from routecalc.worksheet import Worksheet

TOLERANCE = 1e-9  # relative: hand arithmetic and engine agree to rounding


@dataclass(frozen=True)
class StepWork:
    """One step of a lane, per request reaching the lane (fractions, money in the worksheet currency)."""

    step: int  # 1-based
    model: str
    gated: bool
    reach: float
    fail: float  # per try
    retries: int
    tries: float  # expected tries per request reaching the step
    abandon: float  # F: gives up (after its tries)
    pass_rate: float
    accept_good: float
    accept_bad: float
    reject: float
    on_reject: str | None  # where rejected answers go (None: ungated)
    on_failure: str  # where a give-up goes
    answer_cost: float
    gate_cost: float
    failed_try_cost: float
    answer_latency_s: float
    gate_latency_s: float
    fail_latency_s: float  # expected latency of the failed tries and backoffs, per request reaching the step
    cost_per_request: float  # this step's share of the lane's cost: R ((1-F)(answer + gate) + failed tries)
    quality: float  # R (1 - F) accept_good (+ rejected good answers delivered anyway)
    latency_s: float  # R (fail latency + (1 - F)(answer + gate latency))
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaneWork:
    lane: int
    share: float
    route: str
    steps: tuple[StepWork, ...]
    cost_per_request: float
    quality: float
    failed: float
    latency_mean_s: float
    arithmetic: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    worksheet: str
    policy: str
    category: str
    currency: str
    route: str
    lanes: tuple[LaneWork, ...]
    hand: dict[str, float]
    engine: dict[str, float]
    exact: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The ``explain`` output (``routecalc schema --output explain``)."""
        step_keys = [
            "step",
            "model",
            "gated",
            "reach",
            "fail",
            "tries",
            "abandon",
            "pass_rate",
            "accept_good",
            "accept_bad",
            "reject",
            "on_reject",
            "on_failure",
            "answer_cost",
            "answer_latency_s",
            "cost_per_request",
            "quality",
            "latency_s",
        ]
        return {
            "worksheet": self.worksheet,
            "policy": self.policy,
            "category": self.category,
            "currency": self.currency,
            "route": self.route,
            "lanes": [
                {
                    "lane": lane.lane,
                    "share": lane.share,
                    "route": lane.route,
                    "steps": [{k: getattr(s, k) for k in step_keys} for s in lane.steps],
                    "cost_per_request": lane.cost_per_request,
                    "quality": lane.quality,
                    "failed": lane.failed,
                    "latency_mean_s": lane.latency_mean_s,
                    "arithmetic": list(lane.arithmetic),
                }
                for lane in self.lanes
            ],
            "hand": self.hand,
            "engine": self.engine,
            "exact": self.exact,
            "notes": list(self.notes),
        }


def _money(v: float, currency: str) -> str:
    """Money with 4 significant digits in plain decimals (``$0.00006608``), enough to redo the sums by hand."""
    sym = SYMBOLS.get(currency)
    a = abs(v)
    if a >= 1000:
        text = f"{a:,.0f}"
    elif a == 0 or not math.isfinite(a):
        text = f"{a:g}"
    else:
        text = f"{a:.{max(2, 3 - math.floor(math.log10(a)))}f}"
    return ("-" if v < 0 else "") + (f"{sym}{text}" if sym else f"{currency} {text}")


def _p(v: float) -> str:
    """A probability with enough digits to check: 4 significant digits as a percentage."""
    return f"{v * 100:.4g}%"


def _target(t: int, names: list[str]) -> str:
    if t >= 0:
        return f"step {t + 1} ({names[t]})"
    return {FAIL: "fail", DELIVER: "deliver anyway", HUMAN: "human review"}.get(t, "fail")


def _lane_route(problem: RoutingProblem, p: int, c: int, lane: int) -> list[str]:
    ch, mt = problem.chains, problem.models
    steps = ch.model[p, c, lane]
    return [mt.names[int(m)] for m in steps if m >= 0]


def _features(problem: RoutingProblem, p: int, c: int) -> list[str]:
    """What the engine models in this (policy, category) beyond the per-step arithmetic."""
    from routecalc.outcomes import assumed_independent

    ch, sg = problem.chains, problem.segments
    out = []
    if not assumed_independent(problem.outcomes)[c]:
        out.append(
            "pass/fail outcomes have a joint law here (outcome table, correlation or tiers): the engine uses each "
            "model's pass rate given what earlier steps did; the hand arithmetic uses the lane's plain pass rates"
        )
    valid = ch.model[p, c] >= 0
    m = np.where(valid, ch.model[p, c], 0)
    if np.isfinite(sg.window[c, m][valid]).any():
        out.append("some prompts are longer than a step's context window: they skip it (overflow)")
    if np.isfinite(ch.deadline_s[p, c][valid]).any() or (ch.hedge[p, c] >= 0).any():
        out.append("deadlines or hedged steps: the engine integrates the whole answer-latency law")
    typed = ch.on_failure[p, c] != ch.on_failure[p, c][..., 1:2]
    if (typed & valid[..., None]).any():
        out.append("provider errors are routed by type: the hand arithmetic sends every give-up to the 5xx target")
    return out


def _lane_stats(problem: RoutingProblem, p: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per lane of (policy p, category c): its share of the category's requests, mean input tokens, mean output
    tokens and mean pass rate per catalog entry, from the expected-value engine's rows and weights."""
    rows = rows_of(problem)
    w = row_weights(problem, rows)[p]  # (R,)
    L = problem.chains.shape[2]
    tt, sg, oc = problem.tasks, problem.segments, problem.outcomes
    mine = rows.cat == c
    x = sg.x_mean[rows.cat, rows.segment] if not sg.trivial else tt.x_mean[rows.cat]
    y = rows.y if rows.y is not None else tt.y_mean[rows.cat]
    share = np.zeros(L)
    x_mean = np.full(L, float(tt.x_mean[c]))
    y_mean = np.full(L, float(tt.y_mean[c]))
    q = np.tile(np.nan_to_num(tt.pass_rate[c]), (L, 1))
    for lane in range(L):
        sel = mine & (rows.lane == lane)
        total = float(w[sel].sum())
        share[lane] = total
        if total > 0:
            ww = w[sel] / total
            x_mean[lane] = float(ww @ x[sel])
            y_mean[lane] = float(ww @ y[sel])
            q[lane] = ww @ np.nan_to_num(oc.q[rows.state[sel]])
    return share, x_mean, y_mean, q


def _work_lane(
    problem: RoutingProblem,
    p: int,
    c: int,
    lane: int,
    share: float,
    ex: float,
    ey_mean: float,
    q: np.ndarray,
    per: tuple[float, str],
) -> LaneWork:
    """One lane worked out step by step; ``per`` = (tokens per price unit, its label) for showing prices."""
    mt, tt, ch = problem.models, problem.tasks, problem.chains
    cur = problem.currency
    names = _lane_route(problem, p, c, lane)
    S = len(names)
    k, unit = per

    def money(v: float) -> str:
        return _money(v, cur)

    def price(v: float) -> str:
        return f"{_money(v * k, cur)}/{unit}"

    reach = np.zeros(S + 1)
    reach[0] = 1.0
    delivered_extra_good = np.zeros(S)
    steps: list[StepWork] = []
    failed = 0.0
    human = 0.0
    for s in range(S):
        m = int(ch.model[p, c, lane, s])
        R = float(reach[s])
        f = float(mt.fail[m])
        r = int(ch.retries[p, c, lane, s])
        refused_share = float(mt.errors[m, CONTENT_FILTER])
        f_r = f * (1 - refused_share)
        exhausted = f_r ** (1 + r)
        refused = f * refused_share * (1 - exhausted) / (1 - f_r) if f_r < 1 else 0.0
        F = exhausted + refused
        n_fail = (f_r * (1 - f_r ** (1 + r)) / (1 - f_r) if f_r < 1 else 1 + r) + refused
        n_retry = f_r * (1 - f_r**r) / (1 - f_r) if f_r < 1 else r
        ok = 1 - F
        tool = bool(ch.tool[p, c, lane, s])
        gated = bool(ch.gated[p, c, lane, s]) or tool
        qm = float(q[m])
        catch = float(tt.tool_catch[c, m]) if tool else float(tt.catch[c])
        false_reject = 0.0 if tool else float(tt.false_reject[c])
        a_good = qm * (1 - false_reject) if gated else qm
        a_bad = (1 - qm) * (1 - catch) if gated else 1 - qm
        rej_good = qm * false_reject if gated else 0.0
        reject = rej_good + ((1 - qm) * catch if gated else 0.0)
        ratio = float(mt.output_ratio[m])
        ey = ey_mean * ratio
        p_in, p_out, p_cache = float(mt.price_in[m]), float(mt.price_out[m]), float(mt.price_cache[m])
        cached = float(tt.cached_share[c])
        answer_cost = ex * p_in + ey * p_out + cached * ex * (p_cache - p_in) + float(mt.call_cost[m])
        failed_try_cost = n_fail * ex * p_in if problem.bill_failed_input else 0.0
        gate_cost = float(tt.gate_cost_call[c] + (ex + ey) * tt.gate_cost_token[c]) if gated and not tool else 0.0
        ttft = math.exp(mt.ttft_mu[m] + mt.ttft_sigma[m] ** 2 / 2)
        tpot = math.exp(mt.tpot_mu[m] + mt.tpot_sigma[m] ** 2 / 2) if np.isfinite(mt.tpot_mu[m]) else 0.0
        answer_latency = ttft + ey * tpot
        gate_latency = float(tt.gate_latency_s[c]) if gated and not tool else 0.0
        retried = 1 - refused_share
        t = float(mt.errors[m, 0]) / retried if retried > 0 else 0.0
        timeout = float(mt.timeout_s[m]) if t > 0 else 0.0
        err_lat = float(mt.error_latency_s[m])
        fail_latency = (
            (n_fail - refused) * (t * timeout + (1 - t) * err_lat)
            + float(ch.backoff_s[p]) * n_retry
            + refused * err_lat
        )
        on_fail = int(ch.on_failure[p, c, lane, s, 1])
        on_rej = int(ch.on_reject[p, c, lane, s])
        # flows
        if on_fail >= 0:
            reach[on_fail] += R * F
        else:
            failed += R * F
        rej_flow = R * ok * reject
        if gated:
            if on_rej >= 0:
                reach[on_rej] += rej_flow
            elif on_rej == FAIL:
                failed += rej_flow
            elif on_rej == HUMAN:
                human += rej_flow
            elif on_rej == DELIVER:
                delivered_extra_good[s] = R * ok * rej_good
        cost_s = R * (ok * (answer_cost + gate_cost) + failed_try_cost)
        quality_s = R * ok * a_good + delivered_extra_good[s]
        latency_s = R * (fail_latency + ok * (answer_latency + gate_latency))
        lines = [
            f"reached by {_p(R)} of the lane's requests",
            f"tries: fails {_p(f)} per try, {r} retr{'y' if r == 1 else 'ies'}: gives up F = {_p(F)}"
            + (f" (= {f:.4g}^{1 + r})" if refused_share == 0 else "")
            + f", {n_fail + ok:.4g} tries per request reaching it; a give-up goes to {_target(on_fail, names)}",
        ]
        if tool:
            lines.append(f"tool: answers {_p(q[m] + (1 - q[m]) * (1 - catch))}, right {_p(a_good)}")
        else:
            parts = f"{ex:,.4g} tokens in x {price(p_in)} + {ey:,.4g} out x {price(p_out)}"
            if cached:
                parts += f" + {cached:g} x {ex:,.4g} cached x ({price(p_cache)} - {price(p_in)})"
            lines.append(f"answer: {money(answer_cost)} = {parts}")
            lines.append(
                f"latency of an answer: {answer_latency:.4g} s = E[ttft] {ttft:.4g} s + {ey:,.4g} tokens x "
                f"E[tpot] {tpot:.4g} s"
            )
        if gated and not tool:
            lines.append(
                f"gate: pass rate q = {_p(qm)}; accepted good q (1 - false_reject {false_reject:g}) = {_p(a_good)}, "
                f"accepted bad (1 - q)(1 - catch {catch:g}) = {_p(a_bad)}, rejected {_p(reject)} → "
                f"{_target(on_rej, names)}; gate {money(gate_cost)} and {gate_latency:g} s per answer"
            )
        elif not tool:
            lines.append(f"no gate: every answer is delivered, good with q = {_p(qm)}")
        lines.append(
            f"adds cost {money(cost_s)} = {R:.4g} x ({ok:.4g} x ({money(answer_cost)} + {money(gate_cost)})"
            + (f" + failed tries {money(failed_try_cost)}" if failed_try_cost else "")
            + f"), quality {_p(quality_s)} = {R:.4g} x {ok:.4g} x {_p(a_good)}"
            + (f" + rejected good delivered {_p(delivered_extra_good[s])}" if delivered_extra_good[s] else "")
            + f", latency {latency_s:.4g} s = {R:.4g} x ({fail_latency:.4g} + {ok:.4g} x ({answer_latency:.4g} + "
            f"{gate_latency:g}))"
        )
        steps.append(
            StepWork(
                step=s + 1,
                model=names[s],
                gated=gated,
                reach=R,
                fail=f,
                retries=r,
                tries=n_fail + ok,
                abandon=F,
                pass_rate=qm,
                accept_good=a_good,
                accept_bad=a_bad,
                reject=reject,
                on_reject=_target(on_rej, names) if gated else None,
                on_failure=_target(on_fail, names),
                answer_cost=answer_cost,
                gate_cost=gate_cost,
                failed_try_cost=failed_try_cost,
                answer_latency_s=answer_latency,
                gate_latency_s=gate_latency,
                fail_latency_s=fail_latency,
                cost_per_request=cost_s,
                quality=quality_s,
                latency_s=latency_s,
                lines=tuple(lines),
            )
        )
    human_cost = human * float(ch.human_cost[p])
    human_latency = human * float(ch.human_latency_s[p])
    router_cost = float(ch.lane_cost_call[p, c, lane] + ex * ch.lane_cost_token[p, c, lane])
    mu, sigma = float(ch.lane_latency_mu[p, c, lane]), float(ch.lane_latency_sigma[p, c, lane])
    router_latency = math.exp(mu + sigma**2 / 2) if np.isfinite(mu) else 0.0
    cost = sum(s.cost_per_request for s in steps) + human_cost + router_cost
    quality = sum(s.quality for s in steps) + human
    latency = sum(s.latency_s for s in steps) + human_latency + router_latency
    plus = lambda xs: " + ".join(xs) or "0"
    arithmetic = [
        f"cost = {plus([_money(s.cost_per_request, cur) for s in steps])}"
        + (f" + human review {_money(human_cost, cur)}" if human else "")
        + (f" + classifier {_money(router_cost, cur)}" if router_cost else "")
        + f" = {_money(cost, cur)} per request",
        f"quality = {plus([_p(s.quality) for s in steps])}"
        + (f" + human review {_p(human)}" if human else "")
        + f" = {_p(quality)}",
        f"failed (no answer) = {_p(failed)}",
        f"mean latency = {plus([f'{s.latency_s:.4g} s' for s in steps])}"
        + (f" + human review {human_latency:.4g} s" if human else "")
        + (f" + classifier {router_latency:.4g} s" if router_latency else "")
        + f" = {latency:.4g} s",
    ]
    return LaneWork(
        lane=lane,
        share=share,
        route=" → ".join(names),
        steps=tuple(steps),
        cost_per_request=cost,
        quality=quality,
        failed=failed,
        latency_mean_s=latency,
        arithmetic=tuple(arithmetic),
    )


def explain(ws: Worksheet, policy: str, category: str) -> Explanation:
    """Work out ``policy`` in ``category`` by hand (module docstring), next to the expected-value engine."""
    from routecalc.routes import route_text

    problem = compile_worksheet(ws)
    ch, tt = problem.chains, problem.tasks
    if policy not in ch.names:
        raise PolicyError(f"unknown policy {policy!r} (policies: {', '.join(ch.names)})")
    if category not in tt.names:
        raise InputError(f"unknown category {category!r} (categories: {', '.join(tt.names)})")
    p, c = ch.names.index(policy), tt.names.index(category)
    spec = next((x for x in ws.policies if x.name == policy), None)
    if spec is not None and category in spec.routes:
        route = route_text(spec, spec.routes[category])
    else:
        route = " → ".join(_lane_route(problem, p, c, 0))
    share, x_mean, y_mean, q = _lane_stats(problem, p, c)
    per = (ws.tokens_per_price_unit, "1M" if ws.tokens_per_price_unit == 1e6 else "1K")
    lanes = tuple(
        _work_lane(problem, p, c, lane, float(share[lane]), float(x_mean[lane]), float(y_mean[lane]), q[lane], per)
        for lane in range(ch.shape[2])
        if share[lane] > 0 or (lane == 0 and share.sum() == 0)
    )
    total = max(sum(lane.share for lane in lanes), 1e-300)
    hand = {
        "cost_per_request": sum(lane.share * lane.cost_per_request for lane in lanes) / total,
        "quality": sum(lane.share * lane.quality for lane in lanes) / total,
        "latency_mean_s": sum(lane.share * lane.latency_mean_s for lane in lanes) / total,
    }
    ev = expected_values(problem)
    engine = {
        "cost_per_request": float(ev.cost[p, c]),
        "quality": float(ev.quality[p, c]),
        "failed": float(ev.failed[p, c]),
        "latency_mean_s": float(ev.latency[p, c]),
        "escalation": float(ev.escalation[p, c]),
        "fallback": float(ev.fallback[p, c]),
    }
    exact = all(math.isclose(hand[k], engine[k], rel_tol=TOLERANCE, abs_tol=1e-15) for k in hand)
    notes = []
    if not exact:
        why = _features(problem, p, c)
        if needs_latency_law(problem) and not why:
            why.append(
                "some policy has deadlines or hedged steps, so the engine averages output tokens over 24 quadrature "
                "nodes (a rounding-size difference)"
            )
        notes.append(
            "The hand arithmetic differs from the engine's numbers (the ones compare uses): "
            + ("; ".join(why) if why else "no modelled feature explains it: please report this")
            + "."
        )
    if len(lanes) > 1:
        notes.append(
            "Totals are the lanes' numbers weighted by their share of the category's requests: "
            + " + ".join(f"{lane.share:.4g} x lane {lane.lane + 1}" for lane in lanes)
            + "."
        )
    return Explanation(
        worksheet=ws.name,
        policy=policy,
        category=category,
        currency=problem.currency,
        route=route,
        lanes=lanes,
        hand=hand,
        engine=engine,
        exact=exact,
        notes=tuple(notes),
    )
