"""Stores seeded with the tiny world (plus a crowd, for concurrency), and serving states over them, for write tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd

from recommender.aif.dataset import AifDataset
from recommender.aif.quarantine import empty_quarantine
from recommender.graph import AchievementsGraph
from recommender.store.store import Store
from serving.state import ServingState
from tests.pg import postgres_url
from tests.tiny import tiny_tables
from training.popularity import PopularityRecommender

TODAY = date(2025, 1, 10)
NEXT_STEPS = "/v1/participants/{}/next-steps"


def world_tables(crowd: int = 0) -> dict[str, pd.DataFrame]:
    """The tiny world, with `crowd` more participants (c0000, c0001, ...) of region 77, grade 9."""
    tables = tiny_tables()
    if crowd:
        extra = pd.DataFrame({
            "participant_id": pd.array([f"c{i:04d}" for i in range(crowd)], dtype="string"),
            "region_code": pd.array(["77"] * crowd, dtype="string"),
            "grade": pd.array([9] * crowd, dtype="Int64"),
            "grade_date": pd.to_datetime(["2025-01-01"] * crowd),
        })
        tables["participants"] = pd.concat([tables["participants"], extra], ignore_index=True)
    return tables


def seed(store: Store, tables: dict[str, pd.DataFrame]) -> None:
    """Load the tables as one ingest (the snapshot is written too)."""
    manifest = {"format": "aif", "version": "1.0", "source": "tiny", "exported_at": "2025-01-01T00:00:00Z"}
    store.ingest_dataset(AifDataset(manifest, tables, empty_quarantine(), {k: len(v) for k, v in tables.items()}))


@contextmanager
def seeded_store(kind: str, tmp_path: Path, crowd: int = 0,
                 tables: dict[str, pd.DataFrame] | None = None) -> Iterator[Store]:
    """A SQLite or PostgreSQL store holding the world, or `tables` (PostgreSQL: skipped when the server is down)."""
    files = {"snapshot_dir": tmp_path / "snapshot", "quarantine_dir": tmp_path / "quarantine"}
    world = tables if tables is not None else world_tables(crowd)
    if kind == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'service.db'}", **files) as store:
            seed(store, world)
            yield store
        return
    with postgres_url("test_writes") as url, Store(url, **files) as store:
        seed(store, world)
        yield store


@contextmanager
def worker_states(store: Store) -> Iterator[Callable[[], ServingState]]:
    """A factory of what one worker process holds: its own connection pool and its own graph from the snapshot."""
    opened: list[Store] = []

    def make() -> ServingState:
        own = Store(store.url, snapshot_dir=store.snapshot_dir, quarantine_dir=store.quarantine_dir)
        opened.append(own)
        graph = AchievementsGraph.from_tables(own.tables())
        model = PopularityRecommender().fit(graph.as_of(TODAY))
        return ServingState(graph, model, "next-steps:popularity", "1", [], TODAY, store=own)

    try:
        yield make
    finally:
        for own in opened:
            own.close()


def achievement(participant: str, event: str, result: str = "registered", day: str = "2025-01-10",
                **extra: object) -> dict[str, object]:
    return {"participant_id": participant, "event_id": event, "role": "participant", "result": result,
            "date": day, **extra}
