"""Time of `--uncertainty` (1,000 posterior draws) on each shipped worksheet, and end to end on the CLI.

    python benchmarks/bench_uncertainty.py [--runs 5] [--draws 1000]

Only support-triage ships with eval counts, so every worksheet is also run with counts added in memory: each pass
rate becomes {passed: round(1000 r), of: 1000} and each validator rate {k: round(200 r), of: 200}, which draws
every pass rate and validator rate there is (the most work the independent model can ask for). A third variant
gives every category a latent-difficulty correlation of 0.8: above 0.5 each draw gets its own quadrature nodes
(about 280 states per category instead of 1), the slowest joint law. Times are of
``routecalc.decide.uncertainty.analyse`` alone (draws, batched engine runs, summaries and the sample-size advice;
the comparison it starts from is computed once beforehand), best and median of ``--runs``, and the process's
peak RSS so far (a high-water mark: it includes the Monte Carlo run of each comparison, 20,000 requests). Then ``routecalc compare`` with and without ``--uncertainty`` in a
subprocess, as a user would run it. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import routecalc
from routecalc.decide.uncertainty import analyse, plan_of
from routecalc.worksheet import Worksheet
from routecalc.worksheet.schema import CatchRate, FalseRejectRate, Outcomes, PassRate

ROOT = Path(__file__).resolve().parent.parent


def with_counts(ws: Worksheet, correlation: float | None = None) -> Worksheet:
    """Every pass rate and validator rate with counts (same rates to 3 decimals); optionally latent difficulty."""
    tasks = []
    for t in ws.tasks:
        update: dict = {
            "pass_rates": {
                m: PassRate.model_validate({"passed": round(r.rate * 1000), "of": 1000})
                for m, r in t.pass_rates.items()
            }
        }
        if t.validator is not None:
            v = t.validator
            update["validator"] = v.model_copy(
                update={
                    "catch": CatchRate.model_validate({"caught": round(v.catch.rate * 200), "of": 200}),
                    "false_reject": FalseRejectRate.model_validate(
                        {"rejected": round(v.false_reject.rate * 200), "of": 200}
                    ),
                }
            )
        if correlation is not None:
            update["outcomes"] = Outcomes.model_validate({"correlation": correlation})
        tasks.append(t.model_copy(update=update))
    return ws.model_copy(update={"tasks": tasks})


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1_000)
    args = parser.parse_args()
    print(f"`analyse`, {args.draws:,} draws, {args.runs} runs each:\n")
    print("| worksheet | variant | counted inputs | P x C x S | best | median | peak RSS so far |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted((ROOT / "worksheets").glob("*.yaml")):
        shipped = routecalc.load_worksheet(path)
        variants = [("as shipped", shipped)] if plan_of(shipped).has_counts else []
        variants += [("all rates counted", with_counts(shipped)), ("counted, rho 0.8", with_counts(shipped, 0.8))]
        for label, ws in variants:
            c = routecalc.compare(ws, samples=20_000, seed=0)
            analyse(ws, c, args.draws, seed=0)  # warm-up: imports, first-touch allocations
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                analyse(ws, c, args.draws, seed=0)
                times.append(time.perf_counter() - t0)
            P, C, _, S = c.problem.chains.shape
            print(
                f"| {path.stem} | {label} | {len(plan_of(ws).counted)} | {P} x {C} x {S} | {min(times):.3f} s | "
                f"{statistics.median(times):.3f} s | {rss_mib():.0f} MiB |"
            )
    exe = shutil.which("routecalc") or str(Path(sys.executable).parent / "routecalc")
    sheet = "worksheets/support-triage.yaml"
    print(
        f"\n`routecalc compare {sheet}` end to end (subprocess, default 200,000 Monte Carlo requests), {args.runs} runs:\n"
    )
    print("| command | median | min | max |")
    print("|---|---|---|---|")
    for extra in ([], ["--uncertainty"]):
        cmd = [exe, "compare", str(ROOT / sheet), *extra]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        shown = " ".join(["routecalc compare", sheet, *extra])
        print(f"| `{shown}` | {statistics.median(times):.2f} s | {min(times):.2f} s | {max(times):.2f} s |")


if __name__ == "__main__":
    main()
