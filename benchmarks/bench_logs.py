"""Reading request logs at scale: rows per second and peak memory of ``routecalc calibrate logs``' reader.

    python benchmarks/bench_logs.py [--rows 10000000 100000000] [--small 1000000] [--dir /tmp/routecalc-bench-logs]

Generates, once (reused when there), synthetic logs drawn from ``worksheets/support-triage.yaml`` through its
``tiered+fallback`` policy with ``scripts/gen_logs.py`` (office-hours profile, the models' own latency and
failures, one row per call):

* ``--rows`` requests (one or more sizes) in the generic shape as Parquet with native types (timestamps as
  datetimes): the scale test, peak memory flat across sizes;
* ``--small`` requests as LiteLLM spend logs in each of JSONL, CSV and Parquet: what each format costs per row
  (JSONL and CSV are text: every timestamp and number is parsed).

Then reads each file in a fresh subprocess (``read_logs`` and ``calibrate_logs``: every row validated, every
aggregate built) and prints a Markdown table of wall time, rows/s and peak RSS (before reading: interpreter and
imports; after: the whole read). Memory is bounded by the chunk (2^19 rows) and the aggregates, not the file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKSHEET = ROOT / "worksheets" / "support-triage.yaml"
POLICY = "tiered+fallback"

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from routecalc.data.logs import read_logs
from routecalc.data.logcal import calibrate_logs
import polars  # imported before the baseline so the table shows what reading itself costs

def peak_kib():  # VmHWM: peak RSS of this process
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

before = peak_kib()
t0 = time.perf_counter()
d = read_logs({path!r})
cal = calibrate_logs(d)
secs = time.perf_counter() - t0
assert d.report.bad_rows == 0, d.report.lines()
print(before, peak_kib(), secs, d.report.records, len(cal.categories))
"""


def ensure(path: Path, requests: int, shape: str) -> None:
    if path.exists():
        return
    cmd = [sys.executable, str(ROOT / "scripts" / "gen_logs.py"), str(WORKSHEET), "-o", str(path)]
    cmd += ["--policy", POLICY, "--requests", str(requests), "--days", "30", "--shape", shape, "--seed", "1"]
    print(f"generating {path.name} ...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def measure(path: Path) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    before, after, secs, rows = int(out[0]), int(out[1]), float(out[2]), int(out[3])
    return before / 1024, after / 1024, secs, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[1e7, 1e8], help="requests in the Parquet scale test(s)")
    ap.add_argument("--small", type=float, default=1e6, help="requests in each LiteLLM-shaped file")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/routecalc-bench-logs"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    files = [(args.dir / f"litellm-{int(args.small)}{ext}", int(args.small), "litellm") for ext in (".jsonl", ".csv")]
    files.append((args.dir / f"litellm-{int(args.small)}.parquet", int(args.small), "litellm"))
    files += [(args.dir / f"generic-{int(n)}.parquet", int(n), "generic") for n in args.rows]
    for path, n, shape in files:
        ensure(path, n, shape)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    print("| file | shape | size | rows | wall time | rows/s | peak RSS before reading | peak RSS after |")
    print("|---|---|---|---|---|---|---|---|")
    for path, _, shape in files:
        before, after, secs, rows = measure(path)
        size = path.stat().st_size / 2**20
        print(
            f"| {path.name} | {shape} | {size:,.0f} MiB | {rows:,} | {secs:,.1f} s | {rows / secs / 1e6:.2f} M "
            f"| {before:,.0f} MiB | {after:,.0f} MiB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
