"""A comparison as plain records and tables: the ``compare`` JSON's policy records, and pandas DataFrames
(``Comparison.to_frame``) that ``--format csv`` and ``--format xlsx`` are made of."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from routecalc.errors import InputError

if TYPE_CHECKING:
    from routecalc.results import CategoryResult, Comparison, PolicyResult


def category_dict(c: CategoryResult) -> dict[str, Any]:
    return {
        "category": c.category,
        "share": c.share,
        "cost_per_request": c.cost_per_request,
        "quality": c.quality,
        "quality_threshold": c.threshold,
        "quality_ok": c.quality_ok,
        "p95_s": c.p95_s,
        "p95_ci_s": list(c.p95_ci_s),
        "budget_s": c.budget_s,
        "latency_ok": c.latency_ok,
        "ok": c.ok,
        "escalation": c.escalation,
        "fallback": c.fallback if c.fallback_route else None,
        "fallback_route": c.fallback_route,
        "steps": [asdict(t) | {"ok": t.ok} for t in c.steps],
    }


def policy_dict(p: PolicyResult) -> dict[str, Any]:
    """One policy of the ``compare`` output. ``fallback`` is null where no step falls back to another (the
    requests that abandon a step there fail: they are in ``failed``)."""
    return {
        "name": p.name,
        "kind": p.kind,
        "description": p.description,
        "is_baseline": p.is_baseline,
        "meets_targets": p.meets_targets,
        "nearest_miss": p.nearest_miss,
        "cost_per_request": p.cost_per_request,
        "cost_per_request_mc": p.cost_per_request_mc,
        "cost_per_request_ci95": p.cost_ci95,
        "monthly_cost": p.monthly_cost,
        "cost_change_monthly": p.cost_change_monthly,
        "cost_change_pct": p.cost_change_pct,
        "token_cost_monthly": p.token_cost_monthly,
        "gate_cost_monthly": p.gate_cost_monthly,
        "human_cost_monthly": p.human_cost_monthly,
        "router_cost_monthly": p.router_cost_monthly,
        "deadline_waste_monthly": p.deadline_waste_monthly,
        "risk_per_request": p.risk_per_request,
        "risk_monthly": p.risk_monthly,
        "quality": p.quality,
        "quality_mc": p.quality_mc,
        "quality_ci95": p.quality_ci95,
        "quality_if_independent": p.quality_if_independent,
        "delivered_bad": p.delivered_bad,
        "failed": p.failed,
        "human_review": p.human_review,
        "overflow": p.overflow,
        "late": p.late,
        "escalation": p.escalation,
        "fallback": p.fallback if p.fallback_route else None,
        "fallback_route": p.fallback_route,
        "latency_mean_s": p.latency_mean_s,
        "latency_mean_mc_s": p.latency_mean_mc_s,
        "p50_s": p.p50_s,
        "p95_s": p.p95_s,
        "p99_s": p.p99_s,
        "answered": p.answered,
        "tries_per_request": p.calls,
        "served_by_step": list(p.served_by_step),
        "categories": [category_dict(c) for c in p.categories],
    }


def comparison_frame(comparison: Comparison, by: str = "policy", metric: str = "quality") -> Any:
    """The comparison as a pandas DataFrame, for notebooks and spreadsheets (pandas is imported here).

    ``by="policy"``: policies x metrics, one row per policy (index ``policy``), the scalar fields of the JSON
    output plus ``winner`` and ``currency``. ``by="category"``: categories x policies for one per-category
    ``metric`` (``quality``, ``cost_per_request``, ``p95_s``, ``escalation``, ``fallback``, ``ok``, ...), with
    the category's ``share`` first. Units as in the JSON output: money in ``currency``, ``_s`` seconds,
    rates as fractions.
    """
    import pandas as pd

    if by == "policy":
        rows = []
        for p in comparison.policies:
            d = {k: v for k, v in policy_dict(p).items() if not isinstance(v, dict | list)}
            name = d.pop("name")
            rows.append({"policy": name, **d, "winner": name == comparison.winner, "currency": comparison.currency})
        return pd.DataFrame(rows).set_index("policy")
    if by == "category":
        per = [[category_dict(cat) for cat in p.categories] for p in comparison.policies]
        scalar = [k for k, v in per[0][0].items() if not isinstance(v, list) and k not in ("category", "share")]
        if metric not in scalar:
            raise InputError(f"unknown per-category metric {metric!r} (one of {', '.join(scalar)})")
        data = {"share": [cat["share"] for cat in per[0]]}
        data |= {p.name: [cat[metric] for cat in cats] for p, cats in zip(comparison.policies, per, strict=True)}
        frame = pd.DataFrame(data, index=pd.Index([cat["category"] for cat in per[0]], name="category"))
        frame.columns.name = metric
        return frame
    raise InputError(f"to_frame: by must be 'policy' or 'category' (got {by!r})")
