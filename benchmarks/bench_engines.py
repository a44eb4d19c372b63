"""Time the engines on the MODEL.md benchmark workload: 10^7 requests x 3 cascades, one core.

    python benchmarks/bench_engines.py [--samples 10000000] [--repeat 3]

Prints a Markdown table for README's performance section. Uses the real loader and compiler; the
all-to-strongest baseline is left out so exactly 3 policies are simulated.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from workload import benchmark_worksheet

import routecalc
from routecalc.chains import compile_worksheet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ws = routecalc.validate_worksheet(benchmark_worksheet())
    problem = compile_worksheet(ws, include_strongest=False)
    P = len(problem.chains.names)

    ev_times = []
    for _ in range(max(args.repeat, 5)):
        t0 = time.perf_counter()
        routecalc.expected_values(problem)
        ev_times.append(time.perf_counter() - t0)

    mc_times = []
    for r in range(args.repeat):
        t0 = time.perf_counter()
        mc = routecalc.simulate(problem, args.samples, np.random.default_rng(r))
        mc_times.append(time.perf_counter() - t0)

    ev = routecalc.expected_values(problem)
    w = problem.tasks.share
    rel = np.abs(mc.mean.cost @ w - ev.cost @ w) / (ev.cost @ w)
    best = min(mc_times)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print()
    print("| engine | work | best of runs | throughput |")
    print("|---|---|---|---|")
    print(f"| expected value | 10 categories x {P} policies x 3 steps | {min(ev_times) * 1e3:.2f} ms | - |")
    print(
        f"| Monte Carlo | {args.samples:,} requests x {P} policies | {best:.2f} s (of {args.repeat}: "
        f"{', '.join(f'{t:.2f}' for t in mc_times)}) | {args.samples / best / 1e6:.2f} M requests/s "
        f"({args.samples * P / best / 1e6:.2f} M request-policies/s) |"
    )
    print()
    print(f"MC mean cost vs EV: max relative difference over policies {rel.max():.2e}")


if __name__ == "__main__":
    main()
