"""Time `trajectory synth` at several sizes: seconds, peak memory (RSS) and row counts per size.

Usage: python experiments/benchmarks/bench_synth.py [N ...] [--seed S] [--out DIR] [--keep]
Each size runs in its own subprocess so its peak RSS is measured alone (RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = "from recommender.cli import main; main()"


def run_one(participants: int, seed: int, out: Path) -> dict[str, object]:
    command = [sys.executable, "-c", SCRIPT, "synth", "--participants", str(participants), "--seed", str(seed),
               "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        return {"participants": participants, "error": done.stderr.strip().splitlines()[-1:]}
    summary = json.loads(done.stdout)
    return {
        "participants": participants,
        "seconds": round(seconds, 1),
        # ru_maxrss of children is the largest child so far: sizes run in increasing order.
        "peak_rss_gib": round(max(peak_kib, before) / 1024**2, 2),
        "stage_seconds": summary["seconds"],
        "rows": summary["aif"],
        "registrations": summary["truth"]["registrations"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep worlds under this directory")
    args = parser.parse_args()
    rows = []
    for n in sorted(args.sizes):
        base = args.out or Path(tempfile.mkdtemp(prefix="bench_synth_"))
        out = base / f"world_{n}"
        row = run_one(n, args.seed, out)
        if args.out is None:
            shutil.rmtree(base, ignore_errors=True)
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print(f"{'participants':>12} {'seconds':>8} {'peak GiB':>9} {'achievements':>13} {'events':>7} {'teams':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['participants']:>12} error: {r['error']}")
            continue
        rr = r["rows"]
        assert isinstance(rr, dict)
        print(f"{r['participants']:>12} {r['seconds']:>8} {r['peak_rss_gib']:>9} {rr['achievements']:>13} "
              f"{rr['events']:>7} {rr['teams']:>7}")


if __name__ == "__main__":
    main()
