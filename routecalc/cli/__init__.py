"""The ``routecalc`` command line: parse options, call the library, render. Nothing is computed here.

One module per family of commands (``estimate``, ``prices``, ``data``, ``decide``, ``start``); ``common`` holds the
app, option types and the one place that maps errors to exit codes; ``support`` the consoles and plumbing. Heavy
modules (numpy, pydantic, matplotlib) are imported inside the commands that use them, so ``routecalc --help`` starts
fast; litellm is never imported (its price map is read from disk).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from routecalc.cli.common import SCHEMA_KINDS, app, hoist, optional_value
from routecalc.cli.support import _state, console

for _module in ("estimate", "prices", "data", "decide", "start"):  # each registers its commands, in --help order
    importlib.import_module(f"routecalc.cli.{_module}")

__all__ = ["SCHEMA_KINDS", "app", "hoist", "main", "optional_value"]


def _show_version(value: bool) -> None:
    if value:
        from routecalc._version import __version__

        console.print(f"routecalc {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", is_eager=True, callback=_show_version),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Results and errors only: no warnings, notes or progress bar.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also say what is read and how long each stage takes (stderr).")
    ] = False,
) -> None:
    """Estimate the cost, latency and quality of LLM routing policies before you ship them.

    Exit codes: 0 ok, 1 a check failed (compare --expect, --require-winner, --max-monthly-cost) or another
    error, 2 invalid input (worksheet, file, option), 3 refused to overwrite a file routecalc did not write.
    """
    _state.quiet, _state.verbose = quiet, verbose and not quiet
    _state.stdin_text = _state.stdin_sha256 = None
    _state.warned.clear()


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning each block over 128 KiB to the kernel.

    The engines' numpy passes make and drop chunk-sized temporaries (0.5 MB each) thousands of times; by default
    each one is mapped, faulted in page by page and unmapped again (about 300,000 page faults, a fifth of the CPU
    of `compare` on 500 categories x 50 policies). A command runs for seconds, so keeping up to 256 MB of freed
    memory costs little. Only the CLI does this (a library does not tune its host's allocator); elsewhere: nothing.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
        libc.mallopt(M_MMAP_THRESHOLD, 64 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):
        return


def main() -> None:
    """Console-script entry point."""
    _keep_freed_memory()
    app()
