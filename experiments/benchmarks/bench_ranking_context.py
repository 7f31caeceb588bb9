"""Size of the re-ranker's ranking context on a world, and the time to patch it after a fold-in against a rebuild.

Usage: python experiments/benchmarks/bench_ranking_context.py WORLD_OR_AIF_DIR [--as-of DATE] [--batches 10]
       [--batch 10] [--check]

Loads the world's graph, builds the ranking context at the serving date (timed, with its size per field and
tracemalloc's peak during the build), then folds in `--batches` batches of `--batch` registrations of random
participants for open events, dated the day before, and times `patch_context` for each. Prints JSON. With
`--check`, the last patched context is compared with a rebuild on the final graph (every field equal).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.ranking import RankingContext, build_context, event_side, patch_context
from recommender.eligibility import open_events
from recommender.graph import AchievementsGraph, to_timestamp


def nbytes(value: Any, seen: set[int]) -> int:
    """Bytes of the arrays under a value (each array counted once)."""
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if sp.issparse(value):
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    if isinstance(value, pd.Series):
        return int(value.memory_usage(deep=True))
    if isinstance(value, pd.Index):
        return int(value.memory_usage(deep=True))
    if hasattr(value, "__dataclass_fields__"):
        return sum(nbytes(getattr(value, f.name), seen) for f in fields(value))
    if isinstance(value, tuple):
        return sum(nbytes(v, seen) for v in value)
    return 0


def sizes_mib(ctx: RankingContext) -> dict[str, float]:
    seen = {id(ctx.events)}  # the event side is shared by every context of the date
    per_field = {f.name: nbytes(getattr(ctx, f.name), seen) / 2**20 for f in fields(ctx)}
    return {k: round(v, 1) for k, v in sorted(per_field.items(), key=lambda kv: -kv[1]) if v >= 0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    aif = args.world / "aif" if (args.world / "aif").is_dir() else args.world
    graph = AchievementsGraph.from_aif(aif)
    manifest = json.loads((aif / "manifest.json").read_text(encoding="utf-8"))
    now = to_timestamp(args.as_of or str(manifest["exported_at"])[:10])
    if not graph.known_before(now):
        graph = graph.as_of(now)
    side = event_side(graph, now)
    graph.qualified()  # the serving graph's caches, patched by its fold-ins
    tracemalloc.start()
    started = time.perf_counter()
    ctx = build_context(graph, now, side)
    build_seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sizes = sizes_mib(ctx)

    rng = np.random.default_rng(args.seed)
    events = open_events(graph, now)
    patch_ms, fold_ms = [], []
    for _ in range(args.batches):
        people = rng.choice(graph.n_participants, args.batch, replace=False)
        rows = pd.DataFrame({
            "participant_id": pd.array(graph.participant_index[people], dtype="string"),
            "event_id": pd.array(graph.event_index[rng.choice(events, args.batch)], dtype="string"),
            "role": pd.array(["participant"] * args.batch, dtype="string"),
            "result": pd.array(["registered"] * args.batch, dtype="string"),
            "date": pd.to_datetime([now - pd.Timedelta(days=1)] * args.batch),
        })
        t = time.perf_counter()
        folded = graph.with_achievements(rows)
        fold_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ctx = patch_context(ctx, folded, folded.participant_positions(rows["participant_id"].astype(str).to_numpy()))
        patch_ms.append((time.perf_counter() - t) * 1000)
        graph = folded
    out: dict[str, Any] = {
        "world": str(args.world), "participants": graph.n_participants, "events": graph.n_events,
        "achievements": len(graph.achievements), "as_of": str(now.date()),
        "context_build_seconds": round(build_seconds, 1),
        "context_mib": round(sum(sizes.values()), 1), "context_mib_per_field": sizes,
        "context_build_tracemalloc_peak_mib": round(peak / 2**20, 1),
        "fold_in_ms": {"batch": args.batch, "p50": round(float(np.median(fold_ms)), 1)},
        "context_patch_ms": {"batch": args.batch, "p50": round(float(np.median(patch_ms)), 1),
                             "max": round(max(patch_ms), 1)},
    }
    if args.check:
        t = time.perf_counter()
        rebuilt = build_context(graph, now, side)
        out["context_rebuild_seconds"] = round(time.perf_counter() - t, 1)
        from tests.features.test_ranking import assert_same_context

        assert_same_context(ctx, rebuilt)
        out["patched_equals_rebuild"] = True
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
