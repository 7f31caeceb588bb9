"""Time the next-step pipeline: training on a world, and one participant's recommendation in-process.

Usage: python experiments/benchmarks/bench_next_steps.py WORLD_OR_AIF_DIR [--as-of DATE] [--requests N]

Prints JSON: graph load seconds, fit seconds per model and in all, peak RSS of this process, and the
latency of `recommend` for one participant at a time (median, p95, p99 over N random participants with
history), with popularity per region and grade beside it as the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from recommender.graph import AchievementsGraph
from training.config import TrainConfig
from training.job import build_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("--as-of", default=None, help="serve as of this date (default: the export date)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    aif = args.world / "aif" if (args.world / "aif").is_dir() else args.world

    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(aif)
    load_seconds = time.perf_counter() - started
    manifest = json.loads((aif / "manifest.json").read_text(encoding="utf-8"))
    as_of = args.as_of or str(manifest["exported_at"])[:10]

    fit_seconds: dict[str, float] = {}
    models = build_models(TrainConfig(seed=args.seed))
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(graph)
        fit_seconds[name] = time.perf_counter() - t

    rng = np.random.default_rng(args.seed)
    active = graph.achievements["participant_id"].astype(str).unique()
    people = rng.choice(active, min(args.requests, len(active)), replace=False)
    latency: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        model.recommend([str(people[0])], 10, as_of=as_of)  # warm the per-date caches, as a server would
        times = []
        for pid in people:
            t = time.perf_counter()
            model.recommend([str(pid)], 10, as_of=as_of)
            times.append((time.perf_counter() - t) * 1000)
        latency[name] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                         "p99_ms": float(np.percentile(times, 99))}
    print(json.dumps({
        "world": str(args.world), "participants": graph.n_participants, "events": graph.n_events,
        "achievements": len(graph.achievements), "as_of": as_of,
        "load_seconds": round(load_seconds, 1), "fit_seconds": {k: round(v, 1) for k, v in fit_seconds.items()},
        "fit_seconds_total": round(sum(fit_seconds.values()), 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "recommend_one_participant": latency,
    }, indent=2))


if __name__ == "__main__":
    main()
