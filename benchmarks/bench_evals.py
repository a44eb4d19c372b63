"""Reading a large long-format eval file: rows per second and peak memory of ``routecalc.data.evals.read_evals``.

    python benchmarks/bench_evals.py [--rows 1000000,10000000] [--dir /tmp] [--formats csv,parquet]
                                     [--repeat 3] [--baseline REV]

Generates (seeded, numpy) a synthetic eval file of ``--rows`` rows: rows/2 prompts x 2 models, 50 categories,
correlated pass/fail, tokens in/out, latency and a router score; writes it as CSV and Parquet (skipped when
already there), then reads each ``--repeat`` times, each in a fresh subprocess, and prints a Markdown table of the
median wall time, rows/s and peak RSS (VmHWM: before reading = interpreter + imports; after = the whole read), and
the size of the arrays read_evals returns (the result itself, for comparison with the peak). The file is read with
the default options, so every row is validated and the per-prompt matrix is built.

``--baseline REV`` also reads every file with the code of git revision REV (exported with ``git archive`` to a
temporary directory), alternating with this tree's code, so both are measured on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 20260101

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from routecalc.data.evals import read_evals
import polars  # imported before the baseline so the table shows what reading itself costs

def peak_kib():  # VmHWM: peak RSS of this process (reset by exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

before = peak_kib()
t0 = time.perf_counter()
d = read_evals({path!r})
secs = time.perf_counter() - t0
assert d.report.bad_rows == 0, d.report.lines()
arrays = (d.category, d.passed, d.tokens_in, d.tokens_out, d.latency_s, d.cost, d.router_score)
result = sum(a.nbytes for a in arrays if a is not None)
print(before, peak_kib(), secs, d.n_prompts, d.report.records, result)
"""


def generate(rows: int, seed: int = SEED) -> Any:  # a polars DataFrame (polars is imported lazily)
    """The synthetic eval rows as a polars DataFrame (rows/2 prompts x 2 models), same seed, same file."""
    import polars as pl

    rng = np.random.default_rng(seed)
    prompts = rows // 2
    cat = rng.integers(0, 50, prompts)
    z = rng.standard_normal(prompts)  # latent difficulty: the two models' outcomes are correlated
    small = (0.6 * z + 0.8 * rng.standard_normal(prompts)) < 0.5
    strong = (0.6 * z + 0.8 * rng.standard_normal(prompts)) < 1.2
    tokens_in = np.round(np.exp(rng.normal(6.5, 0.8, prompts)))
    ids = pl.Series("i", np.arange(prompts)).cast(pl.String)
    base = pl.DataFrame(
        {
            "prompt_id": "p-" + ids,
            "category": "cat-" + pl.Series(cat).cast(pl.String).str.pad_start(2, "0"),
            "tokens_in": tokens_in.astype(np.int64),
            "router_score": np.round(1 / (1 + np.exp(-z)), 4),
        }
    )
    frames = []
    for name, passed, out_mu, lat_mu in (("small-model", small, 5.0, 0.0), ("strong-model", strong, 5.5, 1.0)):
        frames.append(
            base.with_columns(
                pl.lit(name).alias("model"),
                pl.Series("passed", passed.astype(np.int8)),
                pl.Series("tokens_out", np.round(np.exp(rng.normal(out_mu, 0.6, prompts))).astype(np.int64)),
                pl.Series("latency_s", np.round(np.exp(rng.normal(lat_mu, 0.5, prompts)), 3)),
            )
        )
    cols = ["prompt_id", "category", "model", "passed", "tokens_in", "tokens_out", "latency_s", "router_score"]
    return pl.concat(frames).select(cols)


def files(rows: int, directory: Path, formats: list[str]) -> dict[str, Path]:
    """The benchmark files for ``rows`` rows, generated unless already there."""
    paths = {f: directory / f"routecalc-bench-evals-{rows}.{f}" for f in formats}
    if not all(p.exists() for p in paths.values()):
        t0 = time.perf_counter()
        df = generate(rows)
        for fmt, path in paths.items():
            df.write_csv(path) if fmt == "csv" else df.write_parquet(path)
        print(f"generated {rows:,} rows in {time.perf_counter() - t0:.1f} s (seed {SEED})", file=sys.stderr)
    return paths


def read_once(root: Path, path: Path) -> tuple[int, int, float, int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(root), path=str(path))],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after, secs, prompts, records, result = out.stdout.split()
    return int(before), int(after), float(secs), int(prompts), int(records), int(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="10000000", help="comma-separated row counts")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--repeat", type=int, default=1, help="reads per file and code (median reported)")
    parser.add_argument("--baseline", help="git revision to measure too, e.g. the commit before a change")
    args = parser.parse_args()
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="routecalc-bench-baseline-") as tmp:
        codes = [("this tree", ROOT)]
        if args.baseline:
            rev = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline], capture_output=True, text=True
            )
            if rev.returncode:
                sys.exit(f"--baseline: not a git revision: {args.baseline}")
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            codes.insert(0, (f"{rev.stdout.strip()} (baseline)", Path(tmp)))
        print(
            f"| code | file | size | wall time (median of {args.repeat}) | rows/s | peak RSS before reading "
            "| peak RSS after | result arrays |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for rows in (int(r) for r in args.rows.split(",")):
            for fmt, path in files(rows, args.dir, formats).items():
                runs: dict[str, list[tuple[int, int, float, int, int, int]]] = {name: [] for name, _ in codes}
                for _ in range(args.repeat):
                    for name, root in codes:  # alternate, so that a change in the machine's load hits both
                        runs[name].append(read_once(root, path))
                size = path.stat().st_size / 2**20
                for name, _ in codes:
                    before, _, _, prompts, records, result = runs[name][0]
                    secs = statistics.median(r[2] for r in runs[name])
                    after = statistics.median(r[1] for r in runs[name])
                    print(
                        f"| {name} | {records:,} rows ({prompts:,} prompts x 2 models), {fmt} | {size:,.0f} MiB "
                        f"| {secs:.1f} s | {records / secs / 1e6:.2f} M | {before / 1024:.0f} MiB "
                        f"| {after / 1024:.0f} MiB | {result / 2**20:.0f} MiB |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
