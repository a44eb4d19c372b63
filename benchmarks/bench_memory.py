"""Peak memory of a Monte Carlo run vs sample count: chunking keeps it flat.

    python benchmarks/bench_memory.py [--max-exp 8]

Each run is a fresh subprocess (so peaks do not mix) simulating 10^k requests of the benchmark workload
through its 3 policies; prints a Markdown table of peak RSS and wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import resource, sys, time
sys.path.insert(0, {here!r})
import numpy as np, routecalc
from routecalc.chains import compile_worksheet
from workload import benchmark_worksheet
problem = compile_worksheet(routecalc.validate_worksheet(benchmark_worksheet()), include_strongest=False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
routecalc.simulate(problem, {n}, np.random.default_rng(0))
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t0)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min-exp", type=int, default=5)
    parser.add_argument("--max-exp", type=int, default=8)
    args = parser.parse_args()
    print("| requests x 3 policies | peak RSS before the run | peak RSS after | wall time |")
    print("|---|---|---|---|")
    for k in range(args.min_exp, args.max_exp + 1):
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(here=str(HERE), n=10**k)], capture_output=True, text=True, check=True
        )
        before, after, secs = out.stdout.split()
        print(f"| 10^{k} | {int(before) / 1024:.0f} MiB | {int(after) / 1024:.0f} MiB | {float(secs):.2f} s |")


if __name__ == "__main__":
    main()
