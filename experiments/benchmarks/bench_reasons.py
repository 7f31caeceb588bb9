"""Time the reasons of next steps (path-based contributions against LightGBM's TreeSHAP) and compare their drivers.

Usage: python experiments/benchmarks/bench_reasons.py WORLD_OR_AIF_DIR --model SAVED_MODEL [--as-of DATE]
       [--requests N] [--seed S]

For N random participants with history: ranks their top 10 with the saved LightGBM pipeline, then times
`score_drivers` (path-based) against the same drivers from TreeSHAP (`pred_contrib=True`) and the whole served
answer (`services.next_steps`) with either. Prints JSON: milliseconds per call (median, p95; wall and this process's CPU
time), how often the top driver (and the top-3 set) of an event agrees between the two attributions.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from features.ranking import pair_features
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.models import EventRecommender
from serving.services.next_steps import next_steps
from serving.state import ServingState
from training.reranker import RerankerRecommender


def treeshap_drivers(model: RerankerRecommender, graph: AchievementsGraph, participant: int, events: np.ndarray,
                     as_of: pd.Timestamp, top: int = 3) -> list[list[str]]:
    """The drivers as the service computed them before: LightGBM's SHAP values."""
    ctx = model._context(graph, as_of)
    feats = pair_features(graph, ctx, np.asarray([participant]), events)[0]
    contrib = np.asarray(model.model_.booster_.predict(feats, pred_contrib=True, num_threads=1))[:, :-1]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    return [[model.feature_names_[j] for j in row if contrib[i, j] > 0] for i, row in enumerate(order)]


def timed(calls: list[Callable[[], object]]) -> dict[str, float]:
    calls[0]()
    wall, cpu = [], []
    for call in calls:
        w, c = time.perf_counter(), time.process_time()
        call()
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    def ms(values: list[float], q: int) -> float:
        return round(float(np.percentile(values, q)), 3)

    return {"p50_ms": ms(wall, 50), "p95_ms": ms(wall, 95), "cpu_p50_ms": ms(cpu, 50), "cpu_p95_ms": ms(cpu, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    aif = args.world / "aif" if (args.world / "aif").is_dir() else args.world
    graph = AchievementsGraph.from_aif(aif)
    manifest = json.loads((aif / "manifest.json").read_text(encoding="utf-8"))
    as_of = to_timestamp(args.as_of or str(manifest["exported_at"])[:10])
    model = EventRecommender.load(args.model)
    if not isinstance(model, RerankerRecommender):
        raise SystemExit(f"{args.model} is a {type(model).__name__}, not the LightGBM pipeline")
    model.graph_ = graph
    g = graph if graph.known_before(as_of) else graph.as_of(as_of)

    rng = np.random.default_rng(args.seed)
    active = graph.achievements["participant_id"].astype(str).unique()
    people = rng.choice(active, min(args.requests, len(active)), replace=False)
    asked: list[tuple[int, np.ndarray]] = []
    for pid in people:
        recs = model.recommend([str(pid)], 10, as_of=as_of, graph=g)
        if len(recs):
            asked.append((int(g.participant_positions([str(pid)])[0]),
                          g.event_index.get_indexer(recs["event_id"].astype(str))))
    top1 = top3 = both = events = 0
    for position, evs in asked:
        by_paths = model.score_drivers(g, position, evs, as_of)
        by_shap = treeshap_drivers(model, g, position, evs, as_of)
        for a, b in zip(by_paths, by_shap, strict=True):
            events += 1
            if a and b:
                both += 1
                top1 += a[0] == b[0]
                top3 += set(a) == set(b)
    def path_based(p: int, e: np.ndarray) -> Callable[[], object]:
        return lambda: model.score_drivers(g, p, e, as_of)

    def shap(p: int, e: np.ndarray) -> Callable[[], object]:
        return lambda: treeshap_drivers(model, g, p, e, as_of)

    def answer(pid: str) -> Callable[[], object]:
        return lambda: next_steps(state, pid, 10)

    state = ServingState(g, model, f"next-steps:{model.name}", None, fixed_today=as_of.date())
    drivers_ms = {"path_based": timed([path_based(p, e) for p, e in asked]),
                  "treeshap": timed([shap(p, e) for p, e in asked])}
    served = timed([answer(str(pid)) for pid in people])
    # The same answers with the drivers from TreeSHAP, as served before.
    model.score_drivers = lambda graph, participant, events, as_of, top=3: treeshap_drivers(  # type: ignore[method-assign]
        model, graph, participant, events, to_timestamp(as_of), top)
    served_treeshap = timed([answer(str(pid)) for pid in people])
    print(json.dumps({
        "world": str(args.world), "participants": graph.n_participants, "as_of": str(as_of.date()),
        "answers": len(asked), "events_explained": events,
        "top_driver_agrees": round(top1 / max(both, 1), 4), "top3_set_agrees": round(top3 / max(both, 1), 4),
        "events_with_drivers_from_both": both,
        "score_drivers": drivers_ms,
        "served_answer": served,
        "served_answer_with_treeshap": served_treeshap,
    }, indent=2))


if __name__ == "__main__":
    main()
