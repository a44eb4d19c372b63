"""Compile a worksheet into arrays: every policy becomes, per category, an ordered chain of steps.

Static is a chain of one; cascade gates every step and escalates on reject; fallback moves on only on
provider failure; ``chain`` spells the steps out. All kinds land in the same ``(P, C, L, S)`` arrays
(policies, categories, lanes, steps), so the engines never look at policy kinds. A *lane* is one of several
routes a policy may take within a category (a rule, a classifier's prediction, a weighted split), with its
share of the category's requests; a plain policy has one lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from routecalc.outcomes import OutcomeStates, outcome_states
from routecalc.worksheet import Band, PolicySpec, Worksheet, step_gated

# Step targets: an index >= 0 is a later step of the same chain; negatives are terminal outcomes.
FAIL = -1  # the request fails: no answer, counted as not good
DELIVER = -2  # deliver the rejected answer anyway
HUMAN = -3  # send to human review: pays its cost and latency, counted as a good answer

STRONGEST = "all-to-strongest"


@dataclass(frozen=True, eq=False)
class ModelTable:
    """Per-model parameters, shape ``(M,)``. Prices are per token, latencies in seconds."""

    names: tuple[str, ...]
    price_in: np.ndarray
    price_out: np.ndarray
    price_cache: np.ndarray
    ttft_mu: np.ndarray  # answer latency = A + y * B; A ~ LogNormal(ttft_mu, ttft_sigma) (or e2e)
    ttft_sigma: np.ndarray
    tpot_mu: np.ndarray  # B ~ LogNormal(tpot_mu, tpot_sigma); -inf => B = 0 (e2e given directly)
    tpot_sigma: np.ndarray
    fail: np.ndarray  # probability a try fails
    timeout_share: np.ndarray  # share of failures that are timeouts
    timeout_s: np.ndarray
    error_latency_s: np.ndarray
    output_ratio: np.ndarray


@dataclass(frozen=True, eq=False)
class TaskTable:
    """Per-category parameters, shape ``(C,)`` (``pass_rate`` is ``(C, M)``, NaN where not given).

    ``pass_rate`` holds the marginal pass rates; the joint law the engines use is ``RoutingProblem.outcomes``.
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
    cached_share: np.ndarray
    cost_bad: np.ndarray  # operational cost of a delivered bad answer (0 if not given)
    cost_failed: np.ndarray


@dataclass(frozen=True, eq=False)
class ChainTable:
    """Per-policy chains, shape ``(P, C, L, S)``; ``model == -1`` pads chains shorter than S.

    ``lane_weight`` ``(P, C, L)``: the share of a category's requests each lane takes (sums to 1 over L).
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    model: np.ndarray
    gated: np.ndarray
    retries: np.ndarray
    on_reject: np.ndarray
    on_failure: np.ndarray
    lane_weight: np.ndarray
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
            names=tuple(self.names[i] for i in ix),
            kinds=tuple(self.kinds[i] for i in ix),
            model=self.model[ix],
            gated=self.gated[ix],
            retries=self.retries[ix],
            on_reject=self.on_reject[ix],
            on_failure=self.on_failure[ix],
            lane_weight=self.lane_weight[ix],
            backoff_s=self.backoff_s[ix],
            human_cost=self.human_cost[ix],
            human_latency_s=self.human_latency_s[ix],
        )


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """Everything the engines need: plain arrays, no worksheet objects."""

    models: ModelTable
    tasks: TaskTable
    chains: ChainTable
    outcomes: OutcomeStates
    bill_failed_input: bool
    requests_per_month: float
    currency: str

    def with_chains(self, chains: ChainTable) -> RoutingProblem:
        return replace(self, chains=chains)


def _band(band: Band) -> tuple[float, float, float]:
    return band.mu, band.sigma, band.expected


def model_table(ws: Worksheet) -> ModelTable:
    """Catalog -> per-model arrays (prices converted to per token)."""
    k = ws.tokens_per_price_unit
    rows = []
    for m in ws.models:
        lat = m.latency
        if lat.e2e_s is not None:
            a_mu, a_sig, _ = _band(lat.e2e_s)
            b_mu, b_sig = -np.inf, 0.0
        else:
            a_mu, a_sig, _ = _band(lat.ttft_s)  # type: ignore[arg-type]
            b_mu, b_sig, _ = _band(lat.tpot_s)  # type: ignore[arg-type]
        cache = m.price_cache if m.price_cache is not None else m.price_in
        rows.append(
            (
                m.price_in / k,
                m.price_out / k,
                cache / k,
                a_mu,
                a_sig,
                b_mu,
                b_sig,
                m.failure_rate,
                m.timeout_share,
                m.timeout_s,
                m.error_latency_s,
                m.output_ratio,
            )
        )
    cols = np.array(rows, dtype=float).reshape(len(rows), 12).T
    return ModelTable(tuple(m.name for m in ws.models), *cols)


def task_table(ws: Worksheet) -> TaskTable:
    """Task categories -> per-category arrays."""
    names = [m.name for m in ws.models]
    share = np.array(ws.shares, dtype=float)
    x = np.array([_band(t.tokens_in) for t in ws.tasks], dtype=float).reshape(-1, 3)
    y = np.array([_band(t.tokens_out) for t in ws.tasks], dtype=float).reshape(-1, 3)
    q = np.array([[t.rates.get(n, np.nan) for n in names] for t in ws.tasks], dtype=float)
    q = q.reshape(len(ws.tasks), len(names))

    def v(attr: str, default: float = 0.0) -> np.ndarray:
        vals = [getattr(t.validator, attr) if t.validator is not None else default for t in ws.tasks]
        return np.array([getattr(val, "rate", val) for val in vals], dtype=float)

    def opt(attr: str, default: float) -> np.ndarray:
        vals = [getattr(t, attr) for t in ws.tasks]
        return np.array([default if val is None else val for val in vals], dtype=float)

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
        pass_rate=q,
        catch=v("catch"),
        false_reject=v("false_reject"),
        gate_cost_call=v("cost_per_call"),
        gate_cost_token=v("cost_per_1m_tokens") / 1e6,
        gate_latency_s=v("latency_s"),
        cached_share=opt("cached_share", 0.0),
        cost_bad=opt("cost_bad_answer", 0.0),
        cost_failed=opt("cost_failed", 0.0),
    )


_TARGET = {"fail": FAIL, "deliver": DELIVER, "human_review": HUMAN}


def static_policy(name: str, routes: dict[str, str], description: str | None = None) -> PolicySpec:
    """A static policy (category -> model) built in code, e.g. the all-to-strongest baseline."""
    return PolicySpec.model_validate({"name": name, "kind": "static", "routes": routes, "description": description})


def chain_table(ws: Worksheet, extra: Sequence[PolicySpec] = ()) -> ChainTable:
    """Compile the worksheet's policies, then ``extra`` ones, to ``(P, C, L, S)`` arrays (one lane each).

    A step's triggers default to the next step; past the last step a failure fails the request and a reject
    goes to the policy's ``final_reject``. Steps inherit the policy's retries, then the worksheet default.
    """
    model_ix = {m.name: i for i, m in enumerate(ws.models)}
    cats = [t.name for t in ws.tasks]
    policies = [*ws.policies, *extra]
    P, C = len(policies), len(cats)
    S = max((len(pol.routes[c]) for pol in policies for c in cats), default=1)
    L = 1
    model = np.full((P, C, L, S), -1, dtype=np.int64)
    gated = np.zeros((P, C, L, S), dtype=bool)
    retries = np.zeros((P, C, L, S), dtype=np.int64)
    on_reject = np.full((P, C, L, S), FAIL, dtype=np.int64)
    on_failure = np.full((P, C, L, S), FAIL, dtype=np.int64)
    for p, pol in enumerate(policies):
        policy_retries = pol.retries if pol.retries is not None else ws.defaults.retries
        for c, cat in enumerate(cats):
            steps = pol.routes[cat]
            for s, step in enumerate(steps):
                last = s + 1 == len(steps)
                model[p, c, 0, s] = model_ix[step.model]
                gated[p, c, 0, s] = step_gated(pol, step, s, len(steps))
                retries[p, c, 0, s] = step.retries if step.retries is not None else policy_retries
                on_failure[p, c, 0, s] = _target(step.on_failure, FAIL if last else s + 1)
                on_reject[p, c, 0, s] = _target(step.on_reject, _TARGET[pol.final_reject] if last else s + 1)
    human = [pol.human_review for pol in policies]
    return ChainTable(
        names=tuple(pol.name for pol in policies),
        kinds=tuple(pol.kind for pol in policies),
        model=model,
        gated=gated,
        retries=retries,
        on_reject=on_reject,
        on_failure=on_failure,
        lane_weight=np.ones((P, C, L)),
        backoff_s=np.full(P, ws.defaults.backoff_s, dtype=float),
        human_cost=np.array([h.cost if h else 0.0 for h in human], dtype=float),
        human_latency_s=np.array([h.latency_s if h else 0.0 for h in human], dtype=float),
    )


def _target(value: int | str | None, default: int) -> int:
    if value is None or value == "next":
        return default
    if isinstance(value, int):
        return value
    return _TARGET[value]


def strongest_model(ws: Worksheet) -> str | None:
    """The model with the highest traffic-weighted pass rate (ties: lower mean cost per request).

    Only models with a pass rate for every category qualify; None if no model covers them all.
    """
    shares = ws.shares
    k = ws.tokens_per_price_unit
    rates = [t.rates for t in ws.tasks]
    best: tuple[float, float, str] | None = None
    for m in ws.models:
        if not all(m.name in r for r in rates):
            continue
        quality = sum(s * r[m.name] for s, r in zip(shares, rates, strict=True))
        cost = sum(
            s * (t.tokens_in.expected * m.price_in + t.tokens_out.expected * m.output_ratio * m.price_out) / k
            for s, t in zip(shares, ws.tasks, strict=True)
        )
        key = (-round(quality, 12), cost, m.name)
        if best is None or key < best:
            best = key
    return best[2] if best else None


def compile_worksheet(ws: Worksheet, include_strongest: bool = True) -> RoutingProblem:
    """Worksheet -> RoutingProblem with the worksheet's policies, then the all-to-strongest baseline."""
    extra = []
    strongest = strongest_model(ws) if include_strongest else None
    if strongest is not None:
        extra.append(static_policy(STRONGEST, {t.name: strongest for t in ws.tasks}))
    return RoutingProblem(
        models=model_table(ws),
        tasks=task_table(ws),
        chains=chain_table(ws, extra),
        outcomes=outcome_states(ws),
        bill_failed_input=ws.defaults.bill_failed_input,
        requests_per_month=ws.volume.per_month,
        currency=ws.currency,
    )


def direct_variants(ws: Worksheet, problem: RoutingProblem) -> RoutingProblem:
    """For each cascade policy, the same policy with every category sent straight to its last model.

    The engines evaluate these next to the cascades for the "is the cascade worth it?" advisory.
    """
    extra = [
        static_policy(pol.name, {c: steps[-1].model for c, steps in pol.routes.items()})
        for pol in ws.policies
        if pol.kind == "cascade"
    ]
    chains = chain_table(ws.model_copy(update={"policies": []}), extra)
    return problem.with_chains(chains)
