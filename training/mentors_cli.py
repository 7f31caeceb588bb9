"""`trajectory mentors`: batch mentor assignment for an event or a region (CSV out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

mentors_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Mentor matching and assignment.")


@mentors_app.callback()
def mentors() -> None:
    """Mentor matching and batch assignment under capacities and reach."""


@mentors_app.command()
def assign(
    data: Annotated[Path, typer.Option(help="AIF dataset directory.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Date YYYY-MM-DD: history before it is used.")],
    out: Annotated[Path, typer.Option(help="Output CSV: team_id,mentor_id,expected_benefit.")],
    event: Annotated[str | None, typer.Option(help="Assign the teams of this event.")] = None,
    region: Annotated[str | None, typer.Option(help="Assign the teams of this region's running events.")] = None,
) -> None:
    """Assign mentors to the teams without one, maximizing expected benefit; capacities kept, rural first."""
    import time

    import pandas as pd

    from recommender.graph import AchievementsGraph
    from training.mentors import assign_mentors

    if (event is None) == (region is None):
        fail("give exactly one of --event or --region")
    if not data.is_dir():
        fail(f"no such AIF directory: {data}")
    try:
        when = pd.Timestamp(as_of)
    except ValueError:
        fail(f"not a date: {as_of}")
    started = time.perf_counter()
    graph = AchievementsGraph.from_aif(data)
    try:
        result = assign_mentors(graph, when, event_id=event, region=region)
    except KeyError as exc:
        fail(str(exc.args[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    result.pairs.to_csv(out, index=False)
    emit_json({
        "out": str(out), "assigned": len(result.pairs), "unassigned": len(result.unassigned),
        "total_expected_benefit": round(float(result.pairs["expected_benefit"].sum()), 6),
        "seconds": round(time.perf_counter() - started, 2),
    })
