"""A month, not a mean: run the time engine on a worksheet's policy and summarise it (``routecalc simulate``).

Compiles the worksheet's ``volume.profile`` and ``operations`` section into the time engine's inputs
(:mod:`routecalc.engine.timeline`), runs the month, and, for each time effect that is on, the same month with that
effect off (same seed: the same requests, outages and uniforms, so the difference is the effect's, not noise).
The summary is what the report shows: a row per day, month totals, and what each effect did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from routecalc._version import __version__
from routecalc.chains import RoutingProblem, compile_worksheet
from routecalc.engine.ev import Metrics, expected_values
from routecalc.engine.histogram import hist_quantiles, relative_error
from routecalc.engine.timeline import (
    DAY_S,
    HOUR_S,
    BreakerSpec,
    BudgetSpec,
    Clock,
    Effects,
    LimitSpec,
    LoadSpec,
    OutageSpec,
    Timeline,
    budget_checks,
    expected_arrivals,
    pro_rated,
    run_timelines,
    shape_weights,
)
from routecalc.engine.walk import DOWN_5XX, DOWN_429, DOWN_TIMEOUT
from routecalc.errors import InputError, PolicyError
from routecalc.results import jsonable
from routecalc.worksheet import DAYS_PER_MONTH, Worksheet

SCHEMA_VERSION = 1
DEFAULT_DAYS = 30
DEFAULT_BUCKET_S = 60.0
MAX_DAYS = 366
SPILL_START_SHARE = 0.01  # "spill starts at": the first hour of day with at least this share of requests spilled
OUTAGE_CODES = {"timeout": DOWN_TIMEOUT, "5xx": DOWN_5XX, "429": DOWN_429}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---------------------------------------------------------------------------------------------------------
# Worksheet -> engine inputs


def month_clock(ws: Worksheet, days: int, bucket_s: float, weekday0: int) -> Clock:
    """Expected arrivals per bucket from ``volume`` (per day = per month / 30.4167) and its profile."""
    prof = ws.volume.profile
    per_day = ws.volume.per_month / DAYS_PER_MONTH
    if prof is None:
        return expected_arrivals(per_day, days, bucket_s)
    return expected_arrivals(
        per_day,
        days,
        bucket_s,
        hourly=np.array(prof.hourly) if prof.hourly is not None else None,
        weekly=np.array(prof.weekly) if prof.weekly is not None else None,
        growth_per_month=prof.growth_per_month,
        spikes={s.day: s.factor for s in prof.spikes},
        weekday0=weekday0,
    )


def compile_effects(ws: Worksheet, problem: RoutingProblem, days: int, weekday0: int) -> tuple[Effects, list[str]]:
    """The worksheet's ``operations`` as the time engine's effects (catalog and policy indices), and warnings."""
    ops = ws.operations
    if ops is None:
        return Effects(), []
    names = problem.models.names
    M = len(names)
    catalog = {m.name: i for i, m in enumerate(ws.models)}
    warnings: list[str] = []
    outages = []
    for o in ops.outages:
        models = (
            (catalog[o.model],)
            if o.model is not None
            else tuple(i for m, i in catalog.items() if ws.model(m).provider == o.provider)
        )
        start = np.nan
        if o.day is not None:
            start = (o.day - 1) * DAY_S + (o.start_hour or 0.0) * HOUR_S
            if start >= days * DAY_S:
                warnings.append(f"the outage scheduled on day {o.day} falls after the {days} simulated days")
        per_day = (o.incidents_per_month or 0.0) / DAYS_PER_MONTH
        outages.append(
            OutageSpec(models, per_day, start, o.duration_min.mu, o.duration_min.sigma, OUTAGE_CODES[o.error])
        )
    breaker = None
    if ops.breaker is not None:
        b = ops.breaker
        listed = np.zeros(M, dtype=bool)
        for m in b.models if b.models is not None else [m.name for m in ws.models]:
            listed[names.index(m)] = True
        k = b.allowed_fails if b.allowed_fails is not None else ws.defaults.allowed_fails
        cool = b.cooldown_s if b.cooldown_s is not None else ws.defaults.cooldown_s
        assert k is not None and cool is not None  # validated
        breaker = BreakerSpec(listed, int(k), float(b.window_s), float(cool), b.after_cooldown == "probe")
    limits = None
    if ops.rate_limits is not None:
        rpm, tpm = np.full(M, np.inf), np.full(M, np.inf)
        for i, m in enumerate(ws.models):
            rpm[i] = m.rpm if m.rpm is not None else np.inf
            tpm[i] = m.tpm if m.tpm is not None else np.inf
        limits = LimitSpec(rpm, tpm, ops.rate_limits.on_limit == "queue")
    cats = list(problem.tasks.names)
    in_cats = lambda chosen: np.isin(np.array(cats), chosen)
    budget = None
    if ops.budget is not None:
        bu = ops.budget
        period = DAY_S if bu.daily is not None else DAYS_PER_MONTH * DAY_S
        amount = float(bu.daily if bu.daily is not None else bu.monthly)  # type: ignore[arg-type]
        shape = pace_shape(ws, days, period, weekday0) if bu.pace == "profile" else None
        check_t, pace, reset = budget_checks(days, amount, period, bu.check_every_min * 60.0, shape)
        budget = BudgetSpec(
            _policy(problem, bu.policy), in_cats(bu.categories), check_t, pace, reset, bu.downgrade_above, bu.resume,
            amount, period, shape,
        )  # fmt: skip
    load = None
    if ops.load_routing is not None:
        lr = ops.load_routing
        load = LoadSpec(_policy(problem, lr.policy), in_cats(lr.categories), float(lr.above_rpm))
    return Effects(tuple(outages), breaker, limits, budget, load), warnings


def pace_shape(ws: Worksheet, days: int, period_s: float, weekday0: int) -> np.ndarray | None:
    """Hourly weights (the profile's hourly x weekly shape, no growth or spikes) over every budget period that
    starts within ``days``; None without a profile (then pacing by profile is linear)."""
    prof = ws.volume.profile
    if prof is None or (prof.hourly is None and prof.weekly is None):
        return None
    hours = int(np.ceil(np.ceil(days * DAY_S / period_s) * period_s / HOUR_S)) + 1
    t = (np.arange(hours) + 0.5) * HOUR_S
    hourly = np.array(prof.hourly) if prof.hourly is not None else None
    weekly = np.array(prof.weekly) if prof.weekly is not None else None
    return shape_weights(t, hourly, weekly, weekday0)


def _policy(problem: RoutingProblem, name: str) -> int:
    try:
        return problem.chains.names.index(name)
    except ValueError:
        raise PolicyError(f"unknown policy {name!r} (worksheet has: {', '.join(problem.chains.names)})") from None


# ---------------------------------------------------------------------------------------------------------
# Summaries


@dataclass(frozen=True)
class Period:
    """One day, or the whole simulated period: counts, money (worksheet currency), rates, seconds."""

    requests: int
    spend: float
    budget: float | None  # the pro-rated budget for the period (None: no budget rule)
    quality: float  # share delivered with a good answer (human review counts as good)
    failed: float  # share with no answer
    latency_mean_s: float
    p95_s: float
    p99_s: float
    breaker_open_min: float
    spilled: float  # share that skipped a model at its rate limit
    queued: float  # share that waited for a rate limit (queue mode)
    downgraded: float  # share on the budget rule's routes
    load_routed: float  # share on the load rule's routes
    fell_back: float  # share that abandoned a step (failures, breaker, limits)
    outage_failed: int  # requests failed while some model was down
    outage_timeouts: int  # tries that timed out on a down model


@dataclass(frozen=True)
class DayRow(Period):
    day: int = 0  # 1 = the first
    date: str | None = None  # ISO date with --start
    weekday: str = ""


def _period(tl: Timeline, hours: slice, budget: float | None, open_min: float) -> dict[str, Any]:
    h = {k: float(v[hours].sum()) for k, v in tl.hourly.items()}
    n = h["requests"]
    share = lambda k: h[k] / n if n else float("nan")
    return {
        "requests": int(n),
        "spend": h["spend"],
        "budget": budget,
        "quality": share("good") + share("human") if n else float("nan"),
        "failed": share("failed"),
        "latency_mean_s": share("latency"),
        "spilled": share("spilled"),
        "queued": share("queued"),
        "downgraded": share("downgraded"),
        "load_routed": share("load_routed"),
        "fell_back": share("fell_back"),
        "outage_failed": int(h["outage_failed"]),
        "outage_timeouts": int(h["outage_timeouts"]),
        "breaker_open_min": open_min,
    }


def breaker_open_minutes(tl: Timeline, lo_s: float, hi_s: float) -> float:
    """Minutes in ``[lo_s, hi_s)`` during which some model's breaker was open (union over models, each counted)."""
    total = 0.0
    by_model: dict[int, list[tuple[float, float]]] = {}
    for m, start, end in tl.breaker_open:
        by_model.setdefault(int(m), []).append((float(start), float(end)))
    for spans in by_model.values():
        total += _union_length(spans, lo_s, hi_s)
    return total / 60.0


def _union_length(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    out, end = 0.0, -np.inf
    for s, e in sorted(spans):
        s, e = max(s, lo, end), min(e, hi)
        if e > s:
            out += e - s
            end = e
    return out


@dataclass(frozen=True)
class Effect:
    """What one time effect did: the month with it against the same month without it (common random numbers)."""

    name: str
    on: Period
    off: Period
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MonthResult:
    worksheet: str
    policy: str
    currency: str
    days: int
    seed: int
    bucket_s: float
    start: str | None  # ISO date of day 1 (None: day 1 is a Monday, no dates)
    weekday0: int
    requests_per_month: float
    expected_requests: float  # expected arrivals over the simulated days (profile included)
    ev: dict[str, float]  # the per-request engines' means for the policy, no time effects (per request)
    total: Period
    days_rows: list[DayRow]
    effects: list[Effect]
    outages: list[dict[str, Any]]
    warnings: list[str]
    hist_rel_error: float
    engine: str
    walks: int
    effects_on: dict[str, bool]  # breaker, limits, budget, load: switched on in the worksheet
    queue: bool  # rate limits queue (True) or spill
    timeline: Timeline = field(repr=False)
    off: dict[str, Timeline] = field(repr=False, default_factory=dict)
    budget_daily: np.ndarray | None = field(repr=False, default=None)
    budget_spec: BudgetSpec | None = field(repr=False, default=None)
    model_names: tuple[str, ...] = ()

    def effect(self, name: str) -> Effect | None:
        return next((e for e in self.effects if e.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; units in key names or documented here: money in ``currency``, ``_s`` seconds, shares."""
        out = {
            "routecalc_version": __version__,
            "worksheet": self.worksheet,
            "policy": self.policy,
            "currency": self.currency,
            "days": self.days,
            "seed": self.seed,
            "bucket_s": self.bucket_s,
            "start": self.start,
            "requests_per_month": self.requests_per_month,
            "expected_requests": self.expected_requests,
            "expected_values_per_request": self.ev,
            "total": asdict(self.total),
            "daily": [asdict(d) for d in self.days_rows],
            "effects": [asdict(e) for e in self.effects],
            "effects_on": self.effects_on,
            "rate_limits_queue": self.queue,
            "outages": self.outages,
            "hourly": {k: v.tolist() for k, v in self.timeline.hourly.items()},
            "warnings": self.warnings,
            "percentile_histogram_relative_error": self.hist_rel_error,
        }
        return jsonable(out)


def _quantiles(tl: Timeline, days: slice) -> tuple[float, float]:
    h = tl.hist[days].sum(axis=0)
    p95, p99 = hist_quantiles(h, [0.95, 0.99], tl.bins_per_decade)
    return float(p95), float(p99)


def summarize_period(tl: Timeline, days: slice, budget: float | None) -> Period:
    lo, hi = days.start or 0, days.stop if days.stop is not None else tl.days
    p95, p99 = _quantiles(tl, slice(lo, hi))
    base = _period(tl, slice(lo * 24, hi * 24), budget, breaker_open_minutes(tl, lo * DAY_S, hi * DAY_S))
    return Period(**base, p95_s=p95, p99_s=p99)


def spill_start_hour(tl: Timeline) -> int | None:
    """The first hour of day (0-23) in which at least 1 % of the requests spilled (or queued), over the month."""
    H = tl.days * 24
    req = tl.hourly["requests"][:H].reshape(-1, 24).sum(axis=0)
    hit = (tl.hourly["spilled"] + tl.hourly["queued"])[:H].reshape(-1, 24).sum(axis=0)
    share = np.divide(hit, req, out=np.zeros(24), where=req > 0)
    above = np.flatnonzero(share >= SPILL_START_SHARE)
    if above.size:
        return int(above[0])
    some = np.flatnonzero(hit > 0)
    return int(some[0]) if some.size else None


def simulate_month(
    ws: Worksheet,
    policy: str,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    bucket_s: float = DEFAULT_BUCKET_S,
    start: dt.date | None = None,
    compare_effects: bool = True,
    engine: str = "auto",
    problem: RoutingProblem | None = None,
) -> MonthResult:
    """Simulate ``days`` of ``policy`` on ``ws`` (and, with ``compare_effects``, the same days with each time
    effect off) and summarise. ``start`` dates the days (and sets day 1's weekday; default a Monday)."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"--days must be between 1 and {MAX_DAYS}")
    if bucket_s <= 0 or HOUR_S % bucket_s:
        raise InputError(f"--bucket-s must divide an hour (e.g. 15, 30, 60, 300, 900), not {bucket_s:g}")
    problem = problem if problem is not None else compile_worksheet(ws)
    p = _policy(problem, policy)
    weekday0 = start.weekday() if start is not None else 0
    clock = month_clock(ws, days, bucket_s, weekday0)
    effects, warnings = compile_effects(ws, problem, days, weekday0)
    warnings += _route_warnings(problem, p, effects)
    names = [n for n in ("breaker", "limits", "budget", "load") if compare_effects and getattr(effects, n) is not None]
    runs = run_timelines(problem, p, clock, [effects, *(effects.without(n) for n in names)], seed, engine)
    tl = runs[0]
    off: dict[str, Timeline] = dict(zip(names, runs[1:], strict=True))
    ev = expected_values(problem)
    budget_daily = _daily_budget(effects.budget, days) if effects.budget is not None else None
    rows = []
    for d in range(days):
        base = summarize_period(tl, slice(d, d + 1), None if budget_daily is None else float(budget_daily[d]))
        date = start + dt.timedelta(days=d) if start is not None else None
        rows.append(
            DayRow(
                **asdict(base),
                day=d + 1,
                date=date.isoformat() if date else None,
                weekday=WEEKDAYS[(weekday0 + d) % 7],
            )
        )
    total = summarize_period(tl, slice(0, days), None if budget_daily is None else float(budget_daily.sum()))
    eff = []
    for name, other in off.items():
        notes = _notes(name, tl, other, effects, problem)
        eff.append(Effect(name, total, summarize_period(other, slice(0, days), total.budget), notes))
    return MonthResult(
        worksheet=ws.name,
        policy=policy,
        currency=ws.currency,
        days=days,
        seed=seed,
        bucket_s=bucket_s,
        start=start.isoformat() if start else None,
        weekday0=weekday0,
        requests_per_month=ws.volume.per_month,
        expected_requests=float(clock.expected.sum()),
        ev=_ev_means(problem, ev, p),
        total=total,
        days_rows=rows,
        effects=eff,
        outages=_outage_rows(tl, problem.models.names, start),
        warnings=warnings,
        hist_rel_error=relative_error(tl.bins_per_decade),
        engine=tl.engine,
        walks=tl.walks,
        effects_on={name: getattr(effects, name) is not None for name in ("breaker", "limits", "budget", "load")},
        queue=effects.limits is not None and effects.limits.queue,
        timeline=tl,
        off=off,
        budget_daily=budget_daily,
        budget_spec=effects.budget,
        model_names=problem.models.names,
    )


def _daily_budget(b: BudgetSpec, days: int) -> np.ndarray:
    """Each day's share of the budget: the pro-rated budget at its end minus at its start."""
    edges = pro_rated(np.arange(days + 1) * DAY_S, b.budget, b.period_s, b.shape)
    return np.diff(edges)


def _notes(name: str, on: Timeline, off: Timeline, fx: Effects, problem: RoutingProblem) -> dict[str, Any]:
    """Effect-specific figures beyond the period summaries."""
    if name == "breaker":
        return {
            "openings": len(on.breaker_open),
            "requests_skipping_a_model": int(on.total("breaker_skipped")),
            "timeouts_paid_on": int(on.total("outage_timeouts")),
            "timeouts_paid_off": int(off.total("outage_timeouts")),
            "requests_calling_a_down_model_on": int(on.total("outage_hit")),
            "requests_calling_a_down_model_off": int(off.total("outage_hit")),
        }
    if name == "limits":
        queued = on.total("queued")
        return {
            "start_hour": spill_start_hour(on),
            "minutes_filled": len(on.filled),
            "mean_wait_s": on.total("wait") / queued if queued else 0.0,
        }
    if name == "budget":
        assert fx.budget is not None
        return {
            "days_in_downgrade": int((on.daily("downgraded") > 0).sum()),
            "requests_downgraded": int(on.total("downgraded")),
            "policy": problem.chains.names[fx.budget.policy],
        }
    assert fx.load is not None
    return {
        "requests_load_routed": int(on.total("load_routed")),
        "policy": problem.chains.names[fx.load.policy],
        "above_rpm": fx.load.above_rpm,
    }


def _ev_means(problem: RoutingProblem, ev: Metrics, p: int) -> dict[str, float]:
    w = problem.tasks.share
    return {
        "cost": float(ev.cost[p] @ w),
        "quality": float(ev.quality[p] @ w),
        "failed": float(ev.failed[p] @ w),
        "latency_s": float(ev.latency[p] @ w),
    }


def _outage_rows(tl: Timeline, names: tuple[str, ...], start: dt.date | None) -> list[dict[str, Any]]:
    o = tl.outages
    code = {v: k for k, v in OUTAGE_CODES.items()}
    rows = []
    for i in np.argsort(o.start, kind="stable"):
        rows.append(
            {
                "model": names[int(o.model[i])],
                "day": int(o.start[i] // DAY_S) + 1,
                "start_s": float(o.start[i]),
                "minutes": float((o.end[i] - o.start[i]) / 60.0),
                "error": code[int(o.code[i])],
            }
        )
    return rows


def _route_warnings(problem: RoutingProblem, p: int, effects: Effects) -> list[str]:
    ch = problem.chains
    used = [p] + [s.policy for s in (effects.budget, effects.load) if s is not None]
    out = []
    if (ch.hedge[used] >= 0).any():
        out.append("Hedged steps are not affected by outages, circuit breakers or rate limits in this simulation.")
    human = ch.human_cost[used]
    if len(set(human.tolist())) > 1:
        out.append(f"Human review is paid at {ch.names[p]}'s cost on every route the simulation switches to.")
    return out
