"""The canonical store: migrations, merge semantics, balanced load reports, identity isolation, snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from recommender.aif.dataset import QUARANTINE_COLUMNS, AifDataset
from recommender.columns import IDENTITY_FIELDS
from recommender.store import Store, read_snapshot
from recommender.store.tables import metadata
from tests.pg import postgres_url

NAMES = ("Ivanova", "Petrov", "Sidorova")
EMAILS = ("anna.ivanova@example.ru", "p.petrov@example.ru")


def _s(values: list[Any]) -> pd.Series:
    return pd.Series(values, dtype="string")


def _d(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(values)).astype("datetime64[s]")


def _i(values: list[int | None]) -> pd.Series:
    return pd.Series(values, dtype="Int64")


def make_dataset(
    tables: dict[str, pd.DataFrame],
    *,
    source: str = "school-olympiads",
    exported_at: str = "2024-09-01T10:00:00+00:00",
    quarantine: list[dict[str, Any]] | None = None,
) -> AifDataset:
    """A dataset as the reader returns it: canonical frames, quarantine rows, read counts."""
    rejected = pd.DataFrame(quarantine or [], columns=list(QUARANTINE_COLUMNS))
    read = {name: len(frame) for name, frame in tables.items()}
    for table in rejected["table"]:
        read[table] = read.get(table, 0) + 1
    manifest = {"format": "aif", "version": "1.0", "source": source, "exported_at": exported_at}
    return AifDataset(manifest, tables, rejected, read)


def first_dataset() -> AifDataset:
    participants = pd.DataFrame(
        {
            "participant_id": _s(["p1", "p2", "p3"]),
            "birth_date": _d(["2009-03-01", None, "2008-11-30"]),
            "last_name": _s([NAMES[0], NAMES[1], None]),
            "first_name": _s(["Anna", "Pyotr", None]),
            "email": _s([EMAILS[0], None, None]),
            "region_code": _s(["77", None, "16"]),
            "grade": _i([9, None, 10]),
        }
    )
    events = pd.DataFrame(
        {
            "event_id": _s(["e1", "e2"]),
            "title": _s(["Regional robotics olympiad", "National robotics final"]),
            "format": _s(["olympiad", "olympiad"]),
            "level": _s(["regional", "national"]),
            "competences": _s(["robotics:1", "robotics:1;informatics:0.5"]),
            "start_date": _d(["2024-01-10", "2024-03-15"]),
            "parent_event_id": _s([None, "e1"]),
            "online": pd.Series([False, None], dtype="boolean"),
            "extra": _s([json.dumps({"venue": "Kazan"}), None]),
        }
    )
    teams = pd.DataFrame({"team_id": _s(["t1"]), "event_id": _s(["e2"]), "name": _s(["Bolts"])})
    achievements = pd.DataFrame(
        {
            "participant_id": _s(["p1", "p2", "p3", "p1"]),
            "event_id": _s(["e1", "e1", "e1", "e2"]),
            "role": _s(["participant", "participant", "participant", "captain"]),
            "result": _s(["winner", "prize_winner", "participant", "finalist"]),
            "date": _d(["2024-01-10", "2024-01-10", "2024-01-10", "2024-03-15"]),
            "rank": _i([1, 2, 9, None]),
            "score": pd.Series([98.5, 90.0, None, None], dtype="float64"),
            "team_id": _s([None, None, None, "t1"]),
            "achievement_id": _s([None, None, None, "a-final-p1"]),
        }
    )
    bad_row = {
        "file": "participants.csv",
        "line": 5,
        "table": "participants",
        "field": "grade",
        "reason": "grade 31 is out of range 1..18",
        "raw": json.dumps({"participant_id": "p9", "last_name": NAMES[2], "email": EMAILS[1], "grade": "31"}),
    }
    return make_dataset(
        {"participants": participants, "events": events, "teams": teams, "achievements": achievements},
        quarantine=[bad_row],
    )


def second_dataset() -> AifDataset:
    """A later export from another source: fills p2's unknowns, corrects p1's region, adds p4."""
    participants = pd.DataFrame(
        {
            "participant_id": _s(["p1", "p2", "p4"]),
            "region_code": _s(["50", "02", None]),
            "grade": _i([None, 11, 8]),
            "birth_date": _d([None, "2007-05-05", None]),
            "gender": _s([None, "male", "female"]),
        }
    )
    achievements = pd.DataFrame(
        {
            "participant_id": _s(["p2", "p4"]),
            "event_id": _s(["e1", "e2"]),
            "role": _s(["participant", "participant"]),
            "result": _s(["prize_winner", "participant"]),
            "date": _d(["2024-01-10", "2024-03-15"]),
            "verified": pd.Series([True, None], dtype="boolean"),
        }
    )
    return make_dataset(
        {"participants": participants, "achievements": achievements},
        source="university-portal",
        exported_at="2025-02-01T00:00:00Z",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'trajectory.db'}") as s:
            yield s
        return
    with (
        postgres_url("test_store") as url,
        Store(url, snapshot_dir=tmp_path / "snapshot", quarantine_dir=tmp_path / "quarantine") as s,
    ):
        yield s


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the ingest log, in pk order."""
    out = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name != "ingest_runs":
                out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.pk))]
    return out


def test_migrations_create_the_schema_the_code_declares(store: Store) -> None:
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert {t.name for t in metadata.sorted_tables} | {"alembic_version"} <= names
    assert diff == []


def test_ingest_counts_balance_and_quarantine_is_reported(store: Store) -> None:
    report = store.ingest_dataset(first_dataset())
    counts = report.to_dict()["tables"]
    assert counts["participants"] == {"read": 4, "loaded": 3, "merged": 0, "quarantined": 1}
    assert counts["events"] == {"read": 2, "loaded": 2, "merged": 0, "quarantined": 0}
    assert counts["achievements"] == {"read": 4, "loaded": 4, "merged": 0, "quarantined": 0}
    assert all(c.balanced() for c in report.tables.values())
    assert report.quarantine_file is not None
    text = Path(report.quarantine_file).read_text(encoding="utf-8")
    assert "grade 31 is out of range" in text
    assert NAMES[2] not in text and EMAILS[1] not in text and "***" in text


def test_reingesting_the_same_dataset_changes_nothing(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    before = dump(store)
    snapshot_before = {name: frame.copy() for name, frame in store.tables().items()}
    report = store.ingest_dataset(first_dataset())
    assert report.to_dict()["total"] == {"read": 11, "loaded": 0, "merged": 10, "quarantined": 1}
    assert dump(store) == before
    for name, frame in store.tables().items():
        pd.testing.assert_frame_equal(frame, snapshot_before[name])


def test_a_second_dataset_fills_unknowns_and_updates_conflicts(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    report = store.ingest_dataset(second_dataset())
    assert report.tables["participants"].loaded == 1 and report.tables["participants"].merged == 2
    assert report.tables["achievements"].loaded == 1 and report.tables["achievements"].merged == 1
    participants = store.tables()["participants"].set_index("participant_id")
    # Filled where unknown, replaced where the newer dataset knows otherwise, kept where it is silent.
    assert participants.loc["p2", "grade"] == 11 and participants.loc["p2", "gender"] == "male"
    assert participants.loc["p2", "birth_year"] == 2007
    assert participants.loc["p1", "region_code"] == "50"
    assert participants.loc["p1", "grade"] == 9 and participants.loc["p1", "birth_year"] == 2009
    assert participants.loc["p1", "source"] == "school-olympiads"
    # The grade is dated by the export that gave it.
    assert participants.loc["p1", "grade_date"] == pd.Timestamp("2024-09-01")
    assert participants.loc["p2", "grade_date"] == pd.Timestamp("2025-02-01")
    # Missing optional values stay unknown, never a default.
    assert pd.isna(participants.loc["p4", "region_code"]) and pd.isna(participants.loc["p4", "birth_year"])
    achievements = store.tables()["achievements"].set_index(["participant_id", "event_id", "role"])
    assert achievements.loc[("p2", "e1", "participant"), "verified"]
    assert achievements.loc[("p2", "e1", "participant"), "rank"] == 2
    assert store.identity("p2") == {
        "last_name": NAMES[1],
        "first_name": "Pyotr",
        "middle_name": None,
        "birth_date": "2007-05-05",
        "email": None,
    }


def test_identity_fields_live_only_in_the_identity_table(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    with store.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            columns = {c["name"] for c in inspector.get_columns(table)}
            if table != "identities":
                assert not columns & set(IDENTITY_FIELDS), table
    for name, frame in read_snapshot(store.snapshot_dir).items():
        assert not set(frame.columns) & set(IDENTITY_FIELDS), name
    for path in store.snapshot_dir.iterdir():
        content = path.read_bytes()
        for secret in (*NAMES, *EMAILS, "Anna", "2009-03-01"):
            assert secret.encode() not in content, (path.name, secret)
    assert store.identity("p1") == {
        "last_name": NAMES[0],
        "first_name": "Anna",
        "middle_name": None,
        "birth_date": "2009-03-01",
        "email": EMAILS[0],
    }
    assert store.identity("p3") is not None  # a birth date alone is identity data too
    assert store.identity("nobody") is None


def test_snapshot_frames_are_canonical_and_queryable_with_duckdb(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    tables = store.tables()
    participants, achievements, events = tables["participants"], tables["achievements"], tables["events"]
    assert participants["participant_id"].dtype == "string"
    assert participants["birth_year"].dtype == "Int64" and participants["grade"].dtype == "Int64"
    assert participants["grade_date"].dtype == "datetime64[s]"
    assert events["start_date"].dtype == "datetime64[s]" and events["online"].dtype == "boolean"
    assert achievements["score"].dtype == "float64" and achievements["rank"].dtype == "Int64"
    by_key = achievements.set_index(["participant_id", "event_id", "role"])
    # Known values exactly as loaded, unknown ones still unknown (never 0, never empty text).
    assert by_key.loc[("p1", "e1", "participant"), "score"] == 98.5
    assert pd.isna(by_key.loc[("p3", "e1", "participant"), "score"])
    assert pd.isna(by_key.loc[("p1", "e2", "captain"), "rank"])
    assert pd.isna(by_key.loc[("p1", "e1", "participant"), "verified"])
    assert events.set_index("event_id").loc["e2", "parent_event_id"] == "e1"
    assert pd.isna(events.set_index("event_id").loc["e1", "parent_event_id"])
    # External ids, never internal pks.
    assert "pk" not in achievements.columns and "participant_pk" not in achievements.columns
    assert set(achievements["team_id"].dropna()) == {"t1"}
    assert json.loads(events.set_index("event_id").loc["e1", "extra"]) == {"venue": "Kazan"}
    winners = (
        store.duckdb()
        .sql(
            "SELECT e.level, a.participant_id FROM achievements a JOIN events e USING (event_id)"
            " WHERE a.result = 'winner'"
        )
        .fetchall()
    )
    assert winners == [("regional", "p1")]
    assert set(tables) == {
        "competences", "organizations", "resource_centers", "participants", "events",
        "mentors", "teams", "achievements", "programs",
    }  # fmt: skip


def test_rows_with_unknown_references_are_quarantined_by_the_store(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    achievements = pd.DataFrame(
        {
            "participant_id": _s(["p1", "ghost"]),
            "event_id": _s(["e2", "e1"]),
            "role": _s(["participant", "participant"]),
            "result": _s(["winner", "winner"]),
            "date": _d(["2024-03-15", "2024-01-10"]),
        }
    )
    report = store.ingest_dataset(make_dataset({"achievements": achievements}, source="late"))
    assert vars(report.tables["achievements"]) == {"read": 2, "loaded": 1, "merged": 0, "quarantined": 1}
    assert report.quarantine_file is not None
    assert "participant_id refers to no known participant" in Path(report.quarantine_file).read_text()


def test_achievements_match_by_achievement_id_before_key(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    # Same achievement id, corrected result: a merge, not a second achievement.
    corrected = pd.DataFrame(
        {
            "participant_id": _s(["p1"]),
            "event_id": _s(["e2"]),
            "role": _s(["captain"]),
            "result": _s(["winner"]),
            "date": _d(["2024-03-15"]),
            "achievement_id": _s(["a-final-p1"]),
        }
    )
    report = store.ingest_dataset(make_dataset({"achievements": corrected}, source="correction"))
    assert vars(report.tables["achievements"]) == {"read": 1, "loaded": 0, "merged": 1, "quarantined": 0}
    achievements = store.tables()["achievements"]
    assert len(achievements) == 4
    assert achievements.set_index("achievement_id").loc["a-final-p1", "result"] == "winner"


def test_ingest_log_keeps_every_report(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    store.ingest_dataset(second_dataset())
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source, report FROM ingest_runs ORDER BY pk")).all()
    assert [r[0] for r in rows] == ["school-olympiads", "university-portal"]
    assert json.loads(rows[1][1])["tables"]["participants"]["merged"] == 2


def test_tables_refresh_a_snapshot_older_than_the_last_ingest(store: Store) -> None:
    store.ingest_dataset(first_dataset())
    store.ingest_dataset(second_dataset(), snapshot=False)
    assert "p4" in set(store.tables()["participants"]["participant_id"])
    assert store.duckdb().sql("SELECT count(*) FROM achievements").fetchall() == [(5,)]


def test_migrations_downgrade_to_nothing_and_back(store: Store) -> None:
    from recommender.store import migrate

    store.migrate()
    migrate.downgrade(store.engine, "base")
    with store.engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    store.migrate()
    report = store.ingest_dataset(first_dataset())
    assert report.tables["achievements"].loaded == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reports_balance_and_row_counts_add_up_for_random_overlapping_datasets(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def random_dataset(source: str) -> AifDataset:
        people = [f"p{i}" for i in rng.choice(40, size=25, replace=False)]
        events = [f"e{i}" for i in rng.choice(8, size=5, replace=False)]
        n = 60
        achievements = pd.DataFrame(
            {
                # Some rows refer to participants this dataset does not have (nor, maybe, the store).
                "participant_id": _s([f"p{i}" for i in rng.integers(0, 45, n)]),
                "event_id": _s(list(rng.choice(events, n))),
                "role": _s(list(rng.choice(["participant", "captain"], n))),
                "result": _s(list(rng.choice(["winner", "participant"], n))),
                "date": _d(["2024-02-01"] * n),
                "rank": _i([int(r) if r > 3 else None for r in rng.integers(1, 30, n)]),
            }
        ).drop_duplicates(["participant_id", "event_id", "role"])
        participants = pd.DataFrame(
            {"participant_id": _s(people), "grade": _i([int(g) if g < 12 else None for g in rng.integers(5, 14, 25)])}
        )
        event_frame = pd.DataFrame(
            {
                "event_id": _s(events),
                "title": _s(["t"] * 5),
                "format": _s(["contest"] * 5),
                "level": _s(["school"] * 5),
                "competences": _s(["math:1"] * 5),
                "start_date": _d(["2024-02-01"] * 5),
            }
        )
        tables = {"participants": participants, "events": event_frame, "achievements": achievements}
        return make_dataset(tables, source=source)

    with Store(f"sqlite:///{tmp_path / 'random.db'}") as store:
        loaded = {"participants": 0, "events": 0, "achievements": 0}
        for i in range(3):
            dataset = random_dataset(f"s{i}")
            for _ in range(2):  # the second load of each dataset changes nothing
                report = store.ingest_dataset(dataset, snapshot=False)
                assert all(c.balanced() for c in report.tables.values()), report.to_dict()
                for name in loaded:
                    loaded[name] += report.tables[name].loaded
            assert report.to_dict()["total"]["loaded"] == 0
        tables = store.tables()
        assert {name: len(tables[name]) for name in loaded} == loaded
        assert set(tables["achievements"]["participant_id"]) <= set(tables["participants"]["participant_id"])


def test_rows_added_outside_ingest_get_fresh_pks_and_reach_the_snapshot(store: Store) -> None:
    from recommender.store.tables import AIF_TABLES

    store.ingest_dataset(first_dataset())
    participants = AIF_TABLES["participants"]
    with store.engine.begin() as conn:
        # What the API does for a new participant: no pk given, the database picks the next one.
        conn.execute(participants.insert().values(participant_id="api-1", source="api"))
    store.export_snapshot()
    assert "api-1" in set(store.tables()["participants"]["participant_id"])
    report = store.ingest_dataset(second_dataset())
    assert report.tables["participants"].loaded == 1


def test_store_locations_follow_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recommender.store.settings import masked_url, resolve_store_url, snapshot_dir_for

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAJECTORY_STORE", raising=False)
    monkeypatch.delenv("TRAJECTORY_SNAPSHOT_DIR", raising=False)
    assert resolve_store_url(None) == "sqlite:///data/trajectory.db" and (tmp_path / "data").is_dir()
    assert snapshot_dir_for("sqlite:///data/trajectory.db") == Path("data/trajectory.snapshot")
    one = snapshot_dir_for("postgresql+psycopg://app:first@db:5432/trajectory")
    # The password is not part of the store's identity (and never printed).
    assert one == snapshot_dir_for("postgresql+psycopg://app:rotated@db:5432/trajectory")
    assert one.parent == Path("data/snapshots") and one != snapshot_dir_for("postgresql+psycopg://app@db:5432/other")
    assert "first" not in masked_url("postgresql+psycopg://app:first@db:5432/trajectory")
    monkeypatch.setenv("TRAJECTORY_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("TRAJECTORY_SNAPSHOT_DIR", str(tmp_path / "snap"))
    with Store() as store:
        assert store.url.endswith("env.db") and store.snapshot_dir == tmp_path / "snap"


def test_key_index_maps_ids_from_multi_chunk_arrow_strings() -> None:
    from recommender.store.merge import KeyIndex

    # Frames from the reader hold Arrow-backed strings in several chunks.
    ids = pd.concat([_s(["a", "b"]), _s(["c"])], ignore_index=True)
    index = KeyIndex()
    assert index.allocate(ids).tolist() == [1, 2, 3]
    looked_up = index.lookup(pd.concat([_s(["c", "zz"]), _s([None, "a"])], ignore_index=True))
    assert looked_up.dtype == "Int64" and looked_up.tolist() == [3, pd.NA, pd.NA, 1]
    assert index.ids() == {"a", "b", "c"} and index.next_pk == 4
