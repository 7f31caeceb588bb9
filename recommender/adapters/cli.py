"""`trajectory adapt`: convert organizers' exports to AIF, list the formats, emit a synthetic world's sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Convert organizers' exports to AIF.")


@app.command()
def convert(
    file: Annotated[Path, typer.Argument(help="The source file (CSV, XLSX or JSON).")],
    out: Annotated[Path, typer.Option(help="Output AIF directory (with quarantine.csv and report.json).")],
    format: Annotated[str | None, typer.Option("--format", help="Source format; default: recognized.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (record id prefix); default: file stem.")] = None,
) -> None:
    """Convert one source file to an AIF dataset; every row is converted or quarantined with a reason."""
    from recommender.adapters import adapter_for

    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        adapter = adapter_for(file, format)
    except ValueError as exc:
        fail(str(exc))
    try:
        conversion = adapter.convert(file, source=source)
    except (ValueError, KeyError, OSError, UnicodeError) as exc:
        # The exception text may quote a cell, i.e. personal data: only its kind is reported.
        fail(f"{file.name}: not a readable {adapter.name} file ({type(exc).__name__})")
    report = conversion.write(out)
    report["format"] = adapter.name
    emit_json(report)


@app.command()
def formats() -> None:
    """List the source formats an adapter exists for."""
    from recommender.adapters import ADAPTERS

    emit_json({name: adapter.description for name, adapter in sorted(ADAPTERS.items())})


@app.command("synth-sources")
def synth_sources(
    world: Annotated[Path, typer.Argument(help="A synthetic world directory (from `trajectory synth`).")],
    out: Annotated[Path, typer.Option(help="Where to write the three source files and truth/records.csv.")],
    seed: Annotated[int, typer.Option(help="Seed of the mess.")] = 0,
) -> None:
    """Write a synthetic world's achievements as an olympiad sheet, a hackathon JSON and a course CSV."""
    from recommender.synth.sources import emit_sources

    if not (world / "aif").is_dir() and not (world / "participants.csv").is_file():
        fail(f"{world}: not a synthetic world directory")
    emit_json(emit_sources(world, out, seed=seed))
