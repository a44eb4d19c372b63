"""Reading a large long-format eval file: rows per second and peak memory of ``routecalc.data.evals.read_evals``.

    python benchmarks/bench_evals.py [--rows 10000000] [--dir /tmp] [--formats csv,parquet]

Generates (seeded, numpy) a synthetic eval file of ``--rows`` rows: rows/2 prompts x 2 models, 50 categories,
correlated pass/fail, tokens in/out, latency and a router score; writes it as CSV and Parquet (skipped when
already there with the same size), then reads each in a fresh subprocess and prints a Markdown table of wall
time, rows/s and peak RSS (before reading: interpreter + imports; after: the whole read). The file is read with
the default options, so every row is validated and the per-prompt matrix is built.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
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
print(before, peak_kib(), secs, d.n_prompts, d.report.records)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--formats", default="csv,parquet")
    args = parser.parse_args()
    formats = args.formats.split(",")
    paths = {f: args.dir / f"routecalc-bench-evals-{args.rows}.{f}" for f in formats}
    if not all(p.exists() for p in paths.values()):
        t0 = time.perf_counter()
        df = generate(args.rows)
        for fmt, path in paths.items():
            df.write_csv(path) if fmt == "csv" else df.write_parquet(path)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s (seed {SEED})", file=sys.stderr)
        del df
    print("| file | size | wall time | rows/s | peak RSS before reading | peak RSS after |")
    print("|---|---|---|---|---|---|")
    for fmt, path in paths.items():
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
            capture_output=True,
            text=True,
            check=True,
        )
        before, after, secs, prompts, records = out.stdout.split()
        size = path.stat().st_size / 2**20
        rate = int(records) / float(secs)
        print(
            f"| {int(records):,} rows ({int(prompts):,} prompts x 2 models), {fmt} | {size:,.0f} MiB "
            f"| {float(secs):.1f} s | {rate / 1e6:.2f} M | {int(before) / 1024:.0f} MiB | {int(after) / 1024:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
