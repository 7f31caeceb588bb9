"""The training job: holdout evaluation of every model, refit on all data, log and register in MLflow."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from tqdm import tqdm

from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training import tracking
from training.als import AlsRecommender
from training.config import TrainConfig, flatten
from training.evaluation import TemporalSplit, default_cut, sample_participants, side_by_side, temporal_split
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
    """Evaluate each model on the temporal holdout, refit the best on everything and register it.

    The new version gets the `champion` alias only if it beats the current champion refitted on
    the same split (or if there is none).
    """
    tracking.configure(config.experiment)
    cut = config.cut or default_cut(graph, config.horizon_days)
    split = temporal_split(graph, cut, config.horizon_days)
    participants = sample_participants(split, config.eval_participants, config.seed)
    key = f"ndcg@{config.k}"
    with mlflow.start_run(run_name=config.run_name) as run:
        mlflow.log_params(flatten(config))
        mlflow.log_params({"data": data_label, "split.cut": str(split.cut.date()), "participants": graph.n_participants,
                           "events": graph.n_events, "achievements": len(graph.achievements)})
        rankers = {}
        fit_seconds: dict[str, float] = {}
        for name, model in tqdm(build_models(config).items(), desc="fit on the holdout split", disable=None):
            started = time.perf_counter()
            model.fit(split.train)
            fit_seconds[name] = time.perf_counter() - started
            rankers[name] = ranker(model, split, config.k)
        champion = _current_champion()
        if champion is not None:
            model = type(champion[0])(champion[0].config).fit(split.train)  # type: ignore[call-arg,attr-defined]
            rankers[f"champion_v{champion[1]}"] = ranker(model, split, config.k)
        table = side_by_side(split, rankers, config.k, participants)
        table["fit_seconds"] = pd.Series(fit_seconds)
        for name, row in table.iterrows():
            mlflow.log_metrics({f"{name}.{col.replace('@', '_at_')}": float(v) for col, v in row.items()
                                if pd.notna(v)})
        mlflow.log_table(table.reset_index(), "evaluation/side_by_side.json")
        mlflow.log_figure(plot_side_by_side(table, config.k), "evaluation/ndcg_by_model_and_region_type.png")
        candidates = table.loc[[n for n in fit_seconds]]
        best = str(candidates[key].idxmax())
        final = build_models(config)[best].fit(graph)
        version = tracking.log_next_steps_model(final)
        champion_score = None if champion is None else float(table.loc[f"champion_v{champion[1]}", key])
        promoted = version is not None and (champion_score is None or float(table.loc[best, key]) > champion_score)
        if promoted and version is not None:
            tracking.set_champion(version)
        mlflow.set_tags({"best_model": best, "promoted": str(promoted)})
        return {
            "run_id": run.info.run_id,
            "cut": str(split.cut.date()),
            "horizon_days": config.horizon_days,
            "catalog_size": split.catalog_size,
            "metrics": {str(n): {c: (None if pd.isna(v) else float(v)) for c, v in r.items()}
                        for n, r in table.iterrows()},
            "registered": {"name": tracking.NEXT_STEPS_MODEL, "version": version, "model": best,
                           "alias": tracking.CHAMPION if promoted else None,
                           "previous_champion": None if champion is None else champion[1],
                           "previous_champion_" + key: champion_score},
        }


def ranker(model: EventRecommender, split: TemporalSplit, k: int) -> Callable[[list[str]], pd.DataFrame]:
    def rank(participants: list[str]) -> pd.DataFrame:
        return model.recommend(participants, k, as_of=split.cut, filters=split.filters, graph=split.train)

    return rank


def _current_champion() -> tuple[EventRecommender, str] | None:
    try:
        return tracking.load_champion()
    except Exception:  # no registered model or alias yet: the first run becomes champion
        return None


def plot_side_by_side(table: pd.DataFrame, k: int) -> Figure:
    """NDCG@k per model, overall and for urban and rural participants."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cols = [f"ndcg@{k}", f"ndcg@{k}_urban", f"ndcg@{k}_rural"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    table[cols].plot.bar(ax=ax, rot=20)
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title("Next steps on the temporal holdout")
    ax.legend(["all", "urban", "rural"])
    fig.tight_layout()
    plt.close(fig)
    return fig


def load_graph(data: Path | None, store: str | None) -> tuple[AchievementsGraph, str]:
    """The graph from an AIF directory, or else from the store's snapshot."""
    if data is not None:
        return AchievementsGraph.from_aif(data), str(data)
    from recommender.store.store import Store

    st = Store(store)
    return AchievementsGraph.from_tables(st.tables()), st.masked_url
