"""The report's appendix: the winner exported as router configs (LiteLLM YAML, Portkey JSON), as
``routecalc export`` writes them, with the application's part the routers cannot do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from routecalc.report.document import Block, Bullets, Code, Heading, Paragraph, Strong, runs
from routecalc.results import Comparison
from routecalc.worksheet import Worksheet, file_sha256


def router_configs(
    ws: Worksheet, c: Comparison, worksheet_path: str | Path | None, scenarios: Sequence[str | Path]
) -> list[Block]:
    """Appendix: the winner exported for LiteLLM and Portkey, as ``routecalc export`` writes them, with what the
    application must do that the router cannot."""
    from routecalc.errors import ExportError
    from routecalc.export import export_policy
    from routecalc.export.plan import Source, content_source

    blocks: list[Block] = [Heading(1, "Appendix: router configs for the winner")]
    if c.winner is None:
        blocks.append(Paragraph(runs("No policy meets every target, so there is no winner to export.")))
        return blocks
    source = (
        Source(
            Path(worksheet_path).name,
            file_sha256(worksheet_path),
            tuple((Path(s).name, file_sha256(s)) for s in scenarios),
        )
        if worksheet_path is not None
        else content_source(ws)
    )
    blocks.append(
        Paragraph(
            runs(
                f"{c.winner} as ",
                Strong("routecalc export -t litellm"),
                " and ",
                Strong("-t portkey"),
                " write it (same estimate). A router falls back on errors only: the LiteLLM header and the notes "
                "under the Portkey config list what the application must do itself.",
            )
        )
    )
    for target, title, language in (
        ("litellm", "LiteLLM proxy config.yaml", "yaml"),
        ("portkey", "Portkey gateway config (x-portkey-config)", "json"),
    ):
        blocks.append(Heading(2, title))
        try:
            result = export_policy(ws, c, c.winner, target, source)
        except ExportError as exc:
            blocks.append(Paragraph(runs(f"Not exportable: {exc}")))
            continue
        blocks.append(Code(result.text, language))
        if target == "portkey" and result.warnings:
            blocks.append(Bullets(tuple(runs(w) for w in result.warnings)))
    return blocks
