"""Benchmark: adapters + entity resolution on synthetic multi-source data with known identities.

Generates a world, emits its achievements as the three source formats with realistic mess
(recommender.synth.sources), then times the product's path from the source files: the three
adapters to AIF and the resolution of their participant records into persons. Prints JSON with
the record count, pairwise precision and recall against the known identities, the row accounting
and the seconds of each stage. No personal data is printed.

    .venv/bin/python experiments/benchmarks/bench_entity_resolution.py --participants 260000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from recommender.adapters import convert
from recommender.identity.pipeline import resolve_datasets
from recommender.identity.resolve import ResolutionConfig, pair_quality
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.sources import COURSE_FILE, HACKATHON_FILE, OLYMPIAD_FILE, TRUTH_FILE, emit_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=260_000, help="world size (about 3.9 records each)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temporary dir)")
    parser.add_argument("--window", type=int, default=ResolutionConfig().window)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-er-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, object] = {"participants_in_world": args.participants, "seed": args.seed, "cpus": os.cpu_count()}
    seconds: dict[str, float] = {}
    try:
        t = time.perf_counter()
        if not (work / "world" / "truth" / "config.json").is_file():
            generate_world(SynthConfig(participants=args.participants, seed=args.seed), work / "world")
        seconds["setup_world"] = time.perf_counter() - t
        t = time.perf_counter()
        truth_path = work / "sources" / TRUTH_FILE
        if truth_path.is_file():  # a kept workdir: the same sources again
            known = pd.read_csv(truth_path, dtype=str)
            emitted = {"records": len(known), "persons": int(known["participant_id"].nunique())}
        else:
            emitted = emit_sources(work / "world", work / "sources", seed=args.seed)
        seconds["setup_emit_sources"] = time.perf_counter() - t

        started = time.perf_counter()
        accounting = {}
        aif_dirs = []
        for name in (OLYMPIAD_FILE, HACKATHON_FILE, COURSE_FILE):
            t = time.perf_counter()
            conversion = convert(work / "sources" / name)
            target = work / "aif" / Path(name).stem
            report = conversion.write(target)
            aif_dirs.append(target)
            counts = report["total"]
            accounting[Path(name).stem] = {k: counts[k] for k in ("read", "loaded", "quarantined")}
            seconds[f"adapt_{Path(name).stem}"] = time.perf_counter() - t
        t = time.perf_counter()
        resolved = resolve_datasets(aif_dirs, work / "resolved", ResolutionConfig(window=args.window))
        seconds["resolve"] = time.perf_counter() - t
        seconds["total_adapt_and_resolve"] = time.perf_counter() - started

        record_map = pd.read_csv(work / "resolved" / "record_map.csv", dtype=str)
        truth = pd.read_csv(work / "sources" / TRUTH_FILE, dtype=str).set_index("record_id")["participant_id"]
        quality = pair_quality(
            record_map["participant_id"].to_numpy(), truth.reindex(record_map["record_id"]).to_numpy()
        )
        source_rows = sum(a["read"] for a in accounting.values())
        out.update({
            "source_records": source_rows,
            "source_records_emitted": emitted["records"],
            "persons_in_sources": emitted["persons"],
            "rows": {
                "per_source": accounting,
                "all_accounted": all(a["read"] == a["loaded"] + a["quarantined"] for a in accounting.values()),
                "records_resolved": resolved["records"],
                "participants": resolved["participants"],
                "merged_into_others": resolved["tables"]["participants"]["merged"],
            },
            "candidate_pairs": resolved["candidate_pairs"],
            "review_queue": resolved["review_queue"],
            "precision": round(float(quality["precision"]), 5),
            "recall": round(float(quality["recall"]), 5),
            "pairs": {k: quality[k] for k in ("true_pairs", "predicted_pairs", "correct_pairs")},
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        })
        print(json.dumps(out, indent=2))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
