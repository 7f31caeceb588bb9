"""Fitting the competence rating: one MLflow run with its parameters, metrics and the fitted model."""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings, RatingConfig
from features.competence.evaluation import pair_inversion
from features.competence.profile import skill_table
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from training import tracking

MODEL_ARTIFACT = "competence_model"
# Prequential metrics are measured on at most this many of the latest ranked events (pairwise cost).
EVAL_EVENTS = 300


def prequential_metrics(graph: AchievementsGraph, config: RatingConfig) -> dict[str, float]:
    """Pair inversion and rank deviation of the replayed pre-event skills on the latest ranked events."""
    a = graph.achievements
    if Columns.Rank not in a.columns or a[Columns.Rank].isna().all():
        return {}
    replay = CompetenceRatings(config).replay(graph)
    frame = pd.DataFrame({
        Columns.Participant: a[Columns.Participant].astype(str).to_numpy(),
        Columns.Event: a[Columns.Event].astype(str).to_numpy(),
        Columns.Date: pd.to_datetime(a[Columns.Date]).to_numpy(),
        Columns.Rank: a[Columns.Rank].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan),
        "rating": replay["skill"].to_numpy(),
    }).dropna(subset=[Columns.Rank, "rating"])
    latest = frame.groupby(Columns.Event)[Columns.Date].min().nlargest(EVAL_EVENTS)
    start = latest.min() if len(latest) else None
    m = pair_inversion(frame, start, None, min_contests=1)
    return {"prequential.pair_inversion": m["pair_inversion"], "prequential.rank_deviation": m["rank_deviation"]}


def fit_competence_model(
    graph: AchievementsGraph, config: RatingConfig | None = None, *, data_label: str = "", log: bool = True,
    experiment: str = tracking.EXPERIMENT,
) -> tuple[CompetenceRatings, dict[str, Any]]:
    """Fit on the whole graph; with `log`, one MLflow run (params, metrics, model and skill table artefacts)."""
    config = config or RatingConfig()
    started = time.perf_counter()
    model = CompetenceRatings(config).fit(graph)
    fit_seconds = time.perf_counter() - started
    table = skill_table(model, graph)
    metrics: dict[str, float] = {
        "fit_seconds": fit_seconds,
        "rated_cells": float(len(table)),
        "rated_participants": float(table[Columns.Participant].nunique()),
        "mean_skill_sd": float(table["skill_sd"].mean()) if len(table) else float("nan"),
        # The practice gain per result of each event format that the fit estimated.
        **{f"growth.{fmt}": float(gain) for fmt, gain in model.growth_.items()},
        **prequential_metrics(graph, config),
    }
    summary: dict[str, Any] = {"metrics": metrics, "run_id": None}
    if log:
        tracking.configure(experiment)
        with mlflow.start_run(run_name="competence-profiles") as run:
            mlflow.log_params({f"competence.{k}": v for k, v in config.model_dump().items()})
            mlflow.log_params({"data": data_label, "participants": graph.n_participants, "events": graph.n_events,
                               "achievements": len(graph.achievements)})
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            with tempfile.TemporaryDirectory() as tmp:
                save_model(model, Path(tmp) / "model.pkl")
                table.to_parquet(Path(tmp) / "skills.parquet", index=False)
                mlflow.log_artifacts(tmp, artifact_path=MODEL_ARTIFACT)
            summary["run_id"] = run.info.run_id
    return model, summary


def save_model(model: CompetenceRatings, path: Path) -> None:
    """Pickle the fitted model (ids, state and history; no personal data is ever in it)."""
    path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def load_model(path: Path) -> CompetenceRatings:
    model = pickle.loads(Path(path).read_bytes())
    if not isinstance(model, CompetenceRatings):
        raise TypeError(f"{path} does not hold a competence model")
    return model
