"""`routecalc compare` on big worksheets: CPU time, wall time and peak memory, at two sample sizes.

    python benchmarks/bench_scale.py [--sizes 500x50 10000x10] [--samples 200000 800000] [--runs 3]

Writes each worksheet with ``scale_workload.scale_worksheet`` (as YAML, like a user's file), then runs
``routecalc compare`` on it in a fresh subprocess per run (output to /dev/null) and reads the child's resource
usage from ``os.wait4``: user + system CPU seconds, wall seconds and peak RSS (``ru_maxrss``, the kernel's VmHWM
of the child). Runs of the different (size, samples) cells alternate, so a change of machine load hits every cell;
the table shows medians. Prints a Markdown table with the load average before and after, and the machine's speed
at the time: CPU seconds of the 0.1.0 reference engine (``reference_mc``) on 10^6 requests of the MODEL.md
benchmark workload, before and after (a shared machine's speed moves by tens of percent over a day). routecalc's
bytecode is written first, as its first run after an install writes it.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale_workload import write  # noqa: E402


def run_once(cmd: list[str]) -> tuple[float, float, float, int, str]:
    """CPU s, wall s, peak RSS (MiB), exit code and the last stderr line of one run of ``cmd``."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, proc.returncode, (lines or [""])[-1]


SPEED_CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import numpy as np, routecalc
from routecalc.chains import compile_worksheet
from reference_mc import simulate_reference
from workload import benchmark_worksheet
problem = compile_worksheet(routecalc.validate_worksheet(benchmark_worksheet()), include_strongest=False)
t = time.process_time()
simulate_reference(problem, 1_000_000, np.random.default_rng(0))
print(time.process_time() - t)
"""


def machine_speed() -> float:
    """CPU seconds of the 0.1.0 reference engine on 10^6 requests x 3 policies (a fresh process)."""
    code = SPEED_CHILD.format(here=str(HERE))
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def compile_bytecode() -> None:
    """Write routecalc's bytecode, as its first run after an install does (unless PYTHONDONTWRITEBYTECODE is set,
    as on the machine these figures come from): the table times the runs after the first."""
    spec = importlib.util.find_spec("routecalc")
    assert spec is not None and spec.submodule_search_locations, "routecalc is not installed"
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["500x50", "10000x10"], help="CATEGORIESxPOLICIES")
    parser.add_argument("--samples", nargs="+", type=int, default=[200_000, 800_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the worksheets (default: a temporary dir)")
    args = parser.parse_args()
    exe = shutil.which("routecalc") or str(Path(sys.executable).parent / "routecalc")
    out = Path(args.dir or tempfile.mkdtemp(prefix="routecalc-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    cells = []
    for size in args.sizes:
        c, p = (int(v) for v in size.lower().split("x"))
        path = out / f"ws-{c}x{p}.yaml"
        if not path.exists():
            write(str(path), c, p)
        for n in args.samples:
            cells.append((size, n, [exe, "compare", str(path), "--samples", str(n)]))
    compile_bytecode()
    load_before = os.getloadavg()
    speed_before = machine_speed()
    results: dict[tuple[str, int], list[tuple[float, float, float, int, str]]] = {(s, n): [] for s, n, _ in cells}
    for _ in range(args.runs):
        for size, n, cmd in cells:
            results[size, n].append(run_once(cmd))
    load_after = os.getloadavg()
    speed_after = machine_speed()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average (1/5/15 min) before {' '.join(f'{v:.1f}' for v in load_before)}, "
        f"after {' '.join(f'{v:.1f}' for v in load_after)}; speed: the 0.1.0 reference engine took "
        f"{speed_before:.2f} s CPU before and {speed_after:.2f} s after for 10^6 requests x 3 policies"
    )
    print()
    print(
        f"| categories x policies | MC samples | CPU s (median of {args.runs}) | wall s (median) | peak RSS (median) "
        "| peak RSS (max) | exit |"
    )
    print("|---|---|---|---|---|---|---|")
    for size, n, _ in cells:
        rs = results[size, n]
        codes = sorted({r[3] for r in rs})
        print(
            f"| {size.replace('x', ' x ')} | {n:,} | {statistics.median(r[0] for r in rs):.2f} s "
            f"| {statistics.median(r[1] for r in rs):.2f} s | {statistics.median(r[2] for r in rs):.0f} MiB "
            f"| {max(r[2] for r in rs):.0f} MiB | {', '.join(map(str, codes))} |"
        )
    for (size, n), rs in results.items():
        if any(r[3] != 0 for r in rs):
            print(f"\n{size} at {n:,} samples exited {rs[0][3]}: {rs[0][4]}")


if __name__ == "__main__":
    main()
