"""`trajectory teams`: split an event's registrants into teams within its size limits (CSV out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

teams_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Team formation.")


@teams_app.callback()
def teams() -> None:
    """Team formation and teammates."""


@teams_app.command()
def form(
    data: Annotated[Path, typer.Option(help="AIF dataset directory.")],
    event: Annotated[str, typer.Option(help="Event id (a team event).")],
    out: Annotated[Path, typer.Option(help="Output CSV: participant_id,team_id.")],
    registrants: Annotated[Path | None, typer.Option(
        help="CSV with participant_id (optional `group`: people to keep together); default: the event's "
             "registered rows.")] = None,
    search: Annotated[bool, typer.Option(
        "--search/--no-search", help="Learn the team-success model from the data's past teams, report each "
                                     "team's predicted success and improve the draft by swaps that the model and "
                                     "four refits on resampled past events all predict to pay (off by default: "
                                     "paired on synthetic worlds it lost a little true success to the draft). "
                                     "With too little team history: the draft.")] = False,
    search_seconds: Annotated[float, typer.Option(help="Time the swap search may take.")] = 2.0,
) -> None:
    """Form balanced, complementary teams; size limits and requested groups kept."""
    import time

    import pandas as pd

    from recommender.graph import AchievementsGraph
    from training.teams import CONFIDENT_SEARCH, DEFAULT_FORMATION, fit_team_success, form_event_teams

    if not data.is_dir():
        fail(f"no such AIF directory: {data}")
    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(data)
    ids: list[str] | None = None
    groups: list[str | None] | None = None
    if registrants is not None:
        if not registrants.is_file():
            fail(f"no such file: {registrants}")
        frame = pd.read_csv(registrants, dtype=str, keep_default_na=False)
        if "participant_id" not in frame.columns:
            fail("the registrants file needs a participant_id column")
        ids = frame["participant_id"].str.strip().tolist()
        if "group" in frame.columns:
            groups = [g or None for g in frame["group"].str.strip()]
    # DEFAULT_FORMATION is the draft; were it a search, the model would be learned without --search too.
    searching = search or DEFAULT_FORMATION.search_rounds > 0
    config = (CONFIDENT_SEARCH if search else DEFAULT_FORMATION).model_copy(update={"search_seconds": search_seconds})
    model = fit_team_success(graph, config) if searching else None
    try:
        result = form_event_teams(graph, event, ids, groups=groups, model=model, config=config)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not len(result.teams):
        fail(f"event {event} has no registrants to form teams from")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.teams.to_csv(out, index=False)
    emit_json({
        "out": str(out), "participants": len(result.teams), "teams": int(result.teams["team_id"].nunique()),
        "team_success_model": model is not None,
        "method": result.method,
        **({"note": "too little team history to learn a team-success model: the draft alone"}
           if searching and model is None else {}),
        "mean_predicted_percentile": (round(float(result.predicted_success.mean()), 4)
                                      if len(result.predicted_success) else None),
        "seconds": round(time.perf_counter() - started, 2),
    })
