"""Where the store lives: its URL, the data directory beside it, and the Parquet snapshot directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_STORE_URL = "sqlite:///data/trajectory.db"


class StoreSettings(BaseSettings):
    """`TRAJECTORY_STORE` and `TRAJECTORY_SNAPSHOT_DIR` override the embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="TRAJECTORY_", extra="ignore")

    store: str = DEFAULT_STORE_URL
    snapshot_dir: Path | None = None


def resolve_store_url(url: str | None = None) -> str:
    """The explicit URL, else `TRAJECTORY_STORE`, else the SQLite file under data/ (created if needed)."""
    resolved = url or StoreSettings().store
    sqlite_file = sqlite_path(resolved)
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    return resolved


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL, or None for anything else (in-memory included)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def masked_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print and log."""
    return make_url(url).render_as_string(hide_password=True)


def data_dir_for(url: str) -> Path:
    """The directory for files that belong with the store: beside a SQLite file, else ./data."""
    sqlite_file = sqlite_path(url)
    return sqlite_file.parent if sqlite_file is not None else Path("data")


def snapshot_dir_for(url: str) -> Path:
    """`X.db` -> `X.snapshot/` beside it; other stores -> data/snapshots/<hash of the URL sans password>/."""
    override = StoreSettings().snapshot_dir
    if override is not None:
        return override
    sqlite_file = sqlite_path(url)
    if sqlite_file is not None:
        return sqlite_file.with_suffix(".snapshot")
    # The masked form: a rotated password must not move the snapshot.
    digest = hashlib.sha256(masked_url(url).encode()).hexdigest()[:12]
    return Path("data") / "snapshots" / digest
