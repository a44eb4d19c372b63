"""Worksheet numbers from a request log: traffic shares and volume, token bands, failure rates by error type,
latency, prices and the traffic profile over hours, weekdays and the month. Pure: takes
:class:`~routecalc.data.logs.LogData`, returns frozen dataclasses; YAML is :mod:`routecalc.data.logcal_yaml`.

Choices (README, "Request logs"):

* A row is a **call** (one try of one model). Shares, volume and failure rates count calls; with retries or
  fallbacks in the log, a request that made k calls counts k times (the failed tries are few: the failure rate).
* **Token bands** per category: p50/p95 of successful calls' tokens (exact percentiles of the values, linear
  interpolation as ``numpy.percentile``), 4 significant digits; an aggregated log (OpenAI usage) gives means.
* **Failure rate** per model: provider failures (timeout, 5xx, 429, content filter) / calls; ``errors``: their
  shares by type. Client errors (other 4xx) and untyped failures are counted and reported, not written.
* **Latency** per model from successful calls: ``ttft_s`` and ``tpot_s`` bands when at least half of them have a
  first-token time (streaming), else ``e2e_s``; ``timeout_s`` and ``error_latency_s`` are the medians of timeouts'
  and fast errors' durations. Read from log-spaced histograms (400 bins per decade): within 0.58 %.
* **Prices** (starter worksheet only): least squares of each successful call's cost on its input and output tokens.
* **Profile** (:func:`fit_profile`): requests per hour = scale x hourly[hour of day] x weekly[weekday] x
  e^(b t) x spike[day], fitted by alternating updates with each hour weighted by how much of it the log covers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from routecalc.data.calibrate import SIGNIFICANT, BandFit
from routecalc.data.logrows import OUTCOMES, PROVIDER_ERRORS, SUCCESS
from routecalc.data.logs import LogData
from routecalc.engine.histogram import BINS_PER_DECADE, hist_quantiles, relative_error
from routecalc.errors import InputError
from routecalc.worksheet.schema import DAYS_PER_MONTH, MAX_SPREAD

SPIKE_FACTOR = 1.5  # a day with at least this many times its expected requests (and 4 sigma above) is a spike
MIN_GROWTH_DAYS = 13.5  # two weeks: shorter logs get growth 0 (a trend over a few days is mostly noise)
MIN_CALLS = 100  # models with fewer calls are flagged: their failure rate is a rough guess
TPOT_SCALE = 1000.0  # the log reader histograms seconds per output token as milliseconds


def _round(x: float, digits: int = SIGNIFICANT) -> float:
    return float(f"{x:.{digits}g}")


def percentiles(values: np.ndarray, counts: np.ndarray, qs: list[float]) -> np.ndarray:
    """Percentiles (fractions ``qs``) of sorted distinct ``values`` seen ``counts`` times: exactly
    ``numpy.percentile`` of the expanded data (linear interpolation between order statistics)."""
    cum = np.cumsum(counts)
    n = cum[-1]
    out = []
    for q in qs:
        h = (n - 1) * q
        lo, frac = math.floor(h), h - math.floor(h)
        a = values[np.searchsorted(cum, lo, side="right")]
        b = values[np.searchsorted(cum, min(lo + 1, n - 1), side="right")]
        out.append(a + frac * (b - a))
    return np.array(out)


def _band(p50: float, p95: float, mean: float, n: int) -> BandFit:
    """A worksheet band: lognormal p50/p95 when one fits (p50 > 0, p95 <= 1000 p50), else the fixed mean."""
    p50, p95 = _round(p50), _round(p95)
    if p50 > 0 and p95 <= MAX_SPREAD * p50:
        return BandFit(p50, p95, None, n)
    return BandFit(None, None, _round(mean), n)


def band_of(values: np.ndarray, counts: np.ndarray) -> BandFit | None:
    """The band of token values seen ``counts`` times (None if there are none)."""
    if values.size == 0 or counts.sum() <= 0:
        return None
    p50, p95 = percentiles(values, counts, [0.5, 0.95])
    return _band(p50, p95, float((values * counts).sum() / counts.sum()), int(counts.sum()))


def hist_band(hist: np.ndarray, scale: float = 1.0) -> BandFit | None:
    """The band of a latency histogram (:func:`routecalc.engine.histogram.histogram_edges`), values divided by ``scale``."""
    n = int(hist.sum())
    if n == 0:
        return None
    p50, p95 = hist_quantiles(hist, [0.5, 0.95], BINS_PER_DECADE) / scale
    if p95 <= p50 * (1 + 2 * relative_error(BINS_PER_DECADE)):  # within two bins: a fixed value
        return BandFit(None, None, _round(float(p50)), n)
    return _band(float(p50), float(p95), float(p50), n)


@dataclass(frozen=True)
class CategoryTraffic:
    """One category: calls in the log, its share of them, token bands of successful calls."""

    name: str
    calls: float
    share: float
    tokens_in: BandFit | None
    tokens_out: BandFit | None


@dataclass(frozen=True)
class ModelReliability:
    """One model: calls, failures by type (:data:`OUTCOMES` names), the worksheet's failure numbers and latency.

    ``failure_rate`` = provider failures / calls; ``errors`` their shares by type (None without failures);
    ``latency`` the worksheet's ``latency`` mapping (None without latencies); seconds throughout; prices per
    token in the log's currency (None when the log has no cost, or the fit fails).
    """

    name: str
    calls: float
    failures: dict[str, float]
    failure_rate: float
    errors: dict[str, float] | None
    latency: dict[str, BandFit] | None
    timeout_s: float | None
    error_latency_s: float | None
    price_in: float | None = None
    price_out: float | None = None

    @property
    def provider_failures(self) -> float:
        return sum(self.failures[OUTCOMES[k]] for k in PROVIDER_ERRORS)


@dataclass(frozen=True)
class ProfileFit:
    """The fitted traffic profile (relative weights, mean 1) and what limited it."""

    hourly: list[float] | None
    weekly: list[float] | None
    growth_per_month: float
    spikes: list[tuple[int, float]]
    notes: tuple[str, ...] = ()

    def as_yaml(self) -> dict:
        """``volume.profile`` as the worksheet writes it (:class:`~routecalc.worksheet.schema.TrafficProfile`)."""
        out: dict = {}
        if self.hourly is not None:
            out["hourly"] = self.hourly
        if self.weekly is not None:
            out["weekly"] = self.weekly
        out["growth_per_month"] = self.growth_per_month
        if self.spikes:
            out["spikes"] = [{"day": d, "factor": f} for d, f in self.spikes]
        return out


@dataclass(frozen=True)
class LogCalibration:
    """Everything derived from a log. Times in epoch seconds (UTC); ``days`` the span of the log."""

    source: str
    shape: str
    data: LogData
    start: float
    end: float
    days: float
    calls: float
    calls_per_month: float
    categories: tuple[CategoryTraffic, ...]
    models: tuple[ModelReliability, ...]
    profile: ProfileFit
    notes: tuple[str, ...] = field(default_factory=tuple)

    def category(self, name: str) -> CategoryTraffic:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(name)

    def model(self, name: str) -> ModelReliability:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


def calibrate_logs(data: LogData) -> LogCalibration:
    """Shares, bands, failure rates, latency and the profile from a log (module docstring)."""
    calls_by_cat = data.requests.sum(axis=(1, 2))
    total = float(calls_by_cat.sum())
    if total <= 0:
        raise InputError(f"{data.source}: the log's rows stand for no requests")
    span = max(0.0, data.last - data.first)
    days = span / 86400
    notes = list(data.notes)
    if span < 3600:
        notes.append(f"the log covers {span / 60:.0f} minutes: volume and profile are rough")
    per_month = total / days * DAYS_PER_MONTH if days > 0 else float("nan")
    cats = []
    for c, name in enumerate(data.categories):
        tin = tout = None
        if data.token_values is not None:
            (vi, ni), (vo, no) = data.token_values[name]
            tin, tout = band_of(vi, ni), band_of(vo, no)
        else:  # aggregated rows: means per request
            ok = data.requests[c, :, SUCCESS].sum()
            if ok > 0 and data.tokens_in is not None:
                mean = float(data.tokens_in[c].sum() / data.requests[c].sum())
                tin = BandFit(None, None, _round(mean), int(ok))
            if ok > 0 and data.tokens_out is not None:
                mean = float(data.tokens_out[c].sum() / data.requests[c].sum())
                tout = BandFit(None, None, _round(mean), int(ok))
        cats.append(CategoryTraffic(name, float(calls_by_cat[c]), float(calls_by_cat[c] / total), tin, tout))
    models = tuple(_model(data, j, name) for j, name in enumerate(data.models))
    few = [f"{m.name} ({m.calls:,.0f})" for m in models if m.calls < MIN_CALLS]
    if few:
        notes.append(f"models with fewer than {MIN_CALLS} calls (failure rates are rough): {', '.join(few)}")
    return LogCalibration(
        source=data.source,
        shape=data.shape,
        data=data,
        start=data.first,
        end=data.last,
        days=days,
        calls=total,
        calls_per_month=per_month,
        categories=tuple(cats),
        models=models,
        profile=fit_profile(data.hours, data.hour_requests, data.first, data.last, data.bucket_s),
        notes=tuple(notes),
    )


def _model(data: LogData, j: int, name: str) -> ModelReliability:
    by_type = data.requests[:, j, :].sum(axis=0)
    calls = float(by_type.sum())
    failures = {OUTCOMES[k]: float(by_type[k]) for k in range(1, len(OUTCOMES))}
    provider = sum(float(by_type[k]) for k in PROVIDER_ERRORS)
    errors = {OUTCOMES[k]: round(float(by_type[k]) / provider, 4) for k in PROVIDER_ERRORS} if provider else None
    if errors:  # shares rounded to 4 places must still sum to 1: the largest takes the remainder
        top = max(errors, key=errors.__getitem__)
        errors[top] = round(1.0 - sum(v for k, v in errors.items() if k != top), 4)
    latency = timeout = fast = None
    if data.latency_hist is not None:
        lat = data.latency_hist[j]
        answers = int(lat[0].sum())
        with_ttft = int(data.ttft_hist[j].sum()) if data.ttft_hist is not None else 0
        if answers and with_ttft >= 0.5 * answers and data.tpot_hist is not None and data.tpot_hist[j].sum():
            latency = {"ttft_s": hist_band(data.ttft_hist[j]), "tpot_s": hist_band(data.tpot_hist[j], TPOT_SCALE)}
        elif answers:
            latency = {"e2e_s": hist_band(lat[0])}
        t, f = hist_band(lat[1]), hist_band(lat[2])
        timeout = t.p50 if t is not None and t.p50 is not None else (t.mean if t is not None else None)
        fast = f.p50 if f is not None and f.p50 is not None else (f.mean if f is not None else None)
    price_in = price_out = None
    if data.cost is not None:
        price_in, price_out = _price_fit(data, j)
    return ModelReliability(
        name=name,
        calls=calls,
        failures=failures,
        failure_rate=round(provider / calls, 6) if calls else 0.0,
        errors=errors,
        latency={k: v for k, v in latency.items() if v is not None} if latency else None,
        timeout_s=timeout,
        error_latency_s=fast,
        price_in=price_in,
        price_out=price_out,
    )


def _price_fit(data: LogData, j: int) -> tuple[float | None, float | None]:
    """Least squares ``cost = a x + b y`` over the model's successful calls (per token); None if ill-posed."""
    s = {k: float(v[:, j, SUCCESS].sum()) for k, v in data.products.items()}
    a11, a12, a22 = s["tin2"], s["tinout"], s["tout2"]
    det = a11 * a22 - a12 * a12
    if a11 <= 0 or a22 <= 0 or det <= 1e-9 * a11 * a22:
        return None, None
    a = (s["cost_tin"] * a22 - s["cost_tout"] * a12) / det
    b = (s["cost_tout"] * a11 - s["cost_tin"] * a12) / det
    if a < 0 or b < 0:
        return None, None
    return a, b


# ---------------------------------------------------------------------------------------------------------
# The traffic profile


def _weekday(t: np.ndarray) -> np.ndarray:
    return ((t // 86400 + 3) % 7).astype(int)  # 1970-01-01 was a Thursday: Monday = 0


def fit_profile(
    hours: np.ndarray, requests: np.ndarray, first: float, last: float, bucket_s: float | None = None
) -> ProfileFit:
    """Hourly and weekday weights (mean 1), growth per month and spike days from requests per epoch hour.

    Model: expected requests in hour H = exposure(H) x scale x hourly[h(H)] x weekly[d(H)] x e^(b t_H) x
    spike[day(H)], exposure = the share of hour H inside [first, last]. Alternating updates (each weight set
    to observed / expected over its hours, 50 rounds); the trend b by least squares on the log of each day's
    observed / expected (days at least half covered, not spikes), only when the log spans two weeks or more;
    a day is a spike when it has at least 1.5x the requests its weekday's other days predict and 4 Poisson sigmas
    more (its factor: observed / expected by the fit). Aggregated logs
    with daily buckets give no hourly weights.
    """
    notes = []
    step = 24 if bucket_s is not None and bucket_s >= 86400 else 1
    unit = 3600 * step
    u0, u1 = int(first // unit), int(last // unit)
    grid = np.arange(u0, u1 + 1)
    t = grid * float(unit)
    n = np.zeros(grid.size)
    np.add.at(n, (hours // step - u0).clip(0, grid.size - 1), requests)
    expo = np.clip(np.minimum(t + unit, last) - np.maximum(t, first), 0, unit) / unit  # (an aggregated log's
    if last - first < 1:  # last is its last bucket's end)
        expo[:] = 1.0
    hod = ((t // 3600) % 24).astype(int)
    dow = _weekday(t)
    day = (t // 86400).astype(int)
    days, day_ix = np.unique(day, return_inverse=True)
    hw, ww, b = np.ones(24), np.ones(7), 0.0
    noise: tuple[float, float] | None = None  # (slope, standard error) of a trend too small to keep
    spike = np.ones(days.size)
    tday = (days * 86400.0 - first) / (86400 * DAYS_PER_MONTH)  # months since the start
    trend_on = (last - first) / 86400 >= MIN_GROWTH_DAYS
    day_expo = np.bincount(day_ix, weights=expo, minlength=days.size) / (24 / step)
    for _ in range(50):
        level = np.exp(b * tday)[day_ix] * spike[day_ix]
        if step == 1:
            base = expo * ww[dow] * level
            num, den = np.bincount(hod, n, 24), np.bincount(hod, base, 24)
            hw = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        base = expo * hw[hod] * level
        num, den = np.bincount(dow, n, 7), np.bincount(dow, base, 7)
        ww = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        ww_mean = ww[den > 0].mean() if (den > 0).any() else 1.0
        ww, hw = ww / ww_mean, hw * ww_mean
        expected = np.bincount(day_ix, expo * hw[hod] * ww[dow], days.size)
        observed = np.bincount(day_ix, n, days.size)
        e = expected * np.exp(b * tday)
        # a spike is judged against its weekday's level from the *other* days (leave one out): with two weeks of
        # log, a spike would otherwise raise its own weekday's weight and hide itself
        base_day = np.bincount(day_ix, expo * hw[hod], days.size) * np.exp(b * tday)
        wd = _weekday(days * 86400.0)
        calm = spike == 1
        n_w = np.bincount(wd, observed * calm, 7)[wd] - observed * calm
        b_w = np.bincount(wd, base_day * calm, 7)[wd] - base_day * calm
        n_all, b_all = (observed * calm).sum() - observed * calm, (base_day * calm).sum() - base_day * calm
        rate = np.where(b_w > 0.25 * base_day, n_w / np.maximum(b_w, 1e-300), n_all / np.maximum(b_all, 1e-300))
        loo = base_day * rate
        is_spike = (
            (day_expo >= 0.5) & (observed >= SPIKE_FACTOR * loo) & (observed - loo > 4 * np.sqrt(np.maximum(loo, 1)))
        )
        spike = np.ones(days.size)
        spike[is_spike] = observed[is_spike] / np.maximum(e[is_spike], 1e-300)  # e: without any spike
        fit = (day_expo >= 0.5) & ~is_spike & (observed > 0) & (expected > 0)
        if trend_on and fit.sum() >= 3:
            y = np.log(observed[fit] / expected[fit])
            # weights 1/sd of log(count) (Poisson): the unscaled covariance is the slope's sampling variance
            coef, cov = np.polyfit(tday[fit], y, 1, w=np.sqrt(observed[fit]), cov="unscaled")
            b, se = float(coef[0]), float(np.sqrt(cov[0, 0]))
            noise = (b, se) if abs(b) < 2 * se else None
            if noise is not None:  # a trend inside its own noise is not a trend: the weights are fitted without it
                b = 0.0
    hourly = weekly = None
    if step == 1:
        covered = np.bincount(hod, expo, 24)
        if (covered > 0).all():
            hourly = [round(float(v), 3) for v in hw / hw.mean()]
        else:
            notes.append("the log covers less than a full day: no hourly weights")
    covered_days = np.bincount(dow, expo, 7)
    if (covered_days > 0).all():
        weekly = [round(float(v), 3) for v in ww / ww.mean()]
    else:
        notes.append("the log covers less than a week: no weekday weights")
    growth = 0.0
    if trend_on:
        growth = round(float(np.exp(b) - 1), 4)
        if noise is not None:
            notes.append(
                f"growth {np.exp(noise[0]) - 1:+.1%}/month is within its sampling error (±{2 * noise[1]:.1%} at 2 "
                "standard errors): written as 0"
            )
    elif last - first > 0:
        notes.append("growth needs two weeks of log or more: written as 0")
    spikes: dict[int, float] = {}
    for d, f in zip(days[spike > 1], spike[spike > 1], strict=True):
        dom = dt.datetime.fromtimestamp(int(d) * 86400, dt.UTC).day
        spikes[dom] = max(spikes.get(dom, 0.0), round(float(f), 2))
    return ProfileFit(hourly, weekly, growth, sorted(spikes.items()), tuple(notes))


def catalog_aliases(models: list, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Logged model name -> catalog name: each catalog model stands for its name, its ``litellm_model`` and that
    id without the provider prefix (what LiteLLM logs as ``model``); ``overrides`` (``--model-map log=catalog``)
    win. ``models``: the worksheet's :class:`~routecalc.worksheet.schema.ModelSpec` list."""
    catalog = {m.name for m in models}
    out: dict[str, str] = {}
    for m in models:
        for alias in (m.name, m.litellm_model, (m.litellm_model or "").split("/", 1)[-1], m.eval_name):
            if alias and alias not in out:
                out[alias] = m.name
    for log_name, name in (overrides or {}).items():
        if name not in catalog:
            raise InputError(f"--model-map: {name!r} is not a model of the worksheet ({', '.join(sorted(catalog))})")
        out[log_name] = name
    return out
