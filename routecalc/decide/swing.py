"""What a sensitivity analysis swings, and how: the inputs of a worksheet, set on the worksheet itself (the
reference) or as rows of a batched expected-value run (:class:`Evaluator`, the fast path).

See :mod:`routecalc.decide.sensitivity` for the analysis built on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from routecalc.chains import RoutingProblem, compile_worksheet, price_row
from routecalc.decide.uncertainty import CATCH, CONDITIONAL, FALSE_REJECT, PASS, Draws, Plan, draw_metrics
from routecalc.engine.ev import expected_values, needs_latency_law
from routecalc.format import money, pct, seconds
from routecalc.outcomes import LATENT, PANEL_NODES
from routecalc.routes import MIN_OVERFLOW
from routecalc.worksheet import Worksheet
from routecalc.worksheet.schema import (
    MAX_CORRELATION,
    Band,
    CatchRate,
    FalseRejectRate,
    PassRate,
    Pattern,
    conditional_range,
)

SCALE_MAX = 10.0  # unbounded inputs (prices, tokens, latency, validator cost) are searched up to 10 x today
SCALE_MIN = 0.01  # ... and down to 1 % of today for tokens and latency (0 would be no request at all)
MAX_FAILURE = 0.999  # a failure rate must stay below 1

# input kinds
PRICE_IN, PRICE_OUT, PRICE_CACHE = "price_in", "price_out", "price_cache"
FAILURE, LATENCY = "failure_rate", "latency"
SHARE, TOKENS_IN, TOKENS_OUT = "traffic_share", "tokens_in", "tokens_out"
PASS_RATE, TIER_PASS_RATE, CORRELATION, CONDITIONAL_RATE = "pass_rate", "tier_pass_rate", "correlation", "conditional"
CATCH_RATE, FALSE_REJECT_RATE, GATE_COST, GATE_LATENCY = "catch", "false_reject", "validator_cost", "validator_latency"


@dataclass(frozen=True)
class Input:
    """One estimated input: where it is, today's value and the range it may take (searched for break-evens).

    ``value`` is in ``unit``: prices in the worksheet's currency per price unit, rates and shares as fractions,
    tokens as the band's mean (a swing scales the whole band), latency and validator cost as a factor of today
    (1.0), validator latency in seconds.
    """

    key: str
    label: str
    path: str
    kind: str
    unit: str
    value: float
    low: float
    high: float
    model: str | None = None
    category: str | None = None
    tier: str | None = None
    batched: bool = True  # False: evaluated on the re-compiled worksheet (see module docstring)
    batch_max: float = math.inf  # values above it are evaluated on the re-compiled worksheet too

    def batches(self, v: float) -> bool:
        """Whether the engine's batched arrays can express this input at ``v``."""
        return self.batched and v <= self.batch_max

    def swung(self, swing: float) -> tuple[float, float]:
        """Today's value moved down and up by ``swing`` (relative), clipped to the valid range."""
        lo = min(max(self.value * (1 - swing), self.low), self.high)
        hi = min(max(self.value * (1 + swing), self.low), self.high)
        return lo, hi

    def short(self, v: float, currency: str) -> str:
        """:meth:`text`, short: prices as ``$2.00/1M`` (tokens)."""
        if self.kind in (PRICE_IN, PRICE_OUT, PRICE_CACHE):
            return f"{money(v, currency)}/{self.unit.split(' per ')[1].split(' ')[0]}"
        return self.text(v, currency)

    def text(self, v: float, currency: str) -> str:
        """A value of this input with its unit, e.g. ``$2.00 per 1M tokens``, ``71.23%``, ``×1.37``."""
        if self.kind in (PRICE_IN, PRICE_OUT, PRICE_CACHE):
            return f"{money(v, currency)} {self.unit.split(' ', 1)[1]}"
        if self.kind in (TOKENS_IN, TOKENS_OUT):
            return f"{v:,.0f} tokens"
        if self.kind in (LATENCY, GATE_COST):
            return f"×{v:.3g}"
        if self.kind == GATE_LATENCY:
            return seconds(v)
        if self.kind == CORRELATION:
            return f"rho {v:.3f}"
        return pct(v, 2)


def _used(problem: RoutingProblem) -> tuple[np.ndarray, np.ndarray]:
    """``(C, M)`` catalog entries some policy calls in each category; ``(C,)`` categories some policy gates."""
    ch = problem.chains
    C, M = problem.tasks.pass_rate.shape
    used = np.zeros((C, M), dtype=bool)
    for model in (ch.model, ch.hedge):
        p, c, lane, s = np.nonzero(model >= 0)
        used[c, model[p, c, lane, s]] = True
    gated = ((ch.model >= 0) & ch.gated).any(axis=(0, 2, 3))
    return used, gated


def _one_segment_up_to(ws: Worksheet, band: Band) -> float:
    """The largest factor on a category's input tokens at which no context window is modelled yet
    (:func:`routecalc.routes.modelled_windows`: exceeded at least 1 in 10^6 times): up to it the token band stays
    one segment and the engine can batch the swing; beyond it the worksheet is re-compiled (segments appear)."""
    windows = [float(m.context_window) for m in ws.models if m.context_window is not None]
    if not windows:
        return math.inf
    if band.sigma == 0:  # a fixed count exceeds a window only when it is above it
        return min(windows) / band.expected
    z = NormalDist().inv_cdf(1 - MIN_OVERFLOW)
    return math.exp(math.log(min(windows)) - band.mu - z * band.sigma) * (1 - 1e-9)


def inputs_of(ws: Worksheet, problem: RoutingProblem) -> list[Input]:
    """Every input of ``ws`` that some policy of ``problem`` depends on, in worksheet order."""
    per = "1M" if ws.price_unit == "per_1m" else "1K"
    price_unit = f"{ws.currency} per {per} tokens"
    law = needs_latency_law(problem)
    used, gated = _used(problem)
    out: list[Input] = []

    def add(key: str, label: str, path: str, kind: str, unit: str, v: float, lo: float, hi: float, **kw: Any) -> None:
        out.append(Input(f"{kind}/{key}", label, path, kind, unit, float(v), float(lo), float(hi), **kw))

    cached = any(t.cached_share > 0 for t in ws.tasks)
    for i, m in enumerate(ws.models):
        if not used[:, i].any():
            continue
        at, name = f"models[{i}]", m.name
        prices = [(PRICE_IN, "input price", m.price_in), (PRICE_OUT, "output price", m.price_out)]
        if m.price_cache is not None and cached:
            prices.append((PRICE_CACHE, "cached-input price", m.price_cache))
        for kind, what, v in prices:
            add(name, f"{name} {what}", f"{at}.{kind}", kind, price_unit, v, 0, SCALE_MAX * v, model=name)
        add(
            name,
            f"{name} failure rate",
            f"{at}.failure_rate",
            FAILURE,
            "fraction",
            m.failure_rate,
            0,
            MAX_FAILURE,
            model=name,
            batched=not law,
        )
        what = "end-to-end latency" if m.latency.e2e_s is not None else "latency (TTFT and time per token)"
        add(
            name,
            f"{name} {what}",
            f"{at}.latency",
            LATENCY,
            "× today",
            1,
            SCALE_MIN,
            SCALE_MAX,
            model=name,
            batched=not law,
        )
    shares = ws.shares
    for c, t in enumerate(ws.tasks):
        at, cat = f"tasks[{c}]", t.name
        if sum(shares) - shares[c] > 0:
            add(cat, f"{cat} traffic share", f"{at}.traffic_share", SHARE, "fraction", shares[c], 0, 1, category=cat)
        for kind, band, batched in (
            (TOKENS_IN, t.tokens_in, problem.segments.trivial),
            (TOKENS_OUT, t.tokens_out, not law),
        ):
            mean = band.expected
            if mean > 0:
                what = "input" if kind == TOKENS_IN else "output"
                add(
                    cat,
                    f"{cat} mean {what} tokens",
                    f"{at}.{kind}",
                    kind,
                    "tokens",
                    mean,
                    SCALE_MIN * mean,
                    SCALE_MAX * mean,
                    category=cat,
                    batched=batched,
                    batch_max=mean * _one_segment_up_to(ws, band) if kind == TOKENS_IN else math.inf,
                )
        rates, o = t.rates, t.outcomes
        table = set(o.models or []) if o is not None and o.patterns is not None else set()
        for j, name in enumerate(m.name for m in ws.models):
            if not used[c, j] or name not in rates:
                continue
            for label, tier in (t.tiers or {}).items():
                add(
                    f"{cat}/{label}/{name}",
                    f"{name} pass rate on {cat} (tier {label})",
                    f"{at}.tiers.{label}.pass_rates.{name}",
                    TIER_PASS_RATE,
                    "fraction",
                    tier.pass_rates[name].rate,
                    0,
                    1,
                    model=name,
                    category=cat,
                    tier=label,
                    batched=False,
                )
            if t.tiers is not None or (name in table and not 0 < rates[name] < 1):
                continue  # a table in which the model always (or never) passes has no pattern to move mass from
            path = f"{at}.outcomes.patterns" if name in table else f"{at}.pass_rates.{name}"
            add(
                f"{cat}/{name}",
                f"{name} pass rate on {cat}",
                path,
                PASS_RATE,
                "fraction",
                rates[name],
                0,
                1,
                model=name,
                category=cat,
            )
        if o is not None and o.correlation is not None and o.patterns is None and o.conditional is None:
            add(
                cat,
                f"{cat} correlation (latent difficulty)",
                f"{at}.outcomes.correlation",
                CORRELATION,
                "rho",
                o.correlation,
                0,
                MAX_CORRELATION,
                category=cat,
                batched=o.correlation > 0 and t.tiers is None,
            )
        if o is not None and o.conditional is not None:
            cond = o.conditional
            lo, hi = conditional_range(rates[cond.given_failed], rates[cond.model])
            add(
                cat,
                f"{cond.model} pass rate on {cat} when {cond.given_failed} failed",
                f"{at}.outcomes.conditional.pass_rate",
                CONDITIONAL_RATE,
                "fraction",
                cond.pass_rate.rate,
                lo,
                hi,
                category=cat,
            )
        v = t.validator
        if v is None or not gated[c]:
            continue
        add(
            cat,
            f"{cat} validator catch rate",
            f"{at}.validator.catch",
            CATCH_RATE,
            "fraction",
            v.catch.rate,
            0,
            1,
            category=cat,
        )
        add(
            cat,
            f"{cat} validator false-reject rate",
            f"{at}.validator.false_reject",
            FALSE_REJECT_RATE,
            "fraction",
            v.false_reject.rate,
            0,
            1,
            category=cat,
        )
        if v.cost_per_call > 0 or v.cost_per_1m_tokens > 0:
            add(cat, f"{cat} validator cost", f"{at}.validator", GATE_COST, "× today", 1, 0, SCALE_MAX, category=cat)
        if v.latency_s > 0:
            add(
                cat,
                f"{cat} validator latency",
                f"{at}.validator.latency_s",
                GATE_LATENCY,
                "s",
                v.latency_s,
                0,
                SCALE_MAX * v.latency_s,
                category=cat,
            )
    return out


# ---------------------------------------------------------------------------------------------------------
# The reference path: an input set on the worksheet itself


def _scaled(band: Band, k: float) -> Band:
    if band.mean is not None:
        return band.model_copy(update={"mean": band.mean * k})
    return band.model_copy(update={"p50": float(band.p50 or 0) * k, "p95": float(band.p95 or 0) * k})


def _with_model(ws: Worksheet, name: str, **update: Any) -> Worksheet:
    return ws.model_copy(update={"models": [m.model_copy(update=update) if m.name == name else m for m in ws.models]})


def _with_task(ws: Worksheet, name: str, **update: Any) -> Worksheet:
    return ws.model_copy(update={"tasks": [t.model_copy(update=update) if t.name == name else t for t in ws.tasks]})


def reweighted_table(weights: np.ndarray, passes: np.ndarray, q: float, v: np.ndarray) -> np.ndarray:
    """An outcome table's pattern probabilities with one model's pass rate moved from ``q`` to ``v``: patterns
    where it passes scale by ``v / q``, the others by ``(1 - v) / (1 - q)``, so every pattern keeps its share
    among those where the model passes (or fails). ``weights``, ``passes`` ``(T,)``; ``v`` ``(N,)`` -> ``(N, T)``."""
    v = np.asarray(v, dtype=float)[:, None]
    return weights * np.where(passes, v / q, (1 - v) / (1 - q))


def apply_input(ws: Worksheet, inp: Input, v: float) -> Worksheet:
    """``ws`` with ``inp`` set to ``v`` (as :func:`inputs_of` describes it), in memory and unvalidated.

    The reference semantics of every swing; the batched engine arrays reproduce it exactly.
    """
    v = float(v)
    kind = inp.kind
    if kind in (PRICE_IN, PRICE_OUT, PRICE_CACHE, FAILURE):
        return _with_model(ws, inp.model or "", **{kind: v})
    if kind == LATENCY:
        lat = ws.model(inp.model or "").latency
        if lat.e2e_s is not None:
            lat = lat.model_copy(update={"e2e_s": _scaled(lat.e2e_s, v)})
        else:
            lat = lat.model_copy(update={"ttft_s": _scaled(lat.ttft_s, v), "tpot_s": _scaled(lat.tpot_s, v)})  # type: ignore[arg-type]
        return _with_model(ws, inp.model or "", latency=lat)
    t = next(t for t in ws.tasks if t.name == inp.category)
    if kind == SHARE:
        shares = ws.shares
        c = [x.name for x in ws.tasks].index(t.name)
        rest = sum(shares) - shares[c]
        unit = 100.0 if ws.share_unit == "percent" else 1.0
        new = [v if i == c else s * (1 - v) / rest for i, s in enumerate(shares)]
        return ws.model_copy(
            update={
                "tasks": [x.model_copy(update={"traffic_share": s * unit}) for x, s in zip(ws.tasks, new, strict=True)]
            }
        )
    if kind in (TOKENS_IN, TOKENS_OUT):
        return _with_task(ws, t.name, **{kind: _scaled(getattr(t, kind), v / inp.value)})
    if kind == TIER_PASS_RATE:
        tiers = dict(t.tiers or {})
        tier = tiers[inp.tier or ""]
        rates = {**tier.pass_rates, inp.model or "": PassRate.model_validate(v)}
        tiers[inp.tier or ""] = tier.model_copy(update={"pass_rates": rates})
        return _with_task(ws, t.name, tiers=tiers)
    o = t.outcomes
    if kind == PASS_RATE:
        name = inp.model or ""
        rates = dict(t.pass_rates)
        if name in rates or o is None or o.patterns is None:
            rates[name] = PassRate.model_validate(v)
        update: dict[str, Any] = {"pass_rates": rates}
        if o is not None and o.patterns is not None and name in (o.models or []):
            _, sets, probs = o.table()
            w = reweighted_table(np.array(probs), np.array([name in s for s in sets]), inp.value, np.array([v]))[0]
            pats = [Pattern(passed=sorted(s), p=float(p)) for s, p in zip(sets, w, strict=True)]
            update["outcomes"] = o.model_copy(update={"patterns": pats})
        elif o is not None and o.conditional is not None and name in (o.conditional.model, o.conditional.given_failed):
            cond = o.conditional
            q = {m: r.rate for m, r in rates.items()}
            lo, hi = conditional_range(q[cond.given_failed], q[cond.model])
            r = min(max(cond.pass_rate.rate, lo), hi)  # as the batched path clips a rate the marginals make infeasible
            update["outcomes"] = o.model_copy(
                update={"conditional": cond.model_copy(update={"pass_rate": PassRate.model_validate(r)})}
            )
        return _with_task(ws, t.name, **update)
    if kind == CORRELATION:
        assert o is not None
        return _with_task(ws, t.name, outcomes=o.model_copy(update={"correlation": v}))
    if kind == CONDITIONAL_RATE:
        assert o is not None and o.conditional is not None
        cond = o.conditional.model_copy(update={"pass_rate": PassRate.model_validate(v)})
        return _with_task(ws, t.name, outcomes=o.model_copy(update={"conditional": cond}))
    val = t.validator
    assert val is not None
    if kind == CATCH_RATE:
        val = val.model_copy(update={"catch": CatchRate.model_validate(v)})
    elif kind == FALSE_REJECT_RATE:
        val = val.model_copy(update={"false_reject": FalseRejectRate.model_validate(v)})
    elif kind == GATE_COST:
        val = val.model_copy(
            update={"cost_per_call": val.cost_per_call * v, "cost_per_1m_tokens": val.cost_per_1m_tokens * v}
        )
    elif kind == GATE_LATENCY:
        val = val.model_copy(update={"latency_s": v})
    else:
        raise ValueError(f"unknown input kind {kind!r}")
    return _with_task(ws, t.name, validator=val)


# ---------------------------------------------------------------------------------------------------------
# The batched path


@dataclass(frozen=True, eq=False)
class Evaluated:
    """Per setting ``N``: per-request cost, quality and mean latency ``(N, P, C)``; traffic shares ``(N, C)``."""

    cost: np.ndarray
    quality: np.ndarray
    latency: np.ndarray
    share: np.ndarray

    @property
    def total_cost(self) -> np.ndarray:
        """``(N, P)`` per request, traffic-weighted."""
        return np.einsum("npc,nc->np", self.cost, self.share)

    @property
    def total_quality(self) -> np.ndarray:
        return np.einsum("npc,nc->np", self.quality, self.share)


_MODEL_FIELDS = {PRICE_IN: "price_in", PRICE_OUT: "price_out", PRICE_CACHE: "price_cache", FAILURE: "fail"}


class Evaluator:
    """Evaluate many ``(input, value)`` settings of one worksheet with as few engine passes as possible.

    ``passes`` counts batched engine passes and ``recompiled`` the settings evaluated on a re-compiled worksheet.
    """

    def __init__(self, ws: Worksheet, problem: RoutingProblem, inputs: Sequence[Input], strongest: str | None):
        self.ws, self.problem, self.inputs, self.strongest = ws, problem, list(inputs), strongest
        self.passes = 0
        self.recompiled = 0
        tt, oc = problem.tasks, problem.outcomes
        C = len(tt.names)
        cats = list(tt.names)
        ix = {n: i for i, n in enumerate(problem.models.names)}
        beta: list[tuple[int, int, int, float]] = []  # kind, category, model, today's value
        tables: list[tuple[int, np.ndarray]] = []
        table_cols: dict[int, np.ndarray] = {}
        conditional: dict[int, tuple[int, int, float, int]] = {}
        drawn = np.zeros(C, dtype=bool)
        self._col: dict[str, int] = {}  # input key -> Beta column
        self._table: dict[str, tuple[int, np.ndarray]] = {}  # input key -> (table index, pattern passes)
        for c, t in enumerate(ws.tasks):
            if t.validator is not None:
                self._col[f"{CATCH_RATE}/{t.name}"] = len(beta)
                beta.append((CATCH, c, -1, t.validator.catch.rate))
                self._col[f"{FALSE_REJECT_RATE}/{t.name}"] = len(beta)
                beta.append((FALSE_REJECT, c, -1, t.validator.false_reject.rate))
            if t.tiers is not None:
                continue  # tier rates are applied to the worksheet (per-tier states)
            o = t.outcomes
            in_table = list(o.models or []) if o is not None and o.patterns is not None else []
            for m, r in t.pass_rates.items():
                if m not in in_table:
                    self._col[f"{PASS_RATE}/{t.name}/{m}"] = len(beta)
                    beta.append((PASS, c, ix[m], r.rate))
                    drawn[c] = True
            if in_table:
                assert o is not None
                _, sets, _ = o.table()
                table_cols[c] = np.array([ix[m] for m in in_table], dtype=np.int64)
                w = oc.weight[oc.start[c] : oc.start[c] + oc.count[c]]
                for m in in_table:
                    self._table[f"{PASS_RATE}/{t.name}/{m}"] = (len(tables), np.array([m in s for s in sets]))
                tables.append((c, np.asarray(w, dtype=float)))
                drawn[c] = True
            elif o is not None and o.conditional is not None:
                cond = o.conditional
                self._col[f"{CONDITIONAL_RATE}/{t.name}"] = len(beta)
                conditional[c] = (ix[cond.given_failed], ix[cond.model], cond.pass_rate.rate, len(beta))
                beta.append((CONDITIONAL, c, -1, cond.pass_rate.rate))
                table_cols[c] = np.array([ix[cond.given_failed], ix[cond.model]], dtype=np.int64)
            if oc.kind[c] == LATENT:
                drawn[c] = True
        b = np.array([x[:3] for x in beta], dtype=np.int64).reshape(-1, 3)
        zeros = np.zeros(len(beta))
        self.plan = Plan(
            beta_k=zeros,
            beta_n=zeros,
            beta_kind=b[:, 0],
            beta_cat=b[:, 1],
            beta_model=b[:, 2],
            tables=tuple(tables),
            table_cols=table_cols,
            conditional=conditional,
            states_drawn=drawn,
            eval_size=np.zeros(C, dtype=np.int64),
            counted=(),
            fixed=(),
        )
        self._beta0 = np.array([x[3] for x in beta], dtype=float)
        self._cats = cats
        self.base = self._batched([])  # today's values, through the same arithmetic as every swing

    # one row per setting ---------------------------------------------------------------------------------

    def run(self, settings: Sequence[tuple[int, float]]) -> Evaluated:
        """Metrics of the problem with each ``(input index, value)`` applied alone."""
        N = len(settings)
        P, C = self.problem.chains.shape[:2]
        cost, quality, latency = np.empty((N, P, C)), np.empty((N, P, C)), np.empty((N, P, C))
        share = np.repeat(self.problem.tasks.share[None], N, axis=0)
        kinds = [self.inputs[i].kind for i, _ in settings]
        ok = [self.inputs[i].batches(v) for i, v in settings]
        batch = [n for n in range(N) if ok[n] and kinds[n] not in (SHARE, CORRELATION)]
        rho = [n for n in range(N) if ok[n] and kinds[n] == CORRELATION]
        alone = [n for n in range(N) if not ok[n]]
        shares = [n for n, k in enumerate(kinds) if k == SHARE]
        if batch:
            e = self._batched([settings[n] for n in batch])
            cost[batch], quality[batch], latency[batch] = e.cost, e.quality, e.latency
        for n in shares:  # categories re-weighted, nothing re-estimated
            i, v = settings[n]
            c = self._cats.index(self.inputs[i].category or "")
            s = self.problem.tasks.share
            share[n] = np.where(np.arange(C) == c, v, s * (1 - v) / (s.sum() - s[c]))
            cost[n], quality[n], latency[n] = self.base.cost[0], self.base.quality[0], self.base.latency[0]
        for n in rho:  # the quadrature follows rho: one engine pass per setting
            i, v = settings[n]
            c = self._cats.index(self.inputs[i].category or "")
            oc = self.problem.outcomes
            problem = replace(self.problem, outcomes=replace(oc, rho=np.where(np.arange(C) == c, v, oc.rho)))
            e = self._batched([], problem)
            cost[n], quality[n], latency[n] = e.cost[0], e.quality[0], e.latency[0]
        for n in alone:  # the engine cannot batch this input here: re-compile the worksheet
            i, v = settings[n]
            ws = apply_input(self.ws, self.inputs[i], v)
            problem = compile_worksheet(ws, include_strongest=self.strongest is not None, strongest=self.strongest)
            ev = expected_values(problem)
            cost[n], quality[n], latency[n] = ev.cost, ev.quality, ev.latency
            self.recompiled += 1
        return Evaluated(cost, quality, latency, share)

    def _batched(self, settings: Sequence[tuple[int, float]], problem: RoutingProblem | None = None) -> Evaluated:
        """One batched engine pass over ``settings`` (all batchable; none: one row of today's values)."""
        problem = problem or self.problem
        rows = list(settings) or [(-1, 0.0)]
        N = len(rows)
        idx = np.array([i for i, _ in rows])
        val = np.array([v for _, v in rows], dtype=float)
        kind = np.array([self.inputs[i].kind if i >= 0 else "" for i in idx])
        beta = np.repeat(self._beta0[None], N, axis=0)
        tables = [np.repeat(w[None], N, axis=0) for _, w in self.plan.tables]
        mt, tt = problem.models, problem.tasks
        model_ix = {n: j for j, n in enumerate(mt.names)}
        models: dict[str, np.ndarray] = {}
        tasks: dict[str, np.ndarray] = {}

        def arr(store: dict[str, np.ndarray], table: Any, name: str) -> np.ndarray:
            if name not in store:
                store[name] = np.repeat(getattr(table, name)[None], N, axis=0)
            return store[name]

        for n in range(N):  # one assignment per setting, into arrays that are then evaluated together
            i = int(idx[n])
            if i < 0:
                continue
            inp, v = self.inputs[i], float(val[n])
            m = model_ix.get(inp.model or "", -1)
            c = self._cats.index(inp.category) if inp.category is not None else -1
            if kind[n] == FAILURE:
                arr(models, mt, "fail")[n, m] = v
            elif kind[n] in _MODEL_FIELDS:
                # the model re-priced as the compiler prices it: billed per token net of the provider's discount,
                # with the prices that default to this one (cache, cache write, reasoning), the batch factors
                # against an explicit batch price and the long-context tier
                spec = self.ws.models[m].model_copy(update={_MODEL_FIELDS[kind[n]]: v})
                for col, x in price_row(self.ws, spec).items():
                    arr(models, mt, col)[n, m] = x
            elif kind[n] == LATENCY:
                arr(models, mt, "ttft_mu")[n, m] += math.log(v)
                arr(models, mt, "tpot_mu")[n, m] += math.log(v)
            elif kind[n] in (TOKENS_IN, TOKENS_OUT):
                x = "x" if kind[n] == TOKENS_IN else "y"
                arr(tasks, tt, f"{x}_mean")[n, c] = v
                arr(tasks, tt, f"{x}_mu")[n, c] += math.log(v / inp.value)
            elif kind[n] == GATE_COST:
                arr(tasks, tt, "gate_cost_call")[n, c] *= v
                arr(tasks, tt, "gate_cost_token")[n, c] *= v
            elif kind[n] == GATE_LATENCY:
                arr(tasks, tt, "gate_latency_s")[n, c] = v
            elif inp.key in self._table:
                t, passes = self._table[inp.key]
                tables[t][n] = reweighted_table(self.plan.tables[t][1], passes, inp.value, np.array([v]))[0]
            else:
                beta[n, self._col[inp.key]] = v

        def adjust(batch: RoutingProblem, sl: slice) -> RoutingProblem:
            if models:
                batch = replace(batch, models=replace(batch.models, **{k: a[sl] for k, a in models.items()}))
            if tasks:
                batch = replace(batch, tasks=replace(batch.tasks, **{k: a[sl] for k, a in tasks.items()}))
            return batch

        dm = draw_metrics(problem, self.plan, Draws(beta, tuple(tables)), adjust, PANEL_NODES)
        self.passes += 1
        share = np.repeat(problem.tasks.share[None], N, axis=0)
        return Evaluated(dm.cost_by_category, dm.quality, dm.latency, share)
