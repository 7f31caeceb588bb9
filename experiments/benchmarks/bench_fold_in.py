"""Time folding new achievements into a large graph (the serving path after a POST), against rebuilding it.

Usage: python experiments/benchmarks/bench_fold_in.py [--participants 1000000] [--events 30000]
       [--achievements 4500000] [--batches 20] [--batch 10] [--rebuild]

Builds a synthetic graph of the given size (no world generation: random rows), fills the caches a serving
worker has after its first requests, then folds in `--batches` batches of `--batch` new achievements dated
today one after the other, as the per-request sync does. Prints JSON: graph size, build seconds, fold-in
milliseconds per batch (p50, p95, max) beside one deep copy of the rows (the machine's memory-bandwidth
yardstick), whether `known_before(today)` still holds (so requests never cut the
graph), one participant's `recommend` latency with popularity before and after, and with `--rebuild` the
seconds a rebuild from tables takes for comparison.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from recommender.graph import AchievementsGraph
from training.popularity import PopularityRecommender

TODAY = pd.Timestamp("2025-01-10")


def tables(participants: int, events: int, achievements: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    pid = pd.array([f"P{i:07d}" for i in range(participants)], dtype="string")
    eid = pd.array([f"E{i:05d}" for i in range(events)], dtype="string")
    starts = pd.Timestamp("2022-09-01") + pd.to_timedelta(rng.integers(0, 1000, events), unit="D")
    p = rng.integers(0, participants, achievements)
    e = rng.integers(0, events, achievements)
    results = np.array(["registered", "participant", "completed", "finalist", "prize_winner", "winner"])
    return {
        "participants": pd.DataFrame({"participant_id": pid,
                                      "region_code": pd.array(rng.choice(["77", "16", "50"], participants),
                                                              dtype="string"),
                                      "grade": pd.array(rng.integers(5, 12, participants), dtype="Int64")}),
        "events": pd.DataFrame({
            "event_id": eid, "title": eid, "format": pd.array(["olympiad"] * events, dtype="string"),
            "level": pd.array(["school"] * events, dtype="string"),
            "competences": pd.array(["math:1"] * events, dtype="string"), "start_date": starts,
            "online": pd.array([True] * events, dtype="boolean"),
        }),
        "achievements": pd.DataFrame({
            "participant_id": pid[p], "event_id": eid[e],
            "role": pd.array(["participant"] * achievements, dtype="string"),
            "result": pd.array(results[rng.integers(0, 6, achievements)], dtype="string"),
            "date": np.minimum(starts.to_numpy()[e], (TODAY - pd.Timedelta(days=1)).to_datetime64()),
        }),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--achievements", type=int, default=4_500_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true", help="also time a rebuild from tables")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    source = tables(args.participants, args.events, args.achievements, args.seed)
    started = time.perf_counter()
    graph = AchievementsGraph.from_tables(source)
    build_seconds = time.perf_counter() - started
    model = PopularityRecommender().fit(graph)
    rng = np.random.default_rng(args.seed + 1)
    someone = str(graph.participant_index[0])
    model.recommend([someone], 10, as_of=TODAY, graph=graph)  # fills the caches a serving worker holds
    graph.participant_event(weighted=True)
    _ = graph.registrations_per_event, graph.latest_date

    def timed_recommend(g: AchievementsGraph) -> float:
        t = time.perf_counter()
        model.recommend([someone], 10, as_of=TODAY, graph=g)
        return (time.perf_counter() - t) * 1000

    before_ms = float(np.median([timed_recommend(graph) for _ in range(5)]))
    fold_ms = []
    for _ in range(args.batches):
        people = rng.integers(0, args.participants, args.batch)
        events = rng.integers(0, args.events, args.batch)
        rows = pd.DataFrame({
            "participant_id": pd.array(graph.participant_index[people], dtype="string"),
            "event_id": pd.array(graph.event_index[events], dtype="string"),
            "role": pd.array(["volunteer"] * args.batch, dtype="string"),
            "result": pd.array(["registered"] * args.batch, dtype="string"),
            "date": pd.to_datetime([TODAY] * args.batch),
        })
        t = time.perf_counter()
        graph = graph.with_achievements(rows)
        fold_ms.append((time.perf_counter() - t) * 1000)
    after_ms = float(np.median([timed_recommend(graph) for _ in range(5)]))
    copies = []
    for _ in range(5):  # the memory-bandwidth yardstick on this machine now: one copy of the rows
        t = time.perf_counter()
        graph.achievements.copy(deep=True)
        copies.append((time.perf_counter() - t) * 1000)
    out = {
        "participants": graph.n_participants, "events": graph.n_events, "achievements": len(graph.achievements),
        "build_seconds": round(build_seconds, 1),
        "fold_in_ms": {"batch": args.batch, "p50": round(float(np.percentile(fold_ms, 50)), 1),
                       "p95": round(float(np.percentile(fold_ms, 95)), 1), "max": round(max(fold_ms), 1)},
        "rows_copy_ms": round(float(np.median(copies)), 1),
        "known_before_today_after_fold_in": graph.known_before(TODAY),
        "recommend_one_ms": {"before": round(before_ms, 1), "after_fold_ins": round(after_ms, 1)},
    }
    if args.rebuild:
        t = time.perf_counter()
        AchievementsGraph.from_tables({**source, "achievements": graph.achievements})
        out["rebuild_seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
