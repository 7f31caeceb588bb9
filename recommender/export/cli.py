"""`trajectory export`: data sets for people outside the product (`research`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

KEY_ENV = "TRAJECTORY_EXPORT_KEY"  # the same name as recommender.export.research.KEY_ENV (imported lazily)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Export data for people outside the product.")


@app.callback()
def export() -> None:
    """Export data for people outside the product."""


@app.command()
def research(
    out: Annotated[Path, typer.Option(help="Output directory (AIF dataset and research_report.json).")],
    store: Annotated[str | None, typer.Option(help="Store URL (default: the embedded store).")] = None,
    data: Annotated[Path | None, typer.Option(help="Read an AIF dataset instead of the store.")] = None,
    k: Annotated[int, typer.Option(help="Every quasi-identifier combination occurs at least k times.")] = 5,
    max_suppression: Annotated[float, typer.Option(help="Share of participants that may be suppressed.")] = 0.05,
    key_env: Annotated[str, typer.Option(help="Environment variable holding the pseudonym key.")] = KEY_ENV,
) -> None:
    """Pseudonymized, k-anonymous AIF data set of the participants who consented to research."""
    from recommender.export.research import load_key, research_export

    try:
        key = load_key(dict(os.environ), key_env)
    except ValueError as exc:
        fail(str(exc))
    if k < 2 or not 0 <= max_suppression < 1:
        fail("k must be at least 2 and --max-suppression in [0, 1)")
    exported_at = None
    if data is not None:
        from recommender.aif.manifest import AifError
        from recommender.aif.reader import read_dataset

        try:
            dataset = read_dataset(data)
        except (AifError, OSError) as exc:
            fail(f"cannot read {data}: {exc}")
        tables, exported_at = dataset.tables, dataset.manifest.get("exported_at")
    else:
        from recommender.store import Store

        with Store(store) as st:
            tables = st.tables()
    emit_json(research_export(tables, out, key=key, k=k, max_suppression=max_suppression, exported_at=exported_at))
