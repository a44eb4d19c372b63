"""Check or refresh the command outputs pasted in README.md.

Each entry of ``BLOCKS`` names a README block by a unique piece of text before it (the block is the first fenced
block after that text) and the commands whose output it shows. The commands run in order, in one scratch directory
that links ``worksheets/``, ``scenarios/`` and ``examples/`` of this checkout and ``../shared`` beside it, so files
one command writes (``calibrated.yaml``) are there for the next. Trailing spaces are stripped, as the README keeps
them; ``console`` blocks repeat each ``$ command`` line before its output.

    python scripts/readme_outputs.py            # check: exit 1 and a diff where README differs from the code
    python scripts/readme_outputs.py --write    # replace the blocks with what the code prints now

Benchmark tables are not here: they come from ``benchmarks/*.py`` and are re-run on their own.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TODAY = "--today 2026-11-25"

# A log with two bad rows (line 3: a timestamp that is not one; line 4: a success without tokens).
BAD_CSV = (
    "timestamp,category,model,tokens_in,tokens_out,latency_s,status\n"
    "2026-10-01T00:00:00Z,faq,gpt-4.1,100,10,1.0,success\n"
    "yesterday,faq,gpt-4.1,100,10,1.0,success\n"
    "2026-10-01T00:02:00Z,faq,gpt-4.1,,,1.0,success\n"
)


def _lines(text: str) -> list[str]:
    return text.split("\n")


def from_line(prefix: str) -> Callable[[str], str]:
    """The output from its first line starting with ``prefix``."""

    def select(text: str) -> str:
        lines = _lines(text)
        start = next(i for i, line in enumerate(lines) if line.startswith(prefix))
        return "\n".join(lines[start:])

    return select


def head_until(needle: str, tail: int = 0) -> Callable[[str], str]:
    """An excerpt: the output up to the first line containing ``needle``, ``...``, then its last ``tail`` lines."""

    def select(text: str) -> str:
        lines = _lines(text)
        stop = next(i for i, line in enumerate(lines) if needle in line)
        out = [*lines[: stop + 1], "..."]
        if tail:
            out += lines[-tail:]
        return "\n".join(out)

    return select


@dataclass(frozen=True)
class Block:
    anchor: str  # unique README text before the block
    commands: tuple[str, ...]  # the last one's output is shown (all of them in a console block)
    columns: int = 150
    streams: str = "both"  # both (interleaved as a terminal shows them), stdout, stderr
    console: bool = False  # show "$ command" before each command's output
    select: Callable[[str], str] | None = None
    setup: tuple[str, ...] = field(default=())  # run first, output not shown


BLOCKS: tuple[Block, ...] = (
    Block(
        "prints (150-column terminal; `--today 2026-11-25`",
        (f"routecalc compare worksheets/support-triage.yaml {TODAY}",),
    ),
    Block(
        "routecalc optimize worksheets/support-triage.yaml\n```\n\nprints (150 columns):",
        ("routecalc optimize worksheets/support-triage.yaml",),
    ),
    Block(
        "With `--min-quality 0.9802`",
        ("routecalc optimize worksheets/support-triage.yaml --min-quality 0.9802",),
        select=head_until("Global choice over the per-category frontiers"),
    ),
    Block(
        "Below the comparison it prints (150-column terminal",
        (f"routecalc compare worksheets/support-triage.yaml --uncertainty {TODAY}",),
        select=from_line("Uncertainty — "),
    ),
    Block(
        "runner-up (the winner without it), and between it and the baseline, flips. It prints (150 columns):",
        ("routecalc sensitivity worksheets/support-triage.yaml",),
    ),
    Block(
        "<summary>the LiteLLM config.yaml",
        ("routecalc export worksheets/support-routing.yaml -t litellm",),
        streams="stdout",
    ),
    Block(
        "<summary>the Portkey gateway config",
        ("routecalc export worksheets/support-routing.yaml -t portkey",),
        streams="stdout",
    ),
    Block(
        "}\n```\n\n</details>\n",
        ("routecalc export worksheets/support-routing.yaml -t portkey",),
        streams="stderr",
        columns=120,
    ),
    Block(
        "with `discounts: {anthropic: 0.15}` added, ends `routecalc compare st.yaml` with",
        ("routecalc compare st.yaml",),
        columns=120,
        setup=(
            f"routecalc prices update worksheets/support-triage.yaml {TODAY} --out st.yaml --force",
            "printf 'discounts: {anthropic: 0.15}\\n' >> st.yaml",
        ),
        select=from_line("Prices: "),
    ),
    Block(
        "`routecalc prices update worksheets/support-triage.yaml --today 2026-11-25`\n(120 columns):",
        (f"routecalc prices update worksheets/support-triage.yaml {TODAY}",),
        columns=120,
    ),
    Block(
        "(common random numbers) and answers in one screen",
        (f"routecalc diff worksheets/support-triage.yaml --prices scenarios/prices-2026-12.json {TODAY}",),
        columns=120,
    ),
    Block(
        "routes with a cross-provider fallback on every last step), 150 columns:",
        ("routecalc simulate worksheets/support-month.yaml --policy routine+fallback",),
    ),
    Block(
        "routecalc calibrate evals ../shared/data/evals/routellm-mmlu.csv -o mmlu-calibrated.yaml\n```\n\n",
        ("routecalc calibrate evals ../shared/data/evals/routellm-mmlu.csv -o mmlu-calibrated.yaml --force",),
        columns=110,
    ),
    Block(
        "documented command draws.",
        (
            "routecalc calibrate logs examples/logs/support-sample.jsonl -w worksheets/support-triage.yaml "
            "-o calibrated.yaml",
        ),
        console=True,
        columns=110,
        select=head_until("│ profile", tail=1),
    ),
    Block(
        "(disputes -45 %: the worksheet assumes 5 % of traffic",
        (
            "routecalc backtest examples/logs/support-sample.jsonl -w calibrated.yaml --policy tiered+fallback "
            "--invoice 27.50",
        ),
        console=True,
        columns=110,
        select=head_until("├", tail=1),
    ),
    Block(
        "Bad rows, and `--strict`:",
        ('routecalc calibrate logs bad.csv --strict; echo "exit $?"',),
        console=True,
        columns=110,
        setup=(f"printf %s {shlex.quote(BAD_CSV)} > bad.csv",),
    ),
    Block(
        "With `calibrated.yaml` from the command above\n(150 columns):",
        ("routecalc simulate calibrated.yaml --scenario examples/logs/support-operations.yaml -p routine+fallback",),
        console=True,
    ),
    Block(
        "the winner although it spends",
        (
            "routecalc report calibrated.yaml --scenario examples/logs/support-operations.yaml --objective cost+risk"
            f" {TODAY} -o report/",
        ),
        console=True,
    ),
    Block(
        "`compare` (excerpt, 116 columns):",
        ("routecalc compare worksheets/mmlu-cascade.yaml",),
        columns=116,
        select=head_until("Quality (good answers)"),
    ),
    Block(
        "95 % intervals by bootstrap over prompts:",
        ("routecalc replay ../shared/data/evals/routellm-mmlu.csv -w worksheets/mmlu-cascade.yaml",),
        columns=116,
    ),
    Block(
        "`routecalc compare worksheets/support-routing.yaml --today 2026-11-25` (at 120 columns):",
        (f"routecalc compare worksheets/support-routing.yaml {TODAY}",),
        columns=120,
    ),
)


def _run(command: str, cwd: Path, columns: int, streams: str) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    stderr = subprocess.STDOUT if streams == "both" else subprocess.PIPE
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    text = done.stderr if streams == "stderr" else done.stdout
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def _shown(command: str) -> str:
    """The README's "$ command" line; a report command is wrapped before --today, as the README wraps it."""
    if command.startswith("routecalc report "):
        command = command.replace(" --today", " \\\n    --today")
    return "$ " + command


def render(block: Block, cwd: Path) -> str:
    for command in block.setup:
        subprocess.run(command, shell=True, cwd=cwd, check=True, capture_output=True)
    parts = []
    for command in block.commands:
        out = _run(command, cwd, block.columns, block.streams)
        if block.select is not None:
            out = block.select(out)
        parts.append(f"{_shown(command)}\n{out}" if block.console else out)
    return "\n".join(parts) if block.console else parts[-1]


def locate(text: str, anchor: str) -> tuple[int, int]:
    """Start and end offsets of the body of the first fenced block after the (unique) anchor."""
    if text.count(anchor) != 1:
        raise SystemExit(f"anchor not unique or missing ({text.count(anchor)}): {anchor!r}")
    fence = text.index("\n```", text.index(anchor) + len(anchor) - 1)
    body = text.index("\n", fence + 1) + 1
    end = text.index("\n```\n", body - 1)
    return body, end


def _scratch(tmp: Path) -> Path:
    work = tmp / "work"
    work.mkdir()
    for name in ("worksheets", "scenarios", "examples"):
        (work / name).symlink_to(ROOT / name)
    shared = (ROOT.parent / "shared").resolve()
    if shared.exists():
        (tmp / "shared").symlink_to(shared)
    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the blocks in README.md")
    parser.add_argument("--only", help="only blocks whose anchor contains this text")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    stale = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = _scratch(Path(tmp))
        for block in BLOCKS:
            if args.only and args.only not in block.anchor:
                continue
            new = render(block, work)
            start, end = locate(text, block.anchor)
            old = text[start:end]
            if old == new:
                continue
            stale += 1
            print(f"--- stale: {block.anchor[:70]!r}")
            sys.stdout.writelines(
                difflib.unified_diff((old + "\n").splitlines(True), (new + "\n").splitlines(True), n=1)
            )
            print()
            text = text[:start] + new + text[end:]
    if args.write and stale:
        README.write_text(text, encoding="utf-8")
    print(f"{stale} block(s) {'rewritten' if args.write else 'differ'}", file=sys.stderr)
    return 1 if stale and not args.write else 0


if __name__ == "__main__":
    raise SystemExit(main())
