"""What the time engine simulates: traffic per bucket, the time effects, and what a run returns.

Plain arrays and frozen dataclasses, built from a worksheet by :mod:`routecalc.month`; the engine is
:mod:`routecalc.engine.timeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

DAY_S = 86400.0
HOUR_S = 3600.0
MONTH_DAYS = 365 / 12


# ---------------------------------------------------------------------------------------------------------
# What to simulate


@dataclass(frozen=True, eq=False)
class Clock:
    """Expected arrivals per bucket ``(B,)`` of ``bucket_s`` seconds, from the start of day 1."""

    expected: np.ndarray
    bucket_s: float

    @property
    def days(self) -> float:
        return self.expected.size * self.bucket_s / DAY_S


def expected_arrivals(
    per_day: float,
    days: int,
    bucket_s: float,
    hourly: np.ndarray | None = None,
    weekly: np.ndarray | None = None,
    growth_per_month: float = 0.0,
    spikes: dict[int, float] | None = None,
    weekday0: int = 0,
) -> Clock:
    """Expected requests per bucket: ``per_day`` on an average day of the week, shaped by the relative
    ``hourly`` (24, hour of day) and ``weekly`` (7, Monday first; day 1 is weekday ``weekday0``) weights (each
    normalised to mean 1), compounded by ``(1 + growth_per_month) ^ (t / month)`` and multiplied on spike days
    (``{day: factor}``, day 1 = the first). ``bucket_s`` must divide an hour."""
    if bucket_s <= 0 or HOUR_S % bucket_s:
        raise ValueError("bucket_s must divide an hour (e.g. 15, 30, 60, 300, 900)")
    B = round(days * DAY_S / bucket_s)
    t = (np.arange(B) + 0.5) * bucket_s  # bucket midpoints
    day = (t // DAY_S).astype(np.int64)
    w = np.full(B, per_day * bucket_s / DAY_S)
    w *= shape_weights(t, hourly, weekly, weekday0)
    if growth_per_month:
        w *= (1.0 + growth_per_month) ** (t / (MONTH_DAYS * DAY_S))
    for d, factor in (spikes or {}).items():
        w[day == d - 1] *= factor
    return Clock(w, float(bucket_s))


def shape_weights(t: np.ndarray, hourly: np.ndarray | None, weekly: np.ndarray | None, weekday0: int = 0) -> np.ndarray:
    """The profile's hourly x weekly weight at times ``t`` (seconds), each normalised to mean 1."""
    w = np.ones(t.shape)
    if hourly is not None:
        h = np.asarray(hourly, dtype=float)
        w *= (h / h.mean())[(t // HOUR_S).astype(np.int64) % 24]
    if weekly is not None:
        k = np.asarray(weekly, dtype=float)
        w *= (k / k.mean())[((t // DAY_S).astype(np.int64) + weekday0) % 7]
    return w


@dataclass(frozen=True)
class OutageSpec:
    """Incidents on catalog entries ``models``: random (``per_day`` expected, uniform start) or scheduled at
    ``start_s``; duration lognormal in minutes (``sigma`` 0: fixed); every try fails with mask ``code``."""

    models: tuple[int, ...]
    per_day: float
    start_s: float  # nan: random
    mu: float
    sigma: float
    code: int


@dataclass(frozen=True)
class BreakerSpec:
    models: np.ndarray  # (M,) bool
    allowed_fails: int
    window_s: float
    cooldown_s: float
    probe: bool  # after the cool-down: probe (True) or reset (LiteLLM)


@dataclass(frozen=True)
class LimitSpec:
    rpm: np.ndarray  # (M,) calls per minute (inf: none)
    tpm: np.ndarray  # (M,) tokens per minute (inf: none)
    queue: bool  # False: spill


@dataclass(frozen=True)
class BudgetSpec:
    """Budget rule: ``categories`` (C,) take policy ``policy``'s routes while over pace. Checks at ``check_t``
    (seconds; period starts are checks with ``reset``) compare the spend since the period started with
    ``pace`` (the pro-rated budget at that check)."""

    policy: int
    categories: np.ndarray
    check_t: np.ndarray
    pace: np.ndarray
    reset: np.ndarray
    above: float
    resume: float
    budget: float  # per period, for the report
    period_s: float
    shape: np.ndarray | None = None  # pacing weights per hour (pro_rated), None: linear


@dataclass(frozen=True)
class LoadSpec:
    policy: int
    categories: np.ndarray  # (C,) bool
    above_rpm: float


@dataclass(frozen=True)
class Effects:
    """The time effects of a run; ``None`` / empty: off."""

    outages: tuple[OutageSpec, ...] = ()
    breaker: BreakerSpec | None = None
    limits: LimitSpec | None = None
    budget: BudgetSpec | None = None
    load: LoadSpec | None = None

    def without(self, *names: str) -> Effects:
        return replace(self, **{n: () if n == "outages" else None for n in names})


def pro_rated(
    t: np.ndarray, budget: float, period_s: float, shape: np.ndarray | None = None, shape_step_s: float = HOUR_S
) -> np.ndarray:
    """The budget pro-rated from the start of each time's period to the time: linearly, or, with ``shape``
    (relative weights per ``shape_step_s`` from the start, covering every period that begins before the last
    time), by the share of the period's weight so far. Cumulative over periods: ``budget x (whole periods
    before) +`` the share of the current one."""
    t = np.asarray(t, dtype=float)
    k = np.floor(t / period_s)
    t0 = k * period_s
    if shape is None:
        frac = (t - t0) / period_s
    else:
        cum = np.concatenate(([0.0], np.cumsum(shape)))  # weight at each step boundary
        at = lambda s: np.interp(s / shape_step_s, np.arange(cum.size), cum)
        frac = (at(t) - at(t0)) / (at(t0 + period_s) - at(t0))
    return budget * (k + frac)


def budget_checks(
    days: float,
    budget: float,
    period_s: float,
    check_s: float,
    shape: np.ndarray | None = None,
    shape_step_s: float = HOUR_S,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check times (every ``check_s`` and at every period start, up to ``days``), the pro-rated budget of the
    period at each (:func:`pro_rated`), and which are period starts."""
    end = days * DAY_S
    starts = np.arange(int(np.ceil(end / period_s))) * period_s
    t = np.unique(np.concatenate((np.arange(0.0, end, check_s), starts)))
    t = t[t < end]
    reset = np.isin(t, starts)
    pace = pro_rated(t, budget, period_s, shape, shape_step_s) - budget * np.floor(t / period_s)
    return t, pace, reset


# ---------------------------------------------------------------------------------------------------------
# What a run returns

COUNTS = ("requests", "good", "bad", "failed", "human", "fell_back", "downgraded", "load_routed", "breaker_skipped",
          "spilled", "queued", "during_outage", "outage_hit", "outage_failed", "outage_timeouts")  # fmt: skip
SUMS = ("spend", "latency", "wait")


@dataclass(frozen=True, eq=False)
class Outages:
    """Drawn outage windows: the spec each came from, catalog entry, start and end (seconds), mask code."""

    spec: np.ndarray
    model: np.ndarray
    start: np.ndarray
    end: np.ndarray
    code: np.ndarray

    def active(self, t: np.ndarray) -> np.ndarray:
        """Whether any window covers each time."""
        out = np.zeros(t.shape, dtype=bool)
        for s, e in zip(self.start, self.end, strict=True):
            out |= (t >= s) & (t < e)
        return out


@dataclass(frozen=True, eq=False)
class Timeline:
    """A simulated period. Per hour of the simulation ``(H,)``: counts (``COUNTS``: requests; outcomes; requests
    that fell back, took the budget or load route, skipped a model whose breaker was open, spilled at a rate
    limit, queued; arrived during an outage, called a down model, failed during one; timeouts paid to down
    models) and sums (``SUMS``: spend in the worksheet currency, latency and queue wait in seconds). Latency
    histograms per day ``(D, bins)`` (failed requests included). Totals of squares for MC errors."""

    bucket_s: float
    arrivals: np.ndarray  # (B,) requests per bucket
    expected: np.ndarray  # (B,) expected requests per bucket
    hourly: dict[str, np.ndarray]
    hist: np.ndarray
    bins_per_decade: int
    cost2: float
    latency2: float
    outages: Outages
    breaker_open: np.ndarray  # (k, 3): catalog entry, from, until (s) of every breaker opening
    filled: np.ndarray  # (k, 2): catalog entry, clock minute of every rate-limit minute that filled up
    budget_t: np.ndarray  # (N,) check times (s)
    budget_spend: np.ndarray  # (N,) spend in the period at each check
    budget_pace: np.ndarray  # (N,) pro-rated budget at each check
    budget_on: np.ndarray  # (N,) bool verdict from each check on
    walks: int  # blocks walked (accepted or not): the cost of the state changes
    engine: str

    @property
    def days(self) -> int:
        return round(self.arrivals.size * self.bucket_s / DAY_S)

    def total(self, name: str) -> float:
        return float(self.hourly[name].sum())

    def daily(self, name: str) -> np.ndarray:
        v = self.hourly[name]
        return v[: self.days * 24].reshape(self.days, 24).sum(axis=1)


def draw_outages(specs: tuple[OutageSpec, ...], days: float, rng: np.random.Generator) -> Outages:
    """Every spec's incidents, one window per affected catalog entry: random ones ~ Poisson(per_day x days) with
    uniform starts, scheduled ones at their start; durations lognormal (minutes)."""
    rows: list[tuple[int, int, float, float, int]] = []
    end = days * DAY_S
    for i, o in enumerate(specs):
        if np.isnan(o.start_s):
            n = int(rng.poisson(o.per_day * days))
            starts = np.sort(rng.random(n)) * end
        else:
            starts = np.array([o.start_s])
        minutes = np.exp(o.mu + o.sigma * rng.standard_normal(starts.size))
        for s, d in zip(starts, minutes, strict=True):
            if s < end:  # a scheduled outage after the simulated days does not happen in them
                rows += [(i, m, float(s), float(s + 60.0 * d), o.code) for m in o.models]
    a = np.array(rows, dtype=float).reshape(-1, 5)
    return Outages(
        spec=a[:, 0].astype(np.int64),
        model=a[:, 1].astype(np.int64),
        start=a[:, 2],
        end=a[:, 3],
        code=a[:, 4].astype(np.int8),
    )
