"""How sure is the decision? Posterior draws of every input with eval counts, one batched expected-value run.

Posteriors (uniform priors). An input written without counts stays fixed at its value, and is listed as such:

* a pass rate ``{passed: k, of: n}``, a validator's catch ``{caught: k, of: n}`` or false reject
  ``{rejected: k, of: n}``: Beta(1 + k, 1 + n - k);
* an outcome table with counts: Dirichlet(1 + count) over its listed patterns, so the table's marginals move
  together (a pattern the table does not list stays impossible);
* a conditional rate with counts (``outcomes.conditional``): Beta on the rate; the two models' marginals come
  from their own posteriors. In an eval all three come from the same prompts; the posteriors are treated as
  independent, an approximation. A draw outside the feasible range given the drawn marginals
  (:func:`~routecalc.worksheet.schema.conditional_range`) is clipped to it, and the share of clipped draws is
  reported;
* latent difficulty (``outcomes.correlation``): rho has no counts and stays fixed; the marginals are drawn and
  each draw gets its own quadrature states (:func:`~routecalc.outcomes.latent_nodes_batch`, exact: the node
  positions follow the drawn marginals).

Draws come from Gamma variates (Beta = Ga / (Ga + Gb), Dirichlet = normalised Gammas), all drawn up front in a
fixed order from ``numpy.random.default_rng(seed)``: the same seed gives the same bytes, and the chunking of the
batch changes no number. The sample-size advice grows today's variates by independent Gamma increments (Gamma
shapes add), so "f times the counts" is today's draws plus more evidence, not a fresh sample, and its curve in
``f`` is smooth (see :class:`Gammas`).

The draws are one leading batch axis of the expected-value engine (:mod:`routecalc.engine.ev`), evaluated in
chunks that bound memory; no Python loop runs per draw. Latency budgets are checked against the point-estimate
Monte Carlo P95 and are not redrawn; prices, tokens, latency and provider failure rates are fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.engine.ev import expected_values
from routecalc.errors import InputError
from routecalc.outcomes import LATENT, TABLE, OutcomeStates, conditional_probs, latent_nodes_batch, latent_q
from routecalc.results import Comparison, jsonable
from routecalc.worksheet import Worksheet
from routecalc.worksheet.schema import Rate

DEFAULT_DRAWS = 1_000
MIN_DRAWS = 100  # fewer draws cannot place a 5th percentile
MAX_DRAWS = 100_000  # about 100 x the default's run time; more says nothing the default does not
LEVEL = 0.90  # equal-tailed intervals: 5th to 95th percentile of the draws
TARGET = 0.95  # the advice: labelled samples that lift P(winner meets every threshold) to at least this
SCALE_STEP = 2 ** (1 / 3)  # the advice scales a category's counts by powers of this ...
MAX_SCALE = 128.0  # ... up to this factor
DRAW_PANEL_NODES = 4  # latent difficulty, rho > 0.5: Gauss-Legendre nodes per panel (exact rule: 8); within 1e-7
CHUNK_ELEMENTS = 1 << 19  # draws x policies x rows x steps per engine run: ~4 MiB per intermediate array
NO_COUNTS = (
    "Nothing is uncertain in this worksheet: no input has eval counts, so every number is a point estimate "
    "(no counts: add {passed, of} to pass rates, e.g. gpt-4.1: {passed: 930, of: 1000}; validators take "
    "{caught, of} and {rejected, of})."
)
LATENCY_NOTE = "Latency budgets come from the point-estimate Monte Carlo run and are not redrawn."
FIXED_NOTE = "Prices, token bands, latency and provider failure rates are fixed."

PASS, CATCH, FALSE_REJECT, CONDITIONAL = 0, 1, 2, 3


def check_draws(draws: int, option: str = "uncertainty draws") -> None:
    """Refuse a number of draws that cannot give an interval, or that would run for minutes."""
    if isinstance(draws, bool) or not isinstance(draws, int) or not MIN_DRAWS <= draws <= MAX_DRAWS:
        raise InputError(
            f"{option}: give a number of draws between {MIN_DRAWS:,} and {MAX_DRAWS:,} (got {draws!r}); "
            f"the default, {DEFAULT_DRAWS:,}, places the 5th and 95th percentiles to about ±0.7 percentile"
        )


# ---------------------------------------------------------------------------------------------------------
# Which inputs have counts, and where their draws go


@dataclass(frozen=True)
class Counted:
    """An input with eval counts: its field path, what it is, its category, successes ``k`` of ``n``.

    ``k`` is None for an outcome table (``n`` is then its total count).
    """

    path: str
    what: str
    category: str
    k: int | None
    n: int


@dataclass(frozen=True, eq=False)
class Plan:
    """Where each posterior lands in the engine's arrays (built once from the worksheet).

    Beta sources ``(J,)``: counts ``k``, ``n``, ``kind`` (PASS, CATCH, FALSE_REJECT, CONDITIONAL), category and
    model index (-1 unless a pass rate). Dirichlet sources: one ``(category, counts)`` per counted table.
    """

    beta_k: np.ndarray
    beta_n: np.ndarray
    beta_kind: np.ndarray
    beta_cat: np.ndarray
    beta_model: np.ndarray
    tables: tuple[tuple[int, np.ndarray], ...]
    table_cols: dict[int, np.ndarray]  # category -> catalog indices of its table's models
    conditional: dict[int, tuple[int, int, float, int]]  # category -> (first, second, fixed rate, beta source or -1)
    states_drawn: np.ndarray  # (C,) bool: a category whose outcome states move with the draws
    eval_size: np.ndarray  # (C,) the largest eval (prompts) behind a category's counted inputs, 0 if none
    counted: tuple[Counted, ...]
    fixed: tuple[str, ...]

    @property
    def has_counts(self) -> bool:
        return bool(self.counted)


def _counts(rate: Rate) -> tuple[int, int]:
    """``(k, n)`` of a rate written with counts."""
    assert rate.k is not None and rate.n is not None
    return int(rate.k), int(rate.n)


def plan_of(ws: Worksheet) -> Plan:
    """Collect every counted input of a worksheet (see the module docstring) and what stays fixed."""
    ix = {m.name: i for i, m in enumerate(ws.models)}
    C = len(ws.tasks)
    beta: list[tuple[int, int, int, int, int]] = []  # k, n, kind, category, model
    counted: list[Counted] = []
    tables: list[tuple[int, np.ndarray]] = []
    table_cols: dict[int, np.ndarray] = {}
    conditional: dict[int, tuple[int, int, float, int]] = {}
    states_drawn = np.zeros(C, dtype=bool)
    prompts = np.zeros(C, dtype=np.int64)
    gate_prompts = np.zeros(C, dtype=np.int64)
    fixed_rates: list[str] = []
    fixed_gates: list[str] = []
    fixed_other: list[str] = []
    for c, t in enumerate(ws.tasks):
        o = t.outcomes
        in_table = set(o.models or []) if o is not None and o.patterns is not None else set()
        fixed_here = []
        for m, r in t.pass_rates.items():
            if m in in_table:
                continue  # the table defines this model's outcomes
            if r.counted:
                k, n = _counts(r)
                beta.append((k, n, PASS, c, ix[m]))
                counted.append(Counted(f"tasks[{c}].pass_rates.{m}", "pass rate", t.name, k, n))
                states_drawn[c] = True
                prompts[c] = max(prompts[c], n)
            else:
                fixed_here.append(m)
        if fixed_here:
            every = len(fixed_here) == len([m for m in t.pass_rates if m not in in_table])
            fixed_rates.append(f"{t.name} ({'every model' if every else ', '.join(fixed_here)})")
        if t.validator is not None:
            fixed_gate = []
            for kind, attr, label in ((CATCH, "catch", "catch"), (FALSE_REJECT, "false_reject", "false reject")):
                r = getattr(t.validator, attr)
                if r.counted:
                    k, n = _counts(r)
                    beta.append((k, n, kind, c, -1))
                    counted.append(Counted(f"tasks[{c}].validator.{attr}", f"validator {label}", t.name, k, n))
                    gate_prompts[c] = max(gate_prompts[c], n)
                else:
                    fixed_gate.append(label)
            if fixed_gate:
                fixed_gates.append(t.name + ("" if len(fixed_gate) == 2 else f" ({fixed_gate[0]})"))
        if o is None:
            continue
        if o.patterns is not None:
            table_cols[c] = np.array([ix[m] for m in o.models or []], dtype=np.int64)
            if o.counted:
                counts = np.array([p.count for p in o.patterns], dtype=float)
                tables.append((c, counts))
                total = int(counts.sum())
                counted.append(Counted(f"tasks[{c}].outcomes.patterns", "outcome table", t.name, None, total))
                states_drawn[c] = True
                prompts[c] = max(prompts[c], total)
            else:
                fixed_other.append(f"outcome table of {t.name} (probabilities)")
        elif o.conditional is not None:
            cond = o.conditional
            first, second = ix[cond.given_failed], ix[cond.model]
            table_cols[c] = np.array([first, second], dtype=np.int64)
            source = -1
            if cond.pass_rate.counted:
                source = len(beta)
                k, n = _counts(cond.pass_rate)
                beta.append((k, n, CONDITIONAL, c, -1))
                path = f"tasks[{c}].outcomes.conditional.pass_rate"
                counted.append(Counted(path, "conditional rate", t.name, k, n))
                states_drawn[c] = True
            else:
                fixed_other.append(f"conditional rate of {t.name} ({cond.model} given {cond.given_failed} failed)")
            conditional[c] = (first, second, cond.pass_rate.rate, source)
        elif o.correlation:
            fixed_other.append(f"correlation of {t.name} (rho {o.correlation:g})")
    fixed = []
    if fixed_rates:
        fixed.append("pass rates: " + "; ".join(fixed_rates))
    if fixed_gates:
        fixed.append("validator catch and false-reject rates: " + ", ".join(fixed_gates))
    fixed += fixed_other
    b = np.array(beta, dtype=np.int64).reshape(-1, 5)
    return Plan(
        beta_k=b[:, 0].astype(float),
        beta_n=b[:, 1].astype(float),
        beta_kind=b[:, 2],
        beta_cat=b[:, 3],
        beta_model=b[:, 4],
        tables=tuple(tables),
        table_cols=table_cols,
        conditional=conditional,
        states_drawn=states_drawn,
        eval_size=np.where(prompts > 0, prompts, gate_prompts),
        counted=tuple(counted),
        fixed=tuple(fixed),
    )


# ---------------------------------------------------------------------------------------------------------
# Draws -> batched parameters -> one engine run per chunk


@dataclass(frozen=True, eq=False)
class Gammas:
    """The Gamma variates behind a set of draws: Beta(a, b) = Ga / (Ga + Gb), Dirichlet(alpha) = G / sum(G).

    ``a``, ``b`` ``(D, J)`` per Beta source (shapes ``1 + k`` and ``1 + n - k``), one ``(D, T)`` per counted
    table (shapes ``1 + count``). Kept because Gamma variates add up: Gamma(s) + Gamma(t) ~ Gamma(s + t), so
    "the same draws with f times the counts" is these variates plus independent Gamma((f - 1) k) increments, as if
    more labelled prompts arrived (the sample-size advice).
    """

    a: np.ndarray
    b: np.ndarray
    tables: tuple[np.ndarray, ...]

    @classmethod
    def draw(cls, plan: Plan, draws: int, rng: np.random.Generator) -> Gammas:
        """``draws`` posterior draws of every counted input, in a fixed order (Beta sources, then tables)."""
        k, n = plan.beta_k, plan.beta_n
        a = rng.standard_gamma(1 + k, size=(draws, len(k)))
        b = rng.standard_gamma(1 + n - k, size=(draws, len(k)))
        return cls(a, b, tuple(rng.standard_gamma(1 + counts, size=(draws, len(counts))) for _, counts in plan.tables))

    def grow(self, plan: Plan, extra: np.ndarray, rng: np.random.Generator) -> Gammas:
        """The draws after ``extra`` ``(C,)`` more times each category's counts (0: unchanged, no variates)."""
        D = len(self.a)
        e = extra[plan.beta_cat]
        live = e > 0
        a, b = self.a.copy(), self.b.copy()
        a[:, live] += rng.standard_gamma(e[live] * plan.beta_k[live], size=(D, int(live.sum())))
        b[:, live] += rng.standard_gamma(e[live] * (plan.beta_n - plan.beta_k)[live], size=(D, int(live.sum())))
        tables = []
        for (c, counts), g in zip(plan.tables, self.tables, strict=True):
            tables.append(g + rng.standard_gamma(extra[c] * counts, size=g.shape) if extra[c] > 0 else g)
        return Gammas(a, b, tuple(tables))

    def draws(self) -> Draws:
        with np.errstate(invalid="ignore"):  # Gamma(1 + k) > 0: a 0 / 0 would need two exact zeros
            return Draws(self.a / (self.a + self.b), tuple(g / g.sum(axis=-1, keepdims=True) for g in self.tables))


@dataclass(frozen=True, eq=False)
class Draws:
    """Posterior draws: ``beta`` ``(B, J)`` (one column per Beta source), one ``(B, T)`` per counted table."""

    beta: np.ndarray
    tables: tuple[np.ndarray, ...]

    def rows(self, sl: slice | np.ndarray) -> Draws:
        return Draws(self.beta[sl], tuple(t[sl] for t in self.tables))

    @staticmethod
    def stack(parts: list[Draws]) -> Draws:
        return Draws(
            np.concatenate([p.beta for p in parts]),
            tuple(np.concatenate(ts) for ts in zip(*(p.tables for p in parts), strict=True)),
        )


def feasible_range(q_first: np.ndarray, q_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~routecalc.worksheet.schema.conditional_range`, vectorized over draws."""
    f = 1 - q_first
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(f > 0, np.maximum(0.0, (q_second - q_first) / f), 0.0)
        hi = np.where(f > 0, np.minimum(1.0, q_second / f), 1.0)
    return lo, hi


def batched_problem(
    problem: RoutingProblem, plan: Plan, d: Draws, panel_nodes: int | None = None
) -> tuple[RoutingProblem, np.ndarray]:
    """The problem with a leading batch axis ``B``: one parameter set per row of ``d``.

    Returns the problem and, per category, how many rows had their conditional rate clipped into the feasible
    range. Outcome states of a category without counted inputs are the point estimate's, broadcast.
    ``panel_nodes``: Gauss-Legendre nodes per panel for latent difficulty with rho > 0.5 (default
    ``DRAW_PANEL_NODES``; the point estimate's ``PANEL_NODES`` makes the batch exact to 1e-12).
    """
    panel_nodes = DRAW_PANEL_NODES if panel_nodes is None else panel_nodes
    tt, oc = problem.tasks, problem.outcomes
    xb = d.beta
    B = len(xb)
    C, M = tt.pass_rate.shape
    marg = np.repeat(tt.pass_rate[None], B, axis=0)
    catch = np.repeat(tt.catch[None], B, axis=0)
    false_reject = np.repeat(tt.false_reject[None], B, axis=0)
    kind = plan.beta_kind
    marg[:, plan.beta_cat[kind == PASS], plan.beta_model[kind == PASS]] = xb[:, kind == PASS]
    catch[:, plan.beta_cat[kind == CATCH]] = xb[:, kind == CATCH]
    false_reject[:, plan.beta_cat[kind == FALSE_REJECT]] = xb[:, kind == FALSE_REJECT]
    tables = {c: w for (c, _), w in zip(plan.tables, d.tables, strict=True)}
    clipped = np.zeros(C, dtype=np.int64)
    weights, qs, tiers = [], [], []
    for c in range(C):  # per category (a handful), never per draw
        s = slice(oc.start[c], oc.start[c] + oc.count[c])
        K = int(oc.count[c])
        tiers.append(oc.tier[s])  # drawn states of a category without tiers: tier 0 (replaced below if needed)
        if not plan.states_drawn[c]:
            weights.append(np.broadcast_to(oc.weight[s], (B, K)))
            qs.append(np.broadcast_to(oc.q[s], (B, K, M)))
        elif oc.kind[c] == LATENT:
            from scipy.special import ndtri

            with np.errstate(invalid="ignore"):
                a = ndtri(marg[:, c])
            z, w = latent_nodes_batch(float(oc.rho[c]), a, panel_nodes)
            weights.append(w)
            qs.append(latent_q(float(oc.rho[c]), a, z))
            tiers[-1] = np.zeros(w.shape[-1], dtype=np.int64)
        elif oc.kind[c] == TABLE:
            cols = plan.table_cols[c]
            other = np.setdiff1d(np.arange(M), cols)
            q = np.repeat(oc.q[s][None], B, axis=0)  # table models: 1 / 0 per pattern, whatever the draw
            q[:, :, other] = marg[:, c, other][:, None, :]
            if c in tables:
                w = tables[c]
                marg[:, c, cols] = w @ q[0][:, cols]  # the table's marginals, for the record
            elif c in plan.conditional:
                first, second, rate, source = plan.conditional[c]
                r = xb[:, source] if source >= 0 else np.full(B, rate)
                lo, hi = feasible_range(marg[:, c, first], marg[:, c, second])
                r_ok = np.clip(r, lo, hi)
                clipped[c] = int((r_ok != r).sum())
                w = conditional_probs(marg[:, c, first], marg[:, c, second], r_ok)
                w = w / w.sum(axis=-1, keepdims=True)
            else:
                w = np.broadcast_to(oc.weight[s], (B, K))
            weights.append(w)
            qs.append(q)
        else:  # independent: one state, q = the drawn marginals
            weights.append(np.ones((B, 1)))
            qs.append(marg[:, c][:, None, :])
            tiers[-1] = np.zeros(1, dtype=np.int64)
    count = np.array([w.shape[-1] for w in weights], dtype=np.int64)
    states = replace(
        oc,
        marginal=marg,
        cat=np.repeat(np.arange(C), count),
        tier=np.concatenate(tiers).astype(np.int64),
        start=np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64),
        count=count,
        weight=np.concatenate(weights, axis=-1),
        q=np.concatenate(qs, axis=-2),
    )
    tasks = replace(tt, pass_rate=marg, catch=catch, false_reject=false_reject)
    return replace(problem, tasks=tasks, outcomes=states), clipped


def _rows_per_draw(problem: RoutingProblem, plan: Plan, panel_nodes: int) -> int:
    """Engine rows (category x state x lane) of one draw, at most: latent categories get their own nodes."""
    oc, L = problem.outcomes, problem.chains.shape[2]
    M = problem.tasks.pass_rate.shape[1]
    nodes = (16 + 7 * M - 1) * panel_nodes  # unit panels plus 7 breakpoints per model
    latent = plan.states_drawn & (oc.kind == LATENT) & (oc.rho > 0.5)
    return int(np.where(latent, np.maximum(oc.count, nodes), oc.count).sum()) * L


def outcome_routed(problem: RoutingProblem) -> np.ndarray:
    """``(P,)``: whether a policy's route depends on pass/fail, i.e. a gated step sends rejects to a later step.

    Any other policy reaches each step with a probability that does not depend on whether answers are good, so
    its expected cost and quality are linear in each try's pass probability, and any joint law gives exactly what
    one state per category with the marginal pass rates gives (the expectation of a linear function). Those
    policies are evaluated on one state per category: same numbers, far fewer engine rows.
    """
    ch = problem.chains
    rejects_on = ((ch.model >= 0) & (ch.gated | ch.tool) & (ch.on_reject >= 0)).any(axis=(1, 2, 3))
    best_of_two = ((ch.hedge >= 0) & ch.hedge_best).any(axis=(1, 2, 3))  # quality 1 - (1 - q_a)(1 - q_b)
    by_tier = (ch.lane_weight != ch.lane_weight[:, :, :1]).any(axis=(1, 2, 3, 4))  # a classifier: lanes by tier
    return rejects_on | best_of_two | by_tier


def collapse_states(states: OutcomeStates) -> OutcomeStates:
    """One state per category whose ``q`` is the state-weighted mean ``q`` (the marginals); see
    :func:`outcome_routed` for when that changes no expected value."""
    w, q = states.weight, states.q
    first = q[..., states.start, :]
    mean = np.add.reduceat(w[..., None] * np.nan_to_num(q), states.start, axis=-2)
    C = len(states.start)
    return replace(
        states,
        cat=np.arange(C),
        tier=np.zeros(C, dtype=np.int64),
        start=np.arange(C),
        count=np.ones(C, dtype=np.int64),
        weight=np.ones((*w.shape[:-1], C)),
        q=np.where(np.isnan(first), np.nan, mean),  # a model without a pass rate has none in every state
    )


@dataclass(frozen=True, eq=False)
class DrawMetrics:
    """What each draw gives: ``cost`` ``(B, P)`` per request (traffic-weighted), ``quality`` ``(B, P, C)``;
    ``cost_by_category`` and ``latency`` (mean seconds) ``(B, P, C)``, for callers that reweight categories."""

    cost: np.ndarray
    quality: np.ndarray
    clipped: np.ndarray  # (C,) draws whose conditional rate was clipped into the feasible range
    cost_by_category: np.ndarray
    latency: np.ndarray


Adjust = Callable[[RoutingProblem, slice], RoutingProblem]


def draw_metrics(
    problem: RoutingProblem,
    plan: Plan,
    d: Draws,
    adjust: Adjust | None = None,
    panel_nodes: int | None = None,
) -> DrawMetrics:
    """Expected cost and quality under every draw of ``d``: batched engine runs per chunk of draws.

    Policies whose route depends on pass/fail run on the drawn outcome states; the others on one state per
    category (:func:`outcome_routed`). ``adjust(batch, rows)``, if given, may replace other parameters of each
    chunk's batched problem by batched arrays of its own (rows ``rows`` of them: sensitivity swings of prices,
    latency, tokens, ...); ``panel_nodes`` as in :func:`batched_problem`.
    """
    panel_nodes = DRAW_PANEL_NODES if panel_nodes is None else panel_nodes
    B = len(d.beta)
    P, C, _, S = problem.chains.shape
    routed = outcome_routed(problem)
    groups = [(np.flatnonzero(routed), False), (np.flatnonzero(~routed), True)]
    groups = [(ix, collapse) for ix, collapse in groups if len(ix)]
    rows = _rows_per_draw(problem, plan, panel_nodes)
    per_draw = (routed.sum() * rows + (~routed).sum() * C * problem.chains.shape[2]) * S
    step = max(1, CHUNK_ELEMENTS // max(1, int(per_draw)))
    cost, quality = np.empty((B, P)), np.empty((B, P, C))
    by_category, latency = np.empty((B, P, C)), np.empty((B, P, C))
    clipped = np.zeros(C, dtype=np.int64)
    for lo in range(0, B, step):
        sl = slice(lo, lo + step)
        batch, clip = batched_problem(problem, plan, d.rows(sl), panel_nodes)
        if adjust is not None:
            batch = adjust(batch, sl)
        clipped += clip
        for ix, collapse in groups:
            part = batch.with_chains(batch.chains.select(ix))
            if collapse:
                part = replace(part, outcomes=collapse_states(part.outcomes))
            ev = expected_values(part)
            total = ev.cost
            cost[sl, ix] = total @ problem.tasks.share
            quality[sl, ix] = ev.quality
            by_category[sl, ix] = total
            latency[sl, ix] = ev.latency
    return DrawMetrics(cost, quality, clipped, by_category, latency)


# ---------------------------------------------------------------------------------------------------------
# The answer: intervals, probabilities, and how many more labelled samples


@dataclass(frozen=True)
class Interval:
    """An equal-tailed interval of the draws (5th and 95th percentiles for 90 %) and their median."""

    low: float
    median: float
    high: float

    @classmethod
    def of(cls, values: np.ndarray, level: float = LEVEL) -> Interval:
        lo, mid, hi = np.quantile(values, [(1 - level) / 2, 0.5, (1 + level) / 2])
        return cls(float(lo), float(mid), float(hi))


@dataclass(frozen=True)
class PolicyRisk:
    """One policy under the draws. ``cost_change_monthly`` (this policy minus the baseline, positive costs more) is None for the
    baseline itself (or without one)."""

    name: str
    monthly_cost: Interval
    cost_change_monthly: Interval | None
    quality: Interval
    p_meets_targets: float  # share of draws meeting every category's quality threshold and (fixed) P95 budget
    p_winner: float  # share of draws in which it is the cheapest policy meeting every target
    p_quality_ok: dict[str, float]  # per category: share of draws meeting its quality threshold
    latency_ok: bool  # every P95 budget met at the point estimate (not redrawn)


@dataclass(frozen=True)
class MoreSamples:
    """Grow one category's eval set: ``extra`` more labelled prompts, ``factor`` x today's ``eval_size``."""

    category: str
    factor: float
    eval_size: int
    extra: int


@dataclass(frozen=True)
class SampleAdvice:
    """Which eval set is too small for the decision, and how much more data would settle it.

    Method: a category's counts are multiplied by a factor f (powers of 2^(1/3) up to 128), which keeps its point
    estimates and narrows its posteriors as f times the labelled prompts would if the new ones passed at today's
    rates. Today's Gamma variates grow by independent Gamma((f - 1) k) increments, so each grown draw is today's
    draw plus more evidence (:meth:`Gammas.grow`). Categories' posteriors are independent, so P(meets every
    threshold) is the product of the per-category probabilities (latency is not redrawn): the weakest category is
    raised one step at a time until the product reaches the target, and ``p_after`` is then re-estimated jointly
    at the chosen factors. Approximate: new samples will not pass at exactly today's rates, factors move in steps
    of x1.26, and every probability carries the sampling error of the draws (±1.4 pp at 95 % with 1,000 draws,
    near a probability of 0.95).
    """

    policy: str
    target: float
    p_meets: float  # now
    p_category: dict[str, float]  # now, per category (quality threshold; latency is not redrawn)
    bottleneck: str | None  # the category with the lowest probability, None if all are certain
    more: list[MoreSamples]
    p_after: float | None  # with ``more``; None when no more data is needed or it cannot reach the target
    reachable: bool


@dataclass(frozen=True)
class Uncertainty:
    """``compare --uncertainty``: intervals and probabilities per policy, from ``draws`` posterior draws."""

    draws: int
    seed: int
    level: float
    currency: str
    baseline: str | None
    winner: str | None  # of the point estimate
    counted: list[Counted]
    fixed: list[str]
    notes: list[str]
    policies: list[PolicyRisk] = field(default_factory=list)
    p_no_winner: float | None = None
    advice: SampleAdvice | None = None

    @property
    def has_counts(self) -> bool:
        return bool(self.counted)

    def policy(self, name: str) -> PolicyRisk:
        return next(p for p in self.policies if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, units in key names: money in ``currency`` per month, quality and probabilities as fractions."""
        out: dict[str, Any] = {
            "draws": self.draws,
            "seed": self.seed,
            "interval_level": self.level,
            "currency": self.currency,
            "has_counts": self.has_counts,
            "counted_inputs": [asdict(c) for c in self.counted],
            "fixed_no_counts": self.fixed,
            "notes": self.notes,
        }
        if not self.has_counts:
            out["message"] = NO_COUNTS
            return jsonable(out)
        lo, hi = (1 - self.level) / 2, (1 + self.level) / 2
        tag = lambda q: f"p{round(q * 100):02d}"
        keys = (tag(lo), "p50", tag(hi))

        def interval(prefix: str, iv: Interval | None) -> dict[str, float | None]:
            values = (None, None, None) if iv is None else (iv.low, iv.median, iv.high)
            return {f"{prefix}_{k}": v for k, v in zip(keys, values, strict=True)}

        out["policies"] = [
            {
                "name": p.name,
                **interval("monthly_cost", p.monthly_cost),
                **interval("cost_change_monthly", p.cost_change_monthly),
                **interval("quality_fraction", p.quality),
                "probability_meets_targets": p.p_meets_targets,
                "probability_winner": p.p_winner,
                "probability_quality_ok_by_category": p.p_quality_ok,
                "latency_ok_point_estimate": p.latency_ok,
            }
            for p in self.policies
        ]
        out["probability_no_winner"] = self.p_no_winner
        if self.advice is not None:
            a = self.advice
            out["sample_advice"] = {
                "policy": a.policy,
                "target_probability": a.target,
                "probability_meets_targets": a.p_meets,
                "probability_quality_ok_by_category": a.p_category,
                "bottleneck_category": a.bottleneck,
                "more_labelled_prompts": [asdict(m) for m in a.more],
                "probability_meets_targets_after": a.p_after,
                "reachable": a.reachable,
            }
        return jsonable(out)


def analyse(ws: Worksheet, c: Comparison, draws: int = DEFAULT_DRAWS, seed: int = 0) -> Uncertainty:
    """Intervals, P(meets every target), P(winner) per policy of a comparison, and the sample-size advice.

    ``c`` must be ``compare(ws, ...)``: its problem gives the policies, its Monte Carlo run the latency verdicts.
    """
    check_draws(draws)
    plan = plan_of(ws)
    problem = c.problem
    names = list(problem.chains.names)
    if [p.name for p in c.policies] != names:
        raise ValueError("the comparison's policies are not its problem's chains")
    base = Uncertainty(
        draws=draws,
        seed=seed,
        level=LEVEL,
        currency=c.currency,
        baseline=c.baseline,
        winner=c.winner,
        counted=list(plan.counted),
        fixed=list(plan.fixed),
        notes=[LATENCY_NOTE, FIXED_NOTE],
    )
    if not plan.has_counts:
        return base
    rng = np.random.default_rng(seed)
    gammas = Gammas.draw(plan, draws, rng)
    dm = draw_metrics(problem, plan, gammas.draws())
    tt, vol = problem.tasks, problem.requests_per_month
    cats = list(tt.names)
    q_ok = dm.quality >= tt.threshold - 1e-12  # (D, P, C), as results.summarize checks it
    latency_ok = np.array([[cat.latency_ok for cat in p.categories] for p in c.policies])  # (P, C)
    meets = (q_ok & latency_ok).all(axis=-1)  # (D, P)
    quality = dm.quality @ tt.share  # (D, P)
    monthly = dm.cost * vol
    win = _winner_per_draw(meets, dm.cost, quality)
    b = names.index(c.baseline) if c.baseline in names else None
    policies = []
    for p, name in enumerate(names):
        change = None if b is None or b == p else Interval.of(monthly[:, p] - monthly[:, b])
        policies.append(
            PolicyRisk(
                name=name,
                monthly_cost=Interval.of(monthly[:, p]),
                cost_change_monthly=change,
                quality=Interval.of(quality[:, p]),
                p_meets_targets=float(meets[:, p].mean()),
                p_winner=float((win == p).mean()),
                p_quality_ok={cat: float(v) for cat, v in zip(cats, q_ok[:, p].mean(axis=0), strict=True)},
                latency_ok=bool(latency_ok[p].all()),
            )
        )
    notes = list(base.notes)
    for ci in np.flatnonzero(dm.clipped):
        notes.append(
            f"{cats[ci]}: the conditional rate was clipped into its feasible range (given the drawn pass rates) "
            f"in {dm.clipped[ci] / draws:.1%} of draws."
        )
    advice = None
    if c.winner is not None:
        w = names.index(c.winner)
        advice = sample_advice(problem, plan, gammas, rng.spawn(1)[0], meets[:, w], q_ok[:, w], w)
    return replace(base, notes=notes, policies=policies, p_no_winner=float((win < 0).mean()), advice=advice)


def _winner_per_draw(meets: np.ndarray, cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Per draw, the index of the cheapest policy meeting every target (ties: higher quality, then list order,
    as :func:`routecalc.results.pick_winner`), or -1 when none does."""
    key = np.where(meets, cost, np.inf)
    best = key.min(axis=-1, keepdims=True)
    tied = meets & (key == best)
    pick = np.argmax(np.where(tied, quality, -np.inf), axis=-1)
    return np.where(meets.any(axis=-1), pick, -1)


def sample_advice(
    problem: RoutingProblem,
    plan: Plan,
    gammas: Gammas,
    rng: np.random.Generator,
    meets: np.ndarray,
    q_ok: np.ndarray,
    policy: int,
    target: float = TARGET,
) -> SampleAdvice:
    """How many more labelled prompts, in which category, lift P(``policy`` meets every target) to ``target``.

    ``gammas`` are today's draws; ``meets`` ``(D,)`` and ``q_ok`` ``(D, C)`` what they gave for ``policy``;
    ``rng`` draws the increments of the grown eval sets. See :class:`SampleAdvice` for the method.
    """
    cats = list(problem.tasks.names)
    name = problem.chains.names[policy]
    C = q_ok.shape[1]
    p_cat = q_ok.mean(axis=0)
    p_now = float(meets.mean())
    weak = (p_cat < 1) & (plan.eval_size > 0)  # the only categories more data can move
    order = [ci for ci in np.argsort(p_cat, kind="stable") if p_cat[ci] < 1]
    advice = SampleAdvice(
        policy=name,
        target=target,
        p_meets=p_now,
        p_category={cat: float(v) for cat, v in zip(cats, p_cat, strict=True)},
        bottleneck=cats[order[0]] if order else None,
        more=[],
        p_after=None,
        reachable=True,
    )
    if p_now >= target:
        return advice
    n_steps = round(math.log(MAX_SCALE) / math.log(SCALE_STEP))
    factors = SCALE_STEP ** np.arange(n_steps + 1)  # 1, 1.26, 1.59, 2, ..., 128
    one = problem.with_chains(problem.chains.select([policy]))
    threshold = problem.tasks.threshold - 1e-12
    levels = [gammas.draws()]  # draws with factors[i] x the counts of the weak categories
    grid = [p_cat]  # per level: P(meets each category's quality threshold)

    def p_at(i: int) -> np.ndarray:
        """Grid row ``i``, growing the eval sets level by level only as far as the search goes."""
        nonlocal gammas
        while len(grid) <= i:
            gammas = gammas.grow(plan, (factors[len(grid)] - factors[len(grid) - 1]) * weak, rng)
            levels.append(gammas.draws())
            grid.append((draw_metrics(one, plan, levels[-1]).quality[:, 0] >= threshold).mean(axis=0))
        return grid[i]

    step = np.zeros(C, dtype=np.int64)
    at = lambda: np.array([p_at(int(step[ci]))[ci] for ci in range(C)])
    while at().prod() < target:
        grow = [ci for ci in range(C) if weak[ci] and step[ci] < n_steps]
        if not grow:
            break
        now = at()
        step[min(grow, key=lambda i: now[i])] += 1  # raise the weakest category one step
    more = [
        MoreSamples(
            category=cats[ci],
            factor=float(factors[step[ci]]),
            eval_size=int(plan.eval_size[ci]),
            extra=math.ceil((factors[step[ci]] - 1) * plan.eval_size[ci]),
        )
        for ci in np.flatnonzero(step)
    ]
    if at().prod() < target:
        return replace(advice, more=more, reachable=False)
    # re-estimate jointly: every category's draws at its chosen level (categories' posteriors are independent)
    beta = np.stack([lv.beta for lv in levels])  # (levels, D, J)
    chosen = Draws(
        beta[step[plan.beta_cat], :, np.arange(len(plan.beta_cat))].T,
        tuple(np.stack([lv.tables[i] for lv in levels])[step[c]] for i, (c, _) in enumerate(plan.tables)),
    )
    p_after = float((draw_metrics(one, plan, chosen).quality[:, 0] >= threshold).all(axis=-1).mean())
    return replace(advice, more=more, p_after=p_after)
