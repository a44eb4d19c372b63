"""The CLI's plumbing, shared by its commands: consoles and messages, the per-run options (-q/-v), reading a
worksheet argument (a file, ``-`` for stdin, ``example:NAME``), the Monte Carlo progress bar, and writing output.

Nothing here computes: it reads, reports and writes (see ``routecalc.cli``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.markup import escape

from routecalc.format import printable

# Plain strings are printed literally: no rich markup and no :emoji: codes (a policy named "[bold]x" or ":smile:"
# is shown as written). Our own markup is passed as markup=True, with user text through _lit().
console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)


def _lit(text: object, keep_newlines: bool = False) -> str:
    """User text inside our markup: control characters escaped, markup brackets escaped."""
    return escape(printable(str(text), keep_newlines))


class _State:
    """Options of the root command that every command honours (reset on each invocation)."""

    quiet = False  # -q: no warnings, notes, progress or "wrote ..." lines; results and errors only
    verbose = False  # -v: also say what is read and how long each stage takes (stderr)
    warned: ClassVar[set[str]] = set()  # warnings already shown in this run (reset per invocation)
    stdin_text: str | None = None  # standard input, once read ("-")
    stdin_sha256: str | None = None


_state = _State()


def _warn(messages: Sequence[str], stderr: bool = False) -> None:
    """Warnings, each once per run (diff loads two worksheets that often share one), none with --quiet."""
    if _state.quiet:
        return
    for m in messages:
        if m in _state.warned:
            continue
        _state.warned.add(m)
        (err_console if stderr else console).print(f"[yellow]warning:[/] {_lit(m)}", markup=True, highlight=False)


def _note(message: str) -> None:
    """An informational line on stderr ("wrote ..."), left out with --quiet."""
    if not _state.quiet:
        err_console.print(printable(message), highlight=False)


def _done(message: str) -> None:
    """What a command did ("wrote ..."), on stdout, left out with --quiet (the message is already printable)."""
    if not _state.quiet:
        console.print(message, highlight=False)


def _debug(message: str) -> None:
    """What routecalc is doing, on stderr, with --verbose only."""
    if _state.verbose and not _state.quiet:
        err_console.print(f"[dim]{_lit(message)}[/]", markup=True, highlight=False)


STDIN = "-"
STRONGEST_NAME = "all-to-strongest"  # routecalc.chains.STRONGEST (not imported: it pulls in numpy)


def _stdin_text(what: str) -> str:
    """Standard input as text, bounded like a worksheet file; '-' may be used once per run."""
    from routecalc.errors import InputError
    from routecalc.limits import MAX_WORKSHEET_BYTES, MIB

    if _state.stdin_text is not None:  # "-" given twice (diff - NEW): the same text
        return _state.stdin_text
    data = sys.stdin.buffer.read(MAX_WORKSHEET_BYTES + 1) if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_WORKSHEET_BYTES:
        raise InputError(f"<stdin>: more than {MAX_WORKSHEET_BYTES // MIB} MiB; a {what} may have at most that")
    try:
        _state.stdin_text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"<stdin>: not UTF-8; send the {what} as UTF-8") from None
    import hashlib

    _state.stdin_sha256 = hashlib.sha256(data).hexdigest()
    return _state.stdin_text


def _path(arg: Path) -> Path:
    """A file argument as a path: ``example:NAME`` is a shipped example worksheet."""
    from routecalc.examples import resolve

    return resolve(str(arg))


def _load(worksheet: Path, scenarios: Sequence[Path] = ()) -> Any:
    """Load and validate a worksheet (``-``: stdin; ``example:NAME``: a shipped one) with its overlays;
    plausibility warnings go to stderr."""
    import time

    from routecalc.worksheet import worksheet_warnings

    start = time.perf_counter()
    ws = _read_ws(worksheet, scenarios)
    _debug(
        f"read {_label(worksheet)}{''.join(f' + {s}' for s in scenarios)}: {len(ws.tasks)} categories, "
        f"{len(ws.models)} models, {len(ws.policies)} policies ({time.perf_counter() - start:.2f} s)"
    )
    _warn(worksheet_warnings(ws), stderr=True)
    return ws


def _read_ws(worksheet: Path, scenarios: Sequence[Path] = ()) -> Any:
    """Load and validate a worksheet argument: a file, ``-`` (stdin) or ``example:NAME``."""
    from routecalc.worksheet import load_worksheet, load_worksheet_text

    overlays = [_path(s) for s in scenarios]
    if str(worksheet) == STDIN:
        return load_worksheet_text(_stdin_text("worksheet"), "<stdin>", Path.cwd(), overlays)
    return load_worksheet(_path(worksheet), overlays)


def _label(arg: Path) -> str:
    return "<stdin>" if str(arg) == STDIN else str(arg)


def _sha256(arg: Path) -> str:
    """SHA-256 of a worksheet argument's bytes (a file, or what came on stdin)."""
    from routecalc.worksheet import file_sha256

    if str(arg) == STDIN:
        _stdin_text("worksheet")
        assert _state.stdin_sha256 is not None
        return _state.stdin_sha256
    return file_sha256(_path(arg))


def _editable(arg: Path, what: str) -> Path:
    """A worksheet file whose own text a command edits: not stdin."""
    from routecalc.errors import InputError

    if str(arg) == STDIN:
        raise InputError(f"{what} edits the worksheet's own text (comments and layout kept): give a file, not '-'")
    return _path(arg)


class _Progress:
    """A progress bar on stderr for a Monte Carlo run, shown once it has taken more than ``DELAY_S``: the engine
    reports (done, total) through a callback and stays pure."""

    DELAY_S = 1.0

    def __init__(self, label: str) -> None:
        import time

        self.label, self.start, self.bar, self.task = label, time.perf_counter(), None, None

    def __call__(self, done: int, total: int) -> None:
        import time

        if self.bar is None:
            if time.perf_counter() - self.start < self.DELAY_S or done >= total:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=done)
        if done >= total:
            self.bar.stop()


def _progress(label: str = "Monte Carlo") -> Any:
    """The progress callback for a Monte Carlo run: None (no bar) with --quiet or when stderr is not a terminal."""
    if _state.quiet or not err_console.is_terminal:
        return None
    return _Progress(label)


def _emit(data: str | bytes, out: Path | None) -> None:
    """A command's output: to stdout, or atomically to ``out`` (checked beforehand with check_new_file)."""
    from routecalc.outputs import write_atomic

    if out is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        return
    write_atomic(out, data)
    _note(f"wrote {out}")


def _emit_rich(parts: Sequence[Any], out: Path | None) -> None:
    """Rich renderables: to the terminal, or as plain text (no colour) to ``out``."""
    if out is None:
        for part in parts:
            console.print(part)
        return
    import io

    buf = io.StringIO()
    plain = Console(file=buf, width=max(console.width, 120), markup=False, emoji=False, color_system=None)
    for part in parts:
        plain.print(part)
    _emit(buf.getvalue(), out)
