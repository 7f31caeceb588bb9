"""The training job: holdout evaluation of every model, refit on all data, log and register in MLflow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow

from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training import tracking
from training.als import AlsRecommender
from training.config import TrainConfig, flatten
from training.evaluation import default_cut, evaluate, temporal_split
from training.popularity import PopularityRecommender
from training.reranker import RerankerRecommender


def build_models(config: TrainConfig) -> dict[str, EventRecommender]:
    return {
        PopularityRecommender.name: PopularityRecommender(config.models.popularity),
        AlsRecommender.name: AlsRecommender(config.models.als.model_copy(update={"seed": config.seed})),
        RerankerRecommender.name: RerankerRecommender(
            config.models.reranker.model_copy(update={"seed": config.seed, "horizon_days": config.horizon_days})
        ),
    }


def run_training(graph: AchievementsGraph, config: TrainConfig, *, data_label: str) -> dict[str, Any]:
    """Evaluate each model on the temporal holdout, then fit the best on everything and register it."""
    tracking.configure(config.experiment)
    cut = config.cut or default_cut(graph, config.horizon_days)
    split = temporal_split(graph, cut, config.horizon_days)
    metrics: dict[str, dict[str, float]] = {}
    with mlflow.start_run(run_name=config.run_name) as run:
        mlflow.log_params(flatten(config))
        mlflow.log_params({"data": data_label, "split.cut": str(split.cut.date()), "participants": graph.n_participants,
                           "events": graph.n_events, "achievements": len(graph.achievements)})
        for name, model in build_models(config).items():
            started = time.perf_counter()
            metrics[name] = evaluate(model, split, config.k, max_participants=config.eval_participants,
                                     seed=config.seed)
            metrics[name]["fit_and_score_seconds"] = time.perf_counter() - started
            mlflow.log_metrics({f"{name}.{key.replace('@', '_at_')}": value for key, value in metrics[name].items()})
        best = max(metrics, key=lambda name: metrics[name][f"ndcg@{config.k}"])
        final = build_models(config)[best].fit(graph)
        version = tracking.log_next_steps_model(final)
        if version is not None:
            tracking.set_champion(version)
        mlflow.set_tags({"best_model": best})
        return {
            "run_id": run.info.run_id,
            "cut": str(split.cut.date()),
            "horizon_days": config.horizon_days,
            "catalog_size": split.catalog_size,
            "metrics": metrics,
            "registered": {"name": tracking.NEXT_STEPS_MODEL, "version": version, "model": best,
                           "alias": tracking.CHAMPION},
        }


def load_graph(data: Path | None, store: str | None) -> tuple[AchievementsGraph, str]:
    """The graph from an AIF directory, or else from the store's snapshot."""
    if data is not None:
        return AchievementsGraph.from_aif(data), str(data)
    from recommender.store.store import Store

    st = Store(store)
    return AchievementsGraph.from_tables(st.tables()), st.masked_url
