"""Monthly re-estimate: what changed between two worksheets (or a worksheet and a newer price map) does to the
decision — per policy cost, savings, quality and P95 before and after, whether the winner flips, and why.

"Why" is a one-input-at-a-time attribution on the expected-value engine (exact means, no sampling): start from
the old worksheet, replace one input (one model's prices, the volume, the traffic shares, one category's pass
rates, ...) by its new value, and measure the monthly cost and quality of the policies that matter (old and new
winner). What the one-at-a-time effects do not add up to is shown as interaction. Both comparisons must use
the same Monte Carlo seed and samples (common random numbers), so P95 changes are not sampling noise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from routecalc.chains import compile_worksheet
from routecalc.engine.ev import expected_values
from routecalc.errors import InputError, PolicyError
from routecalc.format import count, money, pct, signed_money, signed_pct
from routecalc.prices import PRICE_FIELDS, FieldChange, current_value
from routecalc.results import STALE_AFTER_DAYS, Comparison, PolicyResult, jsonable, stale_categories, weighted
from routecalc.worksheet import Worksheet
from routecalc.worksheet.pricing import LongContext, PriceProvenance

MAX_MOVERS = 6  # inputs shown in the table (all of them in JSON)
UNIT_LABEL = {"per_1m": "per 1M tokens", "per_1k": "per 1K tokens"}
_MODEL_SETTINGS = (
    "latency",
    "failure_rate",
    "timeout_share",
    "timeout_s",
    "error_latency_s",
    "output_ratio",
    "reasoning_ratio",
    "provider",
    "litellm_model",
    "rpm",
    "tpm",
)
_SHORT = {
    "price_in": "input",
    "price_out": "output",
    "price_cache": "cache read",
    "price_cache_write": "cache write",
    "price_reasoning": "reasoning",
    "price_in_batch": "batch input",
    "price_out_batch": "batch output",
    **{f"long_context.{k}": f"long-context {v}" for k, v in (("price_in", "input"), ("price_out", "output"))},
    "long_context.price_cache": "long-context cache read",
    "long_context.price_cache_write": "long-context cache write",
}
LONG_ABOVE = "long_context.above_tokens"
_TASK_SETTINGS = (
    "tokens_in",
    "tokens_out",
    "quality_threshold",
    "latency_budget_s",
    "validator",
    "cached_share",
    "cache_write_share",
    "batch_share",
    "reasoning_ratio",
    "cost_bad_answer",
    "cost_failed",
)


@dataclass(frozen=True)
class PolicyDelta:
    """One policy before and after (None on the side where it does not exist). Money per month, EV means."""

    name: str
    kind: str
    monthly_before: float | None
    monthly_after: float | None
    vs_baseline_before: float | None  # cost change vs each side's baseline: this minus it, positive costs more
    vs_baseline_after: float | None
    quality_before: float | None
    quality_after: float | None
    p95_before_s: float | None
    p95_after_s: float | None
    p95_noise_s: float  # P95 changes smaller than this are Monte Carlo noise
    meets_before: bool | None
    meets_after: bool | None
    nearest_miss_after: str | None

    @property
    def change_monthly(self) -> float | None:
        """After minus before (per month): positive costs more."""
        if self.monthly_before is None or self.monthly_after is None:
            return None
        return self.monthly_after - self.monthly_before

    @property
    def change_pct(self) -> float | None:
        if self.change_monthly is None or not self.monthly_before:
            return None
        return self.change_monthly / self.monthly_before * 100

    @property
    def p95_change_s(self) -> float | None:
        if self.p95_before_s is None or self.p95_after_s is None:
            return None
        return self.p95_after_s - self.p95_before_s

    @property
    def p95_is_noise(self) -> bool:
        """A non-zero P95 change smaller than the Monte Carlo resolution."""
        d = self.p95_change_s
        return d is not None and d != 0 and abs(d) < self.p95_noise_s


@dataclass(frozen=True)
class InputEffect:
    """One input that changed, and what it alone does to the focus policies (EV, per month).

    ``cost_effect``/``quality_effect`` are empty when the change cannot be applied alone (a model, category or
    policy added or removed): it is listed, not attributed.
    """

    input: str
    detail: str
    cost_effect: dict[str, float] = field(default_factory=dict)
    quality_effect: dict[str, float] = field(default_factory=dict)
    # policy -> whether it meets every quality threshold with this input alone, only where that differs
    quality_targets: dict[str, bool] = field(default_factory=dict)

    @property
    def attributed(self) -> bool:
        return bool(self.cost_effect)


@dataclass(frozen=True)
class ModelPriceChange:
    """A model whose price or context window differs, in the new worksheet's price unit and currency."""

    model: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class StaleCategory:
    name: str
    last_reviewed: dt.date
    age_days: int


@dataclass(frozen=True)
class WorksheetDiff:
    """Everything ``routecalc diff`` shows; render with ``render_diff``, ``diff_markdown`` or ``to_dict``."""

    worksheet: str
    old_label: str
    new_label: str
    currency: str
    price_unit: str
    requests_per_month_before: float
    requests_per_month_after: float
    baseline_before: str | None
    baseline_after: str | None
    winner_before: str | None
    winner_after: str | None
    reasons: tuple[str, ...]
    focus: tuple[str, ...]  # the policies whose cost the attribution follows
    policies: tuple[PolicyDelta, ...]
    movers: tuple[InputEffect, ...]  # biggest first
    interaction: dict[str, float]  # focus policy -> EV change not explained by one-at-a-time effects
    price_changes: tuple[ModelPriceChange, ...]
    stale: tuple[StaleCategory, ...]
    warnings: tuple[str, ...]
    samples: int
    seed: int
    today: dt.date
    hist_rel_error: float  # one histogram bin, relative (the coarser side's)
    prices_before: PriceProvenance | None = None  # where each side's prices come from
    prices_after: PriceProvenance | None = None

    @property
    def flips(self) -> bool:
        return self.winner_before != self.winner_after

    def policy(self, name: str) -> PolicyDelta:
        for p in self.policies:
            if p.name == name:
                return p
        raise PolicyError(f"unknown policy {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the ``diff`` output): money in ``currency`` per month, prices per ``price_unit``, seconds in
        ``_s`` keys; every cost change is after minus before (or policy minus baseline): positive costs more."""
        return jsonable(
            {
                "worksheet": self.worksheet,
                "old": self.old_label,
                "new": self.new_label,
                "currency": self.currency,
                "price_unit": self.price_unit,
                "requests_per_month": {
                    "before": self.requests_per_month_before,
                    "after": self.requests_per_month_after,
                },
                "baseline": {"before": self.baseline_before, "after": self.baseline_after},
                "winner": {"before": self.winner_before, "after": self.winner_after, "flips": self.flips},
                "reasons": list(self.reasons),
                "policies": [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "monthly_cost": {"before": p.monthly_before, "after": p.monthly_after},
                        "cost_change_monthly": p.change_monthly,
                        "cost_change_pct": p.change_pct,
                        "cost_change_vs_baseline_monthly": {
                            "before": p.vs_baseline_before,
                            "after": p.vs_baseline_after,
                        },
                        "quality": {"before": p.quality_before, "after": p.quality_after},
                        "p95_s": {"before": p.p95_before_s, "after": p.p95_after_s},
                        "p95_change_s": p.p95_change_s,
                        "p95_noise_s": p.p95_noise_s,
                        "p95_change_is_noise": p.p95_is_noise,
                        "meets_targets": {"before": p.meets_before, "after": p.meets_after},
                        "nearest_miss_after": p.nearest_miss_after,
                    }
                    for p in self.policies
                ],
                "attribution": {
                    "method": "one input at a time from the old worksheet, expected-value engine, per month",
                    "focus_policies": list(self.focus),
                    "inputs": [
                        {
                            "input": m.input,
                            "detail": m.detail,
                            "attributed": m.attributed,
                            "cost_effect_monthly": m.cost_effect,
                            "quality_effect": m.quality_effect,
                        }
                        for m in self.movers
                    ],
                    "interaction_monthly": self.interaction,
                },
                "price_changes": [
                    {"model": c.model, **{f.field: {"before": f.old, "after": f.new} for f in c.fields}}
                    for c in self.price_changes
                ],
                "stale_categories": [
                    {"name": s.name, "last_reviewed": s.last_reviewed.isoformat(), "age_days": s.age_days}
                    for s in self.stale
                ],
                "stale_after_days": STALE_AFTER_DAYS,
                "warnings": list(self.warnings),
                "monte_carlo": {
                    "samples": self.samples,
                    "seed": self.seed,
                    "common_random_numbers": True,
                    "percentile_histogram_relative_error": self.hist_rel_error,
                },
                "today": self.today.isoformat(),
                "prices": {
                    "before": self.prices_before.to_dict() if self.prices_before else None,
                    "after": self.prices_after.to_dict() if self.prices_after else None,
                },
            }
        )


# ---------------------------------------------------------------------------------------------------------
# Computing the diff


def _policy_or_none(c: Comparison, name: str) -> PolicyResult | None:
    try:
        return c.policy(name)
    except PolicyError:
        return None


def _p95_noise(p: PolicyResult, bin_error: float) -> float:
    """A conservative P95 resolution: histogram bin error plus the share-weighted CI half-width of the
    category P95s (each side's own CI; with common random numbers the difference is usually sharper)."""
    half = sum(c.share * (c.p95_ci_s[1] - c.p95_ci_s[0]) / 2 for c in p.categories)
    return bin_error * p.p95_s + half


def _bin_error(old: Comparison, new: Comparison) -> float:
    """One histogram bin (relative) of the coarser of the two runs."""
    return max(old.mc.hist_rel_error, new.mc.hist_rel_error)


def _policy_deltas(old: Comparison, new: Comparison) -> list[PolicyDelta]:
    names = [p.name for p in old.policies] + [p.name for p in new.policies if _policy_or_none(old, p.name) is None]
    out = []
    for name in names:
        a, b = _policy_or_none(old, name), _policy_or_none(new, name)
        ref = b or a
        assert ref is not None
        bin_error = _bin_error(old, new)
        noise = max(_p95_noise(a, bin_error) if a else 0.0, _p95_noise(b, bin_error) if b else 0.0)
        out.append(
            PolicyDelta(
                name=name,
                kind=ref.kind,
                monthly_before=a.monthly_cost if a else None,
                monthly_after=b.monthly_cost if b else None,
                vs_baseline_before=a.cost_change_monthly if a else None,
                vs_baseline_after=b.cost_change_monthly if b else None,
                quality_before=a.quality if a else None,
                quality_after=b.quality if b else None,
                p95_before_s=a.p95_s if a else None,
                p95_after_s=b.p95_s if b else None,
                p95_noise_s=noise,
                meets_before=a.meets_targets if a else None,
                meets_after=b.meets_targets if b else None,
                nearest_miss_after=b.nearest_miss if b else None,
            )
        )
    return out


def _per_token(ws: Worksheet, value: float | None) -> float | None:
    return None if value is None else value / ws.tokens_per_price_unit


def _in_unit(ws: Worksheet, per_token: float | None) -> float | None:
    return None if per_token is None else float(f"{per_token * ws.tokens_per_price_unit:.12g}")


def _price_changes(old_ws: Worksheet, new_ws: Worksheet) -> list[ModelPriceChange]:
    """Models in both worksheets whose prices (compared per token) or context window differ."""
    out = []
    for m in new_ws.models:
        try:
            o = old_ws.model(m.name)
        except InputError:
            continue
        fields = []
        for fld in PRICE_FIELDS:
            before = _in_unit(new_ws, _per_token(old_ws, current_value(o, fld)))
            after = current_value(m, fld)
            if before is None and after is None:
                continue
            if before is None or after is None or not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-15):
                fields.append(FieldChange(fld, before, after))
        for fld in (LONG_ABOVE, "context_window"):
            if current_value(o, fld) != current_value(m, fld) and current_value(m, fld) is not None:
                fields.append(FieldChange(fld, current_value(o, fld), current_value(m, fld)))
        if fields:
            out.append(ModelPriceChange(m.name, tuple(fields)))
    return out


Evaluate = Callable[[Worksheet], dict[str, tuple[float, float, bool]]]


def ev_monthly(ws: Worksheet) -> dict[str, tuple[float, float, bool]]:
    """Policy -> (monthly cost, quality, every category's quality threshold met), from the expected-value
    engine alone (cheap: no Monte Carlo, so latency budgets are not part of it)."""
    problem = compile_worksheet(ws)
    ev = expected_values(problem)
    w = problem.tasks.share
    cost = weighted(ev.cost, w) * problem.requests_per_month
    quality = weighted(ev.quality, w)
    ok = (ev.quality >= problem.tasks.threshold[None, :] - 1e-12).all(axis=1)
    return {n: (float(cost[i]), float(quality[i]), bool(ok[i])) for i, n in enumerate(problem.chains.names)}


def _fmt_unit_price(ws: Worksheet, v: float | None) -> str:
    return "none" if v is None else money(v, ws.currency)


def _changed_inputs(old_ws: Worksheet, new_ws: Worksheet) -> list[tuple[str, str, Worksheet | None]]:
    """(input, detail, old worksheet with only that input from new) for every input that differs.

    The worksheet is None for changes that cannot be applied alone (added or removed names).
    """
    out: list[tuple[str, str, Worksheet | None]] = []
    unit = UNIT_LABEL[new_ws.price_unit]
    old_models = {m.name: m for m in old_ws.models}
    new_models = {m.name: m for m in new_ws.models}
    for name, m in new_models.items():
        o = old_models.get(name)
        if o is None:
            out.append((f"model added: {name}", "new model in the catalog", None))
            continue
        update: dict[str, Any] = {}
        parts = []
        for fld in PRICE_FIELDS:
            a, b = _per_token(old_ws, current_value(o, fld)), _per_token(new_ws, current_value(m, fld))
            if a != b and not (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)):
                update[fld] = _in_unit(old_ws, b)
                short = _SHORT[fld]
                if a and b is not None:
                    parts.append(f"{short} {signed_pct((b - a) / a * 100, 0)}")
                else:
                    after = _fmt_unit_price(new_ws, _in_unit(new_ws, b))
                    parts.append(f"{short} {_fmt_unit_price(new_ws, _in_unit(new_ws, a))} → {after} {unit}")
        a_t, b_t = current_value(o, LONG_ABOVE), current_value(m, LONG_ABOVE)
        if a_t != b_t:
            tier = f"threshold {a_t:,} → {b_t:,} tokens" if a_t and b_t else "removed"
            parts.append("long-context tier " + (f"added above {b_t:,} tokens" if a_t is None else tier))
        if update or a_t != b_t:
            hybrid = _replace_model(old_ws, o.model_copy(update=_long_as_one(old_ws, new_ws, m, update, o)))
            out.append((f"prices: {name}", ", ".join(parts), hybrid))
        settings = [f for f in _MODEL_SETTINGS if getattr(o, f) != getattr(m, f)]
        if settings:
            hybrid = _replace_model(old_ws, o.model_copy(update={f: getattr(m, f) for f in settings}))
            out.append((f"model settings: {name}", ", ".join(settings) + " changed", hybrid))
    for name in old_models.keys() - new_models.keys():
        out.append((f"model removed: {name}", "no longer in the catalog", None))

    if old_ws.discounts != new_ws.discounts:
        providers = sorted(old_ws.discounts.keys() | new_ws.discounts.keys())
        moved = [
            f"{p} {pct(old_ws.discounts.get(p, 0.0), 0)} → {pct(new_ws.discounts.get(p, 0.0), 0)} off"
            for p in providers
            if old_ws.discounts.get(p, 0.0) != new_ws.discounts.get(p, 0.0)
        ]
        out.append(("discounts", ", ".join(moved), old_ws.model_copy(update={"discounts": new_ws.discounts})))
    if not math.isclose(old_ws.volume.per_month, new_ws.volume.per_month, rel_tol=1e-12):
        out.append(
            (
                "volume",
                f"{count(old_ws.volume.per_month)} → {count(new_ws.volume.per_month)} requests/month",
                old_ws.model_copy(update={"volume": new_ws.volume}),
            )
        )
    old_tasks = {t.name: t for t in old_ws.tasks}
    new_tasks = {t.name: t for t in new_ws.tasks}
    old_share = dict(zip(old_tasks, old_ws.shares, strict=True))
    new_share = dict(zip(new_tasks, new_ws.shares, strict=True))
    if old_tasks.keys() == new_tasks.keys():
        moved = [n for n in old_tasks if not math.isclose(old_share[n], new_share[n], rel_tol=1e-9, abs_tol=1e-12)]
        if moved:
            k = 100.0 if old_ws.share_unit == "percent" else 1.0
            tasks = [t.model_copy(update={"traffic_share": new_share[t.name] * k}) for t in old_ws.tasks]
            detail = ", ".join(f"{n} {pct(old_share[n])} → {pct(new_share[n])}" for n in moved)
            out.append(("traffic shares", detail, old_ws.model_copy(update={"tasks": tasks})))
    else:
        for n in new_tasks.keys() - old_tasks.keys():
            out.append((f"category added: {n}", "new task category", None))
        for n in old_tasks.keys() - new_tasks.keys():
            out.append((f"category removed: {n}", "no longer in the task mix", None))
    for name, t in new_tasks.items():
        o = old_tasks.get(name)
        if o is None:
            continue
        known = {m.name for m in old_ws.models}  # rates for an added model come with "model added"
        o_rates, t_rates = o.rates, t.rates
        if {k: v for k, v in o_rates.items() if k in known} != {k: v for k, v in t_rates.items() if k in known} or (
            o.outcomes != t.outcomes
        ):
            keys = sorted((o_rates.keys() | t_rates.keys()) & known)
            changed = [
                f"{m} {_opt_pct(o_rates.get(m))} → {_opt_pct(t_rates.get(m))}"
                for m in keys
                if o_rates.get(m) != t_rates.get(m)
            ]
            if o.outcomes != t.outcomes:
                changed.append("joint outcomes changed")
            detail = ", ".join(changed)
            hybrid = _replace_task(old_ws, o.model_copy(update={"pass_rates": t.pass_rates, "outcomes": t.outcomes}))
            out.append((f"pass rates: {name}", detail, hybrid))
        settings = [f for f in _TASK_SETTINGS if getattr(o, f) != getattr(t, f)]
        if settings:
            hybrid = _replace_task(old_ws, o.model_copy(update={f: getattr(t, f) for f in settings}))
            out.append((f"category settings: {name}", ", ".join(settings) + " changed", hybrid))
    if old_ws.defaults != new_ws.defaults:
        out.append(
            (
                "defaults",
                "retries/backoff/billing defaults changed",
                old_ws.model_copy(update={"defaults": new_ws.defaults}),
            )
        )
    old_pols = {p.name: p for p in old_ws.policies}
    new_pols = {p.name: p for p in new_ws.policies}
    for name, p in new_pols.items():
        o = old_pols.get(name)
        if o is None:
            out.append((f"policy added: {name}", p.description or p.kind, None))
        elif o != p:
            policies = [p if q.name == name else q for q in old_ws.policies]
            out.append(
                (f"policy: {name}", "routes or settings changed", old_ws.model_copy(update={"policies": policies}))
            )
    for name in old_pols.keys() - new_pols.keys():
        out.append((f"policy removed: {name}", "no longer compared", None))
    if old_ws.baseline != new_ws.baseline:
        out.append(("baseline", f"{old_ws.baseline} → {new_ws.baseline}", None))
    return out


def _long_as_one(old_ws: Worksheet, new_ws: Worksheet, m: Any, update: dict[str, Any], o: Any) -> dict[str, Any]:
    """A model update with its ``long_context.*`` prices as one ``long_context``: the new tier whole, in the old
    worksheet's price unit (or none, when the new model has none)."""
    flat = {k: v for k, v in update.items() if not k.startswith("long_context.")}
    if len(flat) == len(update) and current_value(o, LONG_ABOVE) == current_value(m, LONG_ABOVE):
        return flat
    lc = m.long_context
    if lc is None:
        return flat | {"long_context": None}
    fields = ("price_in", "price_out", "price_cache", "price_cache_write")
    scaled = {f: _in_unit(old_ws, _per_token(new_ws, getattr(lc, f))) for f in fields if getattr(lc, f) is not None}
    return flat | {"long_context": LongContext(above_tokens=lc.above_tokens, **scaled)}


def _opt_pct(v: float | None) -> str:
    return "none" if v is None else pct(v)


def _replace_model(ws: Worksheet, model: Any) -> Worksheet:
    return ws.model_copy(update={"models": [model if m.name == model.name else m for m in ws.models]})


def _replace_task(ws: Worksheet, task: Any) -> Worksheet:
    return ws.model_copy(update={"tasks": [task if t.name == task.name else t for t in ws.tasks]})


def _focus(old: Comparison, new: Comparison) -> tuple[str, ...]:
    names = [n for n in (old.winner, new.winner) if n is not None]
    if not names:
        names = [n for n in (old.baseline, new.baseline) if n is not None]
    out: list[str] = []
    for n in names:
        if n not in out and _policy_or_none(old, n) is not None:
            out.append(n)
    return tuple(out)


def _consistent(ws: Worksheet) -> bool:
    """Whether a one-input-changed worksheet is a valid worksheet. ``model_copy`` checks nothing, and one input
    alone can name what only the other side has (a policy routing to a model renamed since): such a change is
    listed, not attributed, instead of failing to compile."""
    from routecalc.worksheet import validate_worksheet

    try:
        validate_worksheet(ws.as_document(), "one input changed")
    except InputError:
        return False
    return True


def _attribute(
    old_ws: Worksheet, new_ws: Worksheet, focus: Sequence[str], evaluate: Evaluate
) -> tuple[list[InputEffect], dict[str, float]]:
    base = evaluate(old_ws)
    after = evaluate(new_ws)
    effects = []
    all_attributed = True
    for label, detail, hybrid in _changed_inputs(old_ws, new_ws):
        cost: dict[str, float] = {}
        quality: dict[str, float] = {}
        targets: dict[str, bool] = {}
        if hybrid is not None and _consistent(hybrid):
            values = evaluate(hybrid)
            for n in focus:
                if n in values and n in base and math.isfinite(values[n][0]) and math.isfinite(values[n][1]):
                    cost[n] = values[n][0] - base[n][0]
                    quality[n] = values[n][1] - base[n][1]
                    if values[n][2] != base[n][2]:
                        targets[n] = values[n][2]
        all_attributed &= bool(cost) or not focus
        effects.append(InputEffect(label, detail, cost, quality, targets))
    interaction = {}
    if all_attributed:
        for n in focus:
            if n in after and n in base:
                total = after[n][0] - base[n][0]
                interaction[n] = total - sum(e.cost_effect.get(n, 0.0) for e in effects)
    return effects, interaction


def _rank(effects: list[InputEffect], focus: Sequence[str], flips: bool) -> list[InputEffect]:
    """Biggest movers first: by effect on the cost gap between new and old winner when the winner flips
    (what closed the gap), else by the largest effect on any focus policy; quality moves break ties."""

    def key(e: InputEffect) -> tuple[float, float, float]:
        if not e.attributed:
            return (1, 0.0, 0.0)
        if flips and len(focus) == 2:
            main = abs(e.cost_effect.get(focus[1], 0.0) - e.cost_effect.get(focus[0], 0.0))
        else:
            main = max((abs(v) for v in e.cost_effect.values()), default=0.0)
        q = max((abs(v) for v in e.quality_effect.values()), default=0.0)
        return (0, -main, -q)

    return sorted(effects, key=key)


def _reasons(old: Comparison, new: Comparison, deltas: list[PolicyDelta], movers: list[InputEffect]) -> list[str]:
    """Plain sentences: does the winner flip, and what moved it."""
    cur = new.currency
    out = []
    a, b = old.winner, new.winner
    by_name = {d.name: d for d in deltas}
    if a == b:
        if a is None:
            out.append("No policy meets every target, before or after.")
        else:
            d = by_name[a]
            out.append(
                f"Winner unchanged: {a} — {money(d.monthly_before, cur, '/mo')} → {money(d.monthly_after, cur, '/mo')} "
                f"({signed_money(d.change_monthly or 0.0, cur, '/mo')}, {signed_pct(d.change_pct)})."
            )
            runner = _runner_up(new, a)
            if runner is not None and d.monthly_after is not None:
                margin = runner.monthly_cost - d.monthly_after
                out.append(
                    f"Next cheapest policy meeting every target: {runner.name} at "
                    f"{money(runner.monthly_cost, cur, '/mo')} (margin {money(margin, cur, '/mo')})."
                )
    else:
        out.append(f"Winner flips: {a or 'no winner'} → {b or 'no winner'}.")
        if a is not None:
            da = by_name[a]
            if da.meets_after is False:
                out.append(f"{a} no longer meets every target: {da.nearest_miss_after}{_moved_by(movers, a, False)}.")
            elif da.meets_after is None:
                out.append(f"{a} is no longer in the worksheet.")
        if b is not None:
            db = by_name[b]
            if db.meets_before is None:
                out.append(f"{b} is a new policy and meets every target.")
            elif not db.meets_before:
                out.append(f"{b} now meets every target: {_fixed(old, new, b)}{_moved_by(movers, b, True)}.")
        if a is not None and b is not None:
            da, db = by_name[a], by_name[b]
            if da.meets_after and db.meets_before and None not in (da.monthly_after, db.monthly_after):
                out.append(
                    f"{b} is now cheaper than {a}: {money(db.monthly_after, cur, '/mo')} vs "
                    f"{money(da.monthly_after, cur, '/mo')} (before: {money(db.monthly_before, cur, '/mo')} vs "
                    f"{money(da.monthly_before, cur, '/mo')})."
                )
        if b is None:
            out.append("No policy meets every target any more; see each policy's nearest miss.")
    noisy = sorted({c for n in {a, b} - {None} for c in _noisy_latency(old, new, n)})  # type: ignore[arg-type]
    if a != b and noisy:
        out.append(
            f"Caution: the P95 of {', '.join(noisy)} is within Monte Carlo resolution of its budget, so this flip "
            "may be noise: re-run with more --samples."
        )
    if b is not None:
        near = _closest_cheaper_miss(new, b)
        if near is not None:
            out.append(
                f"Cheaper but missing a target: {near.name} at {money(near.monthly_cost, cur, '/mo')} — "
                f"{near.nearest_miss}."
            )
    top = [m for m in movers if m.attributed and any(abs(v) > 0.005 for v in m.cost_effect.values())][:2]
    for m in top:
        effects = ", ".join(
            f"{'no cost change' if abs(v) < 0.005 else signed_money(v, cur, '/mo')} on {n}"
            for n, v in m.cost_effect.items()
        )
        out.append(f"{'Biggest mover' if m is top[0] else 'Next'}: {m.input} ({m.detail}): {effects}.")
    return out


def _moved_by(movers: Sequence[InputEffect], policy: str, status: bool) -> str:
    """'; moved by X, Y': the inputs that alone switch the policy's quality-target status this way."""
    names = [m.input for m in movers if m.quality_targets.get(policy) is status]
    return f"; moved by {', '.join(names)}" if names else ""


def _fixed(old: Comparison, new: Comparison, policy: str) -> str:
    """Categories of a policy that missed a target before and meet it now, with the numbers."""
    parts = []
    for a, b in zip(old.policy(policy).categories, new.policy(policy).categories, strict=False):
        if a.category != b.category or a.ok or not b.ok:
            continue
        if not a.quality_ok:
            parts.append(f"{b.category} quality {a.quality:.2%} → {b.quality:.2%} (≥ {b.threshold:.2%})")
        if not a.latency_ok and b.budget_s is not None:
            parts.append(f"{b.category} P95 {a.p95_s:.2f} s → {b.p95_s:.2f} s (≤ {b.budget_s:g} s)")
    return "; ".join(parts) or "its categories now meet their targets"


def _noisy_latency(old: Comparison, new: Comparison, policy: str) -> list[str]:
    """Categories whose latency verdict changed for ``policy`` while a side's P95 CI (widened by one histogram
    bin) contains the budget: the verdict is then Monte Carlo noise, not a real change."""

    def near(c: Any) -> bool:
        lo, hi = c.p95_ci_s
        bin_ = _bin_error(old, new)  # a quantile interpolated inside a bin can be off by up to a whole bin
        return c.budget_s is not None and lo * (1 - bin_) <= c.budget_s <= hi * (1 + bin_)

    a, b = _policy_or_none(old, policy), _policy_or_none(new, policy)
    if a is None or b is None:
        return []
    return [
        cb.category
        for ca, cb in zip(a.categories, b.categories, strict=False)
        if ca.category == cb.category and ca.latency_ok != cb.latency_ok and (near(ca) or near(cb))
    ]


def _closest_cheaper_miss(c: Comparison, winner: str) -> PolicyResult | None:
    """Of the policies cheaper than the winner (all miss a target), the one that misses by the least."""
    w = c.policy(winner)
    cheaper = [p for p in c.policies if p.cost_per_request < w.cost_per_request and not p.meets_targets]

    def miss(p: PolicyResult) -> float:
        return max(m[0] for cat in p.categories if (m := cat.shortfall()) is not None)

    return min(cheaper, key=miss) if cheaper else None


def _runner_up(c: Comparison, winner: str) -> PolicyResult | None:
    ok = [p for p in c.policies if p.meets_targets and p.name != winner]
    return min(ok, key=lambda p: (p.cost_per_request, -p.quality)) if ok else None


def diff_comparisons(
    old: Comparison,
    new: Comparison,
    old_ws: Worksheet,
    new_ws: Worksheet,
    today: dt.date,
    *,
    old_label: str = "old",
    new_label: str = "new",
    warnings: Sequence[str] = (),
    evaluate: Evaluate = ev_monthly,
) -> WorksheetDiff:
    """Compare two comparisons of two versions of a worksheet (same seed and samples) and explain the change."""
    if old_ws.currency != new_ws.currency:
        raise InputError(
            f"the worksheets use different currencies ({old_ws.currency}, {new_ws.currency}): convert one first"
        )
    if (old.samples, old.seed) != (new.samples, new.seed):
        raise InputError("compare both worksheets with the same --samples and --seed (common random numbers)")
    broken = [
        f"{side}: {p.name}"
        for side, c in (("before", old), ("after", new))
        for p in c.policies
        if not (math.isfinite(p.monthly_cost) and math.isfinite(p.quality))
    ]
    if broken:  # a winner "flip" between n/a costs would be noise presented as a decision
        raise InputError(
            "cannot compare: cost or quality is not a finite number for " + ", ".join(broken) + " (an overflow: "
            "check prices, token counts and volume)"
        )
    deltas = _policy_deltas(old, new)
    focus = _focus(old, new)
    flips = old.winner != new.winner
    effects, interaction = _attribute(old_ws, new_ws, focus, evaluate)
    movers = _rank(effects, focus, flips)
    reviewed = {t.name: t.last_reviewed for t in new_ws.tasks}
    stale = tuple(StaleCategory(name, reviewed[name], age) for name, age in stale_categories(new_ws, today))  # type: ignore[arg-type]
    return WorksheetDiff(
        worksheet=new_ws.name,
        old_label=old_label,
        new_label=new_label,
        currency=new_ws.currency,
        price_unit=new_ws.price_unit,
        requests_per_month_before=old.requests_per_month,
        requests_per_month_after=new.requests_per_month,
        baseline_before=old.baseline,
        baseline_after=new.baseline,
        winner_before=old.winner,
        winner_after=new.winner,
        reasons=tuple(_reasons(old, new, deltas, movers)),
        focus=focus,
        policies=tuple(deltas),
        movers=tuple(movers),
        interaction=interaction,
        price_changes=tuple(_price_changes(old_ws, new_ws)),
        stale=stale,
        warnings=tuple(warnings),
        samples=new.samples,
        seed=new.seed,
        today=today,
        hist_rel_error=_bin_error(old, new),
        prices_before=old.prices,
        prices_after=new.prices,
    )
