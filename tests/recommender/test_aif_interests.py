"""Declared interests (the participants' `interests` AIF extension): reader, writer, store, snapshot and graph."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from recommender.aif.reader import read_dataset
from recommender.aif.writer import write_dataset
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.store import Store

MANIFEST = {"format": "aif", "version": "1.0", "source": "signup-form", "exported_at": "2025-01-10T00:00:00+00:00"}
EVENTS = (
    "event_id,title,format,level,competences,start_date\n"
    "e1,Robotics cup,contest,regional,robotics:1,2024-10-01\n"
    "e2,Biology school,project_school,school,biology:1,2025-03-01\n"
)
ACHIEVEMENTS = "participant_id,event_id,role,result,date\np1,e1,participant,winner,2024-10-01\n"


def _dataset(root: Path, participants: str) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    (root / "participants.csv").write_text(participants, encoding="utf-8")
    (root / "events.csv").write_text(EVENTS, encoding="utf-8")
    (root / "achievements.csv").write_text(ACHIEVEMENTS, encoding="utf-8")
    return root


WITH_INTERESTS = (
    "participant_id,region_code,grade,interests\n"
    "p1,77,9,robotics:1;ai:0.5\n"
    "p2,16,8, biology ; chemistry:0.25 \n"
    "p3,50,10,\n"
    "p4,50,10,cooking:1\n"  # neither in the taxonomy nor declared: quarantined like an event's would be
    "p5,50,10,math:-1\n"
)
WITHOUT_INTERESTS = "participant_id,region_code,grade\np1,77,9\np2,16,8\np3,50,10\n"


def test_interests_are_read_normalized_and_bad_ones_quarantined(tmp_path: Path) -> None:
    data = read_dataset(_dataset(tmp_path / "in", WITH_INTERESTS))
    people = data.tables["participants"]
    assert people["participant_id"].tolist() == ["p1", "p2", "p3"]
    assert people[Columns.Interests].tolist() == ["robotics:1;ai:0.5", "biology:1;chemistry:0.25", pd.NA]
    q = data.quarantine.set_index("line")
    assert q.loc[5, "field"] == "interests" and "unknown competence 'cooking'" in q.loc[5, "reason"]
    assert q.loc[6, "field"] == "interests" and "bad weight" in q.loc[6, "reason"]


def test_round_trip_with_interests(tmp_path: Path) -> None:
    first = read_dataset(_dataset(tmp_path / "in", WITH_INTERESTS))
    write_dataset(tmp_path / "out", first.tables, first.manifest)
    header = (tmp_path / "out/participants.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[-1] == Columns.Interests
    again = read_dataset(tmp_path / "out")
    assert again.quarantine.empty
    for name, frame in first.tables.items():
        assert_frame_equal(again.tables[name], frame, check_dtype=True)


def test_files_without_interests_stay_valid_and_round_trip_unchanged(tmp_path: Path) -> None:
    source = _dataset(tmp_path / "in", WITHOUT_INTERESTS)
    first = read_dataset(source)
    assert first.quarantine.empty
    assert first.tables["participants"][Columns.Interests].isna().all()
    write_dataset(tmp_path / "out", first.tables, first.manifest)
    # Nobody declared anything, so the column is not written: the file is the one that came in.
    assert (tmp_path / "out/participants.csv").read_text(encoding="utf-8") == WITHOUT_INTERESTS
    graph = AchievementsGraph.from_aif(tmp_path / "out")
    assert graph.participant_interests().shape == (3, len(graph.competence_index))
    assert graph.participant_interests().nnz == 0


def test_graph_matrix_follows_ids_and_survives_cuts_and_fold_ins(tmp_path: Path) -> None:
    graph = AchievementsGraph.from_aif(_dataset(tmp_path / "in", WITH_INTERESTS))
    comp = {c: i for i, c in enumerate(graph.competence_index)}
    m = graph.participant_interests().toarray()
    assert m[0, comp["robotics"]] == 1.0 and m[0, comp["ai"]] == 0.5
    assert m[1, comp["biology"]] == 1.0 and m[1, comp["chemistry"]] == 0.25
    assert m[2].sum() == 0.0 and np.count_nonzero(m) == 4
    past = graph.as_of("2024-09-01")
    assert len(past.achievements) == 0
    np.testing.assert_array_equal(past.participant_interests().toarray(), m)
    newcomer = pd.DataFrame({"participant_id": pd.array(["p9"], dtype="string"),
                             "interests": pd.array(["ai:2;math:1"], dtype="string")})
    row = pd.DataFrame({"participant_id": ["p9"], "event_id": ["e2"], "role": ["participant"],
                        "result": ["registered"], "date": pd.to_datetime(["2025-01-09"])})
    folded = graph.with_achievements(row, participants=newcomer)
    grown = folded.participant_interests().toarray()
    assert grown.shape == (4, len(graph.competence_index))
    np.testing.assert_array_equal(grown[:3], m)
    assert grown[3, comp["ai"]] == 2.0 and grown[3, comp["math"]] == 1.0
    # Folding an achievement of a known participant leaves the declared interests as they are.
    again = folded.with_achievements(row.assign(participant_id=["p2"]))
    np.testing.assert_array_equal(again.participant_interests().toarray(), grown)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'store.db'}", quarantine_dir=tmp_path / "quarantine") as s:
        yield s


def test_store_keeps_interests_through_ingest_snapshot_and_merge(tmp_path: Path, store: Store) -> None:
    store.ingest_dataset(read_dataset(_dataset(tmp_path / "a", WITHOUT_INTERESTS)))
    assert store.tables(["participants"])["participants"][Columns.Interests].isna().all()
    # A later sign-up export fills the unknown interests in.
    store.ingest_dataset(read_dataset(_dataset(tmp_path / "b", WITH_INTERESTS)))
    people = store.tables(["participants"])["participants"].set_index("participant_id")
    assert people[Columns.Interests].dtype == "string"
    assert people.loc["p1", Columns.Interests] == "robotics:1;ai:0.5"
    assert people.loc["p2", Columns.Interests] == "biology:1;chemistry:0.25"
    assert pd.isna(people.loc["p3", Columns.Interests])
    graph = AchievementsGraph.from_tables(store.tables())
    comp = list(graph.competence_index)
    row = graph.participant_interests()[int(graph.participant_positions(["p1"])[0])].toarray().ravel()
    assert row[comp.index("robotics")] == 1.0 and row[comp.index("ai")] == 0.5
