"""`trajectory train`: one config, one MLflow run, models registered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

train_app = typer.Typer(add_completion=False)


@train_app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="AIF directory; default: the store's snapshot")] = None,
    config: Annotated[Path | None, typer.Option(help="experiment YAML (see experiments/configs)")] = None,
    store: Annotated[str | None, typer.Option(help="store URL (default: embedded SQLite under data/)")] = None,
) -> None:
    """Train the next-step models: holdout metrics, refit, one MLflow run, champion registered."""
    from training.config import TrainConfig
    from training.job import load_graph, run_training

    try:
        cfg = TrainConfig.from_yaml(config)
        graph, label = load_graph(data, store)
        if len(graph.achievements) == 0:
            fail("no achievements to train on: ingest a dataset or pass --data")
        emit_json(run_training(graph, cfg, data_label=label))
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
