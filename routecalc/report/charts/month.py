"""Charts of a simulated month: spend against the budget, requests and failures per hour, breaker state, spill.

Data functions return plain arrays (testable without pixels); drawing functions build a matplotlib Figure (imported
inside them, so importing this module stays fast); :func:`routecalc.report.charts.render_figure` renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.engine.timeline import DAY_S, HOUR_S, pro_rated
from routecalc.format import count, money, pct
from routecalc.month import MonthResult
from routecalc.report.charts.common import GREY, OKABE_ITO, money_axis, render_figure, style_axes, with_chart_rc

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUTAGE_COLOUR = "#D55E00"
BREAKER_COLOUR = "#0072B2"
DOWNGRADE_COLOUR = "#E69F00"


# ---------------------------------------------------------------------------------------------------------
# Chart data


def spend_curve(r: MonthResult) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Hour ends (days), cumulative spend, the cumulative pro-rated budget (None: no budget rule) and the
    cumulative spend of the same month without the rule (None: not simulated)."""
    tl = r.timeline
    H = r.days * 24
    hours = np.arange(1, H + 1) / 24
    spend = np.cumsum(tl.hourly["spend"][:H])
    budget = None
    bs = r.budget_spec
    if bs is not None:
        budget = pro_rated(np.arange(1, H + 1) * HOUR_S, bs.budget, bs.period_s, bs.shape)
    off = r.off.get("budget")
    without = np.cumsum(off.hourly["spend"][:H]) if off is not None else None
    return hours, spend, budget, without


def hourly_counts(r: MonthResult) -> dict[str, np.ndarray]:
    """Per hour of the month: requests, failed, fell back (abandoned a step), spilled, downgraded."""
    H = r.days * 24
    return {k: r.timeline.hourly[k][:H] for k in ("requests", "failed", "fell_back", "spilled", "queued", "downgraded")}


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the runs of True in ``flags``."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def spill_by_hour_of_day(r: MonthResult) -> np.ndarray:
    """Share of requests spilled (or queued) at a rate limit, per hour of day (UTC), over the month."""
    h = hourly_counts(r)
    req = h["requests"].reshape(-1, 24).sum(axis=0)
    hit = (h["spilled"] + h["queued"]).reshape(-1, 24).sum(axis=0)
    return np.divide(hit, req, out=np.zeros(24), where=req > 0)


@dataclass(frozen=True)
class Spans:
    """Per model, ``(start, length)`` spans in days: the breaker open, the model down."""

    models: tuple[str, ...]
    breaker: dict[str, list[tuple[float, float]]]
    outage: dict[str, list[tuple[float, float]]]


def breaker_spans(r: MonthResult) -> Spans:
    tl = r.timeline
    names = r.model_names
    breaker: dict[str, list[tuple[float, float]]] = {}
    for m, start, end in tl.breaker_open:
        breaker.setdefault(names[int(m)], []).append((start / DAY_S, (end - start) / DAY_S))
    outage: dict[str, list[tuple[float, float]]] = {}
    for o in r.outages:
        outage.setdefault(o["model"], []).append((o["start_s"] / DAY_S, o["minutes"] * 60 / DAY_S))
    models = tuple(m for m in names if m in breaker or m in outage)
    return Spans(models, breaker, outage)


# ---------------------------------------------------------------------------------------------------------
# Drawing


def _figure(r: MonthResult, title: str, size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained", facecolor="white")
    fig.suptitle(f"{title} — {r.worksheet}, {r.policy}", fontsize=13, fontweight="bold", x=0.01, ha="left")
    fig.supxlabel(
        f"{count(r.total.requests)} requests over {r.days} days (UTC) · seed {r.seed} · money in {r.currency} · "
        "routecalc simulate",
        fontsize=8.5,
        color=GREY,
        x=0.01,
        ha="left",
    )
    return fig


def _days_axis(ax: Axes, days: int) -> None:
    ax.set_xlim(0, days)
    ax.set_xlabel("day of the simulation")
    ax.set_xticks(np.arange(0, days + 1, 1 if days <= 10 else 2 if days <= 31 else 7))


def _shade_outages(ax: Axes, r: MonthResult) -> None:
    windows = sorted({(o["start_s"], o["minutes"]) for o in r.outages})  # a provider's models share a window
    for i, (start_s, minutes) in enumerate(windows):
        start = start_s / DAY_S
        ax.axvspan(start, start + minutes / 1440, color=OUTAGE_COLOUR, alpha=0.25, lw=0,
                   label="an outage" if i == 0 else None)  # fmt: skip


@with_chart_rc
def spend_figure(r: MonthResult) -> Figure:
    """Cumulative spend against the cumulative pro-rated budget; hours in downgrade shaded."""
    hours, spend, budget, without = spend_curve(r)
    fig = _figure(r, "Spend against the budget", (10, 4.8))
    ax = fig.add_subplot()
    style_axes(ax)
    ax.plot(hours, spend, color=OKABE_ITO[0], lw=2, label=f"spend ({money(spend[-1], r.currency)})")
    if without is not None:
        ax.plot(hours, without, color=OKABE_ITO[0], lw=1.2, ls="--",
                label=f"spend without the budget rule ({money(without[-1], r.currency)})")  # fmt: skip
    if budget is not None:
        ax.plot(hours, budget, color=GREY, lw=1.5, ls=":", label=f"pro-rated budget ({money(budget[-1], r.currency)})")
    for i, (a, b) in enumerate(runs_of(hourly_counts(r)["downgraded"] > 0)):
        ax.axvspan(a / 24, b / 24, color=DOWNGRADE_COLOUR, alpha=0.2, lw=0,
                   label="hours with requests in downgrade" if i == 0 else None)  # fmt: skip
    _days_axis(ax, r.days)
    money_axis(ax, r.currency, "y")
    ax.set_ylabel(f"cumulative spend ({r.currency})")
    ax.legend(fontsize=8.5, loc="upper left", frameon=False)
    return fig


@with_chart_rc
def traffic_figure(r: MonthResult) -> Figure:
    """Requests per hour (top), failed and fallen-back requests per hour (bottom); outages shaded."""
    h = hourly_counts(r)
    x = (np.arange(h["requests"].size) + 0.5) / 24
    fig = _figure(r, "Requests and failures per hour", (10, 5.6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for ax in (top, bottom):
        style_axes(ax)
        _shade_outages(ax, r)
    top.plot(x, h["requests"], color=OKABE_ITO[0], lw=1, label="requests")
    top.set_ylabel("requests per hour")
    bottom.plot(x, h["fell_back"], color=OKABE_ITO[1], lw=1, label="abandoned a step (fell back)")
    bottom.plot(x, h["failed"], color=OKABE_ITO[3], lw=1.2, label="failed (no answer)")
    bottom.set_ylabel("requests per hour")
    bottom.set_yscale("symlog", linthresh=1)
    _days_axis(bottom, r.days)
    top.legend(fontsize=8.5, loc="upper left", frameon=False)
    bottom.legend(fontsize=8.5, loc="upper left", frameon=False, ncols=3)
    return fig


@with_chart_rc
def breaker_figure(r: MonthResult) -> Figure:
    """Per model: when its breaker was open, and when it was down."""
    s = breaker_spans(r)
    fig = _figure(r, "Circuit breaker state", (10, 1.6 + 0.55 * max(1, len(s.models))))
    ax = fig.add_subplot()
    style_axes(ax)
    ax.grid(False, axis="y")
    for i, m in enumerate(s.models):
        if m in s.outage:
            ax.broken_barh(s.outage[m], (i - 0.4, 0.35), color=OUTAGE_COLOUR, label="model down" if i == 0 else None)
        if m in s.breaker:
            ax.broken_barh(s.breaker[m], (i + 0.05, 0.35), color=BREAKER_COLOUR,
                           label="breaker open" if i == 0 else None)  # fmt: skip
    ax.set_yticks(range(len(s.models)), s.models)
    ax.set_ylim(-0.6, max(1, len(s.models)) - 0.4)
    handles = [
        _patch(OUTAGE_COLOUR, "model down (outage)"),
        _patch(BREAKER_COLOUR, "breaker open (model skipped)"),
    ]
    ax.legend(handles=handles, fontsize=8.5, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=2)
    _days_axis(ax, r.days)
    if not s.models:
        ax.text(0.5, 0.5, "no breaker opened and no model was down", ha="center", va="center",
                transform=ax.transAxes, color=GREY)  # fmt: skip
    return fig


def _patch(colour: str, label: str) -> object:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


@with_chart_rc
def spill_figure(r: MonthResult) -> Figure:
    """Share of requests spilled (queued) at a rate limit: by hour of day (left), per day (right)."""
    by_hour = spill_by_hour_of_day(r)
    h = hourly_counts(r)
    hit = (h["spilled"] + h["queued"]).reshape(-1, 24).sum(axis=1)
    req = h["requests"].reshape(-1, 24).sum(axis=1)
    per_day = np.divide(hit, req, out=np.zeros(hit.size), where=req > 0)
    what = "queued" if r.queue else "spilled"
    fig = _figure(r, f"Requests {what} at a rate limit", (10, 4.2))
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.4))
    for ax in (left, right):
        style_axes(ax)
        from matplotlib.ticker import FuncFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: pct(v, 1)))
    left.bar(np.arange(24), by_hour, color=OKABE_ITO[1], width=0.8)
    left.set_xlabel("hour of day (UTC)")
    left.set_ylabel(f"share of requests {what}")
    left.set_xticks(range(0, 24, 3))
    right.bar(np.arange(r.days) + 0.5, per_day, color=OKABE_ITO[1], width=0.8)
    _days_axis(right, r.days)
    return fig


@dataclass(frozen=True)
class MonthChart:
    slug: str
    title: str
    draw: object
    takeaway: str


def month_charts(r: MonthResult) -> list[MonthChart]:
    """The charts this month calls for: traffic always; spend with a budget rule; breaker state with a breaker
    or outages; spill share with rate limits."""
    t = r.total
    out = [
        MonthChart(
            "month-traffic",
            "Requests and failures per hour",
            traffic_figure,
            f"{count(t.requests)} requests; {pct(t.fell_back, 2)} abandoned a step and {pct(t.failed, 3)} got no "
            "answer; outages shaded.",
        )
    ]
    if r.effects_on["budget"]:
        out.append(
            MonthChart(
                "month-spend",
                "Spend against the budget",
                spend_figure,
                f"{money(t.spend, r.currency)} spent against {money(t.budget, r.currency)} pro-rated; "
                f"{pct(t.downgraded, 1)} of requests in downgrade (shaded hours).",
            )
        )
    if r.effects_on["breaker"] or r.outages:
        out.append(
            MonthChart(
                "month-breaker",
                "Circuit breaker state",
                breaker_figure,
                f"Breakers open {t.breaker_open_min:,.0f} min in all; {len(r.outages)} model outage windows.",
            )
        )
    if r.effects_on["limits"]:
        what = "queued" if r.queue else "spilled"
        out.append(
            MonthChart(
                "month-spill",
                f"Requests {what} at a rate limit",
                spill_figure,
                f"{pct(t.queued if r.queue else t.spilled, 2)} of requests {what} over the month.",
            )
        )
    return out


def chart_files(r: MonthResult) -> tuple[dict[str, bytes], list[tuple[str, str, str]]]:
    """Each chart as PNG and SVG, and ``(png name, title, takeaway)`` for the report."""
    files: dict[str, bytes] = {}
    listed = []
    for spec in month_charts(r):
        fig = spec.draw(r)  # type: ignore[operator]
        for ext, data in render_figure(fig, ("png", "svg")).items():  # one layout, both formats
            files[f"{spec.slug}.{ext}"] = data
        listed.append((f"{spec.slug}.png", spec.title, spec.takeaway))
    return files, listed
