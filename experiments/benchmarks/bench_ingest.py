"""Time `trajectory ingest` into a fresh store: seconds, peak memory (RSS) and rows per second.

Usage:
  python experiments/benchmarks/bench_ingest.py AIF_OR_WORLD_DIR [...] [--store URL ...]
  python experiments/benchmarks/bench_ingest.py --participants 100000 [1000000 ...] [--seed S] [--store URL]

A world directory (from `trajectory synth`) is taken through its `aif/` folder. With --participants
the worlds are generated first (not timed). Every ingest runs in its own subprocess into a fresh store:
a new SQLite file, and for each --store postgresql URL a new database on that server, dropped after.
Peak RSS is the child's own (wait4), so runs do not mask each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPT = "from recommender.cli import main; main()"


def aif_dir(path: Path) -> Path:
    return path / "aif" if (path / "aif" / "manifest.json").exists() else path


def run_cli(args: list[str], cwd: Path) -> tuple[int, str, str, float, float]:
    """Exit code, stdout, stderr, wall seconds and peak RSS (GiB) of one `trajectory` run."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", SCRIPT, *args], stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read().decode(), err.read().decode(), seconds, usage.ru_maxrss / 1024**2


def generate(participants: int, seed: int, root: Path) -> Path:
    out = root / f"world-{participants}"
    code, _, err, seconds, rss = run_cli(
        ["synth", "--participants", str(participants), "--seed", str(seed), "--out", str(out)], root
    )
    if code != 0:
        raise SystemExit(f"synth {participants} failed: {err.strip().splitlines()[-1:]}")
    print(json.dumps({"synth": participants, "seconds": round(seconds, 1), "peak_rss_gib": round(rss, 2)}), flush=True)
    return out


class FreshPostgres:
    """A new database on the server of `url`, dropped on exit."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.name = f"bench_ingest_{uuid.uuid4().hex[:10]}"
        self.url = sa.make_url(url).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> str:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def __exit__(self, *exc: object) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def bench(dataset: Path, store_url: str, label: str, work: Path) -> dict[str, Any]:
    code, out, err, seconds, rss = run_cli(["ingest", str(dataset.resolve()), "--store", store_url], work)
    row: dict[str, Any] = {"dataset": str(dataset), "store": label}
    if code != 0:
        return {**row, "error": err.strip().splitlines()[-1:] if err.strip() else f"exit {code}"}
    printed = json.loads(out)
    report = printed["reports"][0]
    rows = report["total"]["read"]
    return {
        **row,
        "seconds": round(seconds, 1),
        "ingest_seconds": report["seconds"],
        "snapshot_seconds": printed["snapshot_seconds"],
        "peak_rss_gib": round(rss, 2),
        "rows": rows,
        "rows_per_second": round(rows / seconds),
        "tables": {name: c["read"] for name, c in report["tables"].items()},
        "total": report["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", type=Path, help="AIF dataset or synth world directories")
    parser.add_argument("--participants", nargs="*", type=int, default=[], help="generate worlds of these sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", action="append", default=[], help="also ingest into this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the embedded SQLite store")
    parser.add_argument("--work", type=Path, default=None, help="keep worlds and stores here (default: temp)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        datasets = [aif_dir(p) for p in args.datasets]
        datasets += [aif_dir(generate(n, args.seed, work)) for n in args.participants]
        results = []
        for dataset in datasets:
            if not args.no_sqlite:
                store_dir = work / f"sqlite-{uuid.uuid4().hex[:8]}"
                store_dir.mkdir()
                results.append(bench(dataset, f"sqlite:///{store_dir / 'trajectory.db'}", "sqlite", store_dir))
                print(json.dumps(results[-1]), flush=True)
                shutil.rmtree(store_dir, ignore_errors=True)
            for url in args.store:
                with FreshPostgres(url) as fresh:
                    results.append(bench(dataset, fresh, "postgresql", work))
                print(json.dumps(results[-1]), flush=True)
        print(f"{'dataset':<48} {'store':<11} {'rows':>11} {'seconds':>8} {'rows/s':>9} {'peak GiB':>9}")
        for r in results:
            if "error" in r:
                print(f"{r['dataset'][-48:]:<48} {r['store']:<11} error: {r['error']}")
                continue
            print(
                f"{r['dataset'][-48:]:<48} {r['store']:<11} {r['rows']:>11,} {r['seconds']:>8.1f} "
                f"{r['rows_per_second']:>9,} {r['peak_rss_gib']:>9.2f}"
            )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
