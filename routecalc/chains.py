"""Compile a worksheet into arrays: every policy becomes, per category, ordered chains of steps.

Static is a chain of one; cascade gates every step and escalates on reject; fallback moves on only on
provider failure; ``chain`` spells the steps out. All kinds land in the same ``(P, C, L, S)`` arrays
(policies, categories, lanes, steps), so the engines never look at policy kinds. A *lane* is one of the chains a
policy may take within a category (a rule, a classifier's prediction, a weighted split; :mod:`routecalc.routes`),
with its share of the category's requests per (tier, segment); a plain route has one lane.

The engines' catalog is the models followed by the tools: a tool step is a catalog entry without tokens that
answers (a hit, right with the tool's quality) or misses (the request goes on), which the engines express as a
step with its own perfect gate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from routecalc.gcpause import gc_paused
from routecalc.outcomes import OutcomeStates, catalog_names, outcome_states
from routecalc.outcomes import take_categories as take_outcome_categories
from routecalc.routes import SegmentTable, lanes, segment_table
from routecalc.worksheet import (
    ERROR_TYPES,
    Band,
    ModelSpec,
    PolicySpec,
    Router,
    StepSpec,
    Worksheet,
    leaves,
    step_gated,
)
from routecalc.worksheet.pricing import rates as billed_rates

# Step targets: an index >= 0 is a later step of the same chain; negatives are terminal outcomes.
FAIL = -1  # the request fails: no answer, counted as not good
DELIVER = -2  # deliver the rejected answer anyway
HUMAN = -3  # send to human review: pays its cost and latency, counted as a good answer

STRONGEST = "all-to-strongest"
N_ERRORS = len(ERROR_TYPES)  # timeout, 5xx, 429, content_filter (not retried)
CONTENT_FILTER = ERROR_TYPES.index("content_filter")


@dataclass(frozen=True, eq=False)
class ModelTable:
    """Per catalog entry (models, then tools) parameters, shape ``(M,)``. Prices per token (the provider's
    negotiated discount applied), latency in s.

    ``long_*``: the prices of a request whose prompt is longer than ``long_above`` tokens (inf: no such tier);
    ``batch_in``/``batch_out``: the factor the batch API applies to input-side / output-side prices.
    :mod:`routecalc.engine.billing` turns them into what a try bills.
    """

    names: tuple[str, ...]
    price_in: np.ndarray
    price_out: np.ndarray
    price_cache: np.ndarray  # prompt-cache read
    price_cache_write: np.ndarray
    price_reasoning: np.ndarray
    batch_in: np.ndarray
    batch_out: np.ndarray
    long_above: np.ndarray
    long_in: np.ndarray
    long_out: np.ndarray
    long_cache: np.ndarray
    long_cache_write: np.ndarray
    long_reasoning: np.ndarray
    ttft_mu: np.ndarray  # answer latency = A + y * B; A ~ LogNormal(ttft_mu, ttft_sigma) (or e2e)
    ttft_sigma: np.ndarray
    tpot_mu: np.ndarray  # B ~ LogNormal(tpot_mu, tpot_sigma); -inf => B = 0 (e2e given directly)
    tpot_sigma: np.ndarray
    fail: np.ndarray  # probability a try fails
    timeout_share: np.ndarray  # share of failures that are timeouts
    timeout_s: np.ndarray
    error_latency_s: np.ndarray
    output_ratio: np.ndarray
    errors: np.ndarray  # (M, 4) share of failures by type: timeout, 5xx, 429, content_filter
    call_cost: np.ndarray  # per answered try, besides tokens (a tool's cost per call)
    window: np.ndarray  # context window in input tokens (inf: none given)
    is_tool: np.ndarray  # bool


@dataclass(frozen=True, eq=False)
class TaskTable:
    """Per-category parameters, shape ``(C,)`` (``pass_rate``, ``tool_catch`` are ``(C, M)``).

    ``pass_rate`` holds the marginal pass rates (a tool's: hit rate x hit quality); the joint law the engines
    use is ``RoutingProblem.outcomes``. ``tool_catch``: the share of a tool's non-answers (misses and wrong
    hits) that are misses, i.e. what its own perfect gate catches.
    """

    names: tuple[str, ...]
    share: np.ndarray
    x_mu: np.ndarray
    x_sigma: np.ndarray
    y_mu: np.ndarray
    y_sigma: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    threshold: np.ndarray
    budget_s: np.ndarray  # P95 latency budget, NaN if none
    pass_rate: np.ndarray
    catch: np.ndarray
    false_reject: np.ndarray
    gate_cost_call: np.ndarray
    gate_cost_token: np.ndarray  # per token of x + y read by the gate
    gate_latency_s: np.ndarray
    cached_share: np.ndarray  # share of input tokens read from the prompt cache
    cache_write_share: np.ndarray  # share written to it
    batch_share: np.ndarray  # share of requests through a batch API (a step may override it)
    reasoning_ratio: np.ndarray  # (C, M) hidden reasoning tokens per visible output token
    cost_bad: np.ndarray  # operational cost of a delivered bad answer (0 if not given)
    cost_failed: np.ndarray
    tool_catch: np.ndarray


@dataclass(frozen=True, eq=False)
class ChainTable:
    """Per-policy chains, shape ``(P, C, L, S)``; ``model == -1`` pads chains shorter than S.

    ``on_failure`` is ``(P, C, L, S, 4)``: where a step abandoned after an error of each type goes.
    ``on_overflow``: where a request longer than the step's model's window goes. ``deadline_s``: a client-side
    deadline per try (inf: none), ``on_deadline`` its target. ``hedge``: the second model of a hedged step
    (-1: none). ``lane_weight`` ``(P, C, T, G, L)``: each lane's share of a category's requests given their
    true tier and segment. ``lane_cost_call``, ``lane_cost_token`` (per input token), ``lane_latency_mu/sigma``
    ``(P, C, L)``: what the lane's classifiers cost and take (lognormal; sigma 0 = fixed). ``batch_share``: the
    step's share of requests sent through the batch API (NaN: the category's ``batch_share``).
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    model: np.ndarray
    gated: np.ndarray
    retries: np.ndarray
    on_reject: np.ndarray
    on_failure: np.ndarray
    on_overflow: np.ndarray
    tool: np.ndarray
    hedge: np.ndarray
    hedge_best: np.ndarray
    cancel_loser: np.ndarray
    deadline_s: np.ndarray
    on_deadline: np.ndarray
    latency_target_s: np.ndarray
    batch_share: np.ndarray
    lane_weight: np.ndarray
    lane_cost_call: np.ndarray
    lane_cost_token: np.ndarray
    lane_latency_mu: np.ndarray
    lane_latency_sigma: np.ndarray
    backoff_s: np.ndarray  # (P,)
    human_cost: np.ndarray  # (P,)
    human_latency_s: np.ndarray  # (P,)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(P, C, L, S)``."""
        return self.model.shape  # type: ignore[return-value]

    def select(self, policies: np.ndarray | list[int]) -> ChainTable:
        """The same chains for a subset (or reordering) of policies."""
        ix = np.asarray(policies, dtype=np.int64)
        return ChainTable(
            **{
                f.name: tuple(getattr(self, f.name)[i] for i in ix)
                if f.name in ("names", "kinds")
                else getattr(self, f.name)[ix]
                for f in fields(self)
            }
        )

    @property
    def plain(self) -> bool:
        """No lanes, hedges, deadlines or tools: what routecalc 0.1 could express."""
        return (
            self.shape[2] == 1
            and not (self.hedge >= 0).any()
            and not np.isfinite(self.deadline_s).any()
            and not self.tool.any()
        )


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """Everything the engines need: plain arrays, no worksheet objects."""

    models: ModelTable
    tasks: TaskTable
    chains: ChainTable
    outcomes: OutcomeStates
    segments: SegmentTable
    bill_failed_input: bool
    requests_per_month: float
    currency: str
    deadline_billing: str = "full"  # what a try abandoned at its deadline bills: full | input | none

    def with_chains(self, chains: ChainTable) -> RoutingProblem:
        return replace(self, chains=chains)

    def take_categories(self, ix: np.ndarray | Sequence[int], chains: ChainTable) -> RoutingProblem:
        """The problem restricted to categories ``ix`` (shares kept as they are), with ``chains`` shaped for
        them. Parameters must not carry leading (draw) axes."""
        ix = np.asarray(ix, dtype=np.int64)
        tt = self.tasks
        tasks = TaskTable(
            **{
                f.name: (tuple(tt.names[i] for i in ix) if f.name == "names" else getattr(tt, f.name)[ix])
                for f in fields(TaskTable)
            }
        )
        return replace(
            self,
            tasks=tasks,
            outcomes=take_outcome_categories(self.outcomes, ix),
            segments=self.segments.take(ix),
            chains=chains,
        )


def _band(band: Band) -> tuple[float, float, float]:
    return band.mu, band.sigma, band.expected


PRICE_COLUMNS = (
    "price_in",
    "price_out",
    "price_cache",
    "price_cache_write",
    "price_reasoning",
    "long_in",
    "long_out",
    "long_cache",
    "long_cache_write",
    "long_reasoning",
)


def price_row(ws: Worksheet, m: ModelSpec) -> dict[str, float]:
    """A model's billed prices per token (discount applied), batch factors and long-context threshold."""
    k = ws.tokens_per_price_unit
    r = billed_rates(m, ws.discounts.get(m.provider, 0.0))
    per_token = (
        r.price_in,
        r.price_out,
        r.cache_read,
        r.cache_write,
        r.reasoning,
        r.long_in,
        r.long_out,
        r.long_cache_read,
        r.long_cache_write,
        r.long_reasoning,
    )
    return {
        **{col: v / k for col, v in zip(PRICE_COLUMNS, per_token, strict=True)},
        "batch_in": r.batch_in,
        "batch_out": r.batch_out,
        "long_above": r.long_above,
    }


def model_table(ws: Worksheet) -> ModelTable:
    """Catalog -> per-entry arrays (prices converted to per token); tools after the models."""
    rows: list[dict[str, float]] = []
    for m in ws.models:
        lat = m.latency
        if lat.e2e_s is not None:
            a_mu, a_sig, _ = _band(lat.e2e_s)
            b_mu, b_sig = -np.inf, 0.0
        else:
            a_mu, a_sig, _ = _band(lat.ttft_s)  # type: ignore[arg-type]
            b_mu, b_sig, _ = _band(lat.tpot_s)  # type: ignore[arg-type]
        shares = m.error_shares
        rows.append(
            {
                **price_row(ws, m),
                "ttft_mu": a_mu,
                "ttft_sigma": a_sig,
                "tpot_mu": b_mu,
                "tpot_sigma": b_sig,
                "fail": m.failure_rate,
                "timeout_share": m.timeout_share,
                "timeout_s": m.timeout_s,
                "error_latency_s": m.error_latency_s,
                "output_ratio": m.output_ratio,
                **{f"error_{t}": shares[t] for t in ERROR_TYPES},
                "call_cost": 0.0,
                "window": float(m.context_window) if m.context_window is not None else np.inf,
                "is_tool": 0.0,
            }
        )
    for tool in ws.tools:  # no tokens; fails like a model (as a 5xx), never times out; its hit rate is per task
        mu, sigma, _ = _band(tool.latency_s)
        rows.append(
            {
                **dict.fromkeys((*PRICE_COLUMNS, "tpot_sigma", "timeout_share"), 0.0),
                "batch_in": 1.0,
                "batch_out": 1.0,
                "long_above": np.inf,
                "ttft_mu": mu,
                "ttft_sigma": sigma,
                "tpot_mu": -np.inf,
                "fail": tool.failure_rate,
                "timeout_s": np.inf,
                "error_latency_s": tool.error_latency_s,
                "output_ratio": 0.0,
                **{f"error_{t}": float(t == "5xx") for t in ERROR_TYPES},
                "call_cost": tool.cost_per_call,
                "window": np.inf,
                "is_tool": 1.0,
            }
        )
    col = lambda key: np.array([r[key] for r in rows], dtype=float)
    return ModelTable(
        names=tuple(catalog_names(ws)),
        **{f.name: col(f.name) for f in fields(ModelTable) if f.name not in ("names", "errors", "is_tool")},
        errors=np.stack([col(f"error_{t}") for t in ERROR_TYPES], axis=1),
        is_tool=col("is_tool").astype(bool),
    )


def task_table(ws: Worksheet, outcomes: OutcomeStates | None = None) -> TaskTable:
    """Task categories -> per-category arrays."""
    names = catalog_names(ws)
    share = np.array(ws.shares, dtype=float)
    x = np.array([_band(t.tokens_in) for t in ws.tasks], dtype=float).reshape(-1, 3)
    y = np.array([_band(t.tokens_out) for t in ws.tasks], dtype=float).reshape(-1, 3)
    oc = outcomes if outcomes is not None else outcome_states(ws)

    def v(attr: str, default: float = 0.0) -> np.ndarray:
        vals = [getattr(t.validator, attr) if t.validator is not None else default for t in ws.tasks]
        return np.array([getattr(val, "rate", val) for val in vals], dtype=float)

    def opt(attr: str, default: float) -> np.ndarray:
        vals = [getattr(t, attr) for t in ws.tasks]
        return np.array([default if val is None else val for val in vals], dtype=float)

    reasoning = np.zeros((len(ws.tasks), len(names)))
    for j, m in enumerate(ws.models):  # tools (after the models) think nothing
        reasoning[:, j] = [t.reasoning_ratio.get(m.name, m.reasoning_ratio) for t in ws.tasks]
    tool_catch = np.zeros((len(ws.tasks), len(names)))
    for c, t in enumerate(ws.tasks):
        for tool, hit in t.tool_hit_rates.items():
            good = hit.rate * hit.quality
            tool_catch[c, names.index(tool)] = (1 - hit.rate) / (1 - good) if good < 1 else 1.0

    return TaskTable(
        names=tuple(t.name for t in ws.tasks),
        share=share,
        x_mu=x[:, 0],
        x_sigma=x[:, 1],
        x_mean=x[:, 2],
        y_mu=y[:, 0],
        y_sigma=y[:, 1],
        y_mean=y[:, 2],
        threshold=opt("quality_threshold", 0.0),
        budget_s=opt("latency_budget_s", np.nan),
        pass_rate=oc.marginal,
        catch=v("catch"),
        false_reject=v("false_reject"),
        gate_cost_call=v("cost_per_call"),
        gate_cost_token=v("cost_per_1m_tokens") / 1e6,
        gate_latency_s=v("latency_s"),
        cached_share=opt("cached_share", 0.0),
        cache_write_share=opt("cache_write_share", 0.0),
        batch_share=opt("batch_share", 0.0),
        reasoning_ratio=reasoning,
        cost_bad=opt("cost_bad_answer", 0.0),
        cost_failed=opt("cost_failed", 0.0),
        tool_catch=tool_catch,
    )


_TARGET = {"fail": FAIL, "deliver": DELIVER, "human_review": HUMAN}


def static_policy(name: str, routes: dict[str, str], description: str | None = None) -> PolicySpec:
    """A static policy (category -> model) built in code, e.g. the all-to-strongest baseline."""
    return PolicySpec.model_validate({"name": name, "kind": "static", "routes": routes, "description": description})


def map_leaves(
    route: list[StepSpec] | Router,
    fn: Callable[[list[StepSpec]], list[StepSpec]] = list,
    router_fn: Callable[[Router], Router] | None = None,
) -> list[StepSpec] | Router:
    """The same route with every leaf chain replaced by ``fn(chain)`` (and every router by ``router_fn``)."""
    if isinstance(route, list):
        return fn(route)
    update: dict = {}
    if route.split is not None:
        update["split"] = [
            arm.model_copy(update={"route": map_leaves(arm.route, fn, router_fn)}) for arm in route.split
        ]
    if route.rules is not None:
        update["rules"] = [r.model_copy(update={"route": map_leaves(r.route, fn, router_fn)}) for r in route.rules]
    if route.routes is not None:
        update["routes"] = {k: map_leaves(r, fn, router_fn) for k, r in route.routes.items()}
    out = route.model_copy(update=update)
    return router_fn(out) if router_fn is not None else out


class _Builder:
    """Fills the ``(P, C, L, S)`` arrays one lane at a time."""

    def __init__(self, P: int, C: int, T: int, G: int, L: int, S: int):
        shape = (P, C, L, S)
        self.model = np.full(shape, -1, dtype=np.int64)
        self.gated = np.zeros(shape, dtype=bool)
        self.retries = np.zeros(shape, dtype=np.int64)
        self.on_reject = np.full(shape, FAIL, dtype=np.int64)
        self.on_failure = np.full((*shape, N_ERRORS), FAIL, dtype=np.int64)
        self.on_overflow = np.full(shape, FAIL, dtype=np.int64)
        self.tool = np.zeros(shape, dtype=bool)
        self.hedge = np.full(shape, -1, dtype=np.int64)
        self.hedge_best = np.zeros(shape, dtype=bool)
        self.cancel_loser = np.zeros(shape, dtype=bool)
        self.deadline_s = np.full(shape, np.inf)
        self.on_deadline = np.full(shape, FAIL, dtype=np.int64)
        self.latency_target_s = np.full(shape, np.nan)
        self.batch_share = np.full(shape, np.nan)
        self.lane_weight = np.zeros((P, C, T, G, L))
        self.lane_cost_call = np.zeros((P, C, L))
        self.lane_cost_token = np.zeros((P, C, L))
        self.lane_latency_mu = np.full((P, C, L), -np.inf)
        self.lane_latency_sigma = np.zeros((P, C, L))


def plain_chains(
    model: np.ndarray,
    gated: np.ndarray,
    retries: np.ndarray,
    on_reject: np.ndarray,
    on_failure: np.ndarray,
    tiers: int = 1,
    segments: int = 1,
    backoff_s: float = 0.0,
    kind: str = "chain",
) -> ChainTable:
    """One-lane chains from ``(P, C, S)`` arrays (``model`` -1 pads): no hedges, tools or deadlines; every error
    type and a context overflow go where ``on_failure`` says. For callers that build many candidate routes as
    arrays (``routecalc optimize``) rather than from a worksheet."""
    P, C, S = model.shape
    b = _Builder(P, C, tiers, segments, 1, S)
    lane = (slice(None), slice(None), 0)
    b.model[lane] = model
    b.gated[lane] = gated
    b.retries[lane] = retries
    b.on_reject[lane] = on_reject
    b.on_failure[lane] = on_failure[..., None]
    b.on_overflow[lane] = on_failure
    b.lane_weight[...] = 1.0
    return ChainTable(
        names=("",) * P,
        kinds=(kind,) * P,
        **{f.name: getattr(b, f.name) for f in fields(ChainTable) if hasattr(b, f.name)},
        backoff_s=np.full(P, backoff_s),
        human_cost=np.zeros(P),
        human_latency_s=np.zeros(P),
    )


def _route_lengths(pol: PolicySpec, cat: str) -> tuple[int, int]:
    route = pol.routes[cat]
    if isinstance(route, list):  # a plain chain (the common case): one lane
        return 1, len(route)
    chains = leaves(route)
    return len(chains), max(len(c) for c in chains)


@gc_paused()
def chain_table(ws: Worksheet, extra: Sequence[PolicySpec] = (), segments: SegmentTable | None = None) -> ChainTable:
    """Compile the worksheet's policies, then ``extra`` ones, to ``(P, C, L, S)`` arrays.

    A step's triggers default to the next step; past the last step a failure fails the request and a reject
    goes to the policy's ``final_reject``. Steps inherit the policy's retries, then the worksheet default.
    A request too long for a step's model goes where a 5xx would (``context_overflow: next``) or fails.
    """
    ix = {n: i for i, n in enumerate(catalog_names(ws))}
    cats = [t.name for t in ws.tasks]
    policies = [*ws.policies, *extra]
    seg = segments if segments is not None else segment_table(ws, _x_means(ws), extra, catalog_names(ws))
    P, C = len(policies), len(cats)
    lengths = [[_route_lengths(pol, c) for c in cats] for pol in policies]
    L = max((n for row in lengths for n, _ in row), default=1)
    S = max((s for row in lengths for _, s in row), default=1)
    tiers = [list(t.tiers or ()) for t in ws.tasks]
    T = max(1, *(len(t) for t in tiers))
    G = seg.prob.shape[1]
    b = _Builder(P, C, T, G, L, S)
    rows = _Rows()
    plain: list[tuple[int, int]] = []  # (policy, category) of plain chains: one lane taking every request
    classifiers = {k.name: k for k in ws.classifiers}
    models = {m.name: m for m in ws.models}
    overflow_next = [(t.context_overflow or ws.defaults.context_overflow) == "next" for t in ws.tasks]
    budgets = [t.latency_budget_s for t in ws.tasks]
    for p, pol in enumerate(policies):
        policy_retries = pol.retries if pol.retries is not None else ws.defaults.retries
        for c, cat in enumerate(cats):
            route = pol.routes[cat]
            if isinstance(route, list):
                plain.append((p, c))
                rows.add((p, c, 0), route, pol, ix, policy_retries, overflow_next[c], budgets[c])
                continue
            for lane_ix, lane in enumerate(lanes(ws, route, c, seg, tiers[c])):
                t_c = lane.weight.shape[0]
                b.lane_weight[p, c, :t_c, :, lane_ix] = lane.weight
                b.lane_weight[p, c, t_c:, :, lane_ix] = lane.weight[-1]  # pad tiers: as defined as the rest
                for name in lane.classifiers:
                    clf = classifiers[name]
                    b.lane_cost_call[p, c, lane_ix] += clf.cost_per_call
                    if clf.model is not None:  # list prices, the provider's discount applied
                        m = price_row(ws, models[clf.model])
                        b.lane_cost_call[p, c, lane_ix] += clf.output_tokens * m["price_out"]
                        b.lane_cost_token[p, c, lane_ix] += m["price_in"]
                    # the lane's classifier latency: a sum of lognormals is not lognormal, so routes with
                    # more than one classifier take the sum's mean as a fixed latency
                    if len(lane.classifiers) == 1:
                        b.lane_latency_mu[p, c, lane_ix] = clf.latency_s.mu
                        b.lane_latency_sigma[p, c, lane_ix] = clf.latency_s.sigma
                if len(lane.classifiers) > 1:
                    total = sum(classifiers[n].latency_s.expected for n in lane.classifiers)
                    b.lane_latency_mu[p, c, lane_ix] = np.log(total) if total > 0 else -np.inf
                rows.add((p, c, lane_ix), lane.steps, pol, ix, policy_retries, overflow_next[c], budgets[c])
    if plain:
        pp, cc = np.array(plain, dtype=np.int64).T
        b.lane_weight[pp, cc, :, :, 0] = 1.0  # what lanes() gives a plain chain, for every tier and segment
    rows.write(b)
    human = [pol.human_review for pol in policies]
    return ChainTable(
        names=tuple(pol.name for pol in policies),
        kinds=tuple(pol.kind for pol in policies),
        **{f.name: getattr(b, f.name) for f in fields(ChainTable) if hasattr(b, f.name)},
        backoff_s=np.full(P, ws.defaults.backoff_s, dtype=float),
        human_cost=np.array([h.cost if h else 0.0 for h in human], dtype=float),
        human_latency_s=np.array([h.latency_s if h else 0.0 for h in human], dtype=float),
    )


class _Rows:
    """Every lane's steps as rows of a flat list, written to the ``_Builder`` arrays in one assignment per array
    (a numpy item assignment per field and step cost more than all the rest of compiling a big worksheet).

    A row holds, in ``COLUMNS`` order, what a step compiles to. A step that names a model and nothing else
    compiles to a row that depends only on its model, retries and position and on its policy, so those rows are
    made once and shared (most steps of a big worksheet are such steps).
    """

    COLUMNS = (
        "model",
        "hedge",
        "hedge_best",
        "cancel_loser",
        "tool",
        "gated",
        "retries",
        "on_failure",
        "on_overflow",
        "on_reject",
    )

    def __init__(self) -> None:
        self.at: list[tuple[int, int, int, int]] = []
        self.rows: list[tuple] = []
        self.plain: dict[tuple, tuple] = {}  # (model, retries, s, n, policy's kind/final_reject/retries, overflow)
        # fields most steps leave at their defaults: (position, value) only where a step sets them
        self.sparse: dict[str, list[tuple[tuple[int, int, int, int], float]]] = {
            k: [] for k in ("deadline_s", "on_deadline", "latency_target_s", "batch_share")
        }

    def add(
        self,
        at: tuple[int, int, int],
        steps: Sequence[StepSpec],
        pol: PolicySpec,
        ix: dict[str, int],
        policy_retries: int,
        overflow_next: bool,
        budget_s: float | None,
    ) -> None:
        """One lane's steps (at ``(policy, category, lane)``): targets resolved, retries inherited."""
        n = len(steps)
        p, c, lane = at
        for s, step in enumerate(steps):
            self.at.append((p, c, lane, s))
            if step.bare and step.batch_share is None:
                key = (step.model, step.retries, s, n, pol.kind, pol.final_reject, policy_retries, overflow_next)
                row = self.plain.get(key)
                if row is None:
                    row = self.plain[key] = self._row(step, s, n, pol, ix, policy_retries, overflow_next, budget_s)
                self.rows.append(row)
            else:
                self.rows.append(self._row(step, s, n, pol, ix, policy_retries, overflow_next, budget_s))

    def _row(
        self,
        step: StepSpec,
        s: int,
        n: int,
        pol: PolicySpec,
        ix: dict[str, int],
        policy_retries: int,
        overflow_next: bool,
        budget_s: float | None,
    ) -> tuple:
        here = self.at[-1]
        last = s + 1 == n
        nxt = FAIL if last else s + 1
        if step.hedge:
            model, hedge = ix[step.hedge[0]], ix[step.hedge[1]]
            hedge_best, cancel_loser = step.hedge_mode == "best", step.cancel_loser
        else:
            model, hedge, hedge_best, cancel_loser = ix[step.model or step.tool], -1, False, False  # type: ignore[index]
        retries = step.retries if step.retries is not None else (0 if step.hedge else policy_retries)
        if isinstance(step.on_failure, dict):
            default = nxt
            by_type = step.on_failure
            on_failure = tuple(_target(by_type.get(t), default) for t in ERROR_TYPES)  # type: ignore[arg-type]
        else:
            default = _target(step.on_failure, nxt)
            on_failure = (default,) * N_ERRORS
        final = _TARGET[pol.final_reject] if last else s + 1
        on_reject = _target(step.on_reject, nxt if step.tool is not None else final)
        if step.deadline_s is not None:
            deadline = budget_s if step.deadline_s == "budget" else step.deadline_s
            self.sparse["deadline_s"].append((here, deadline))  # type: ignore[arg-type]
            self.sparse["on_deadline"].append((here, _target(step.on_deadline, default)))
        if step.latency_target_s is not None:
            self.sparse["latency_target_s"].append((here, step.latency_target_s))
        if step.batch_share is not None:
            self.sparse["batch_share"].append((here, step.batch_share))
        gated = step_gated(pol, step, s, n)
        overflow = default if overflow_next else FAIL
        return (
            model,
            hedge,
            hedge_best,
            cancel_loser,
            step.tool is not None,
            gated,
            retries,
            on_failure,
            overflow,
            on_reject,
        )

    def write(self, b: _Builder) -> None:
        if not self.at:
            return
        at = tuple(np.array(self.at, dtype=np.int64).T)
        for k, column in zip(self.COLUMNS, zip(*self.rows, strict=True), strict=True):
            getattr(b, k)[at] = column
        for k, pairs in self.sparse.items():
            if pairs:
                where = tuple(np.array([w for w, _ in pairs], dtype=np.int64).T)
                getattr(b, k)[where] = [x for _, x in pairs]


def _target(value: int | str | None, default: int) -> int:
    if value is None or value == "next":
        return default
    if isinstance(value, int):
        return value
    return _TARGET[value]


def _x_means(ws: Worksheet) -> np.ndarray:
    return np.array([t.tokens_in.expected for t in ws.tasks], dtype=float)


def strongest_model(ws: Worksheet) -> str | None:
    """The model with the highest traffic-weighted pass rate (ties: lower mean cost per request).

    Only models with a pass rate for every category qualify; None if no model covers them all.
    """
    shares = ws.shares
    rates = [t.rates for t in ws.tasks]
    best: tuple[float, float, str] | None = None
    for m in ws.models:
        if not all(m.name in r for r in rates):
            continue
        quality = sum(s * r[m.name] for s, r in zip(shares, rates, strict=True))
        price = price_row(ws, m)  # list prices, the provider's discount applied
        cost = sum(
            s * (t.tokens_in.expected * price["price_in"] + t.tokens_out.expected * m.output_ratio * price["price_out"])
            for s, t in zip(shares, ws.tasks, strict=True)
        )
        key = (-round(quality, 12), cost, m.name)
        if best is None or key < best:
            best = key
    return best[2] if best else None


@gc_paused()
def compile_worksheet(ws: Worksheet, include_strongest: bool = True, strongest: str | None = None) -> RoutingProblem:
    """Worksheet -> RoutingProblem with the worksheet's policies, then the all-to-strongest baseline.

    ``strongest`` names the baseline's model instead of choosing it (what-if variants of a worksheet keep the
    model the original chose, so the same policies are compared).
    """
    extra = []
    if include_strongest and strongest is None:
        strongest = strongest_model(ws)
    elif not include_strongest:
        strongest = None
    if strongest is not None:
        extra.append(static_policy(STRONGEST, {t.name: strongest for t in ws.tasks}))
    seg = segment_table(ws, _x_means(ws), extra, catalog_names(ws))
    oc = outcome_states(ws)
    return RoutingProblem(
        models=model_table(ws),
        tasks=task_table(ws, oc),
        chains=chain_table(ws, extra, seg),
        outcomes=oc,
        segments=seg,
        bill_failed_input=ws.defaults.bill_failed_input,
        requests_per_month=ws.volume.per_month,
        currency=ws.currency,
        deadline_billing=ws.defaults.deadline_billing,
    )


def direct_variants(ws: Worksheet, problem: RoutingProblem) -> RoutingProblem:
    """For each cascade policy, the same policy with every chain sent straight to its last model.

    The engines evaluate these next to the cascades for the "is the cascade worth it?" advisory.
    """

    direct: dict[str, StepSpec] = {}  # model -> its one step (frozen, so chains may share it)

    def last(chain: list[StepSpec]) -> list[StepSpec]:
        if chain[-1].tool is not None:
            return [chain[-1]]
        name = chain[-1].names[-1]
        if name not in direct:
            direct[name] = StepSpec(model=name)
        return [direct[name]]

    extra = [
        pol.model_copy(update={"kind": "static", "routes": {c: map_leaves(r, last) for c, r in pol.routes.items()}})
        for pol in ws.policies
        if pol.kind == "cascade"
    ]
    chains = chain_table(ws.model_copy(update={"policies": []}), extra, problem.segments)
    return problem.with_chains(chains)
