"""The Monte Carlo engines side by side on the MODEL.md benchmark workload (10 categories, 3 cascades of 3 gated steps).

    python benchmarks/bench_engines.py [--samples 10000000] [--repeat 3]

In one run, alternating (so a change of machine load hits every engine alike): the 0.1.0 plain-numpy reference
(``reference_mc.simulate_reference``, the engine when issue 8 was filed) and today's engine with its pure-numpy
walk and its compiled (numba) walk, the latter two at 1 and 2 threads. For each: CPU seconds
(``time.process_time``, every thread of the process) and wall seconds, median over ``--repeat`` runs; samples per
CPU-second relative to the reference; wall-clock speed-up of 2 threads over 1. Checks that both walks and both
thread counts give byte-identical results for the same seed. Prints a Markdown table and the load average.
Uses the real loader and compiler; the all-to-strongest baseline is left out so exactly 3 policies are simulated.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from reference_mc import simulate_reference
from workload import benchmark_worksheet

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.engine.mc import simulate


def digest(mc: routecalc.MonteCarlo) -> str:
    """A hash of every array of a Monte Carlo result: equal digests, byte-identical results."""
    h = hashlib.sha256()
    for name in ("n", "cost_sd", "latency_sd", "hist", "model_successes", "model_slow"):
        h.update(np.ascontiguousarray(getattr(mc, name)).tobytes())
    for v in vars(mc.mean).values():
        if isinstance(v, np.ndarray):
            h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ws = routecalc.validate_worksheet(benchmark_worksheet())
    problem = compile_worksheet(ws, include_strongest=False)
    P = len(problem.chains.names)
    n = args.samples

    runs = {
        "reference 0.1.0 (numpy)": lambda: simulate_reference(problem, n, np.random.default_rng(args.seed)),
        "numpy walk, 1 thread": lambda: simulate(problem, n, np.random.default_rng(args.seed), 1, "numpy"),
        "numpy walk, 2 threads": lambda: simulate(problem, n, np.random.default_rng(args.seed), 2, "numpy"),
        "numba walk, 1 thread": lambda: simulate(problem, n, np.random.default_rng(args.seed), 1, "numba"),
        "numba walk, 2 threads": lambda: simulate(problem, n, np.random.default_rng(args.seed), 2, "numba"),
    }
    simulate(problem, 1000, np.random.default_rng(0), 1, "numba")  # compile / load the kernel outside the timing
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    wall: dict[str, list[float]] = {k: [] for k in runs}
    digests: dict[str, str] = {}
    results = {}
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        for name, fn in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            mc = fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
            digests[name] = digest(mc)
            results[name] = mc
    load_after = os.getloadavg()

    ev = routecalc.expected_values(problem)
    w = problem.tasks.share
    med = lambda xs: statistics.median(xs)
    ref = med(cpu["reference 0.1.0 (numpy)"])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average (1/5/15 min) before {' '.join(f'{v:.1f}' for v in load_before)}, "
        f"after {' '.join(f'{v:.1f}' for v in load_after)}"
    )
    print()
    print(f"{n:,} requests x {P} policies, seed {args.seed}, median of {args.repeat} alternating runs:")
    print()
    print(
        "| engine | CPU s | wall s | M request-policies per CPU-s | per CPU-s vs reference "
        "| wall speed-up, 2 threads vs 1 | result digest |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in runs:
        c, wl = med(cpu[name]), med(wall[name])
        speedup = "-"
        if name.endswith("2 threads"):
            speedup = f"{med(wall[name.replace('2 threads', '1 thread')]) / wl:.2f}x"
        print(
            f"| {name} | {c:.2f} | {wl:.2f} | {n * P / c / 1e6:.2f} | {ref / c:.2f}x | {speedup} | `{digests[name]}` |"
        )
    print()
    ours = {k: v for k, v in digests.items() if not k.startswith("reference")}
    same = len(set(ours.values())) == 1
    print(
        f"numpy and numba walks, 1 and 2 threads: results {'byte-identical' if same else 'DIFFER'} for seed {args.seed}."
    )
    mc = results["numba walk, 1 thread"]
    rel = np.abs(mc.mean.cost @ w - ev.cost @ w) / (ev.cost @ w)
    print(f"MC mean cost vs EV: max relative difference over policies {rel.max():.2e}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
