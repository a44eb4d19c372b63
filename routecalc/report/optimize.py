"""Render an Optimization: the best route per category with its margins, the policy as YAML, the frontier."""

from __future__ import annotations

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from routecalc.decide.answer import FRONTIER_POINTS, Optimization, thin
from routecalc.decide.policy import policy_yaml
from routecalc.format import count, money, pct, seconds, signed_money

OBJECTIVE_WORDS = {"cost": "spend", "cost+risk": "spend + operational risk", "latency": "mean latency"}


def _title(o: Optimization) -> str:
    what = {
        "per-category": f"best route per category by {OBJECTIVE_WORDS[o.objective]}, meeting every target",
        "min-quality": f"least {OBJECTIVE_WORDS[o.objective]} with traffic-weighted quality ≥ {pct(o.target or 0, 2)}",
        "budget": f"best traffic-weighted quality within {money(o.target, o.currency, '/month')}",
    }[o.mode]
    floors = "" if o.mode == "per-category" or o.floors else " (per-category quality thresholds not applied)"
    return (
        f"{o.worksheet} — optimize: {what}{floors}; {count(o.candidates)} candidate routes of up to {o.max_chain} "
        f"models; {count(o.requests_per_month)} requests/month, {o.currency}"
    )


def route_table(o: Optimization) -> Table:
    """One row per category: the route, its cost, and each target with its margin."""
    t = Table(title=_title(o), title_justify="left", header_style="bold", caption=_caption(o))
    others = any(m.target.split(" ")[0] not in ("quality", "P95") for c in o.categories for m in c.margins)
    t.add_column("Category", style="bold", no_wrap=True)
    t.add_column("Share", justify="right")
    t.add_column("Route", overflow="fold")
    t.add_column("Kind", style="dim")
    t.add_column(f"Cost / request ({o.currency})", justify="right")
    t.add_column("Quality (vs threshold)", justify="right")
    t.add_column("P95 (vs budget)", justify="right")
    if others:
        t.add_column("Other targets", overflow="fold")
    for c in o.categories:
        r = c.route
        if r is None:
            miss = Text("no route meets every target", style="red")
            t.add_row(c.rules.category, pct(c.rules.share), miss, *[""] * (4 + others))
            continue
        q = next((m for m in c.margins if m.target.startswith("quality")), None)
        p95 = next((m for m in c.margins if m.target.startswith("P95")), None)
        rest = [m for m in c.margins if m is not q and m is not p95]
        p95_text = "no budget" if p95 is None else (f"{p95.value} ({p95.margin})" if p95.value != "n/a" else p95.margin)
        cells = [
            c.rules.category,
            pct(c.rules.share),
            r.label,
            r.family,
            money(r.cost, o.currency),
            f"{q.value} ({q.margin})" if q else pct(r.quality, 2),
            p95_text,
        ]
        if others:
            cells.append("; ".join(f"{m.target}: {m.value} ({m.margin})" for m in rest) or "—")
        t.add_row(*cells)
    return t


def _caption(o: Optimization) -> str:
    return "→ escalates on a reject or a failure · / falls back on a provider failure only"


def _totals(o: Optimization) -> list[Text]:
    out = []
    tot = o.totals
    if tot is None:
        return [Text.from_markup("[bold red]No policy:[/] some category has no route meeting every target.")]
    line = (
        f"[bold green]{escape(o.policy['name'] if o.policy else '')}[/]: {money(tot['monthly_cost'], o.currency, '/month')} "
        f"({money(tot['cost_per_request'], o.currency)}/request), quality {pct(tot['quality'], 2)}, "
        f"mean latency {seconds(tot['latency_mean_s'])}, operational risk {money(tot['risk_monthly'], o.currency, '/month')}"
    )
    if o.baseline is not None:
        name, cost = o.baseline
        diff = cost - tot["monthly_cost"]
        verb = "saves" if diff >= 0 else "costs"
        line += f"; {verb} {money(abs(diff), o.currency, '/month')} vs {escape(name)} (baseline, {money(cost, o.currency, '/month')})"
    out.append(Text.from_markup(line + ".", emoji=False))
    if o.mode != "per-category":
        proven = "proven optimal" if o.gap <= 0 else f"within {o.gap:.3g} of the solver's proven bound"
        out.append(Text(f"Global choice over the per-category frontiers: {proven}.", style="dim"))
    return out


def _misses(o: Optimization) -> list[Text]:
    out = []
    for c in o.categories:
        if c.route is not None:
            continue
        text = f"  [red]✗[/] [bold]{escape(c.rules.category)}[/]: "
        if c.nearest is not None:
            n = c.nearest
            p95 = f", P95 {n.p95_s:.2f} s" if n.p95_s is not None else ""
            text += f"nearest miss {escape(n.label)} ({money(n.cost, o.currency)}/request, quality {pct(n.quality, 2)}{p95}); "
        text += "binding: " + escape("; ".join(c.binding))
        out.append(Text.from_markup(text, emoji=False))
        if c.rules.excluded:
            why = "; ".join(f"{m} ({reason})" for m, reason in c.rules.excluded)
            out.append(Text(f"      not allowed here: {why}", style="dim"))
    return out


def frontier_table(o: Optimization) -> Table | None:
    """A thinned view of the cost-vs-quality frontier of whole policies."""
    f = o.frontier
    if f is None or len(f.quality) == 0:
        return None
    kind = "every point a policy" if f.exact else "upper envelope: reachable by mixing routes within a category"
    t = Table(
        title=f"Cost vs quality frontier ({kind})",
        title_justify="left",
        header_style="bold",
        caption=f"over {f.basis}",
        caption_justify="left",
    )
    t.add_column(f"Monthly cost ({o.currency})", justify="right")
    t.add_column("Quality (traffic-weighted)", justify="right")
    t.add_column("", justify="left")
    x, y = thin(f.monthly_cost, f.quality, FRONTIER_POINTS)
    rows = [(float(a), float(b), "") for a, b in zip(x, y, strict=True)]
    if o.totals is not None:
        rows.append((o.totals["monthly_cost"], o.totals["quality"], f"← {o.policy['name'] if o.policy else ''}"))
        rows.sort(key=lambda r: (r[0], -r[1]))
    for a, b, mark in rows:
        t.add_row(money(a, o.currency, "/mo"), pct(b, 2), mark)
    return t


def _frontier_note(o: Optimization) -> Text | None:
    f, tot = o.frontier, o.totals
    if f is None or tot is None or not f.exact or o.mode != "per-category":
        return None
    reach = [i for i in range(len(f.quality)) if f.quality[i] >= tot["quality"] - 1e-12]
    if not reach:
        return None
    best = min(f.monthly_cost[i] for i in reach)
    if best >= tot["monthly_cost"] * (1 - 1e-9):
        return Text("This policy lies on the frontier.", style="dim")
    return Text(
        f"The frontier reaches the same traffic-weighted quality ({pct(tot['quality'], 2)}) for "
        f"{money(best, o.currency, '/month')} ({signed_money(best - tot['monthly_cost'], o.currency, '/month')}) if "
        "categories may fall below their own thresholds: see --min-quality with --no-floors.",
        style="dim",
    )


def _mix(o: Optimization) -> list[Text]:
    m = o.mix
    if m is None:
        return []
    cur = o.currency
    lines = [
        Text.from_markup(
            f"[bold]Budget-exact randomised mix[/] (Dekoninck et al., arXiv 2410.10347): λ = {m.lam:.4g} quality per "
            f"{cur} per request; expected {money(m.monthly, cur, '/month')}, quality {pct(m.quality, 3)} "
            f"(the policies bracketing the budget: {money(m.monthly_lo, cur, '/month')} at {pct(m.quality_lo, 3)} and "
            f"{money(m.monthly_hi, cur, '/month')} at {pct(m.quality_hi, 3)})."
        )
    ]
    for cat, lo, hi in m.routes:
        lines.append(Text(f"  {cat}: {pct(1 - m.p)} of requests to {lo}, {pct(m.p)} to {hi}"))
    if not m.routes:
        lines.append(Text("  the budget is not binding: no mixing needed (λ = 0)."))
    lines.append(
        Text("  A mix needs a weighted split inside a category: not expressible as a policy kind yet.", style="dim")
    )
    return lines


def render_optimization(o: Optimization) -> Group:
    parts: list = [route_table(o), *_totals(o), *_misses(o)]
    if o.policy is not None:
        parts.append(Text("\nAdd to the worksheet's policies: (or write the worksheet with it: -o FILE)", style="bold"))
        parts.append(Text(policy_yaml(o.policy, 2).rstrip("\n")))
    ft = frontier_table(o)
    if ft is not None:
        parts.append(ft)
    note = _frontier_note(o)
    if note is not None:
        parts.append(note)
    parts += _mix(o)
    for n in o.notes:
        parts.append(Text.from_markup(f"[yellow]note:[/] {escape(n)}", emoji=False))
    parts.append(Text(footnote(o), style="dim"))
    return Group(*parts)


def footnote(o: Optimization) -> str:
    checked = sum(c.verified for c in o.categories)
    mc = (
        f"P95 budgets checked by Monte Carlo for {checked} route(s): {count(o.samples)} requests, seed {o.seed} "
        f"(as compare), histogram resolution ±{o.hist_rel_error:.1%}; the CI of each P95 is in the JSON output."
        if checked
        else "No P95 budget needed a Monte Carlo check."
    )
    return f"Costs, quality and rates: expected-value engine (exact under the model). {mc}"


def optimization_json(o: Optimization) -> str:
    """The ``optimize`` output document."""
    from routecalc.contract import dumps

    return dumps("optimize", o.to_dict())
