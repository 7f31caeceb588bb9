"""The store's achievement writes (SQLite and PostgreSQL): exactly once, and the merge rule for a stored key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from recommender.store import online
from recommender.store.store import Store
from recommender.store.tables import AIF_TABLES, achievement_revisions, achievements
from serving.services.achievements import check_achievements
from tests.serving.write_world import TODAY, achievement, seeded_store

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SOURCE = "api:k1"


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with seeded_store(request.param, tmp_path) as s:
        yield s


def write(store: Store, *items: dict[str, Any]) -> tuple[int, int, int]:
    """(stored, updated, duplicates) of one write of the items, as the API checks and writes them."""
    checked = check_achievements(list(items), pd.Timestamp(TODAY))
    assert not checked.rejected
    result = online.write_achievements(store.engine, checked.rows, SOURCE)
    assert not result.rejected
    return result.inserted, result.updated, result.duplicates


def row(store: Store, participant: str, event: str) -> dict[str, Any]:
    p, e, a = AIF_TABLES["participants"], AIF_TABLES["events"], achievements
    query = (sa.select(a).select_from(a.join(p, p.c.pk == a.c.participant_pk).join(e, e.c.pk == a.c.event_pk))
             .where(p.c.participant_id == participant, e.c.event_id == event))
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    assert len(rows) == 1
    return dict(rows[0])


def test_a_stored_key_merges_known_values_and_is_revised(store: Store) -> None:
    before = row(store, "p2", "e_school_24")
    assert before["result"] == "completed" and before["score"] is None
    assert write(store, achievement("p2", "e_school_24", "winner", "2024-10-01")) == (0, 1, 0)
    # Unknown values keep the stored ones; a known one replaces; the same values again change nothing.
    assert write(store, achievement("p2", "e_school_24", "winner", "2024-10-01", score=91.5)) == (0, 1, 0)
    assert write(store, achievement("p2", "e_school_24", "winner", "2024-10-01")) == (0, 0, 1)
    # A registration posted after the result would only undo it: a duplicate.
    assert write(store, achievement("p2", "e_school_24", "registered", "2024-09-01")) == (0, 0, 1)
    after = row(store, "p2", "e_school_24")
    assert (after["result"], after["score"], str(after["date"])) == ("winner", 91.5, "2024-10-01")
    assert after["pk"] == before["pk"] and after["source"] == before["source"]  # the row stays; so does its source
    with store.engine.connect() as conn:
        revised = conn.execute(sa.select(achievement_revisions.c.achievement_pk, achievement_revisions.c.source)
                               .order_by(achievement_revisions.c.pk)).all()
        newest, revision = online.achievement_marks(conn)
        changed = online.achievements_revised_after(conn, 0, 10)
        later = online.achievements_revised_after(conn, 1, 10)
    assert [tuple(r) for r in revised] == [(before["pk"], SOURCE)] * 2
    assert (newest, revision) == (7, 2)
    # The changed rows as stored now, in revision order (a row changed twice comes twice).
    assert changed[online.REVISION].tolist() == [1, 2] and later[online.REVISION].tolist() == [2]
    assert changed["result"].tolist() == ["winner", "winner"] and changed["score"].tolist() == [91.5, 91.5]


def test_achievement_ids_are_filled_never_changed_nor_taken_from_another(store: Store) -> None:
    assert write(store, achievement("p1", "e_online")) == (1, 0, 0)
    assert write(store, achievement("p1", "e_online", achievement_id="X-1")) == (0, 1, 0)  # filled
    assert write(store, achievement("p1", "e_online", achievement_id="X-2")) == (0, 0, 1)  # never changed
    assert row(store, "p1", "e_online")["achievement_id"] == "X-1"
    # The id of p1's achievement under p3's key: a duplicate of p1's, nothing stored for p3.
    assert write(store, achievement("p3", "e_online", "participant", achievement_id="X-1")) == (0, 0, 1)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(achievements)).scalar_one() == 8
    # In one write: a new row, an upgrade and a repeat of what is stored.
    batch = [achievement("p4", "e_online"), achievement("p1", "e_online", "participant", achievement_id="X-1"),
             achievement("p1", "e_school_23", "winner", "2023-10-01")]
    assert write(store, *batch) == (1, 1, 1)
