"""Exporters: one module per router target."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routecalc.errors import ExportError

if TYPE_CHECKING:
    from routecalc.export.plan import Source
    from routecalc.results import Comparison
    from routecalc.worksheet import Worksheet

# target -> (module, file extension); modules are imported only when their target is asked for.
TARGETS: dict[str, tuple[str, str]] = {
    "litellm": ("routecalc.export.litellm", "yaml"),
    "portkey": ("routecalc.export.portkey", "json"),
    "json": ("routecalc.export.routecalc_json", "json"),
}
WINNER = "winner"


@dataclass(frozen=True)
class ExportResult:
    """What an export produced: the file text, a suggested file name, the warnings, and the parsed data."""

    text: str
    filename_suggestion: str
    warnings: tuple[str, ...]
    policy: str
    target: str
    data: Any = None


def export_policy(
    ws: Worksheet,
    comparison: Comparison | None,
    policy_name: str,
    target: str,
    source: Source | None = None,
) -> ExportResult:
    """Export one policy of ``ws`` for ``target`` (litellm, portkey, json); validated, never written here.

    ``policy_name`` ``winner`` takes the comparison's winner (running ``compare`` if none is given); with a
    comparison, the export also carries the policy's expected metrics.
    """
    from routecalc.export.plan import build_plan, slug

    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r} (choose from {', '.join(TARGETS)})")
    if policy_name == WINNER:
        if comparison is None:
            from routecalc.results import compare

            comparison = compare(ws)
        if comparison.winner is None:
            raise ExportError("no policy meets every target; name one with --policy")
        policy_name = comparison.winner
    plan = build_plan(ws, policy_name, comparison, source)
    module_name, ext = TARGETS[target]
    text, data, warnings = importlib.import_module(module_name).render(plan)
    name = f"{slug(ws.name)}.{slug(plan.policy)}.{target}.{ext}"
    return ExportResult(text, name, tuple(warnings), plan.policy, target, data)
