"""One content model for the design-review report, rendered two ways: self-contained HTML and Markdown.

The report is built once as a list of blocks (headings, paragraphs, bullet lists, tables, charts); ``to_html``
and ``to_markdown`` only decide how each block looks, so the two files can never say different things.
HTML embeds every chart as a base64 PNG and carries its CSS inline: no external links, scripts or fonts.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Align = Literal["l", "r", "c"]


@dataclass(frozen=True)
class Strong:
    """Bold text inside a paragraph or list item."""

    text: str


Inline = str | Strong
Runs = tuple[Inline, ...]


def runs(*parts: Inline) -> Runs:
    return tuple(parts)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    parts: Runs
    note: bool = False  # rendered smaller / dimmed (footnotes, provenance details)


@dataclass(frozen=True)
class Bullets:
    items: tuple[Runs, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[Align, ...] = ()  # per column; default: first left, others right
    caption: str | None = None

    def alignment(self, j: int) -> Align:
        if j < len(self.align):
            return self.align[j]
        return "l" if j == 0 else "r"


@dataclass(frozen=True)
class Chart:
    """A chart: ``png`` is the file name beside report.md; its bytes are embedded into report.html."""

    png: str
    title: str
    alt: str
    takeaway: str


@dataclass(frozen=True)
class Code:
    """A file's text shown as it is (an exported router config): monospace, never reflowed."""

    text: str
    language: str = ""  # a Markdown fence's info string: yaml, json


Block = Heading | Paragraph | Bullets | Table | Chart | Code


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def md_escape(text: str) -> str:
    """Escape Markdown syntax characters so names like ``a_b*`` or ``x|y`` render literally."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_strong(text: str) -> str:
    """``**bold**`` with surrounding spaces kept outside the markers (``** x**`` would not render bold)."""
    core = text.strip()
    if not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return f"{lead}**{md_escape(core)}**{trail}"


def _md_runs(parts: Runs) -> str:
    out = [_md_strong(p.text) if isinstance(p, Strong) else md_escape(p) for p in parts]
    return "".join(out).replace("\n", " ")


def _md_cell(text: str) -> str:
    return md_escape(text).replace("\n", "<br>")


def to_markdown(doc: Document) -> str:
    """GitHub-flavoured Markdown; charts are ``![alt](file.png)`` references to the PNG files beside it."""
    out = [f"# {md_escape(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += ["#" * (b.level + 1) + " " + md_escape(b.text), ""]
        elif isinstance(b, Paragraph):
            text = _md_runs(b.parts)
            out += [f"<sub>{text}</sub>" if b.note else text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {_md_runs(item)}" for item in b.items] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{md_escape(b.caption)}*", ""]
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            sep = {"l": ":---", "r": "---:", "c": ":---:"}
            out.append("|" + "|".join(sep[b.alignment(j)] for j in range(len(b.header))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Code):
            runs_of_ticks = [len(m) for m in re.findall(r"`+", b.text)]
            fence = "`" * max(3, max(runs_of_ticks, default=0) + 1)  # longer than any backtick run inside
            out += [fence + b.language, b.text.rstrip("\n"), fence, ""]
        elif isinstance(b, Chart):
            out += [
                f"![{md_escape(b.alt)}]({b.png})",
                "",
                f"**{md_escape(b.title)}.** {md_escape(b.takeaway)}",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  max-width: 1100px; margin: 2rem auto; padding: 0 1.25rem; color: #1a1a1a; line-height: 1.5; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: .25rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.08rem; margin-top: 1.6rem; }
p.note { font-size: .85rem; color: #555; }
ul { padding-left: 1.4rem; }
li { margin: .2rem 0; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .86rem; }
td.r, th.r { white-space: nowrap; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-style: italic; color: #444; padding-bottom: .3rem; }
th, td { border: 1px solid #d0d0d0; padding: .28rem .5rem; vertical-align: top; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) td { background: #fafafa; }
td.r, th.r { text-align: right; } td.l, th.l { text-align: left; } td.c, th.c { text-align: center; }
pre.code { overflow-x: auto; background: #f6f6f6; border: 1px solid #e0e0e0; padding: .6rem .8rem;
  font-size: .78rem; line-height: 1.35; }
figure { margin: 1.2rem 0 2rem; }
figure img { width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { margin-top: .4rem; font-size: .95rem; }
@media print {
  body { max-width: none; margin: 0; font-size: 10.5pt; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; break-inside: avoid; }
  p, li { orphans: 3; widows: 3; }
  figure, table, .table-wrap, tr { break-inside: avoid; page-break-inside: avoid; }
  .table-wrap { overflow: visible; }
  table { font-size: 8pt; }
}
""".strip()


def _html_runs(parts: Runs) -> str:
    out = []
    for p in parts:
        out.append(f"<strong>{html.escape(p.text)}</strong>" if isinstance(p, Strong) else html.escape(p))
    return "".join(out)


def _html_cell(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def to_html(doc: Document, images: Mapping[str, bytes]) -> str:
    """One self-contained HTML page; ``images`` maps each chart's PNG file name to its bytes (embedded)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for b in doc.blocks:
        if isinstance(b, Heading):
            n = min(b.level + 1, 6)
            out.append(f"<h{n}>{html.escape(b.text)}</h{n}>")
        elif isinstance(b, Paragraph):
            cls = ' class="note"' if b.note else ""
            out.append(f"<p{cls}>{_html_runs(b.parts)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html_runs(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            out.append(_html_table(b))
        elif isinstance(b, Code):
            out.append(f'<pre class="code"><code>{html.escape(b.text)}</code></pre>')
        elif isinstance(b, Chart):
            data = base64.b64encode(images[b.png]).decode("ascii")
            out.append(
                "<figure>"
                f'<img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
                f"<figcaption><strong>{html.escape(b.title)}.</strong> {html.escape(b.takeaway)}</figcaption>"
                "</figure>"
            )
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_table(t: Table) -> str:
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    head = "".join(f'<th class="{t.alignment(j)}">{_html_cell(h)}</th>' for j, h in enumerate(t.header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{t.alignment(j)}">{_html_cell(c)}</td>' for j, c in enumerate(row)) + "</tr>"
        for row in t.rows
    )
    return f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def charts(doc: Document) -> Sequence[Chart]:
    """The document's charts, in order."""
    return [b for b in doc.blocks if isinstance(b, Chart)]
