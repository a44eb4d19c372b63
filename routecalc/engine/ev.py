"""Expected-value engine: closed-form means over policies x categories, vectorized with numpy.

For a step ``s`` of a chain reached with probability ``R_s``, model failure probability ``f`` and ``r``
retries (``../shared/MODEL.md``):

* abandon probability ``F = f^(1+r)``; expected failed tries ``f (1 - f^(1+r)) / (1 - f)``;
* answer cost ``E[x] p_in + E[y] p_out (+ cached share x (p_cache - p_in))`` paid with probability ``1 - F``;
* a gated step delivers ``A_good = q (1 - false_reject)`` good and ``A_bad = (1 - q)(1 - catch)`` bad
  answers and sends the rest to ``on_reject``; ``R_s F`` goes to ``on_failure``.

Reach probabilities are propagated step by step (chains only point forward). The engine evaluates *rows*: every
(category, outcome state, lane) (see :mod:`routecalc.outcomes` and :class:`~routecalc.chains.ChainTable`); given a
row, tries are independent, so the arithmetic above is exact per row, and a category's metrics are the rows'
metrics mixed by their weights (state weight x lane share). Arrays are shaped ``(..., P, R, S)`` = (parameter
draws, policies, rows, chain steps); under independence with one lane there is one row per category, weight 1,
and the numbers are exactly those of the per-category arithmetic. Nothing here samples or does I/O.

Parameters may carry leading axes (``...``): a batch of parameter sets (uncertainty draws, sensitivity swings)
is evaluated in one pass, and every output gains those leading axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN, RoutingProblem


@dataclass(frozen=True, eq=False)
class Metrics:
    """Per-request means by policy and category: shape ``(..., P, C)``, ``(..., P, C, M)`` where noted.

    Money is in the worksheet currency per request; latency in seconds; rates are fractions of requests.
    """

    token_cost: np.ndarray  # (P, C, M) token spend by model (failed tries too, if billed)
    gate_cost: np.ndarray  # validator spend
    human_cost: np.ndarray  # human review spend
    quality: np.ndarray  # share delivered with a good answer (human review counts as good)
    delivered_bad: np.ndarray  # share delivered with a bad answer
    failed: np.ndarray  # share with no answer
    human: np.ndarray  # share resolved by human review
    latency: np.ndarray  # mean end-to-end seconds (every try and gate paid)
    escalation: np.ndarray  # share rejected by at least one gate
    fallback: np.ndarray  # share that abandoned at least one step on provider failure
    answered: np.ndarray  # (P, C, M) share whose delivered answer came from each model
    calls: np.ndarray  # (P, C, M) provider tries per request, failed ones included

    @property
    def cost(self) -> np.ndarray:
        """Total spend per request ``(P, C)``: tokens + gates + human review."""
        return self.token_cost.sum(axis=-1) + self.gate_cost + self.human_cost


def _lognormal_mean(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(mu + sigma**2 / 2)


def _route(flow: np.ndarray, target: np.ndarray, inflow: np.ndarray) -> None:
    """Add ``flow`` (..., P, R) into ``inflow[..., target]`` where target (P, R) is a step index."""
    steps = np.arange(inflow.shape[-1])
    inflow += flow[..., None] * (target[..., None] == steps)


@dataclass(frozen=True, eq=False)
class Rows:
    """What the engine evaluates: one row per (category, outcome state, lane), grouped by category.

    ``cat``, ``state`` (index into the flattened outcome states), ``lane``: shape ``(R,)``; ``start`` ``(C,)``:
    each category's first row (every category has at least one).
    """

    cat: np.ndarray
    state: np.ndarray
    lane: np.ndarray
    start: np.ndarray


def rows_of(problem: RoutingProblem) -> Rows:
    """Every (category, state, lane), category-major."""
    oc = problem.outcomes
    L = problem.chains.shape[2]
    per_cat = oc.count * L
    cat = np.repeat(np.arange(len(oc.count)), per_cat)
    offset = np.arange(per_cat.sum()) - np.repeat(np.cumsum(per_cat) - per_cat, per_cat)  # position within category
    state = oc.start[cat] + offset // L
    lane = offset % L
    start = np.concatenate([[0], np.cumsum(per_cat)[:-1]]).astype(np.int64)
    return Rows(cat=cat, state=state, lane=lane, start=start)


def row_weights(problem: RoutingProblem, rows: Rows) -> np.ndarray:
    """Each row's share of its category's requests, ``(..., P, R)``: state weight x lane share."""
    lane = problem.chains.lane_weight[:, rows.cat, rows.lane]  # (P, R)
    return problem.outcomes.weight[..., None, rows.state] * lane


def by_category(values: np.ndarray, weights: np.ndarray, rows: Rows, axis: int = -1) -> np.ndarray:
    """Mix row values into category values: ``sum_r w_r v_r`` over each category's rows along ``axis``."""
    w = weights if axis == -1 else np.expand_dims(weights, -1)
    if len(rows.start) == len(rows.cat):  # one row per category: nothing to add up
        return values * w
    return np.add.reduceat(values * w, rows.start, axis=axis)


def expected_values(problem: RoutingProblem) -> Metrics:
    """Closed-form expected metrics of every policy in every category (see module docstring)."""
    mt, tt, ch, oc = problem.models, problem.tasks, problem.chains, problem.outcomes
    rows = rows_of(problem)
    R, S, M = len(rows.cat), ch.shape[3], len(mt.names)
    at = (slice(None), rows.cat, rows.lane)  # chain arrays (P, C, L, S) -> (P, R, S)
    model = ch.model[at]
    valid = model >= 0
    m = np.where(valid, model, 0)
    gated, r = ch.gated[at], ch.retries[at]
    on_failure, on_reject = ch.on_failure[at], ch.on_reject[at]

    def per_row(a: np.ndarray) -> np.ndarray:
        """A per-category parameter ``(..., C)`` as ``(..., 1, R, 1)``."""
        return a[..., rows.cat][..., None, :, None]

    f = mt.fail[..., m]
    F = np.where(valid, f ** (1 + r), 0.0)
    ok = np.where(valid, 1 - F, 0.0)
    n_fail = f * (1 - f ** (1 + r)) / (1 - f)  # expected failed tries per reached step
    n_retry = f * (1 - f**r) / (1 - f)  # expected retries (each pays the backoff)
    t = mt.timeout_share[..., m]
    fail_latency = (
        n_fail * (t * mt.timeout_s[..., m] + (1 - t) * mt.error_latency_s[..., m])
        + ch.backoff_s[:, None, None] * n_retry
    )

    ex = per_row(tt.x_mean)
    ey = per_row(tt.y_mean) * mt.output_ratio[..., m]
    p_in = mt.price_in[..., m]
    answer_cost = (
        ex * p_in + ey * mt.price_out[..., m] + per_row(tt.cached_share) * ex * (mt.price_cache[..., m] - p_in)
    )
    failed_try_cost = n_fail * ex * p_in if problem.bill_failed_input else np.zeros_like(ex * p_in)
    gate_cost = np.where(gated, per_row(tt.gate_cost_call) + (ex + ey) * per_row(tt.gate_cost_token), 0.0)
    answer_latency = (
        _lognormal_mean(mt.ttft_mu, mt.ttft_sigma)[..., m] + ey * _lognormal_mean(mt.tpot_mu, mt.tpot_sigma)[..., m]
    )
    gate_latency = np.where(gated, per_row(tt.gate_latency_s), 0.0)

    q_rows = oc.q[..., rows.state, :]  # (..., R, M): pass probability given the row's outcome state
    q = np.where(valid, np.nan_to_num(q_rows[..., np.arange(R)[None, :, None], m]), 0.0)
    catch, false_reject = per_row(tt.catch), per_row(tt.false_reject)
    a_good = np.where(gated, q * (1 - false_reject), q)
    a_bad = np.where(gated, (1 - q) * (1 - catch), 1 - q)
    rej_good = np.where(gated, q * false_reject, 0.0)
    rej_bad = np.where(gated, (1 - q) * catch, 0.0)

    shape = np.broadcast_shapes(q.shape, F.shape, answer_cost.shape)
    reach = np.zeros(shape)
    inflow = np.zeros(shape)
    inflow_no_reject = np.zeros(shape)
    inflow_no_abandon = np.zeros(shape)
    inflow[..., 0] = inflow_no_reject[..., 0] = inflow_no_abandon[..., 0] = 1.0
    deliver_good = np.zeros(shape)  # rejected answers delivered anyway (good / bad)
    deliver_bad = np.zeros(shape)
    human = np.zeros(shape[:-1])
    failed = np.zeros(shape[:-1])
    escalation = np.zeros(shape[:-1])
    fallback = np.zeros(shape[:-1])
    F, ok = np.broadcast_to(F, shape), np.broadcast_to(ok, shape)
    rej = np.broadcast_to(rej_good + rej_bad, shape)
    for s in range(S):
        R_s = inflow[..., s] * valid[..., s]
        reach[..., s] = R_s
        fail_flow = R_s * F[..., s]
        ans = R_s * ok[..., s]
        rej_flow = ans * rej[..., s]
        tf, tr = on_failure[..., s], on_reject[..., s]
        _route(fail_flow, tf, inflow)
        _route(rej_flow, tr, inflow)
        failed += np.where(tf == FAIL, fail_flow, 0.0) + np.where(tr == FAIL, rej_flow, 0.0)
        human += np.where(tr == HUMAN, rej_flow, 0.0)
        deliver_good[..., s] = np.where(tr == DELIVER, ans * rej_good[..., s], 0.0)
        deliver_bad[..., s] = np.where(tr == DELIVER, ans * rej_bad[..., s], 0.0)

        # "at least once" rates: follow only the paths that have not yet been rejected / abandoned
        R_nr = inflow_no_reject[..., s] * valid[..., s]
        escalation += R_nr * ok[..., s] * rej[..., s]
        _route(R_nr * F[..., s], tf, inflow_no_reject)
        R_na = inflow_no_abandon[..., s] * valid[..., s]
        fallback += R_na * F[..., s]
        _route(R_na * ok[..., s] * rej[..., s], tr, inflow_no_abandon)

    delivered = reach * ok * (a_good + a_bad) + deliver_good + deliver_bad
    onehot = (m[..., None] == np.arange(M)) & valid[..., None]  # (P, R, S, M)
    w = row_weights(problem, rows)
    by_model = lambda v: by_category(np.einsum("...prs,prsm->...prm", v, onehot), w, rows, axis=-2)
    cat = lambda v: by_category(v, w, rows)
    tokens = reach * (ok * answer_cost + failed_try_cost)
    latency = (reach * (fail_latency + ok * (answer_latency + gate_latency))).sum(-1)
    latency += human * ch.human_latency_s[:, None]
    return Metrics(
        token_cost=by_model(tokens),
        gate_cost=cat((reach * ok * gate_cost).sum(-1)),
        human_cost=cat(human * ch.human_cost[:, None]),
        quality=cat((reach * ok * a_good + deliver_good).sum(-1) + human),
        delivered_bad=cat((reach * ok * a_bad + deliver_bad).sum(-1)),
        failed=cat(failed),
        human=cat(human),
        latency=cat(latency),
        escalation=cat(escalation),
        fallback=cat(fallback),
        answered=by_model(delivered),
        calls=by_model(reach * (n_fail + ok)),
    )
