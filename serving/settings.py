"""Service settings, one class, read from TRAJECTORY_* environment variables."""

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
