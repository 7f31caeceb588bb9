"""The evaluate and backtest jobs behind the command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from recommender.columns import Columns
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.models import EventRecommender
from training.baselines import GlobalPopularityRecommender, RandomConfig, RandomRecommender
from training.config import TrainConfig
from training.evaluation import TemporalSplit, sample_participants, side_by_side, temporal_split
from training.job import build_models, ranker

TUNED_ALS = "implicit_als_tuned"
TUNED_RERANKER = "lightgbm_lambdarank_tuned"


def candidate_models(config: TrainConfig) -> dict[str, EventRecommender]:
    """Baselines, each candidate generator alone, then the models the training job registers."""
    from training.bpr import BprRecommender
    from training.content import ContentRecommender
    from training.item_knn import ItemKnnRecommender
    from training.sequential import SequentialRecommender

    generators: list[EventRecommender] = [BprRecommender(), ItemKnnRecommender(), ContentRecommender(),
                                          SequentialRecommender()]
    return {
        RandomRecommender.name: RandomRecommender(RandomConfig(seed=config.seed)),
        GlobalPopularityRecommender.name: GlobalPopularityRecommender(),
        **{g.name: g for g in generators},
        **build_models(config),
    }


def evaluated_models(config: TrainConfig, split: TemporalSplit, k: int, tune_als_trials: int = 0,
                     tune_reranker_trials: int = 0) -> dict[str, EventRecommender]:
    """`candidate_models`, plus implicit ALS tuned on the split's train side if `tune_als_trials` > 0 and the
    pipeline with its re-ranker tuned there if `tune_reranker_trials` > 0."""
    models = candidate_models(config)
    if tune_als_trials > 0:
        from training.als import AlsRecommender
        from training.tuning import tuned_als_config

        als = tuned_als_config(split.train, split.cut, horizon_days=split.horizon_days, k=k,
                               trials=tune_als_trials, seed=config.seed)
        models[TUNED_ALS] = AlsRecommender(als)
    if tune_reranker_trials > 0:
        from training.reranker import RerankerRecommender
        from training.tuning import RERANKER_SPACE, tuned_reranker_config

        pipeline = models[RerankerRecommender.name]
        assert isinstance(pipeline, RerankerRecommender)
        tuned = tuned_reranker_config(split.train, split.cut, pipeline.config, k=k, trials=tune_reranker_trials)
        chosen = ", ".join(f"{name}={getattr(tuned, name)}" for name in RERANKER_SPACE)
        print(f"{TUNED_RERANKER}: {chosen}", file=sys.stderr)  # stdout holds the table or JSON
        models[TUNED_RERANKER] = RerankerRecommender(tuned)
    return models


def run_evaluation(
    data: Path, cut: Any, config: TrainConfig, *, horizon_days: int, k: int, truth: Path | None = None,
    max_participants: int | None = None, tune_als_trials: int = 0, tune_reranker_trials: int = 0,
) -> pd.DataFrame:
    """Every model of `candidate_models` fitted on rows before `cut` and measured side by side on the steps after
    it (the world's true registrations given `truth`, with the oracle). `tune_als_trials` > 0 adds implicit ALS
    tuned by that many Optuna trials on a validation split one horizon earlier (`tuned_als_config`),
    `tune_reranker_trials` > 0 the pipeline with its re-ranker tuned a year earlier (`tuned_reranker_config`)."""
    graph = AchievementsGraph.from_aif(data)
    split = temporal_split(graph, to_timestamp(cut), horizon_days)
    if truth is not None:
        split = with_true_registrations(split, Path(truth))
    if split.relevant.empty:
        raise ValueError(f"no participant took an event open at {split.cut.date()}: choose an earlier --as-of")
    participants = sample_participants(split, max_participants, config.seed)
    rankers: dict[str, Callable[[list[str]], pd.DataFrame]] = {}
    for name, model in evaluated_models(config, split, k, tune_als_trials, tune_reranker_trials).items():
        model.fit(split.train)
        rankers[name] = ranker(model, split, k)
    if truth is not None:
        from training.oracle import oracle_recommendations

        catalog = set(split.train.event_index[_catalog(split)])

        def oracle(ids: list[str]) -> pd.DataFrame:
            return oracle_recommendations(Path(truth), split.cut, ids, k, catalog)

        rankers["oracle"] = oracle
    return side_by_side(split, rankers, k, participants)


def with_true_registrations(split: TemporalSplit, truth: Path) -> TemporalSplit:
    """A synthetic world knows when each registration was made: the next steps are the registrations
    made in [cut, cut + horizon) for catalog events. AIF dates a finished event's achievement at the
    event, so from AIF alone a registration made before the cut would count as a later step, one that
    neither the oracle nor any model should be credited for."""
    from dataclasses import replace

    from recommender.synth.oracle import true_next_choices

    steps = true_next_choices(truth, split.cut.date(), split.horizon_days)
    catalog = set(split.train.event_index[_catalog(split)])
    steps = steps[steps[Columns.Event].astype(str).isin(catalog)][[Columns.Participant, Columns.Event]]
    return replace(split, relevant=steps.drop_duplicates().reset_index(drop=True))


def _catalog(split: TemporalSplit) -> Any:
    from recommender.eligibility import open_events

    return open_events(split.train, split.cut, split.filters)


def run_backtest(
    data: Path, cut: Any, config: TrainConfig, *, horizon_days: int, k: int, out: Path, model_name: str | None
) -> dict[str, Any]:
    graph = AchievementsGraph.from_aif(data)
    when = to_timestamp(cut)
    past = graph.as_of(when)
    models = build_models(config)
    name = model_name or next(reversed(models))
    if name not in models:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(models)}")
    model = models[name].fit(past)
    split = TemporalSplit(when, horizon_days, past, pd.DataFrame(), 0)
    recs = model.recommend(past.participant_index.tolist(), k, as_of=when, filters=split.filters, graph=past)
    out.parent.mkdir(parents=True, exist_ok=True)
    recs[[Columns.Participant, Columns.Event, Columns.Rank, Columns.Score]].to_csv(out, index=False)
    return {"model": name, "as_of": str(when.date()), "horizon_days": horizon_days, "k": k,
            "participants": int(recs[Columns.Participant].nunique()), "rows": len(recs), "out": str(out)}
