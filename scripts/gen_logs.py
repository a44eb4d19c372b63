"""Write a realistic synthetic request log drawn from a worksheet (routecalc.data.synth).

    python scripts/gen_logs.py worksheets/support-triage.yaml -o logs.jsonl --requests 100000 --days 30
    python scripts/gen_logs.py W.yaml -o big.parquet --requests 100000000 --shape generic   # in parts, bounded

Requests arrive following the worksheet's volume.profile (or a typical office-hours profile), take the policy's
chain (--policy, default the baseline) with the models' own latency, failures by error type and prices; one row
per call. Large logs are drawn in parts of --part requests (each part a slice of the period, its own seed) so
memory stays bounded: each part gets its slice's share of the period's traffic (weekdays, growth and spikes
counted over the whole period, the split drawn multinomially), so parts join into one month as if drawn at once;
Parquet parts are combined by a streaming copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

import routecalc
from routecalc.data.synth import OFFICE_PROFILE, hourly_intensity, synth_calls, write_log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worksheet", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True, help=".jsonl, .csv or .parquet")
    ap.add_argument("--scenario", type=Path, action="append", default=[], help="what-if overlay (repeatable)")
    ap.add_argument("--policy", default=None, help="the policy that serves the traffic (default: the baseline)")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--start", default="2026-10-01", help="UTC date the log starts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=("litellm", "generic"), default="litellm")
    ap.add_argument("--part", type=int, default=2_000_000, help="requests drawn at a time")
    ap.add_argument("--force", action="store_true", help="replace an existing file")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"{args.out} exists (use --force)", file=sys.stderr)
        return 3
    ws = routecalc.load_worksheet(args.worksheet, args.scenario)
    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.UTC)
    parts = max(1, math.ceil(args.requests / args.part))
    rows = 0
    profile = ws.volume.profile or OFFICE_PROFILE
    bounds = [start + dt.timedelta(days=args.days * i / parts) for i in range(parts + 1)]
    weight = np.array(
        [
            hourly_intensity(profile, a, (b - a).total_seconds() / 86400, start)[1].sum()
            for a, b in itertools.pairwise(bounds)
        ]
    )
    sizes = (
        np.random.default_rng(args.seed).multinomial(args.requests, weight / weight.sum())
        if parts > 1
        else [args.requests]
    )
    with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
        files = []
        for i in range(parts):
            n, t0 = int(sizes[i]), bounds[i]
            if n == 0:
                continue
            calls = synth_calls(ws, args.policy, n, start=t0, days=args.days / parts, seed=args.seed + i)
            rows += calls.n
            if args.out.suffix.lower() == ".parquet":
                files.append(write_log(calls, Path(tmp) / f"part-{i:05d}.parquet", args.shape, args.seed + i))
            else:
                write_log(calls, args.out, args.shape, args.seed + i, header=i == 0)
        if files:
            import polars as pl

            pl.scan_parquet(files).sink_parquet(args.out)
    print(f"wrote {args.out}: {rows:,} calls of {args.requests:,} requests over {args.days:g} days ({args.shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
