"""Paired comparison of re-ranker settings: NDCG@10 per participant on one temporal split, against a saved run.

Usage: python experiments/benchmarks/paired_reranker.py --data W/aif --truth W/truth --as-of 2025-03-01 \
           --name leaves15 --set '{"num_leaves": 15}' [--base base] [--out DIR] [--max-participants 10000]

Fits `RerankerRecommender` with `RerankerConfig` defaults plus `--set` on the rows before the cut, ranks the same
sampled participants every run (sample seed 0), and scores them against the world's true registrations in the
horizon (`--truth`: the product generator's truth, or an `experiments/worlds` one with `--alt-world`). Saves the
per-participant NDCG under `--out` as NAME.pkl and prints JSON: NDCG@10, urban and rural, their ratio (with its 95%
bootstrap interval), fit seconds and training rows; with a saved `--base` run, the paired difference and its standard
error (over participants only: refit with another `"seed"` to see the training noise, about 0.003 on the 100k world).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

import training.reranker as reranker
from features.ranking import RankingContext
from recommender.eligibility import open_events
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.metrics import per_participant, ratio_of_means
from training.evaluation import TemporalSplit, region_types, sample_participants, temporal_split
from training.offline import with_true_registrations
from training.reranker import RerankerConfig, RerankerRecommender


def split_with_truth(data: Path, truth: Path, cut: str, horizon_days: int, alt_world: bool) -> TemporalSplit:
    graph = AchievementsGraph.from_aif(data)
    split = temporal_split(graph, to_timestamp(cut), horizon_days)
    if not alt_world:
        return with_true_registrations(split, truth)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worlds"))
    from alt_oracle import load_alt_truth, true_next_choices

    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    steps = true_next_choices(truth, split.cut.date(), horizon_days, truth=load_alt_truth(truth))
    steps = steps[steps["event_id"].astype(str).isin(catalog)][["participant_id", "event_id"]]
    return replace(split, relevant=steps.drop_duplicates().reset_index(drop=True))


def recommend_with_extra_features(
    split: TemporalSplit, people: pd.Series, names: tuple[str, ...],
    extra: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> pd.DataFrame:
    """The top 10 at the cut of the re-ranker (`RerankerConfig` defaults) fitted with features `names` appended to
    its own, valued by `extra(participants, events)` ([participants, events, len(names)]): how far knowledge no
    AIF reader has would take it. `training.reranker`'s FEATURES and pair_features are patched for the fit."""
    features, pair_features = reranker.FEATURES, reranker.pair_features

    def with_extra(graph: AchievementsGraph, ctx: RankingContext, participants: np.ndarray,
                   events: np.ndarray) -> np.ndarray:
        own = pair_features(graph, ctx, participants, events)
        return np.concatenate([own, extra(participants, events).astype(np.float32)], axis=-1)

    reranker.FEATURES = (*features, *names)  # type: ignore[assignment]  # a longer tuple, on purpose
    reranker.pair_features = with_extra
    try:
        model = RerankerRecommender(RerankerConfig()).fit(split.train)
        return model.recommend(people.tolist(), 10, as_of=split.cut, filters=split.filters, graph=split.train)
    finally:
        reranker.FEATURES, reranker.pair_features = features, pair_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", default="{}", help="RerankerConfig fields as JSON")
    parser.add_argument("--base", default="base", help="name of a saved run to pair with")
    parser.add_argument("--out", type=Path, default=Path("data/experiments/paired_reranker"))
    parser.add_argument("--max-participants", type=int, default=10000)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--alt-world", action="store_true", help="--truth is an experiments/worlds truth")
    args = parser.parse_args()

    split = split_with_truth(args.data, args.truth, args.as_of, args.horizon_days, args.alt_world)
    people = sample_participants(split, args.max_participants, 0)
    relevant = split.relevant[split.relevant["participant_id"].isin(people)]
    model = RerankerRecommender(RerankerConfig(**{"horizon_days": args.horizon_days, **json.loads(args.set)}))
    started = time.perf_counter()
    model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    recs = model.recommend(people.tolist(), 10, as_of=split.cut, filters=split.filters, graph=split.train)
    ndcg = per_participant(recs, relevant, 10)["ndcg"].reindex(people.to_numpy()).fillna(0.0)
    args.out.mkdir(parents=True, exist_ok=True)
    ndcg.to_pickle(args.out / f"{args.name}.pkl")
    kinds = region_types(split.train)
    rural = ndcg.index.isin(kinds.index[kinds == "rural"])
    urban = ndcg.index.isin(kinds.index[kinds == "urban"])
    ratio, low, high = ratio_of_means(ndcg[rural].to_numpy(), ndcg[urban].to_numpy())
    line: dict[str, object] = {
        "name": args.name, "set": json.loads(args.set), "as_of": args.as_of, "participants": len(ndcg),
        "ndcg@10": round(float(ndcg.mean()), 4), "urban": round(float(ndcg[urban].mean()), 4),
        "rural": round(float(ndcg[rural].mean()), 4),
        "rural_vs_urban": round(ratio, 3), "rural_vs_urban_95": [round(low, 3), round(high, 3)],
        "fit_seconds": round(fit_seconds, 1), "training_rows": int(model.training_rows_),
    }
    base_file = args.out / f"{args.base}.pkl"
    if base_file.exists() and args.base != args.name:
        base = pd.read_pickle(base_file).reindex(ndcg.index)
        diff = ndcg - base
        line.update({
            "base": args.base, "base_ndcg@10": round(float(base.mean()), 4),
            "paired_difference": round(float(diff.mean()), 4),
            "standard_error": round(float(diff.std() / np.sqrt(len(diff))), 4),
            "rural_difference": round(float(diff[rural].mean()), 4),
        })
    print(json.dumps(line, indent=2))


if __name__ == "__main__":
    main()
