"""Render ``routecalc sensitivity``: the swings table and break-evens for the terminal, JSON, and the report.

The sentences come from :func:`routecalc.decide.sensitivity.break_even_sentence`, so the terminal and the report
never say different things.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from routecalc.decide.sensitivity import BreakEven, Sensitivity, Swing
from routecalc.format import count, money, pct, signed_money
from routecalc.report.charts.sensitivity import SLUG, TITLE
from routecalc.report.document import Block, Bullets, Chart, Heading, Paragraph, runs
from routecalc.report.document import Table as DocTable


def sensitivity_json(s: Sensitivity) -> str:
    """The ``sensitivity`` output document (``routecalc schema --output sensitivity``)."""
    from routecalc.contract import dumps

    return dumps("sensitivity", s.to_dict())


def _pp(v: float) -> str:
    pp = v * 100
    return "0" if abs(pp) < 0.005 else f"{pp:+.2f}"


def _money_change(v: float, currency: str) -> str:
    return "0" if abs(v) < 0.5 else signed_money(v, currency)


def _pair(a: str, b: str) -> str:
    return a if a == b else f"{a} / {b}"


def summary(s: Sensitivity) -> str:
    """Who is analysed and how, in one paragraph."""
    role = " (the winner)" if s.policy == s.winner else ""
    saves = ""
    if s.savings is not None:
        verb = "saves" if s.savings >= 0 else "costs"
        saves = (
            f", {verb} {money(abs(s.savings), s.currency, '/mo')}{'' if s.savings >= 0 else ' more'} vs {s.baseline}"
        )
    return (
        f"{s.policy}{role}: {money(s.monthly_cost, s.currency, '/mo')}{saves}, quality {pct(s.quality, 2)} "
        f"({count(s.requests_per_month)} requests/month). Each input moved ±{s.swing:.0%} alone (clipped to its valid "
        f"range), re-estimated with the expected-value engine; ranked by the effect on "
        f"{'monthly cost' if s.rank_by == 'cost' else s.rank_by}."
    )


def swing_cells(s: Sensitivity, w: Swing) -> tuple[str, ...]:
    """Input, today, low / high values, changes in monthly cost, savings and quality, and who wins at each end."""
    cost, sav, q = (s.effect(w, m) for m in ("cost", "savings", "quality"))
    same = lambda x: x == s.winner
    decision = "—"
    if not all(map(same, w.winner)):
        decision = " / ".join("—" if same(x) else (x or "no winner") for x in w.winner)
    return (
        w.input.label,
        w.input.short(w.input.value, s.currency),
        f"{w.input.short(w.low, s.currency)} / {w.input.short(w.high, s.currency)}",
        _pair(_money_change(cost[0], s.currency), _money_change(cost[1], s.currency)),
        "—" if w.savings is None else _pair(_money_change(sav[0], s.currency), _money_change(sav[1], s.currency)),
        _pair(_pp(q[0]), _pp(q[1])),
        decision,
    )


def headers(s: Sensitivity) -> tuple[str, ...]:
    sw = f"{s.swing:.0%}"
    return (
        "Input",
        "Today",
        f"−{sw} / +{sw}",
        f"Monthly cost ({s.currency}/mo)",
        f"Savings vs {s.baseline or 'baseline'} ({s.currency}/mo)",
        "Quality (pp)",
        "Winner (if it changes)",
    )


def _cell(s: Sensitivity, b: BreakEven | None) -> str:
    if b is None:
        return ""
    arrow = "↓" if b.direction == "below" else "↑"
    if b.value is None:
        return f"{arrow} none"
    return f"{arrow} {b.input.short(b.value, s.currency)}"


def break_even_rows(s: Sensitivity) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Header and rows: per input (in ranking order), its break-evens below and above against each rival."""
    header = ("Input", "Today", *(f"vs {p} ({role})" for p, role in s.rivals))
    keys = list(dict.fromkeys(b.input.key for b in s.break_evens))
    rows = []
    for key in keys:
        mine = [b for b in s.break_evens if b.input.key == key]
        inp = mine[0].input
        cells = []
        for p, _ in s.rivals:
            legs = [next((b for b in mine if b.rival == p and b.direction == d), None) for d in ("below", "above")]
            cells.append(" · ".join(_cell(s, b) for b in legs))
        rows.append((inp.label, inp.short(inp.value, s.currency), *cells))
    return header, rows


def render_sensitivity(s: Sensitivity) -> Group:
    """What ``routecalc sensitivity`` prints."""
    parts: list = [Text(summary(s))]
    shown = s.shown
    extra = len(shown) - min(s.top, len(s.swings))
    more = f", and {extra} more that change the winner" if extra else ""
    table = Table(
        title=f"Top {min(s.top, len(s.swings))} of {len(s.swings)} inputs{more} — {s.worksheet}",
        title_justify="left",
        header_style="bold",
    )
    for j, h in enumerate(headers(s)):
        table.add_column(h, justify="left" if j in (0, 6) else "right", overflow="fold")
    for w in shown:
        table.add_row(*swing_cells(s, w))
    parts.append(table)
    if s.rivals:
        header, rows = break_even_rows(s)
        bt = Table(
            title="Break-even: where the decision between two policies flips (↓ below / ↑ above today)",
            title_justify="left",
            header_style="bold",
        )
        for j, h in enumerate(header):
            bt.add_column(h, justify="left" if j == 0 else "right", overflow="fold")
        for row in rows:
            bt.add_row(*row)
        parts.append(bt)
        for sentence in s.sentences():
            parts.append(Text(f"• {sentence}"))
    else:
        parts.append(Text("No other policy to compare with: no break-even."))
    parts.append(
        Text(
            " ".join(s.notes)
            + f" {s.engine_passes} batched engine passes"
            + (f", {s.recompiled} settings on a re-compiled worksheet." if s.recompiled else "."),
            style="dim",
        )
    )
    return Group(*parts)


def sensitivity_blocks(s: Sensitivity) -> list[Block]:
    """The report's Sensitivity section: tornado chart, the swings table and the break-even sentences."""
    blocks: list[Block] = [Heading(1, "Sensitivity: what would change the answer?"), Paragraph(runs(summary(s)))]
    t = s.swings[0] if s.swings else None
    takeaway = "No input moves it." if t is None else f"The largest effect comes from {t.input.label}."
    blocks.append(Chart(png=f"{SLUG}.png", title=TITLE, alt=f"{TITLE} for {s.worksheet}", takeaway=takeaway))
    blocks.append(DocTable(headers(s), tuple(swing_cells(s, w) for w in s.shown)))
    blocks.append(Heading(2, "Break-even values"))
    found = s.sentences()
    if not s.rivals:
        blocks.append(Paragraph(runs("No other policy to compare with: no break-even.")))
    else:
        header, rows = break_even_rows(s)
        blocks.append(DocTable(header, tuple(rows)))
        blocks.append(
            Bullets(tuple(runs(x) for x in found))
            if found
            else Paragraph(runs("No flip within the valid range of the inputs searched."))
        )
    blocks.append(Paragraph(runs(" ".join(s.notes)), note=True))
    return blocks
