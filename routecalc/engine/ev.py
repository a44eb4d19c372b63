"""Expected-value engine: closed-form means over policies x categories, vectorized with numpy.

For a step ``s`` of a chain reached with probability ``R_s``, model failure probability ``f`` and ``r``
retries (``../shared/MODEL.md``):

* abandon probability ``F = f^(1+r)``; expected failed tries ``f (1 - f^(1+r)) / (1 - f)``;
* answer cost ``E[x] p_in' + E[y] p_out'`` paid with probability ``1 - F``, with the per-token prices of
  :mod:`routecalc.engine.billing` (prompt cache, reasoning tokens, the batch share mixed in linearly; a segment
  above the model's long-context threshold at its long-context prices);
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

from routecalc.chains import CONTENT_FILTER, DELIVER, FAIL, HUMAN, RoutingProblem
from routecalc.engine.billing import answer_costs, batch_shares
from routecalc.engine.latency import LatencyLaw, first_of_two, unique_apply


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
    late: np.ndarray | None = None  # share that abandoned at least one try at its deadline
    deadline_waste: np.ndarray | None = None  # spend per request on tries abandoned at a deadline

    @property
    def cost(self) -> np.ndarray:
        """Total spend per request ``(P, C)``: tokens + gates + human review (+ classifiers)."""
        total = self.token_cost.sum(axis=-1) + self.gate_cost + self.human_cost
        return total if self.router_cost is None else total + self.router_cost


DEADLINE_BILLING = {"full": 0, "input": 1, "none": 2}


def _lognormal_mean(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(mu + sigma**2 / 2)


def _route(flow: np.ndarray, target: np.ndarray, inflow: np.ndarray) -> None:
    """Add ``flow`` (..., P, R) into ``inflow[..., target]`` where target (P, R) is a step index."""
    for j in np.unique(target[target >= 0]):
        inflow[..., j] += flow * (target == j)


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
    y: np.ndarray | None = None  # (R,) output tokens at the row's quadrature node (None: the band's mean)
    y_weight: np.ndarray | None = None  # (R,) the node's weight
    y_id: np.ndarray | None = None  # (R,) category x Y_NODES + node: rows with the same output tokens


Y_NODES = 24  # Gauss-Hermite nodes in ln y, where deadlines or hedged steps need y fixed per row


def needs_latency_law(problem: RoutingProblem) -> bool:
    """Deadlines and hedged steps depend on the whole answer-latency law, not only its mean."""
    ch = problem.chains
    return bool((ch.hedge >= 0).any() or np.isfinite(ch.deadline_s).any())


def rows_of(problem: RoutingProblem) -> Rows:
    """Every (category, state, segment with any requests, lane), category-major; with deadlines or hedged
    steps, also every quadrature node of the category's output tokens."""
    rows = _rows(problem)
    if not needs_latency_law(problem):
        return rows
    tt = problem.tasks
    z, w = np.polynomial.hermite_e.hermegauss(Y_NODES)
    w = w / w.sum()
    per_row_nodes = np.where(tt.y_sigma[rows.cat] > 0, Y_NODES, 1)
    rep = lambda a: np.repeat(a, per_row_nodes)
    node = np.arange(per_row_nodes.sum()) - np.repeat(np.cumsum(per_row_nodes) - per_row_nodes, per_row_nodes)
    cat = rep(rows.cat)
    random = tt.y_sigma[cat] > 0
    y = np.where(random, np.exp(tt.y_mu[cat] + tt.y_sigma[cat] * z[np.minimum(node, Y_NODES - 1)]), tt.y_mean[cat])
    sizes = np.bincount(cat, minlength=len(tt.names))
    return Rows(
        cat=cat,
        state=rep(rows.state),
        segment=rep(rows.segment),
        lane=rep(rows.lane),
        start=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        y=y,
        y_weight=np.where(random, w[np.minimum(node, Y_NODES - 1)], 1.0),
        y_id=cat * Y_NODES + node,
    )


def _rows(problem: RoutingProblem) -> Rows:
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
    if rows.y_weight is not None:
        seg = seg * rows.y_weight
    return problem.outcomes.weight[..., None, rows.state] * seg * lane


def by_category(values: np.ndarray, weights: np.ndarray, rows: Rows, axis: int = -1) -> np.ndarray:
    """Mix row values into category values: ``sum_r w_r v_r`` over each category's rows along ``axis``."""
    w = weights if axis == -1 else np.expand_dims(weights, -1)
    if len(rows.start) == len(rows.cat):  # one row per category: nothing to add up
        return values * w
    return np.add.reduceat(values * w, rows.start, axis=axis)


def expected_values(problem: RoutingProblem) -> Metrics:
    """Closed-form expected metrics of every policy in every category (see module docstring)."""
    mt, tt, ch, oc, sg = problem.models, problem.tasks, problem.chains, problem.outcomes, problem.segments
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
    y_row = per_row(tt.y_mean) if rows.y is None else rows.y[None, :, None]
    ey = y_row * mt.output_ratio[..., m]
    bill = _bill(problem, rows, at, m)
    answer_cost, input_cost = bill(ex, ey)
    if mt.call_cost.any():
        answer_cost = answer_cost + mt.call_cost[..., m]
    p_in = bill.fail_in  # a failed try's input price
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

    # deadlines: an answer slower than the step's deadline is abandoned at it (on_deadline), billed as configured
    deadline = ch.deadline_s[at]
    late = np.zeros(1)
    answer_cost_paid = answer_cost
    okd = ok  # answers delivered (or judged) at the step
    waste = np.zeros(1)
    if np.isfinite(deadline).any():
        timed = np.isfinite(deadline)
        d = np.where(timed, deadline, 1.0)

        def late_and_capped(mm: np.ndarray, yy: np.ndarray, dd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            mm = mm.astype(np.int64)
            law = LatencyLaw.of(mt.ttft_mu[mm], mt.ttft_sigma[mm], mt.tpot_mu[mm], mt.tpot_sigma[mm], yy)
            late_p = 1 - law.cdf(dd)
            return late_p, law.partial(dd) + dd * late_p

        if mt.fail.ndim > 1:  # batched parameters: no sharing across draws
            raise NotImplementedError("deadlines with batched parameters")
        d_ids = np.unique(d, return_inverse=True)[1].reshape(d.shape)
        key = _law_key(problem, rows, m, d_ids)
        p_late, capped = unique_apply(late_and_capped, key, (np.where(timed, m, 0), np.broadcast_to(ey, d.shape), d))
        p_late = np.where(timed & valid, p_late, 0.0)
        billed = (answer_cost, input_cost, 0.0)[DEADLINE_BILLING[problem.deadline_billing]]
        billed = np.broadcast_to(billed, np.broadcast_shapes(np.shape(billed), p_late.shape))
        answer_latency = np.where(timed, capped, answer_latency)  # E[min(L, d)]
        answer_cost_paid = (1 - p_late) * answer_cost + p_late * billed
        late = ok * p_late
        okd = ok * (1 - p_late)
        waste = late * billed

    # hedged steps: both models at once, one try each, the first (or the better) answer delivered
    hedge = ch.hedge[at] >= 0
    extra: dict[str, np.ndarray] = {}
    if hedge.any():
        h = _hedged(problem, rows, at, m, ex, y_row, q_rows, R, overflow, bill, answer_cost, input_cost)
        F, ok, okd = (np.where(hedge, h[k], v) for k, v in (("F", F), ("ok", ok), ("ok", okd)))
        a_good = np.where(hedge, h["good"], a_good)
        a_bad = np.where(hedge, 1 - h["good"], a_bad)
        rej_good = np.where(hedge, 0.0, rej_good)
        rej_bad = np.where(hedge, 0.0, rej_bad)
        answer_cost_paid = np.where(hedge, 0.0, answer_cost_paid)
        failed_try_cost = np.where(hedge, h["spend_a"], failed_try_cost)
        fail_latency = np.where(hedge, h["latency"], fail_latency)
        answer_latency = np.where(hedge, 0.0, answer_latency)
        gate_cost = np.where(hedge, 0.0, gate_cost)
        gate_latency = np.where(hedge, 0.0, gate_latency)
        n_fail = np.where(hedge, h["tries_a"] - h["ok"], n_fail)
        exhausted = np.where(hedge, 0.0, exhausted)
        refused = np.where(hedge, 0.0, refused)
        extra = h
        overflow = overflow & ~hedge  # a hedged step abandons through on_failure

    shape = np.broadcast_shapes(q.shape, F.shape, answer_cost.shape, np.shape(okd))
    reach = np.zeros(shape)
    flows = {k: np.zeros(shape) for k in ("main", "no_reject", "no_abandon", "no_overflow", "no_late")}
    for v in flows.values():
        v[..., 0] = 1.0
    deliver_good = np.zeros(shape)  # rejected answers delivered anyway (good / bad)
    deliver_bad = np.zeros(shape)
    human_at = np.zeros(shape)
    failed = np.zeros(shape[:-1])
    escalation = np.zeros(shape[:-1])
    fallback = np.zeros(shape[:-1])
    overflowed = np.zeros(shape[:-1])
    lated = np.zeros(shape[:-1])
    F, ok, okd = (np.broadcast_to(v, shape) for v in (F, ok, okd))
    late = np.broadcast_to(late, shape)
    exhausted = np.broadcast_to(np.where(live, exhausted, 0.0), shape)
    refused = np.broadcast_to(np.where(live, refused, 0.0), shape)
    last_type = np.broadcast_to(last_share, (*shape, 3))
    rej = np.broadcast_to(rej_good + rej_bad, shape)
    typed = (on_failure != on_failure[..., 1:2]).any()  # some step sends an error type elsewhere
    on_deadline = ch.on_deadline[at]

    def send(
        R_s: np.ndarray, s: int, into: np.ndarray, provider: bool, spill: bool, lates: bool, rejects: bool
    ) -> None:
        """Route what leaves step ``s`` (of the flow ``R_s`` that reached it) on to later steps of ``into``."""
        tf, to = on_failure[..., s, 1], on_overflow[..., s]
        spilled = R_s * overflow[..., s]
        if provider:
            _route(R_s * F[..., s] - spilled, tf, into)  # abandoned on provider errors (not on the window)
            if typed:  # move each error type's share from the default target to its own
                for e, flow in enumerate(_typed_flows(R_s, exhausted[..., s], refused[..., s], last_type[..., s, :])):
                    moved = flow * (on_failure[..., s, e] != tf)
                    _route(-moved, tf, into)
                    _route(moved, on_failure[..., s, e], into)
        if spill:
            _route(spilled, to, into)
        if lates:
            _route(R_s * late[..., s], on_deadline[..., s], into)
        if rejects:
            _route(R_s * okd[..., s] * rej[..., s], on_reject[..., s], into)

    for s in range(S):
        R_s = flows["main"][..., s] * valid[..., s]
        reach[..., s] = R_s
        ans = R_s * okd[..., s]
        rej_flow = ans * rej[..., s]
        tf, tr, to = on_failure[..., s, 1], on_reject[..., s], on_overflow[..., s]
        spilled = R_s * overflow[..., s]
        send(R_s, s, flows["main"], True, True, True, True)
        failed += np.where(tf == FAIL, R_s * F[..., s] - spilled, 0.0) + np.where(to == FAIL, spilled, 0.0)
        if typed:
            for e, flow in enumerate(_typed_flows(R_s, exhausted[..., s], refused[..., s], last_type[..., s, :])):
                moved = flow * (on_failure[..., s, e] != tf)
                failed += np.where(on_failure[..., s, e] == FAIL, moved, 0.0) - np.where(tf == FAIL, moved, 0.0)
        failed += np.where(on_deadline[..., s] == FAIL, R_s * late[..., s], 0.0)
        failed += np.where(tr == FAIL, rej_flow, 0.0)
        human_at[..., s] = np.where(tr == HUMAN, rej_flow, 0.0)
        deliver_good[..., s] = np.where(tr == DELIVER, ans * rej_good[..., s], 0.0)
        deliver_bad[..., s] = np.where(tr == DELIVER, ans * rej_bad[..., s], 0.0)

        # "at least once" rates: follow only the paths that have not yet been rejected / abandoned / ...
        R_nr = flows["no_reject"][..., s] * valid[..., s]
        escalation += R_nr * okd[..., s] * rej[..., s]
        send(R_nr, s, flows["no_reject"], True, True, True, False)
        R_na = flows["no_abandon"][..., s] * valid[..., s]
        fallback += R_na * (F[..., s] - overflow[..., s])
        send(R_na, s, flows["no_abandon"], False, True, True, True)
        R_no = flows["no_overflow"][..., s] * valid[..., s]
        overflowed += R_no * overflow[..., s]
        if hedge.any():
            overflowed += R_no * extra["both_over"][..., s]
        send(R_no, s, flows["no_overflow"], True, False, True, True)
        if late.any():
            R_nl = flows["no_late"][..., s] * valid[..., s]
            lated += R_nl * late[..., s]
            send(R_nl, s, flows["no_late"], True, True, False, True)

    human = human_at.sum(-1)
    delivered = reach * okd * (a_good + a_bad) + deliver_good + deliver_bad
    onehot = (m[..., None] == np.arange(M)) & valid[..., None]  # (P, R, S, M)
    w = row_weights(problem, rows)
    by_model = lambda v: by_category(np.einsum("...prs,prsm->...prm", v, onehot), w, rows, axis=-2)
    cat = lambda v: by_category(v, w, rows)
    tokens = reach * (ok * answer_cost_paid + failed_try_cost)
    if late.any():  # gates read only the answers that came in time
        latency = (reach * (fail_latency + ok * answer_latency + okd * gate_latency)).sum(-1)
    else:
        latency = (reach * (fail_latency + ok * (answer_latency + gate_latency))).sum(-1)
    latency += human * ch.human_latency_s[:, None]
    calls = reach * (n_fail + ok)
    answered_a = delivered
    token_b = calls_b = answered_b = None
    if hedge.any():  # the second model's spend, tries and answers go to it
        answered_a = np.where(hedge, reach * extra["a_delivers"], delivered)
        mb = np.where(hedge, ch.hedge[at], 0)
        onehot_b = (mb[..., None] == np.arange(M)) & hedge[..., None]
        by_b = lambda v: by_category(np.einsum("...prs,prsm->...prm", v, onehot_b), w, rows, axis=-2)
        token_b, calls_b, answered_b = (
            by_b(reach * extra["spend_b"]),
            by_b(reach * extra["tries_b"]),
            by_b(reach * extra["b_delivers"]),
        )
    lane_at = (slice(None), rows.cat, rows.lane)
    router_cost = None
    if (ch.lane_cost_call != 0).any() or (ch.lane_cost_token != 0).any():
        router_cost = cat(ch.lane_cost_call[lane_at] + ex[..., 0] * ch.lane_cost_token[lane_at])
    if np.isfinite(ch.lane_latency_mu).any():
        latency = latency + np.nan_to_num(_lognormal_mean(ch.lane_latency_mu, ch.lane_latency_sigma)[lane_at])
    plus = lambda v, b: v if b is None else v + b
    return Metrics(
        token_cost=plus(by_model(tokens), token_b),
        gate_cost=cat((reach * okd * gate_cost).sum(-1)),
        human_cost=cat(human * ch.human_cost[:, None]),
        quality=cat((reach * okd * a_good + deliver_good).sum(-1) + human),
        delivered_bad=cat((reach * okd * a_bad + deliver_bad).sum(-1)),
        failed=cat(failed),
        human=cat(human),
        latency=cat(latency),
        escalation=cat(escalation),
        fallback=cat(fallback),
        answered=plus(by_model(answered_a), answered_b),
        calls=plus(by_model(calls), calls_b),
        overflow=cat(overflowed),
        router_cost=router_cost,
        served=np.stack([cat(delivered[..., s] + human_at[..., s]) for s in range(S)], axis=-1),
        late=cat(lated),
        deadline_waste=cat((reach * waste).sum(-1)) if late.any() else None,
    )


@dataclass(frozen=True, eq=False)
class _Bill:
    """What models ``m`` bill at each (policy, row, step): the row's segment decides the long-context tier, the
    step (else the category) the batch share, mixed in linearly (:mod:`routecalc.engine.billing`)."""

    problem: RoutingProblem
    m: np.ndarray
    c: np.ndarray
    long: np.ndarray
    batch: np.ndarray

    def __call__(self, ex: np.ndarray, ey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answer cost, its input part) for ``ex`` input and ``ey`` visible output tokens."""
        pr = self.problem
        return answer_costs(pr.models, pr.tasks, self.m, self.c, ex, ey, self.long, self.batch)

    @property
    def fail_in(self) -> np.ndarray:
        """A failed try's price per input token."""
        mt = self.problem.models
        p_in = np.where(self.long, mt.long_in[..., self.m], mt.price_in[..., self.m])
        return p_in * (1 + self.batch * (mt.batch_in[..., self.m] - 1))


def _bill(problem: RoutingProblem, rows: Rows, at: tuple, m: np.ndarray) -> _Bill:
    sg, ch = problem.segments, problem.chains
    c = rows.cat[None, :, None]
    long = sg.x_lo[rows.cat, rows.segment][None, :, None] >= sg.long_above[c, m]
    return _Bill(problem, m, c, long, batch_shares(problem.tasks, ch.batch_share[at], c))


def _law_key(problem: RoutingProblem, rows: Rows, *parts: np.ndarray) -> np.ndarray:
    """An integer per (policy, row, step) naming what a latency law depends on: the row's output tokens (its
    category and quadrature node) and the given integer ``parts`` (models, deadline ids, ...)."""
    y_id = rows.y_id if rows.y_id is not None else rows.cat
    key = np.broadcast_to(y_id[None, :, None], np.broadcast_shapes(*(np.shape(p) for p in parts), (1, y_id.size, 1)))
    key = key.astype(np.int64)
    for part in parts:
        key = key * (int(np.max(part)) + 1) + part
    return key


def _hedged(
    problem: RoutingProblem,
    rows: Rows,
    at: tuple,
    m: np.ndarray,
    ex: np.ndarray,
    y_row: np.ndarray,
    q_rows: np.ndarray,
    R: int,
    over_a: np.ndarray,
    bill_a: _Bill,
    tok_a: np.ndarray,
    in_a: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per (policy, row, step), what a hedged step does: both legs, one try each (module docstring)."""
    mt, ch, sg = problem.models, problem.chains, problem.segments
    hb = ch.hedge[at]
    mb = np.where(hb >= 0, hb, 0)
    over_b = (hb >= 0) & (sg.x_lo[rows.cat, rows.segment][None, :, None] >= sg.window[rows.cat[None, :, None], mb])
    bill_b = _bill(problem, rows, at, mb)
    tok_b, in_b = bill_b(ex, y_row * mt.output_ratio[..., mb])
    tok_b = tok_b + mt.call_cost[..., mb]
    q_a = np.nan_to_num(q_rows[..., np.arange(R)[None, :, None], m])
    q_b = np.nan_to_num(q_rows[..., np.arange(R)[None, :, None], mb])
    legs = []
    for mm, over, bill_leg in ((m, over_a, bill_a), (mb, over_b, bill_b)):
        f = mt.fail[..., mm]
        answers = (1 - f) * ~over
        to = mt.errors[..., mm, 0]
        # failure latency: a fixed value per outcome; over the window: a fast error
        tau = [
            (np.where(over, 1.0, f * to), mt.timeout_s[..., mm]),
            (np.where(over, 0.0, f * (1 - to)), mt.error_latency_s[..., mm]),
        ]
        tau = [(p_, np.where(over & (i == 0), mt.error_latency_s[..., mm], v)) for i, (p_, v) in enumerate(tau)]
        tau = [(p_, np.where(p_ > 0, v, 0.0)) for p_, v in tau]  # an impossible outcome's latency is moot
        bill = f * ~over * ex * bill_leg.fail_in if problem.bill_failed_input else 0.0
        legs.append((answers, tau, bill))
    (a_a, tau_a, bill_a), (a_b, tau_b, bill_b) = legs
    best = ch.hedge_best[at]
    cancel = ch.cancel_loser[at] & ~best
    hedged = hb >= 0
    y_a, y_b = y_row * mt.output_ratio[..., m], y_row * mt.output_ratio[..., mb]

    def pair(ma: np.ndarray, mb_: np.ndarray, ya: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, ...]:
        la, lb = (
            LatencyLaw.of(mt.ttft_mu[i], mt.ttft_sigma[i], mt.tpot_mu[i], mt.tpot_sigma[i], yy)
            for i, yy in ((ma.astype(np.int64), ya), (mb_.astype(np.int64), yb))
        )
        return (*first_of_two(la, lb), la.mean(), lb.mean())

    key = _law_key(problem, rows, np.where(hedged, m, 0), np.where(hedged, mb, 0))
    pi, e_min, mean_a, mean_b = unique_apply(pair, key, (np.where(hedged, m, 0), np.where(hedged, mb, 0), y_a, y_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau_norm_a = [(np.where(a_a < 1, p_ / (1 - a_a), 0.0), v) for p_, v in tau_a]  # failure latency given failure
        tau_norm_b = [(np.where(a_b < 1, p_ / (1 - a_b), 0.0), v) for p_, v in tau_b]
    both, only_a, only_b = a_a * a_b, a_a * (1 - a_b), (1 - a_a) * a_b
    none = (1 - a_a) * (1 - a_b)
    with np.errstate(invalid="ignore", over="ignore"):
        e_max_tau = np.nan_to_num(sum(pa * pb * np.maximum(va, vb) for pa, va in tau_norm_a for pb, vb in tau_norm_b))

    def max_with(mm: np.ndarray, yy: np.ndarray, mean: np.ndarray, tau: list) -> np.ndarray:  # type: ignore[type-arg]
        """E[max(L, tau)] for a fixed-valued tau law: E[L] + v P(L <= v) - E[L; L <= v] per value v."""

        def at(mi: np.ndarray, yi: np.ndarray, v: np.ndarray) -> np.ndarray:
            mi = mi.astype(np.int64)
            law = LatencyLaw.of(mt.ttft_mu[mi], mt.ttft_sigma[mi], mt.tpot_mu[mi], mt.tpot_sigma[mi], yi)
            return v * law.cdf(v) - law.partial(v)

        out = 0.0
        for p_, v in tau:
            v_ids = np.unique(v, return_inverse=True)[1].reshape(np.shape(v))
            key = _law_key(problem, rows, np.where(hedged, mm, 0), v_ids)
            out = out + p_ * (mean + unique_apply(at, key, (np.where(hedged, mm, 0), yy, v)))
        return out

    first_lat = only_a * mean_a + only_b * mean_b + both * e_min
    best_lat = (
        both * (mean_a + mean_b - e_min)
        + only_a * max_with(m, y_a, mean_a, tau_norm_b)
        + only_b * max_with(mb, y_b, mean_b, tau_norm_a)
    )
    latency = np.where(best, best_lat, first_lat) + none * e_max_tau
    a_delivers = np.where(best, a_a * (q_a + (1 - q_a) * (1 - a_b * q_b)), only_a + both * pi)
    b_delivers = np.where(best, a_b * ((1 - a_a) + a_a * (1 - q_a) * q_b), only_b + both * (1 - pi))
    good = np.where(best, 1 - (1 - a_a * q_a) * (1 - a_b * q_b), a_delivers * q_a + b_delivers * q_b)
    answered = 1 - none
    lost_a = np.where(cancel, in_a, tok_a)
    lost_b = np.where(cancel, in_b, tok_b)
    spend_a = bill_a + np.where(best, a_a * tok_a, only_a * tok_a + both * (pi * tok_a + (1 - pi) * lost_a))
    spend_b = bill_b + np.where(best, a_b * tok_b, only_b * tok_b + both * ((1 - pi) * tok_b + pi * lost_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        good_given = np.where(answered > 0, good / answered, 0.0)
    return {
        "F": none,
        "ok": answered,
        "good": good_given,
        "latency": latency,
        "spend_a": spend_a,
        "spend_b": spend_b,
        "tries_a": 1.0 * ~over_a,
        "tries_b": 1.0 * ~over_b,
        "a_delivers": a_delivers,
        "b_delivers": b_delivers,
        "both_over": 1.0 * (over_a & over_b),
    }


def _typed_flows(R: np.ndarray, exhausted: np.ndarray, refused: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """Flow abandoned per error type: exhausted retries split by the last try's type, and refusals."""
    return [R * exhausted * last[..., e] for e in range(CONTENT_FILTER)] + [R * refused]
