"""Wall time of `routecalc compare` (start-up + both engines + rendering) on each shipped worksheet.

    python benchmarks/bench_cli.py [--runs 5]

Runs the installed console script in a subprocess, as a user would, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("routecalc") or str(Path(sys.executable).parent / "routecalc")
    print("| command | median of runs | min | max |")
    print("|---|---|---|---|")
    commands = [[exe, "--help"]] + [[exe, "compare", str(p)] for p in sorted((ROOT / "worksheets").glob("*.yaml"))]
    for cmd in commands:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        shown = " ".join(["routecalc", *(Path(c).relative_to(ROOT).as_posix() if "/" in c else c for c in cmd[1:])])
        print(f"| `{shown}` | {statistics.median(times):.2f} s | {min(times):.2f} s | {max(times):.2f} s |")


if __name__ == "__main__":
    main()
