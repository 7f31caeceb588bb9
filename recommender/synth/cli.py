"""`trajectory synth`: generate a synthetic world into DIR/aif and DIR/truth and print a JSON summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

app = typer.Typer(add_completion=False, help="Generate a synthetic world: DIR/aif (AIF v1) and DIR/truth.")


@app.command()
def synth(
    participants: Annotated[int, typer.Option(help="Number of participants.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 0,
    out: Annotated[Path, typer.Option(help="Output directory (DIR/aif and DIR/truth).")] = Path("data/world"),
    start_year: Annotated[int, typer.Option(help="First academic year (starts in September).")] = 2022,
    seasons: Annotated[int, typer.Option(help="Number of academic years.")] = 3,
    events_per_season: Annotated[int | None, typer.Option(help="Events per season (default: max(150, N/50)).")] = None,
    mentors: Annotated[int | None, typer.Option(help="Number of mentors (default: max(20, N/20)).")] = None,
) -> None:
    """Generate a synthetic world."""
    from pydantic import ValidationError

    from recommender.synth.config import SynthConfig
    from recommender.synth.generate import generate_world

    try:
        cfg = SynthConfig(
            participants=participants, seed=seed, start_year=start_year, seasons=seasons,
            events_per_season=events_per_season, mentors=mentors,
        )
    except ValidationError as exc:
        fail(f"invalid configuration: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        return
    emit_json(generate_world(cfg, out))
