"""Rendering of ``routecalc replay``: the rows' verdict next to the worksheet's estimate, per policy and category."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from routecalc.data.replay import Replay
from routecalc.format import money, pct

MAX_CATEGORY_ROWS = 30


def _pp(lo: float, hi: float) -> str:
    return f"{pct(lo, 1)}–{pct(hi, 1)}"


def render_replay(r: Replay) -> Group:
    """Policies (replay vs estimate), the categories whose estimate misses the interval, research metrics."""
    cur = r.currency
    head = Text(
        f"Replay of {r.worksheet} on {r.source}: {r.prompts:,} prompts x {r.repeats} replays, "
        f"{len(r.categories)} categories; 95% intervals from {r.bootstrap:,} bootstrap resamples of prompts "
        f"(stratified by category); money in {cur} per request."
    )
    t = Table(title="Policies on the rows vs the worksheet's estimate", title_justify="left")
    for col in ("Policy", "Quality (rows)", "95% interval", "Estimate", "Inside", "Cost (rows)", "Estimate",
                "Savings captured"):  # fmt: skip
        t.add_column(col, justify="left" if col == "Policy" else "right", no_wrap=col == "Policy")
    for p in r.policies:
        lo, hi = p.quality_ci
        inside = "✓" if lo <= p.estimate_quality <= hi else "✗"
        captured = (
            "—"
            if p.savings_captured is None or p.savings_captured != p.savings_captured
            else pct(p.savings_captured, 0)
        )
        t.add_row(
            Text(p.name),
            pct(p.quality, 2),
            _pp(lo, hi),
            pct(p.estimate_quality, 2),
            inside,
            money(p.cost_per_request, cur),
            money(p.estimate_cost, cur),
            captured,
        )
    parts: list = [head, t]
    misses = [(p.name, name, c) for p in r.policies for name, c in p.categories.items() if not c.inside]
    if misses:
        m = Table(
            title=f"Categories where the estimate is outside the rows' 95% interval ({len(misses)})",
            title_justify="left",
        )
        for col in ("Policy", "Category", "Prompts", "Rows", "95% interval", "Estimate"):
            m.add_column(col, justify="left" if col in ("Policy", "Category") else "right")
        for name, cat, c in misses[:MAX_CATEGORY_ROWS]:
            m.add_row(
                Text(name), Text(cat), f"{c.prompts:,}", pct(c.quality, 1), _pp(*c.quality_ci), pct(c.estimate, 1)
            )
        parts.append(m)
        if len(misses) > MAX_CATEGORY_ROWS:
            parts.append(Text(f"… and {len(misses) - MAX_CATEGORY_ROWS} more (--format json lists all)."))
    else:
        parts.append(Text("Every category's estimate lies inside its interval, for every policy."))
    lines = [
        f"Oracle (cheapest passing model per prompt): {pct(r.oracle[1], 2)} at {money(r.oracle[0], cur)}.",
        "Single models: "
        + "; ".join(f"{n} {pct(q, 2)} at {money(c, cur)}" for n, (c, q) in r.single_models.items())
        + ".",
        f"AIQ (area under the cost/quality hull over the single models' cost range): zero router "
        f"{r.zero_router_aiq:.4f}, the worksheet's policies {r.policies_aiq:.4f}.",
    ]
    if r.score_router is not None:
        s = r.score_router
        lines.append(
            f"Score router: APGR {s['apgr']:.3f}, CPT(50%) {pct(s['cpt50'], 1)}, CPT(80%) {pct(s['cpt80'], 1)}."
        )
    lines += [f"note: {n}" for n in r.notes]
    parts.append(Text("\n".join(lines)))
    return Group(*parts)


def replay_json(r: Replay) -> str:
    """The ``replay`` output document: money in ``currency`` per request (``_per_request``), quality and shares
    as fractions, intervals as ``[low, high]`` (95 % bootstrap)."""
    from routecalc.contract import dumps

    def cost_quality(pair: tuple[float, float]) -> dict[str, float]:
        return {"cost_per_request": pair[0], "quality": pair[1]}

    out = {
        "worksheet": r.worksheet,
        "source": r.source,
        "currency": r.currency,
        "prompts": r.prompts,
        "repeats": r.repeats,
        "bootstrap": r.bootstrap,
        "seed": r.seed,
        "categories": list(r.categories),
        "missing_categories": list(r.missing),
        "skipped_categories": list(r.skipped),
        "models": list(r.models),
        "policies": [
            {
                "name": p.name,
                "quality": p.quality,
                "quality_ci": list(p.quality_ci),
                "cost_per_request": p.cost_per_request,
                "cost_per_request_ci": list(p.cost_ci),
                "estimate_quality": p.estimate_quality,
                "estimate_cost_per_request": p.estimate_cost,
                "savings_captured": p.savings_captured,
                "categories": {
                    name: {
                        "prompts": c.prompts,
                        "quality": c.quality,
                        "quality_ci": list(c.quality_ci),
                        "estimate_quality": c.estimate,
                        "estimate_inside_interval": c.inside,
                    }
                    for name, c in p.categories.items()
                },
            }
            for p in r.policies
        ],
        "oracle": cost_quality(r.oracle),
        "single_models": {m: cost_quality(v) for m, v in r.single_models.items()},
        "zero_router_aiq": r.zero_router_aiq,
        "policies_aiq": r.policies_aiq,
        "score_router": r.score_router,
        "notes": list(r.notes),
    }
    return dumps("replay", out)
