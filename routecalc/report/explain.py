"""Render an Explanation: the chain, a table of its steps, the arithmetic line by line, the engine beside it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from routecalc.explain import Explanation, _money, _p


def _step_table(heads: tuple[str, ...], rows: list[tuple[str, ...]], width: int | None) -> Table:
    """The steps, one a row; turned to one a column (a row per quantity) when that is wider than ``width`` (the
    terminal's), so a narrow terminal shows every number in full instead of cutting columns to "…"."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    if width is None or sum(widths) + 3 * len(heads) + 1 <= width:
        table = Table(header_style="bold", title_justify="left")
        for head in heads:
            table.add_column(head, justify="left" if head == "Model" else "right", no_wrap=True)
        for r in rows:
            table.add_row(*map(Text, r))
        return table
    table = Table(header_style="bold", title_justify="left")
    table.add_column("Step", no_wrap=True)
    for r in rows:
        table.add_column(f"{r[0]}: {r[1]}", justify="right", overflow="fold")
    for i, head in enumerate(heads[2:], start=2):
        table.add_row(Text(head), *(Text(r[i]) for r in rows))
    return table


def render_explanation(e: Explanation, width: int | None = None) -> Group:
    """Everything ``routecalc explain`` prints; ``width`` (the terminal's, None: unlimited) picks the step
    table's layout."""
    cur = e.currency
    parts: list = [
        Text(f"{e.worksheet} — policy {e.policy}, category {e.category} (money in {cur} per request)", style="bold"),
        Text(f"route: {e.route}"),
    ]
    for lane in e.lanes:
        if len(e.lanes) > 1:
            parts.append(Text(f"\nLane {lane.lane + 1}: {_p(lane.share)} of the requests — {lane.route}", style="bold"))
        heads = ("Step", "Model", "Reach", "Gives up", "Pass rate", "Accepted good", "Accepted bad", "Rejected",
                 "Cost", "Quality", "Latency")  # fmt: skip
        rows = [
            (
                str(s.step),
                s.model + (" [gated]" if s.gated else ""),
                _p(s.reach),
                _p(s.abandon),
                _p(s.pass_rate),
                _p(s.accept_good),
                _p(s.accept_bad),
                _p(s.reject) if s.gated else "—",
                _money(s.cost_per_request, cur),
                _p(s.quality),
                f"{s.latency_s:.4g} s",
            )
            for s in lane.steps
        ]
        parts.append(_step_table(heads, rows, width))
        for s in lane.steps:
            parts.append(Text(f"step {s.step} ({s.model}):", style="bold"))
            parts += [Text(f"  {line}") for line in s.lines]
        parts += [Text(line, style="bold") for line in lane.arithmetic]
    eng = e.engine
    verdict = "matches the hand arithmetic ✓" if e.exact else "differs from the hand arithmetic (see the note)"
    parts.append(
        Text(
            f"\nExpected-value engine: cost {_money(eng['cost_per_request'], cur)} per request, quality "
            f"{_p(eng['quality'])}, failed {_p(eng['failed'])}, mean latency {eng['latency_mean_s']:.4g} s, "
            f"escalation {_p(eng['escalation'])}, gave up a step on provider errors {_p(eng['fallback'])} — {verdict}",
            style="green" if e.exact else "yellow",
        )
    )
    parts += [Text(n, style="dim") for n in e.notes]
    return Group(*parts)


def explanation_json(e: Explanation) -> str:
    from routecalc.contract import dumps

    return dumps("explain", e.to_dict())
