"""Benchmark: every candidate generator alone on a temporal split, side by side with the baselines and the oracle.

    .venv/bin/python experiments/benchmarks/bench_generators.py --data WORLD/aif --truth WORLD/truth \
        --as-of 2024-11-01 [--models bpr,item_knn,content,sequential] [--max-participants N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from recommender.eligibility import open_events
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.models import EventRecommender
from training.als import AlsRecommender
from training.baselines import GlobalPopularityRecommender, RandomRecommender
from training.bpr import BprRecommender
from training.content import ContentRecommender
from training.evaluation import TemporalSplit, sample_participants, side_by_side, temporal_split
from training.item_knn import ItemKnnRecommender
from training.popularity import PopularityRecommender
from training.sequential import SequentialRecommender

GENERATORS: dict[str, Callable[[], EventRecommender]] = {
    "random": RandomRecommender,
    "popularity": GlobalPopularityRecommender,
    "popularity_region_grade": PopularityRecommender,
    "als": AlsRecommender,
    "bpr": BprRecommender,
    "item_knn": ItemKnnRecommender,
    "content": ContentRecommender,
    "sequential": SequentialRecommender,
}


def _ranker(model: EventRecommender, split: TemporalSplit, k: int) -> Callable[[list[str]], pd.DataFrame]:
    def rank(participants: list[str]) -> pd.DataFrame:
        return model.recommend(participants, k, as_of=split.cut, filters=split.filters, graph=split.train)

    return rank


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--as-of", default="2024-11-01")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--models", default=",".join(GENERATORS), help=f"comma-separated, of: {', '.join(GENERATORS)}")
    parser.add_argument("--max-participants", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    args = parser.parse_args()

    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(args.data)
    split = temporal_split(graph, to_timestamp(args.as_of), args.horizon_days)
    participants = sample_participants(split, args.max_participants, args.seed)
    read_seconds = time.perf_counter() - started

    rankers: dict[str, Callable[[list[str]], pd.DataFrame]] = {}
    fit_seconds: dict[str, float] = {}
    for name in args.models.split(","):
        model = GENERATORS[name.strip()]()
        t0 = time.perf_counter()
        model.fit(split.train)
        fit_seconds[name] = time.perf_counter() - t0
        rankers[name] = _ranker(model, split, args.k)
    if args.truth is not None:
        from training.oracle import oracle_recommendations

        catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
        rankers["oracle"] = lambda ids: oracle_recommendations(args.truth, split.cut, ids, args.k, catalog)
        fit_seconds["oracle"] = 0.0
    table = side_by_side(split, rankers, args.k, participants)
    table.insert(len(table.columns), "fit_seconds", pd.Series(fit_seconds))
    table = table.rename(columns={"seconds": "recommend_seconds"})
    header = {"data": str(args.data), "as_of": str(split.cut.date()), "horizon_days": args.horizon_days,
              "catalog_size": split.catalog_size, "participants_evaluated": len(participants),
              "participants": graph.n_participants, "read_and_split_seconds": round(read_seconds, 1)}
    if args.json:
        print(json.dumps({**header, "models": table.round(4).to_dict(orient="index")}, indent=2))
    else:
        print(json.dumps(header))
        shown = [c for c in table.columns if c != "participants"]
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(table[shown].round(4).to_string())


if __name__ == "__main__":
    main()
