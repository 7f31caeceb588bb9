"""AIF writer: value formatting, column order, extras, JSON Lines, and read -> write -> read round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from recommender.aif.reader import read_dataset
from recommender.aif.writer import write_dataset

MANIFEST = {"format": "aif", "version": "1.0", "source": "world-7", "exported_at": "2026-01-01T00:00:00+00:00"}


def s(*values: object) -> pd.Series:
    return pd.Series(values, dtype="string")


def write_files(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    for name, body in files.items():
        (root / name).write_text(body, encoding="utf-8")
    return root


# A dataset touching every table and every kind, with quotes, commas, line breaks, Cyrillic and unknowns.
FULL = {
    "competences.csv": "competence_id,name_ru,name_en,parent_id\ncooking,Кулинария,Cooking,soft\n",
    "organizations.csv": "organization_id,kind,region_code,name,settlement_type\n"
    'o1,school,77,"School ""5"", Moscow",city\n'
    "o2,university,01,,\n",
    "resource_centers.csv": "resource_center_id,kind,region_code,name,competences\nrc1,kvantorium,50,Кванториум,"
    "robotics:1;iot:0.25\n",
    "participants.csv": "participant_id,birth_date,region_code,last_name,first_name,middle_name,gender,"
    "settlement_type,organization_id,grade,email,consent_research,consent_admissions,hobby\n"
    "p1,2008-05-01,77,Иванов,Иван,Иванович,male,city,o1,9,ivan@example.org,true,false,chess\n"
    "p2,,,,,,,,,,,,,\n"
    "p3,2001-01-31,01,Doe,Jane,,female,rural,o2,14,,1,0,\n",
    "events.csv": "event_id,title,format,level,competences,start_date,series_id,description,end_date,"
    "registration_deadline,region_code,online,min_grade,max_grade,capacity,team_min,team_max,parent_event_id,"
    "organizer_id,resource_center_id,benefit_level\n"
    'e1,"Olympiad, stage 1",olympiad,regional,math:1;informatics:0.3333333333333333,2012-01-01,s1,"Line one\n'
    'line ""two""",2012-01-02,2011-12-20,77,false,7,11,100,,,,org1,rc1,2\n'
    "e2,Final,olympiad,national,math,2012-03-01,s1,,,,,true,,,,1,3,e1,,,\n"
    "e3,Cook-off,hackathon,school,cooking:2.5,2012-04-01,,,,,,,,,,2,4,,,,\n",
    "mentors.csv": "mentor_id,competences,region_code,capacity,online,organization_type,tech_leader,participant_id\n"
    "m1,robotics:1,77,5,true,company,false,p3\nm2,math,50,,,,,\n",
    "teams.csv": "team_id,event_id,name,mentor_id,project_title\nt1,e3,Spoons,m1,Soup\nt2,e3,,,\n",
    "achievements.csv": "participant_id,event_id,role,result,date,achievement_id,score,rank,team_id,verified\n"
    "p1,e1,participant,prize_winner,2012-01-01,a1,87.5,2,,true\n"
    "p1,e2,participant,winner,2012-03-01,a2,0.1,1,,\n"
    "p2,e3,captain,dropped,2012-04-01,,,,t1,false\n"
    "p3,e3,mentor,completed,2012-04-01,,1e-07,,t1,\n",
    "programs.csv": "program_id,requirements,university,name,min_level\nprog1,math:1;physics:0.5,MSU,Applied math,"
    "national\nprog2,ai,,,\n",
}


@pytest.fixture
def full_dataset(tmp_path: Path) -> Path:
    return write_files(tmp_path / "full", FULL)


def test_full_dataset_reads_clean(full_dataset: Path) -> None:
    ds = read_dataset(full_dataset)
    assert ds.quarantine.empty, ds.quarantine.to_string()
    assert {name: len(frame) for name, frame in ds.tables.items()} == {
        "competences": 1,
        "organizations": 2,
        "resource_centers": 1,
        "participants": 3,
        "events": 3,
        "mentors": 2,
        "teams": 2,
        "achievements": 4,
        "programs": 2,
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_round_trip_gives_identical_tables(full_dataset: Path, tmp_path: Path, fmt: str) -> None:
    first = read_dataset(full_dataset)
    write_dataset(tmp_path / "out", first.tables, first.manifest, fmt=fmt)  # type: ignore[arg-type]
    second = read_dataset(tmp_path / "out")
    assert second.quarantine.empty
    assert second.manifest == first.manifest
    assert second.read_counts == first.read_counts
    assert set(second.tables) == set(first.tables)
    for name, frame in first.tables.items():
        assert_frame_equal(second.tables[name], frame, check_exact=True, obj=name)
        assert sorted(p.suffix for p in (tmp_path / "out").glob(f"{name}.*")) == [f".{fmt}"]


def test_round_trip_through_both_formats(full_dataset: Path, tmp_path: Path) -> None:
    first = read_dataset(full_dataset)
    write_dataset(tmp_path / "j", first.tables, first.manifest, fmt="jsonl")
    via_jsonl = read_dataset(tmp_path / "j")
    write_dataset(tmp_path / "c", via_jsonl.tables, via_jsonl.manifest, fmt="csv")
    again = read_dataset(tmp_path / "c")
    for name, frame in first.tables.items():
        assert_frame_equal(again.tables[name], frame, check_exact=True, obj=name)


def test_csv_formatting(tmp_path: Path) -> None:
    achievements = pd.DataFrame(
        {
            "verified": pd.array([True, None, False], dtype="boolean"),
            "participant_id": s("p1", "p,2", 'p"3'),
            "date": pd.to_datetime(["2012-01-05", None, "1999-12-31"]).astype("datetime64[s]"),
            "score": [0.1 + 0.2, np.nan, 3.0],
            "rank": pd.array([1, None, 12], dtype="Int64"),
        }
    )
    write_dataset(tmp_path, {"achievements": achievements}, MANIFEST)
    text = (tmp_path / "achievements.csv").read_text(encoding="utf-8")
    assert text.splitlines() == [
        "participant_id,date,score,rank,verified",  # spec order, only the columns given
        "p1,2012-01-05,0.30000000000000004,1,true",
        '"p,2",,,,',
        '"p""3",1999-12-31,3,12,false',
    ]
    assert float("0.30000000000000004") == 0.1 + 0.2


def test_manifest(tmp_path: Path) -> None:
    write_dataset(tmp_path, {}, {"source": "synth", "seed": 7})
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "aif" and manifest["version"] == "1.0"
    assert manifest["source"] == "synth" and manifest["seed"] == 7
    assert manifest["exported_at"].startswith("20")


def test_extra_column_is_expanded(tmp_path: Path) -> None:
    participants = pd.DataFrame(
        {"participant_id": s("p1", "p2", "p3"), "extra": s('{"club": "chess", "n": 2}', None, '{"school": "5"}')}
    )
    write_dataset(tmp_path, {"participants": participants}, MANIFEST)
    lines = (tmp_path / "participants.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["participant_id,club,n,school", "p1,chess,2,", "p2,,,", "p3,,,5"]


def test_jsonl_omits_unknown_values(tmp_path: Path) -> None:
    participants = pd.DataFrame(
        {
            "participant_id": s("p1", "p2"),
            "grade": pd.array([9, None], dtype="Int64"),
            "last_name": s('O"Brien\\', None),
            "consent_research": pd.array([None, True], dtype="boolean"),
            "extra": s('{"tags": ["a", 1]}', None),
        }
    )
    write_dataset(tmp_path, {"participants": participants}, MANIFEST, fmt="jsonl")
    rows = [json.loads(line) for line in (tmp_path / "participants.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"participant_id": "p1", "last_name": 'O"Brien\\', "grade": 9, "tags": ["a", 1]},
        {"participant_id": "p2", "consent_research": True},
    ]


def test_writer_replaces_the_other_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"participant_id": s("p1")})
    write_dataset(tmp_path, {"participants": frame}, MANIFEST, fmt="jsonl")
    write_dataset(tmp_path, {"participants": frame}, MANIFEST, fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "participants.csv"]
    assert read_dataset(tmp_path).tables["participants"]["participant_id"].tolist() == ["p1"]


def test_writer_accepts_plain_numpy_dtypes(tmp_path: Path) -> None:
    # Generators often hold ints, bools and object strings; the text written is the same.
    events = pd.DataFrame(
        {
            "event_id": ["e1"],
            "title": ["T"],
            "format": ["camp"],
            "level": ["school"],
            "competences": ["math:1"],
            "start_date": [pd.Timestamp("2012-01-01")],
            "online": [True],
            "capacity": [30],
        }
    )
    write_dataset(tmp_path, {"events": events}, MANIFEST)
    assert (tmp_path / "events.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "e1,T,camp,school,math:1,2012-01-01,true,30"
    )


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not AIF tables: users"):
        write_dataset(tmp_path, {"users": pd.DataFrame()}, MANIFEST)


def test_entirely_unknown_optional_columns_are_not_written(full_dataset: Path, tmp_path: Path) -> None:
    ds = read_dataset(full_dataset)
    write_dataset(tmp_path / "out", {"achievements": ds.tables["achievements"].iloc[:1]}, ds.manifest)
    header = (tmp_path / "out" / "achievements.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "participant_id,event_id,role,result,date,achievement_id,score,rank,verified"
