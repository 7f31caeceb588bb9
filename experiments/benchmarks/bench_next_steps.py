"""Time the next-step pipeline: training on a world, one participant's recommendation and the served answer.

Usage: python experiments/benchmarks/bench_next_steps.py WORLD_OR_AIF_DIR [--as-of DATE] [--requests N]
       [--model SAVED_MODEL] [--save-model PATH]

Prints JSON: graph load seconds, fit seconds per model and in all, peak RSS of this process, the latency
of `recommend` for one participant at a time (median, p95, p99 over N random participants with history;
wall clock and this process's CPU time, which a busy machine inflates less), with popularity per region
and grade beside it as the baseline, and the latency of the whole served answer (`services.next_steps`:
rules, ranking, SHAP drivers, reasons) with the LightGBM pipeline. `--model` times a saved next-step model
instead of fitting ALS and the pipeline (popularity is always fitted as the baseline).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from serving.services.next_steps import next_steps
from serving.state import ServingState
from training.config import TrainConfig
from training.job import build_models
from training.popularity import PopularityRecommender
from training.reranker import RerankerRecommender


def latency(call: Callable[[str], object], people: np.ndarray) -> dict[str, float]:
    """Milliseconds per call, one participant at a time, after one warm-up call (per-date caches, as a server)."""
    call(str(people[0]))
    wall, cpu = [], []
    for pid in people:
        w, c = time.perf_counter(), time.process_time()
        call(str(pid))
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return {"p50_ms": float(np.percentile(wall, 50)), "p95_ms": float(np.percentile(wall, 95)),
            "p99_ms": float(np.percentile(wall, 99)), "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p95_ms": float(np.percentile(cpu, 95))}


def one_participant(model: EventRecommender, as_of: str) -> Callable[[str], object]:
    def call(participant_id: str) -> object:
        return model.recommend([participant_id], 10, as_of=as_of)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("--as-of", default=None, help="serve as of this date (default: the export date)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="a saved next-step model to time instead of fitting")
    parser.add_argument("--save-model", type=Path, default=None, help="save the fitted LightGBM pipeline here")
    args = parser.parse_args()
    aif = args.world / "aif" if (args.world / "aif").is_dir() else args.world

    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(aif)
    load_seconds = time.perf_counter() - started
    manifest = json.loads((aif / "manifest.json").read_text(encoding="utf-8"))
    as_of = args.as_of or str(manifest["exported_at"])[:10]

    fit_seconds: dict[str, float] = {}
    if args.model is not None:
        loaded = EventRecommender.load(args.model)
        models: dict[str, EventRecommender] = {PopularityRecommender.name: PopularityRecommender(), loaded.name: loaded}
    else:
        models = build_models(TrainConfig(seed=args.seed))
    for name, model in models.items():
        if name == PopularityRecommender.name or args.model is None:
            t = time.perf_counter()
            model.fit(graph)
            fit_seconds[name] = time.perf_counter() - t
        else:
            model.graph_ = graph
    pipeline = next((m for m in models.values() if isinstance(m, RerankerRecommender)), None)
    if args.save_model is not None and pipeline is not None:
        pipeline.save(args.save_model)

    rng = np.random.default_rng(args.seed)
    active = graph.achievements["participant_id"].astype(str).unique()
    people = rng.choice(active, min(args.requests, len(active)), replace=False)
    recommend = {name: latency(one_participant(model, as_of), people) for name, model in models.items()}
    served = {}
    if pipeline is not None:
        state = ServingState(graph, pipeline, f"next-steps:{pipeline.name}", None,
                             fixed_today=pd.Timestamp(as_of).date())
        served[pipeline.name] = latency(lambda pid: next_steps(state, pid, 10), people)
    print(json.dumps({
        "world": str(args.world), "participants": graph.n_participants, "events": graph.n_events,
        "achievements": len(graph.achievements), "as_of": as_of,
        "load_seconds": round(load_seconds, 1), "fit_seconds": {k: round(v, 1) for k, v in fit_seconds.items()},
        "fit_seconds_total": round(sum(fit_seconds.values()), 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "recommend_one_participant": recommend,
        "next_steps_answer_with_reasons": served,
    }, indent=2))


if __name__ == "__main__":
    main()
