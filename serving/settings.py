"""Service settings, one class, read from TRAJECTORY_* environment variables (e.g. TRAJECTORY_STORE)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAJECTORY_", extra="ignore")

    store: str | None = None  # store URL; None = the embedded SQLite file under data/
    as_of: date | None = None  # a fixed "today" (demo worlds, replays); None = the real date
    model_name: str = "next-steps"
    host: str = "127.0.0.1"
    port: int = 8000
    max_k: int = 100
    # A competence or team model missing from the registry is fitted at start-up up to this many achievements.
    side_fit_max_achievements: int = 5_000_000
    # Achievements the service's own workers store are folded in by every worker before its next answer; rows
    # other writers store (an ingest, another host on the same PostgreSQL) within this many seconds.
    store_poll_seconds: float = 1.0
    model_poll_seconds: float = 30.0  # how often each worker checks the registry's champion alias; 0 = never
    key_cache_seconds: float = 30.0  # a verified API key is trusted this long without a database look-up
    rate_limit_per_minute: int = 60_000  # per key, across all workers of one `serve`, unless the key sets its own
    log_format: str = "json"  # json | text
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
