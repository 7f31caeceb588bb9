"""The canonical store: online SQL database (SQLite/PostgreSQL, Alembic migrations) and Parquet snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recommender.store.snapshot import duckdb_connection, read_snapshot
    from recommender.store.store import Store

__all__ = ["Store", "duckdb_connection", "read_snapshot"]


def __getattr__(name: str) -> Any:
    # Lazy, so `trajectory ingest --help` does not import pandas, SQLAlchemy and DuckDB.
    if name == "Store":
        from recommender.store.store import Store

        return Store
    if name in ("duckdb_connection", "read_snapshot"):
        from recommender.store import snapshot

        return getattr(snapshot, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
