"""`trajectory indicators --year Y`: the program's roadmap indicators as JSON and a small report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

app = typer.Typer(add_completion=False, help="Roadmap indicators of a year as JSON and a report with plots.")


@app.command()
def indicators(
    year: Annotated[int, typer.Option(help="Calendar year.")],
    store: Annotated[str | None, typer.Option(help="Store URL (default: the embedded store).")] = None,
    data: Annotated[Path | None, typer.Option(help="Read an AIF dataset instead of the store.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write indicators.json/.png/.html here.")] = None,
) -> None:
    """Compute the roadmap indicators of YEAR by the program's methodology."""
    from recommender.indicators.roadmap import roadmap_indicators

    if data is not None:
        from recommender.aif.manifest import AifError
        from recommender.aif.reader import read_dataset

        try:
            tables = read_dataset(data).tables
        except (AifError, OSError) as exc:
            fail(f"cannot read {data}: {exc}")
    else:
        from recommender.store import Store

        with Store(store) as st:
            tables = st.tables(["events", "achievements", "teams", "mentors"])
    result = roadmap_indicators(tables, year)
    if out is not None:
        from recommender.indicators.report import write_report

        result["files"] = write_report(result, out)
    emit_json(result)
