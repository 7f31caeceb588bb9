"""The product's offline evaluation on an alternative world, with that world's own oracle.

`trajectory evaluate --truth` reads only recommender/synth's truth format (its oracle re-runs the
product generator's utility), so it cannot score a world made by another choice model. This runs the
very same split, models, baselines and side-by-side table (training.offline / training.evaluation) and
adds the alternative world's true registrations and true choice probabilities.

    nice -n 10 .venv/bin/python experiments/worlds/evaluate_alt.py --data /tmp/alt100k/aif \
        --truth /tmp/alt100k/truth --as-of 2024-11-01 --max-participants 10000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alt_oracle import AltTruth, choice_probabilities, load_alt_truth, true_next_choices


def oracle_recommendations(truth: AltTruth, as_of: date, participant_ids: list[str], k: int,
                           catalog: set[str]) -> pd.DataFrame:
    """Top k of each participant's open events by true probability, within the evaluation catalog."""
    return top_k(choice_probabilities(Path(), as_of, participant_ids, truth=truth), catalog, k)


def top_k(probs: pd.DataFrame, catalog: set[str], k: int) -> pd.DataFrame:
    """Each participant's k most probable events of `catalog` (probs: participant_id, event_id, probability)."""
    frame = pd.DataFrame({"participant_id": probs["participant_id"].astype(str).to_numpy(),
                          "event_id": probs["event_id"].astype(str).to_numpy(),
                          "score": probs["probability"].to_numpy()})
    frame = frame[frame["event_id"].isin(catalog)]
    frame = frame.sort_values(["participant_id", "score", "event_id"], ascending=[True, False, True])
    frame["rank"] = frame.groupby("participant_id").cumcount().to_numpy(dtype=np.int64) + 1
    out = frame[frame["rank"] <= k].reset_index(drop=True)
    out["participant_id"] = out["participant_id"].astype("string")
    out["event_id"] = out["event_id"].astype("string")
    return out


def run(data: Path, truth_dir: Path, as_of: date, *, horizon_days: int, k: int, max_participants: int | None,
        config: Path | None, tune_als: int = 0, tune_reranker: int = 0) -> pd.DataFrame:
    from recommender.eligibility import open_events
    from recommender.graph import AchievementsGraph, to_timestamp
    from training.config import TrainConfig
    from training.evaluation import sample_participants, side_by_side, temporal_split
    from training.job import ranker
    from training.offline import evaluated_models

    cfg = TrainConfig.from_yaml(config)
    graph = AchievementsGraph.from_aif(data)
    split = temporal_split(graph, to_timestamp(as_of), horizon_days)
    truth = load_alt_truth(truth_dir)
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    steps = true_next_choices(truth_dir, split.cut.date(), horizon_days, truth=truth)
    steps = steps[steps["event_id"].astype(str).isin(catalog)][["participant_id", "event_id"]]
    split = replace(split, relevant=steps.drop_duplicates().reset_index(drop=True))
    participants = sample_participants(split, max_participants, cfg.seed)
    rankers: dict[str, Callable[[list[str]], pd.DataFrame]] = {}
    for name, model in evaluated_models(cfg, split, k, tune_als, tune_reranker).items():
        model.fit(split.train)
        rankers[name] = ranker(model, split, k)
    rankers["oracle"] = lambda ids: oracle_recommendations(truth, split.cut.date(), ids, k, catalog)
    return side_by_side(split, rankers, k, participants)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--max-participants", type=int, default=None)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--tune-als", type=int, default=0,
                        help="add implicit ALS tuned by this many Optuna trials on a cut one horizon earlier")
    parser.add_argument("--tune-reranker", type=int, default=0,
                        help="add the pipeline with its re-ranker tuned by this many trials on a cut a year earlier")
    args = parser.parse_args(argv)
    table = run(args.data, args.truth, args.as_of, horizon_days=args.horizon_days, k=args.k,
                max_participants=args.max_participants, config=args.config, tune_als=args.tune_als,
                tune_reranker=args.tune_reranker)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
