"""Expected-value engine: closed-form means over policies x categories, vectorized with numpy.

For a step ``s`` of a chain reached with probability ``R_s``, model failure probability ``f`` and ``r``
retries (``../shared/MODEL.md``):

* abandon probability ``F = f^(1+r)``; expected failed tries ``f (1 - f^(1+r)) / (1 - f)``;
* answer cost ``E[x] p_in + E[y] p_out (+ cached share x (p_cache - p_in))`` paid with probability ``1 - F``;
* a gated step delivers ``A_good = q (1 - false_reject)`` good and ``A_bad = (1 - q)(1 - catch)`` bad
  answers and sends the rest to ``on_reject``; ``R_s F`` goes to ``on_failure``.

Reach probabilities are propagated step by step (chains only point forward). The engine evaluates *rows*: every
(category, outcome state, segment, lane) (:mod:`routecalc.outcomes`, :mod:`routecalc.routes`,
:class:`~routecalc.chains.ChainTable`); given a row, tries are independent, so the arithmetic above is exact per
row, and a category's metrics are the rows' metrics mixed by their weights (state weight x segment probability x
lane share given the state's tier and the segment).

Errors by type: of a model's failures a share ``c`` are content-filter refusals, which are not retried; the
others (timeouts, 5xx, 429) are. With ``f_R = f (1 - c)``: abandoned after exhausting ``1 + r`` tries
``f_R^(1+r)`` (the last try's type decides where the request goes), after a refusal
``f c (1 - f_R^(1+r)) / (1 - f_R)``. A segment whose tokens exceed the step's model's window skips the step
(a fast error, nothing billed) to ``on_overflow``. A tool step answers with its hit rate, right with its
quality, and sends misses on: its own perfect gate. Arrays are shaped ``(..., P, R, S)`` = (parameter
draws, policies, rows, chain steps); under independence with one lane there is one row per category, weight 1,
and the numbers are exactly those of the per-category arithmetic. Nothing here samples or does I/O.

Parameters may carry leading axes (``...``): a batch of parameter sets (uncertainty draws, sensitivity swings)
is evaluated in one pass, and every output gains those leading axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import CONTENT_FILTER, DELIVER, FAIL, HUMAN, N_ERRORS, RoutingProblem


@dataclass(frozen=True, eq=False)
class Metrics:
    """Per-request means by policy and category: shape ``(..., P, C)``, ``(..., P, C, M)`` where noted.

    Money is in the worksheet currency per request; latency in seconds; rates are fractions of requests.
    """

    token_cost: np.ndarray  # (P, C, M) token spend by catalog entry (failed tries too, if billed; tool calls)
    gate_cost: np.ndarray  # validator spend
    human_cost: np.ndarray  # human review spend
    quality: np.ndarray  # share delivered with a good answer (human review counts as good)
    delivered_bad: np.ndarray  # share delivered with a bad answer
    failed: np.ndarray  # share with no answer
    human: np.ndarray  # share resolved by human review
    latency: np.ndarray  # mean end-to-end seconds (every try and gate paid)
    escalation: np.ndarray  # share rejected by at least one gate
    fallback: np.ndarray  # share that abandoned at least one step on provider failure
    answered: np.ndarray  # (P, C, M) share whose delivered answer came from each catalog entry
    calls: np.ndarray  # (P, C, M) provider tries per request, failed ones included
    overflow: np.ndarray | None = None  # share that skipped at least one step: prompt longer than the window
    router_cost: np.ndarray | None = None  # classifier spend per request
    served: np.ndarray | None = None  # (P, C, S) share delivered (or sent to review) at each chain step

    @property
    def cost(self) -> np.ndarray:
        """Total spend per request ``(P, C)``: tokens + gates + human review (+ classifiers)."""
        total = self.token_cost.sum(axis=-1) + self.gate_cost + self.human_cost
        return total if self.router_cost is None else total + self.router_cost


def _lognormal_mean(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(mu + sigma**2 / 2)


def _route(flow: np.ndarray, target: np.ndarray, inflow: np.ndarray) -> None:
    """Add ``flow`` (..., P, R) into ``inflow[..., target]`` where target (P, R) is a step index."""
    steps = np.arange(inflow.shape[-1])
    inflow += flow[..., None] * (target[..., None] == steps)


@dataclass(frozen=True, eq=False)
class Rows:
    """What the engine evaluates: one row per (category, outcome state, segment, lane), grouped by category.

    ``cat``, ``state`` (index into the flattened outcome states), ``segment``, ``lane``: shape ``(R,)``;
    ``start`` ``(C,)``: each category's first row (every category has at least one).
    """

    cat: np.ndarray
    state: np.ndarray
    segment: np.ndarray
    lane: np.ndarray
    start: np.ndarray


def rows_of(problem: RoutingProblem) -> Rows:
    """Every (category, state, segment with any requests, lane), category-major."""
    oc, seg = problem.outcomes, problem.segments
    L = problem.chains.shape[2]
    parts = []
    for c in range(len(oc.count)):
        segments = np.flatnonzero(seg.prob[c] > 0)
        if segments.size == 0:  # a fixed token count at 0: keep one segment so the category has rows
            segments = np.zeros(1, dtype=np.int64)
        k, g, lane = np.meshgrid(
            np.arange(oc.start[c], oc.start[c] + oc.count[c]), segments, np.arange(L), indexing="ij"
        )
        parts.append((np.full(k.size, c), k.ravel(), g.ravel(), lane.ravel()))
    cat, state, segment, lane = (np.concatenate(x).astype(np.int64) for x in zip(*parts, strict=True))
    sizes = np.array([p[0].size for p in parts])
    return Rows(cat=cat, state=state, segment=segment, lane=lane, start=np.concatenate([[0], np.cumsum(sizes)[:-1]]))


def row_weights(problem: RoutingProblem, rows: Rows) -> np.ndarray:
    """Each row's share of its category's requests, ``(..., P, R)``: state weight x segment x lane share."""
    ch, oc = problem.chains, problem.outcomes
    lane = ch.lane_weight[:, rows.cat, oc.tier[rows.state], rows.segment, rows.lane]  # (P, R)
    seg = problem.segments.prob[rows.cat, rows.segment]
    return problem.outcomes.weight[..., None, rows.state] * seg * lane


def by_category(values: np.ndarray, weights: np.ndarray, rows: Rows, axis: int = -1) -> np.ndarray:
    """Mix row values into category values: ``sum_r w_r v_r`` over each category's rows along ``axis``."""
    w = weights if axis == -1 else np.expand_dims(weights, -1)
    return np.add.reduceat(values * w, rows.start, axis=axis)


def expected_values(problem: RoutingProblem) -> Metrics:
    """Closed-form expected metrics of every policy in every category (see module docstring)."""
    mt, tt, ch, oc, sg = problem.models, problem.tasks, problem.chains, problem.outcomes, problem.segments
    if (ch.hedge >= 0).any() or np.isfinite(ch.deadline_s).any():
        from routecalc.engine.ev_latency import expected_values_with_latency

        return expected_values_with_latency(problem)
    rows = rows_of(problem)
    R, S, M = len(rows.cat), ch.shape[3], len(mt.names)
    at = (slice(None), rows.cat, rows.lane)  # chain arrays (P, C, L, S) -> (P, R, S)
    model = ch.model[at]
    valid = model >= 0
    m = np.where(valid, model, 0)
    gated, r = ch.gated[at], ch.retries[at]
    tool = ch.tool[at] & valid
    on_failure, on_reject, on_overflow = ch.on_failure[at], ch.on_reject[at], ch.on_overflow[at]

    def per_row(a: np.ndarray) -> np.ndarray:
        """A per-category parameter ``(..., C)`` as ``(..., 1, R, 1)``."""
        return a[..., rows.cat][..., None, :, None]

    overflow = valid & (sg.x_lo[rows.cat, rows.segment][None, :, None] >= sg.window[rows.cat[None, :, None], m])
    live = valid & ~overflow
    f = mt.fail[..., m]
    share = mt.errors[..., m, :]  # (..., P, R, S, 4)
    f_refused = f * share[..., CONTENT_FILTER]
    f_r = f * (1 - share[..., CONTENT_FILTER])  # retried failures (f itself when nothing is refused)
    exhausted = f_r ** (1 + r)
    refused = f_refused * (1 - exhausted) / (1 - f_r)
    F = np.where(live, exhausted + refused, 0.0)
    F = np.where(overflow, 1.0, F)
    ok = np.where(live, 1 - F, 0.0)
    n_fail = f_r * (1 - f_r ** (1 + r)) / (1 - f_r)  # expected failed tries per reached step
    n_retry = f_r * (1 - f_r**r) / (1 - f_r)  # expected retries (each pays the backoff)
    retried = 1 - share[..., CONTENT_FILTER]
    with np.errstate(invalid="ignore", divide="ignore"):  # every failure a refusal: no retried failures
        t = np.where(retried > 0, share[..., 0] / retried, 0.0)  # timeouts among retried failures
        last_share = np.where(retried[..., None] > 0, share[..., :CONTENT_FILTER] / retried[..., None], 0.0)
    with np.errstate(invalid="ignore"):  # a tool never times out: 0 x inf
        timed_out = np.where(t > 0, t * mt.timeout_s[..., m], 0.0)
    fail_latency = (
        n_fail * (timed_out + (1 - t) * mt.error_latency_s[..., m])
        + ch.backoff_s[:, None, None] * n_retry
        + refused * mt.error_latency_s[..., m]
    )
    fail_latency = np.where(overflow, mt.error_latency_s[..., m], fail_latency)
    n_fail = n_fail + refused

    ex = sg.x_mean[rows.cat, rows.segment][None, :, None] if not sg.trivial else per_row(tt.x_mean)
    ey = per_row(tt.y_mean) * mt.output_ratio[..., m]
    p_in = mt.price_in[..., m]
    answer_cost = (
        ex * p_in + ey * mt.price_out[..., m] + per_row(tt.cached_share) * ex * (mt.price_cache[..., m] - p_in)
    )
    if mt.call_cost.any():
        answer_cost = answer_cost + mt.call_cost[..., m]
    failed_try_cost = n_fail * ex * p_in if problem.bill_failed_input else np.zeros_like(ex * p_in)
    failed_try_cost = np.where(overflow, 0.0, failed_try_cost)
    gate_cost = np.where(gated, per_row(tt.gate_cost_call) + (ex + ey) * per_row(tt.gate_cost_token), 0.0)
    answer_latency = (
        _lognormal_mean(mt.ttft_mu, mt.ttft_sigma)[..., m] + ey * _lognormal_mean(mt.tpot_mu, mt.tpot_sigma)[..., m]
    )
    gate_latency = np.where(gated, per_row(tt.gate_latency_s), 0.0)

    q_rows = oc.q[..., rows.state, :]  # (..., R, M): pass probability given the row's outcome state
    q = np.where(valid, np.nan_to_num(q_rows[..., np.arange(R)[None, :, None], m]), 0.0)
    catch, false_reject = per_row(tt.catch), per_row(tt.false_reject)
    if tool.any():  # a tool's own gate: a miss is always caught, a hit never rejected
        catch = np.where(tool, tt.tool_catch[..., rows.cat[None, :, None], m], catch)
        false_reject = np.where(tool, 0.0, false_reject)
        gated = gated | tool
    a_good = np.where(gated, q * (1 - false_reject), q)
    a_bad = np.where(gated, (1 - q) * (1 - catch), 1 - q)
    rej_good = np.where(gated, q * false_reject, 0.0)
    rej_bad = np.where(gated, (1 - q) * catch, 0.0)

    shape = np.broadcast_shapes(q.shape, F.shape, answer_cost.shape)
    reach = np.zeros(shape)
    inflow = np.zeros(shape)
    inflow_no_reject = np.zeros(shape)
    inflow_no_abandon = np.zeros(shape)
    inflow_no_overflow = np.zeros(shape)
    inflow[..., 0] = inflow_no_reject[..., 0] = inflow_no_abandon[..., 0] = inflow_no_overflow[..., 0] = 1.0
    deliver_good = np.zeros(shape)  # rejected answers delivered anyway (good / bad)
    deliver_bad = np.zeros(shape)
    human_at = np.zeros(shape)
    failed = np.zeros(shape[:-1])
    escalation = np.zeros(shape[:-1])
    fallback = np.zeros(shape[:-1])
    overflowed = np.zeros(shape[:-1])
    F, ok = np.broadcast_to(F, shape), np.broadcast_to(ok, shape)
    exhausted = np.broadcast_to(np.where(live, exhausted, 0.0), shape)
    refused = np.broadcast_to(np.where(live, refused, 0.0), shape)
    last_type = np.broadcast_to(last_share, (*shape, 3))
    rej = np.broadcast_to(rej_good + rej_bad, shape)
    typed = (on_failure != on_failure[..., 1:2]).any()  # some step sends an error type elsewhere
    for s in range(S):
        R_s = inflow[..., s] * valid[..., s]
        reach[..., s] = R_s
        fail_flow = R_s * F[..., s]
        ans = R_s * ok[..., s]
        rej_flow = ans * rej[..., s]
        tf, tr, to = on_failure[..., s, 1], on_reject[..., s], on_overflow[..., s]
        spilled = R_s * overflow[..., s]
        provider = fail_flow - spilled  # abandoned on provider errors (not on the window)
        _route(provider, tf, inflow)
        _route(spilled, to, inflow)
        if typed:  # move each error type's share from the default target to its own
            by_type = _typed_flows(R_s, exhausted[..., s], refused[..., s], last_type[..., s, :])
            for e in range(N_ERRORS):
                moved = by_type[e] * (on_failure[..., s, e] != tf)
                _route(-moved, tf, inflow)
                _route(moved, on_failure[..., s, e], inflow)
                failed += np.where(on_failure[..., s, e] == FAIL, moved, 0.0) - np.where(tf == FAIL, moved, 0.0)
        _route(rej_flow, tr, inflow)
        failed += np.where(tf == FAIL, provider, 0.0) + np.where(to == FAIL, spilled, 0.0)
        failed += np.where(tr == FAIL, rej_flow, 0.0)
        human_at[..., s] = np.where(tr == HUMAN, rej_flow, 0.0)
        deliver_good[..., s] = np.where(tr == DELIVER, ans * rej_good[..., s], 0.0)
        deliver_bad[..., s] = np.where(tr == DELIVER, ans * rej_bad[..., s], 0.0)

        # "at least once" rates: follow only the paths that have not yet been rejected / abandoned / skipped
        R_nr = inflow_no_reject[..., s] * valid[..., s]
        escalation += R_nr * ok[..., s] * rej[..., s]
        _route(R_nr * F[..., s], tf, inflow_no_reject)
        R_na = inflow_no_abandon[..., s] * valid[..., s]
        fallback += R_na * (F[..., s] - overflow[..., s])
        _route(R_na * ok[..., s] * rej[..., s], tr, inflow_no_abandon)
        _route(R_na * overflow[..., s], to, inflow_no_abandon)
        R_no = inflow_no_overflow[..., s] * valid[..., s]
        overflowed += R_no * overflow[..., s]
        _route(R_no * (F[..., s] - overflow[..., s]), tf, inflow_no_overflow)
        _route(R_no * ok[..., s] * rej[..., s], tr, inflow_no_overflow)

    human = human_at.sum(-1)
    delivered = reach * ok * (a_good + a_bad) + deliver_good + deliver_bad
    onehot = (m[..., None] == np.arange(M)) & valid[..., None]  # (P, R, S, M)
    w = row_weights(problem, rows)
    by_model = lambda v: by_category(np.einsum("...prs,prsm->...prm", v, onehot), w, rows, axis=-2)
    cat = lambda v: by_category(v, w, rows)
    tokens = reach * (ok * answer_cost + failed_try_cost)
    latency = (reach * (fail_latency + ok * (answer_latency + gate_latency))).sum(-1)
    latency += human * ch.human_latency_s[:, None]
    lane_at = (slice(None), rows.cat, rows.lane)
    router_cost = None
    if (ch.lane_cost_call != 0).any() or (ch.lane_cost_token != 0).any():
        router_cost = cat(ch.lane_cost_call[lane_at] + ex[..., 0] * ch.lane_cost_token[lane_at])
    if np.isfinite(ch.lane_latency_mu).any():
        latency = latency + np.nan_to_num(_lognormal_mean(ch.lane_latency_mu, ch.lane_latency_sigma)[lane_at])
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
        overflow=cat(overflowed),
        router_cost=router_cost,
        served=np.stack([cat(delivered[..., s] + human_at[..., s]) for s in range(S)], axis=-1),
    )


def _typed_flows(R: np.ndarray, exhausted: np.ndarray, refused: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """Flow abandoned per error type: exhausted retries split by the last try's type, and refusals."""
    return [R * exhausted * last[..., e] for e in range(CONTENT_FILTER)] + [R * refused]
