"""Time ``routecalc optimize`` on 20 categories x 12 models, routes of up to 3 models, one core.

    taskset -c 0 python benchmarks/bench_optimize.py [--repeat 5] [--categories 20] [--models 12]

Prints a Markdown table for README's performance section. Uses the real loader, enumeration, engine and
optimizer (``routecalc.decide``); the workload is ``workload.optimize_worksheet``.
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
from workload import optimize_worksheet

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.decide.candidates import Candidates, chain_table, concat
from routecalc.decide.optimize import optimize
from routecalc.decide.scored import score_categories


def best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU time (seconds) of ``repeat`` runs, and the last result."""
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def masked_layout(problem: routecalc.RoutingProblem, blocks: list[Candidates]) -> None:
    """The layout not taken: every candidate as a policy over all categories, one expected_values call."""
    allc = concat(blocks)
    ch = chain_table(allc, 1, 0.0)  # (N, 1, 1, S): broadcast to every category
    C = len(problem.tasks.names)
    wide = type(ch)(
        names=ch.names,
        kinds=ch.kinds,
        model=np.repeat(ch.model, C, axis=1),
        gated=np.repeat(ch.gated, C, axis=1),
        retries=np.repeat(ch.retries, C, axis=1),
        on_reject=np.repeat(ch.on_reject, C, axis=1),
        on_failure=np.repeat(ch.on_failure, C, axis=1),
        lane_weight=np.ones((len(allc), C, 1)),
        backoff_s=ch.backoff_s,
        human_cost=ch.human_cost,
        human_latency_s=ch.human_latency_s,
    )
    routecalc.expected_values(problem.with_chains(wide))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--models", type=int, default=12)
    args = parser.parse_args()
    C, M = args.categories, args.models

    ws = routecalc.validate_worksheet(optimize_worksheet(C, M))
    problem = compile_worksheet(ws, include_strongest=False)
    score_wall, score_cpu, cats = best(lambda: score_categories(ws, problem, 3, "cost"), args.repeat)
    n = sum(len(c.cands) for c in cats)
    opt_wall, opt_cpu, opt = best(lambda: optimize(ws), args.repeat)
    assert opt.ok
    q = round(opt.totals["quality"] + 0.002, 4)
    glob_wall, glob_cpu, _glob = best(lambda: optimize(ws, min_quality=q), 1)
    budgeted = routecalc.validate_worksheet(optimize_worksheet(C, M, budgets=True))
    p95_wall, p95_cpu, checked = best(lambda: optimize(budgeted), 1)
    n_checked = sum(c.verified for c in checked.categories)

    small = routecalc.validate_worksheet(optimize_worksheet(C, 6))
    sp = compile_worksheet(small, include_strongest=False)
    small_blocks = [c.cands for c in score_categories(small, sp, 3, "cost")]
    _blocks_wall, blocks_cpu, _ = best(lambda: score_categories(small, sp, 3, "cost"), args.repeat)
    _masked_wall, masked_cpu, _ = best(lambda: masked_layout(sp, small_blocks), 1)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average {load:.1f} when run (wall time grows with it, CPU time less)"
    )
    print()
    print("| step | work | wall (best of runs) | CPU |")
    print("|---|---|---|---|")
    print(
        f"| enumerate + score (expected values) | {C} categories x {M} models: {n:,} routes of up to 3 models "
        f"| {score_wall:.2f} s | {score_cpu:.2f} s |"
    )
    print(
        f"| `optimize`: best route per category + frontier | the same, no P95 budgets | {opt_wall:.2f} s | {opt_cpu:.2f} s |"
    )
    print(f"| `optimize --min-quality {q}` (global, exact) | the same | {glob_wall:.2f} s | {glob_cpu:.2f} s |")
    print(
        f"| `optimize` with P95 budgets (20 s) | {n_checked} routes checked by Monte Carlo, 200,000 requests "
        f"| {p95_wall:.1f} s | {p95_cpu:.1f} s |"
    )
    print()
    print(
        f"Layout ({C} categories x 6 models, {sum(len(b) for b in small_blocks):,} routes, CPU): per-category "
        f"blocks {blocks_cpu * 1e3:.0f} ms; every route evaluated in every category and masked "
        f"{masked_cpu * 1e3:.0f} ms ({masked_cpu / blocks_cpu:.0f}x)."
    )


if __name__ == "__main__":
    main()
