"""Optuna studies over a model's hyperparameters; every trial is an MLflow run, the study is shared storage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import mlflow
import optuna
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field

from recommender.graph import AchievementsGraph
from training import tracking
from training.als import AlsConfig, AlsRecommender
from training.config import ModelsConfig, TrainConfig
from training.evaluation import default_cut, evaluate, temporal_split
from training.job import build_models
from training.reranker import RerankerConfig, RerankerRecommender

DEFAULT_STORAGE = "sqlite:///data/optuna.db"
# Where `trajectory evaluate --tune-als` searches implicit ALS (experiments/configs/tune_als.yaml's space).
ALS_SPACE: dict[str, dict[str, Any]] = {
    "factors": {"type": "int", "low": 16, "high": 160, "log": True},
    "regularization": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
    "alpha": {"type": "float", "low": 1.0, "high": 60.0, "log": True},
    "iterations": {"type": "int", "low": 5, "high": 30},
}
# Where `trajectory evaluate --tune-reranker` searches the pipeline's re-ranker: the settings on which the
# product's world and the alternative one disagreed (see RerankerConfig: truncation level 10 gave +0.0126 on
# the alternative world and -0.0050 on the product's; a label lag of 120 days +0.0163 there,
# -0.0042 on the product's).
RERANKER_SPACE: dict[str, dict[str, Any]] = {
    "truncation_level": {"type": "categorical", "choices": [10, 20, 30]},
    "label_lag_days": {"type": "categorical", "choices": [60, 90, 120]},
}


class ParamSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None


class TuneConfig(BaseModel):
    """One study: which model, on which data and split, over which space (`models.<model>.<param>`)."""

    model_config = ConfigDict(extra="forbid")

    study: str = "next-steps"
    data: Path
    storage: str = Field(DEFAULT_STORAGE, description="sqlite:///... or postgresql+psycopg://... (shared)")
    model: str = "implicit_als"
    experiment: str = "trajectory-tuning"
    horizon_days: int = 90
    cut: str | None = None
    k: int = 10
    eval_participants: int | None = 5000
    seed: int = 0
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    space: dict[str, ParamSpace]

    @classmethod
    def from_yaml(cls, path: Path) -> TuneConfig:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def _suggest(trial: optuna.Trial, name: str, space: ParamSpace) -> Any:
    if space.type == "categorical":
        return trial.suggest_categorical(name, space.choices or [])
    if space.low is None or space.high is None:
        raise ValueError(f"{name}: low and high are required for a {space.type} parameter")
    if space.type == "int":
        return trial.suggest_int(name, int(space.low), int(space.high), log=space.log)
    return trial.suggest_float(name, space.low, space.high, log=space.log)


def run_study(config: TuneConfig, trials: int) -> dict[str, Any]:
    """Add `trials` trials to the study (created if new); several workers may share one storage."""
    tracking.configure(config.experiment)
    if config.storage.startswith("sqlite:///"):
        Path(config.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    graph = AchievementsGraph.from_aif(config.data)
    split = temporal_split(graph, config.cut or default_cut(graph, config.horizon_days), config.horizon_days)
    base = config.models.model_dump()
    if config.model not in {"popularity_region_grade", "implicit_als", "lightgbm_lambdarank"}:
        raise ValueError(f"unknown model {config.model!r}")
    section = {"popularity_region_grade": "popularity", "implicit_als": "als",
               "lightgbm_lambdarank": "reranker"}[config.model]

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, space) for name, space in config.space.items()}
        models = dict(base)
        models[section] = {**base[section], **params}
        train_cfg = TrainConfig(seed=config.seed, horizon_days=config.horizon_days, k=config.k,
                                models=ModelsConfig.model_validate(models))
        model = build_models(train_cfg)[config.model]
        with mlflow.start_run(run_name=f"{config.study}-trial-{trial.number}"):
            mlflow.log_params({"study": config.study, "trial": trial.number, "model": config.model,
                               "split.cut": str(split.cut.date()), **{f"models.{section}.{k}": v
                                                                     for k, v in params.items()}})
            metrics = evaluate(model, split, config.k, max_participants=config.eval_participants, seed=config.seed)
            mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
        return float(metrics[f"ndcg@{config.k}"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=config.study, storage=config.storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config.seed),
    )
    study.optimize(objective, n_trials=trials, show_progress_bar=False)
    return {
        "study": config.study,
        "storage": tracking.mask_password(config.storage),
        "trials": len(study.trials),
        "best_value": study.best_value,
        "best_params": study.best_params,
        "model": config.model,
        "split.cut": str(split.cut.date()),
    }


def tuned_als_config(
    train: AchievementsGraph, cut: pd.Timestamp, *, horizon_days: int, k: int, trials: int, seed: int = 0,
    eval_participants: int | None = 5000,
) -> AlsConfig:
    """The best implicit ALS settings on a validation split inside `train`, found by an in-memory Optuna study.

    The validation cut lies one horizon before `cut`, so its truth (what participants took in the window
    after it) is dated before `cut`: an evaluation at `cut` compares the pipeline with an ALS tuned on
    rows it may see, never on its own test window.
    """
    validation = temporal_split(train, cut - pd.Timedelta(days=horizon_days), horizon_days)
    if validation.relevant.empty:
        raise ValueError(f"no step in the validation window before {cut.date()}: too little history to tune ALS")

    def score(params: dict[str, Any]) -> float:
        model = AlsRecommender(AlsConfig(seed=seed, **params))
        return float(evaluate(model, validation, k, max_participants=eval_participants, seed=seed)[f"ndcg@{k}"])

    return AlsConfig(seed=seed, **_best_params(score, ALS_SPACE, trials, seed))


def tuned_reranker_config(
    train: AchievementsGraph, cut: pd.Timestamp, base: RerankerConfig, *, k: int, trials: int,
    eval_participants: int | None = 10000,
) -> RerankerConfig:
    """`base` with the RERANKER_SPACE settings that ranked best on a validation split inside `train`.

    The validation cut lies one year before `cut`: the same season (which events are open and how people
    choose among them changes with the season), and its window ends long before `cut`, so nothing of the
    test window is seen. `base` itself is the first trial: the result is never worse than it on validation.
    """
    validation = temporal_split(train, cut - pd.DateOffset(years=1), base.horizon_days)
    if validation.relevant.empty:
        raise ValueError(f"no step in the validation window a year before {cut.date()}: too little history to tune")

    def score(params: dict[str, Any]) -> float:
        model = RerankerRecommender(base.model_copy(update=params))
        metrics = evaluate(model, validation, k, max_participants=eval_participants, seed=base.seed)
        return float(metrics[f"ndcg@{k}"])

    start = {name: getattr(base, name) for name in RERANKER_SPACE}
    return base.model_copy(update=_best_params(score, RERANKER_SPACE, trials, base.seed, start))


def _best_params(score: Callable[[dict[str, Any]], float], raw_space: dict[str, dict[str, Any]], trials: int,
                 seed: int, start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters of the best of `trials` trials of a seeded in-memory TPE study (`start` tried first).

    TPE may draw a point of a small categorical space again: a repeated point is scored once (on the
    alternative world a six-trial re-ranker study drew one point twice, a refit of minutes for nothing)."""
    space = {name: ParamSpace.model_validate(raw) for name, raw in raw_space.items()}
    scored: dict[tuple[tuple[str, Any], ...], float] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, s) for name, s in space.items()}
        key = tuple(sorted(params.items()))
        if key not in scored:
            scored[key] = score(params)
        return scored[key]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    if start is not None:
        study.enqueue_trial(start)
    study.optimize(objective, n_trials=trials, show_progress_bar=False)
    return dict(study.best_params)
