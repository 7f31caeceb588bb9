"""`trajectory ingest`: validate, normalize and merge AIF datasets into the store; prints the load reports."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from recommender.cli import emit_json, fail

app = typer.Typer(add_completion=False)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _database_reason(exc: BaseException) -> str:
    """The driver's primary message only: details and context lines may quote row values."""
    original = getattr(exc, "orig", None) or exc
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or (str(original).strip().splitlines() or [type(original).__name__])[0]
    return " ".join(text.split())


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="AIF dataset directories, merged in the order given.")],
    store: Annotated[
        str | None,
        typer.Option("--store", help="Store URL (default: TRAJECTORY_STORE or sqlite:///data/trajectory.db)."),
    ] = None,
    quarantine_dir: Annotated[
        Path | None, typer.Option("--quarantine-dir", help="Where rejected rows go (default: <data dir>/quarantine).")
    ] = None,
) -> None:
    """Validate, normalize and merge AIF datasets; print one load report per dataset as JSON."""
    # Imported here so `trajectory ingest --help` does not pay for pandas and SQLAlchemy.
    import sqlalchemy.exc

    from recommender.aif.reader import AifError
    from recommender.store.settings import masked_url
    from recommender.store.store import Store

    for path in paths:
        if not path.is_dir():
            fail(f"{path} is not a directory")
    try:
        target = Store(store, quarantine_dir=quarantine_dir)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        fail(f"bad store URL: {_one_line(exc)}")
        return
    reports: list[dict[str, Any]] = []
    try:
        target.migrate()
        for path in paths:
            started = time.perf_counter()
            report = target.ingest(path, snapshot=False)
            reports.append({"path": str(path), **report.to_dict(), "seconds": round(time.perf_counter() - started, 3)})
    except AifError as exc:
        fail(f"{path}: {_one_line(exc)}")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # Driver messages may echo the URL; never its password, and one line only.
        reason = _database_reason(exc).replace(target.url, target.masked_url)
        fail(f"store {masked_url(target.url)}: {reason}")
    except Exception as exc:
        # An unexpected failure is reported by kind only: its message could quote personal data.
        if os.environ.get("TRAJECTORY_DEBUG"):
            raise
        fail(f"ingest failed ({type(exc).__name__}); set TRAJECTORY_DEBUG=1 for the traceback")
    finally:
        # The snapshot is rewritten once, after the datasets that did load (committed one by one).
        started = time.perf_counter()
        if reports:
            target.export_snapshot()
        snapshot_seconds = round(time.perf_counter() - started, 3)
        target.close()
    emit_json(
        {
            "store": target.masked_url,
            "snapshot": str(target.snapshot_dir),
            "snapshot_seconds": snapshot_seconds,
            "reports": reports,
        }
    )
