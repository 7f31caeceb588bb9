"""`trajectory train`, `evaluate` and `backtest`: the data scientist's commands."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

train_app = typer.Typer(add_completion=False)
evaluate_app = typer.Typer(add_completion=False)
backtest_app = typer.Typer(add_completion=False)


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        fail(f"--as-of must be YYYY-MM-DD, got {text!r}")


@train_app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="AIF directory; default: the store's snapshot")] = None,
    config: Annotated[Path | None, typer.Option(help="experiment YAML (see experiments/configs)")] = None,
    store: Annotated[str | None, typer.Option(help="store URL (default: embedded SQLite under data/)")] = None,
) -> None:
    """Train the next-step models (holdout metrics, refit, one MLflow run, champion registered), then the
    competence, mentor and team-success models the service loads beside them."""
    from training.config import TrainConfig
    from training.job import load_graph, run_training
    from training.side_training import train_side_models

    try:
        cfg = TrainConfig.from_yaml(config)
        graph, label = load_graph(data, store)
        if len(graph.achievements) == 0:
            fail("no achievements to train on: ingest a dataset or pass --data")
        report = run_training(graph, cfg, data_label=label)
        report["side_models"] = train_side_models(graph, data_label=label, experiment=cfg.experiment)
        emit_json(report)
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])


@evaluate_app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="AIF directory")],
    as_of: Annotated[str, typer.Option("--as-of", help="the temporal cut, YYYY-MM-DD")],
    truth: Annotated[Path | None, typer.Option(help="a synthetic world's truth directory: adds the oracle")] = None,
    horizon_days: Annotated[int, typer.Option(min=1, help="catalog: events open at the cut starting within")] = 90,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="cut-off of the ranking metrics")] = 10,
    config: Annotated[Path | None, typer.Option(help="experiment YAML with model settings")] = None,
    max_participants: Annotated[int | None, typer.Option(help="sample this many evaluated participants")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    tune_als: Annotated[int, typer.Option(
        min=0, help="add implicit ALS tuned by this many Optuna trials on a validation cut one horizon earlier")] = 0,
    tune_reranker: Annotated[int, typer.Option(
        min=0, help="add the pipeline with its re-ranker tuned by this many trials on a validation cut a year earlier",
    )] = 0,
) -> None:
    """Offline metrics of every model side by side with baselines and, given --truth, the oracle."""
    from training.config import TrainConfig
    from training.offline import run_evaluation

    cut = _date(as_of)
    try:
        cfg = TrainConfig.from_yaml(config)
        table = run_evaluation(data, cut, cfg, horizon_days=horizon_days, k=k, truth=truth,
                               max_participants=max_participants, tune_als_trials=tune_als,
                               tune_reranker_trials=tune_reranker)
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    if json_output:
        emit_json({"as_of": as_of, "horizon_days": horizon_days, "k": k,
                   "models": table.reset_index().to_dict(orient="records")})
    else:
        typer.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))


@backtest_app.command()
def backtest(
    data: Annotated[Path, typer.Option(help="AIF directory")],
    as_of: Annotated[str, typer.Option("--as-of", help="fit on rows dated before this date, YYYY-MM-DD")],
    horizon_days: Annotated[int, typer.Option(min=1, help="only events starting within this many days")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="events per participant")],
    out: Annotated[Path, typer.Option(help="CSV: participant_id,event_id,rank,score")],
    config: Annotated[Path | None, typer.Option(help="experiment YAML with model settings")] = None,
    model: Annotated[str | None, typer.Option(help="model name; default: the config's best")] = None,
) -> None:
    """Fit on rows dated before --as-of only, write the top-K next steps of every participant."""
    from training.config import TrainConfig
    from training.offline import run_backtest

    cut = _date(as_of)
    try:
        report = run_backtest(data, cut, TrainConfig.from_yaml(config), horizon_days=horizon_days, k=k,
                              out=out, model_name=model)
    except (OSError, ValueError, KeyError) as exc:
        fail(str(exc).splitlines()[0])
    emit_json(report)


tune_app = typer.Typer(add_completion=False)


@tune_app.command()
def tune(
    config: Annotated[Path, typer.Option(help="study YAML (see experiments/configs/tune_*.yaml)")],
    trials: Annotated[int, typer.Option(min=1, help="trials this worker adds to the study")],
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL; overrides the YAML")] = None,
) -> None:
    """Optuna study over one model's hyperparameters; each trial is an MLflow run."""
    from training.tuning import TuneConfig, run_study

    try:
        cfg = TuneConfig.from_yaml(config)
        if storage:
            cfg = cfg.model_copy(update={"storage": storage})
        emit_json(run_study(cfg, trials))
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
