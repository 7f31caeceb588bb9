"""`trajectory admissions`: batch scoring of participants against an admissions program (CSV in, CSV out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

admissions_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Admissions scoring.")


@admissions_app.callback()
def admissions() -> None:
    """Admissions scoring against programs (programs.csv)."""


@admissions_app.command()
def score(
    program: Annotated[str, typer.Option(help="Program id (programs.csv).")],
    participants: Annotated[Path, typer.Option(help="CSV with a participant_id column (or one id a line).")],
    out: Annotated[Path, typer.Option(help="Output CSV, one row per listed participant.")],
    data: Annotated[Path | None, typer.Option(help="AIF dataset directory (default: the store snapshot).")] = None,
    store: Annotated[str | None, typer.Option(help="Store URL.")] = None,
    radar: Annotated[list[str] | None, typer.Option(help="Draw this scored participant's radar chart (repeatable).")
                     ] = None,
    radar_dir: Annotated[Path, typer.Option(help="Where radar charts go (PROGRAM_PARTICIPANT.png/.svg).")] = Path("."),
) -> None:
    """Score consenting participants against a program; the others are listed as not consented."""
    import time

    import pandas as pd

    from features.competence.estimator import CompetenceRatings
    from training.admissions import SCORED, Program, radar_chart, score_program
    from training.job import load_graph

    if not participants.is_file():
        fail(f"no such file: {participants}")
    ids = pd.read_csv(participants, dtype=str, keep_default_na=False)
    column = "participant_id" if "participant_id" in ids.columns else ids.columns[0]
    wanted = [x for x in ids[column].astype(str).str.strip() if x and x != "participant_id"]
    if column != "participant_id":  # a headerless list: the first line was an id too
        wanted = [str(ids.columns[0]).strip(), *wanted]
    started = time.perf_counter()
    graph, _ = load_graph(data, store)
    try:
        prog = Program.from_graph(graph, program)
    except KeyError as exc:
        fail(str(exc.args[0]))
    model = CompetenceRatings().fit(graph)
    frame = score_program(model, graph, prog, wanted)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    charts = 0
    scored = set(frame.loc[frame["status"] == SCORED, "participant_id"].astype(str))
    for pid in radar or []:
        if pid not in scored:
            fail(f"no radar chart for {pid}: not a scored (consenting, listed) participant")
        radar_chart(model, graph, prog, pid, radar_dir / f"{program}_{pid}")
        charts += 1
    counts = frame["status"].value_counts().to_dict()
    emit_json({"out": str(out), "program": program, "rows": len(frame), "status": counts, "radar_charts": charts,
               "seconds": round(time.perf_counter() - started, 2)})
