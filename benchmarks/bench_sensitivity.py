"""Time of `routecalc sensitivity`'s analysis on each shipped worksheet, and end to end on the CLI.

    python benchmarks/bench_sensitivity.py [--runs 5]

Times are of ``routecalc.decide.sensitivity.analyse`` alone (every input swung +-20 %, ranked, and the break-evens
of the top 10 inputs plus any whose swing changes the winner; the comparison it starts from is computed once
beforehand), best and median of ``--runs``, with the number of inputs, batched engine passes and settings
evaluated on a re-compiled worksheet (inputs the engine cannot batch there). mmlu-cascade has no winner, so its
cascade is analysed (``--policy mixtral-then-gpt-4``). Then ``routecalc sensitivity`` in a subprocess, as a user
would run it (start-up, the comparison with 200,000 Monte Carlo requests, the analysis, rendering). Prints Markdown
tables.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import routecalc
from routecalc.decide.sensitivity import analyse

ROOT = Path(__file__).resolve().parent.parent
POLICY = {"mmlu-cascade": "mixtral-then-gpt-4"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    paths = sorted((ROOT / "worksheets").glob("*.yaml"))
    print(f"`analyse`, ±20 %, top 10, {args.runs} runs each:\n")
    print("| worksheet | inputs | break-evens searched | engine passes | re-compiled settings | best | median |")
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        ws = routecalc.load_worksheet(path)
        c = routecalc.compare(ws, samples=20_000, seed=0)
        policy = POLICY.get(path.stem)
        s = analyse(ws, c, policy)  # warm-up: imports, first-touch allocations
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            analyse(ws, c, policy)
            times.append(time.perf_counter() - t0)
        searched = len({b.input.key for b in s.break_evens})
        print(
            f"| {path.stem} | {len(s.swings)} | {searched} | {s.engine_passes} | {s.recompiled} | "
            f"{min(times):.3f} s | {statistics.median(times):.3f} s |"
        )
    exe = shutil.which("routecalc") or "routecalc"
    print(f"\n`routecalc sensitivity` end to end (default 200,000 Monte Carlo requests), {args.runs} runs each:\n")
    print("| command | median of runs | min | max |")
    print("|---|---|---|---|")
    for path in paths:
        extra = ["--policy", POLICY[path.stem]] if path.stem in POLICY else []
        cmd = [exe, "sensitivity", str(path.relative_to(ROOT)), *extra]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        shown = " ".join(cmd[1:])
        print(f"| `routecalc {shown}` | {statistics.median(times):.2f} s | {min(times):.2f} s | {max(times):.2f} s |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
