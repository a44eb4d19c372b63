"""Wall time of the time engine (``routecalc simulate``) on a month at 1.2 M requests/month, and how its results
move with the bucket size.

    python benchmarks/bench_timeline.py [--runs 3] [--days 30]

Workload: ``worksheets/support-month.yaml`` (1,200,000 requests/month shaped by its hourly / weekly profile, +8 %
growth and a 2.5x launch day: about 1.32 M requests in 30 days), policy ``routine+fallback``, seed 0:

* one month with every time effect of the worksheet on (budget rule, provider outages, circuit breakers, a rate
  limit that spills at peak) and with every effect off (the flat per-request walk in arrival order), per engine;
* ``simulate_month``: the month plus the same month with each effect switched off (what the CLI runs);
* the month at bucket sizes 15 s to 15 min: the totals a user sees.

Prints Markdown tables; best and median wall time of ``--runs`` and the best CPU time (which moves less when the
cores are shared). Load average before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORKSHEET = ROOT / "worksheets" / "support-month.yaml"
POLICY = "routine+fallback"


def timed(fn, runs: int) -> tuple[list[float], list[float], object]:
    """Wall and CPU seconds of each run (CPU time moves less when other people's jobs share the cores)."""
    times, cpu, out = [], [], None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    import routecalc
    from routecalc.engine.compiled import numba_available
    from routecalc.engine.timeline import Effects, run_timeline
    from routecalc.month import compile_effects, month_clock, simulate_month

    ws = routecalc.load_worksheet(WORKSHEET)
    problem = routecalc.compile_worksheet(ws)
    p = problem.chains.names.index(POLICY)
    clock = month_clock(ws, args.days, 60.0, 0)
    effects, _ = compile_effects(ws, problem, args.days, 0)
    engines = ["numpy"] + (["numba"] if numba_available() else [])
    if "numba" in engines:  # load (and, the first time, compile) the kernel outside the timings
        run_timeline(problem, p, month_clock(ws, 1, 60.0, 0), effects, 0, "numba")

    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; cpus: {os.cpu_count()}; "
          f"numpy {np.__version__}")  # fmt: skip
    print()
    print(f"Time engine, {args.days} days of `{WORKSHEET.relative_to(ROOT)}` ({POLICY}), seed 0:")
    print()
    print("| run | engine | requests | walks | best wall | median wall | best CPU |")
    print("|---|---|---|---|---|---|---|")
    for label, fx in (("every effect on", effects), ("every effect off", Effects())):
        for eng in engines:
            times, cpu, tl = timed(lambda fx=fx, eng=eng: run_timeline(problem, p, clock, fx, 0, eng), args.runs)
            print(f"| {label} | {eng} | {tl.total('requests'):,.0f} | {tl.walks:,} | {min(times):.2f} s | "
                  f"{statistics.median(times):.2f} s | {min(cpu):.2f} s |")  # fmt: skip
    times, cpu, r = timed(lambda: simulate_month(ws, POLICY, args.days, 0), args.runs)
    print(f"| `simulate_month`: the month + {len(r.effects)} with an effect off (shared draws) | {r.engine} | "
          f"{r.total.requests:,} | {r.walks:,} | {min(times):.2f} s | {statistics.median(times):.2f} s | "
          f"{min(cpu):.2f} s |")  # fmt: skip
    print()
    print("Bucket size (arrival rates per bucket, load measured over the previous bucket; breakers, rate limits and")
    print("budget checks do not depend on it), the same seed:")
    print()
    print("| bucket | requests | spend | quality | failed | P99 | spilled | downgraded | breaker openings | CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for bucket in (15.0, 60.0, 300.0, 900.0):
        c = month_clock(ws, args.days, bucket, 0)
        t0 = time.process_time()
        tl = run_timeline(problem, p, c, effects, 0, engines[-1])
        dt = time.process_time() - t0
        n = tl.total("requests")
        from routecalc.engine.histogram import hist_quantiles

        p99 = float(hist_quantiles(tl.hist.sum(axis=0), [0.99], tl.bins_per_decade)[0])
        print(f"| {bucket:g} s | {n:,.0f} | ${tl.total('spend'):,.0f} | "
              f"{(tl.total('good') + tl.total('human')) / n:.2%} | {tl.total('failed') / n:.4%} | {p99:.1f} s | "
              f"{tl.total('spilled') / n:.3%} | {tl.total('downgraded') / n:.1%} | {len(tl.breaker_open):,} | "
              f"{dt:.2f} s |")  # fmt: skip
    print()
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
