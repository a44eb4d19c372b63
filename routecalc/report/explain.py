"""Render an Explanation: the chain, a table of its steps, the arithmetic line by line, the engine beside it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from routecalc.explain import Explanation, _money, _p


def render_explanation(e: Explanation) -> Group:
    """Everything ``routecalc explain`` prints."""
    cur = e.currency
    parts: list = [
        Text(f"{e.worksheet} — policy {e.policy}, category {e.category} (money in {cur} per request)", style="bold"),
        Text(f"route: {e.route}"),
    ]
    for lane in e.lanes:
        if len(e.lanes) > 1:
            parts.append(Text(f"\nLane {lane.lane + 1}: {_p(lane.share)} of the requests — {lane.route}", style="bold"))
        table = Table(header_style="bold", title_justify="left")
        for head in ("Step", "Model", "Reach", "Gives up", "Pass rate", "Accepted good", "Accepted bad", "Rejected",
                     "Cost", "Quality", "Latency"):  # fmt: skip
            table.add_column(head, justify="left" if head == "Model" else "right", no_wrap=head != "Model")
        for s in lane.steps:
            table.add_row(
                *map(
                    Text,
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
                    ),
                )
            )
        parts.append(table)
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
