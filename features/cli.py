"""`trajectory profiles`: competence profiles — the prequential replay, fitting and one participant's profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

profiles_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Competence profiles.")


@profiles_app.command()
def replay(
    aif_dir: Annotated[Path, typer.Argument(help="AIF dataset directory.")],
    out: Annotated[Path, typer.Option(help="Output CSV: participant_id,event_id,competence_id,skill,skill_sd.")],
) -> None:
    """For every achievement row, the participant's skill estimate from strictly earlier events."""
    import time

    from features.competence.replay import replay_frame
    from recommender.graph import AchievementsGraph

    if not aif_dir.is_dir():
        fail(f"not a directory: {aif_dir}")
    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(aif_dir)
    frame = replay_frame(graph)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    emit_json({"out": str(out), "rows": len(frame), "seconds": round(time.perf_counter() - started, 2)})


@profiles_app.command()
def fit(
    data: Annotated[Path | None, typer.Option(help="AIF dataset directory (default: the store snapshot).")] = None,
    store: Annotated[str | None, typer.Option(help="Store URL.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with `experiment` and `rating` (RatingConfig).")] = None,
) -> None:
    """Fit the competence rating on all results and log it to MLflow."""
    import yaml
    from pydantic import ValidationError

    from features.competence.estimator import RatingConfig
    from training.job import load_graph
    from training.profiles import fit_competence_model
    from training.tracking import EXPERIMENT

    raw = yaml.safe_load(config.read_text(encoding="utf-8")) if config is not None else {}
    try:
        rating = RatingConfig(**(raw or {}).get("rating", {}))
    except ValidationError as exc:
        fail(f"invalid configuration: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    graph, label = load_graph(data, store)
    _, summary = fit_competence_model(graph, rating, data_label=label,
                                      experiment=str((raw or {}).get("experiment", EXPERIMENT)))
    emit_json(summary)


@profiles_app.command()
def show(
    participant: Annotated[str, typer.Option(help="Participant id.")],
    data: Annotated[Path | None, typer.Option(help="AIF dataset directory (default: the store snapshot).")] = None,
    store: Annotated[str | None, typer.Option(help="Store URL.")] = None,
) -> None:
    """One participant's competence profile as JSON."""
    from features.competence.estimator import CompetenceRatings
    from features.competence.profile import competence_profile
    from training.job import load_graph

    graph, _ = load_graph(data, store)
    model = CompetenceRatings().fit(graph)
    try:
        emit_json(competence_profile(model, graph, participant))
    except KeyError as exc:
        fail(str(exc.args[0]))
