"""AIF reader: typed parsing, every rejection reason with its file and line, known ids, privacy, JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recommender.aif.dataset import QUARANTINE_COLUMNS, AifDataset
from recommender.aif.reader import AifError, read_dataset, write_quarantine

MANIFEST = {"format": "aif", "version": "1.0", "source": "test", "exported_at": "2026-01-01T00:00:00+00:00"}


def make_dataset(root: Path, files: dict[str, str | bytes], manifest: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(MANIFEST if manifest is None else manifest), encoding="utf-8")
    for name, body in files.items():
        if isinstance(body, bytes):
            (root / name).write_bytes(body)
        else:
            (root / name).write_text(body, encoding="utf-8")
    return root


def quarantined(ds: AifDataset) -> set[tuple[str, int, str | None]]:
    return {
        (row.file, int(row.line), None if pd.isna(row.field) else row.field)
        for row in ds.quarantine.itertuples(index=False)
    }


def reason(ds: AifDataset, file: str, line: int) -> str:
    rows = ds.quarantine[(ds.quarantine["file"] == file) & (ds.quarantine["line"] == line)]
    assert len(rows) == 1, f"{file}:{line} not quarantined exactly once"
    return str(rows["reason"].iloc[0])


def assert_balanced(ds: AifDataset) -> None:
    for name, read in ds.read_counts.items():
        bad = int((ds.quarantine["table"] == name).sum())
        assert read == len(ds.tables[name]) + bad, name


CORRUPTED: dict[str, str | bytes] = {
    "participants.csv": (
        b"participant_id,birth_date,region_code,last_name,grade,gender\n"
        b"p1,2008-05-01,77,Ivanov,9,male\n"  # 2 ok
        b"p2,2010-13-45,50,Petrova,8,female\n"  # 3 bad date (identity field: value not echoed)
        b"p3,,7,,,\n"  # 4 region must be exactly a two-digit code
        b"p1,,,,,\n"  # 5 duplicate of line 2
        b"p4,,,,,unknown\n"  # 6 wrong enumeration
        b"p5,,,,,,surplus\n"  # 7 ragged
        b"p6,,,Sm\xffth,,\n"  # 8 broken encoding
        b"p7,,,,,\n"  # 9 ok
    ),
    "events.csv": (
        "event_id,title,format,level,competences,start_date,end_date,online\n"
        "e1,Round 1,contest,national,informatics:1;math:0.5,2012-01-01,2012-01-02,true\n"  # 2 ok
        'e2,"Two\nlines",olympiad,regional,math,2012-02-01,,false\n'  # 3-4 ok
        "e3,Bad,contest,galactic,math,2012-01-01,,\n"  # 5 wrong level
        "e4,X,contest,national,cooking:1,2012-01-01,,\n"  # 6 unknown competence
        "e5,X,contest,national,math,2012-03-01,2012-02-01,\n"  # 7 ends before it starts
        "e6,X,contest,national,math:-1,2012-01-01,,\n"  # 8 negative weight
        "e7,X,contest,national,math,2012-01-01,,yes\n"  # 9 bad boolean
    ),
    "achievements.csv": (
        "participant_id,event_id,role,result,date,rank\n"
        "p1,e1,participant,winner,2012-01-01,1\n"  # 2 ok
        "p2,e1,participant,winner,2012-01-01,1\n"  # 3 participant was quarantined
        "p1,e2,participant,finalist,2012-02-01,2\n"  # 4 ok
        "p1,e1,participant,winner,2012-01-01,1\n"  # 5 duplicate of line 2
        "p9,e1,participant,winner,2012-01-01,1\n"  # 6 unknown participant
        "p1,e3,participant,winner,2012-01-01,1\n"  # 7 event was quarantined
        "p7,e1,participant,champion,2012-01-01,1\n"  # 8 wrong enumeration
        "p7,e1,participant,winner,2012-02-30,1\n"  # 9 bad date
        "p7,e1,participant,winner,2012-01-01,0\n"  # 10 rank out of range
        "p7,e1,participant,winner,,1\n"  # 11 missing required value
        "p7,e2,participant,winner,2012-02-01,1.5\n"  # 12 bad integer
        "\n"  # 13 blank: not a row
        "p7,e2,mentor,winner,2012-02-01,\n"  # 14 ok
    ),
    "teams.csv": "team_id,name\nt1,A\nt2,B\n",  # required event_id column missing
}


def test_corrupted_dataset_quarantines_exactly_its_bad_rows(tmp_path: Path) -> None:
    ds = read_dataset(make_dataset(tmp_path / "bad", CORRUPTED))

    assert quarantined(ds) == {
        ("participants.csv", 3, "birth_date"),
        ("participants.csv", 4, "region_code"),
        ("participants.csv", 5, "participant_id"),
        ("participants.csv", 6, "gender"),
        ("participants.csv", 7, None),
        ("participants.csv", 8, "last_name"),
        ("events.csv", 5, "level"),
        ("events.csv", 6, "competences"),
        ("events.csv", 7, "end_date"),
        ("events.csv", 8, "competences"),
        ("events.csv", 9, "online"),
        ("achievements.csv", 3, "participant_id"),
        ("achievements.csv", 5, "participant_id+event_id+role"),
        ("achievements.csv", 6, "participant_id"),
        ("achievements.csv", 7, "event_id"),
        ("achievements.csv", 8, "result"),
        ("achievements.csv", 9, "date"),
        ("achievements.csv", 10, "rank"),
        ("achievements.csv", 11, "date"),
        ("achievements.csv", 12, "rank"),
        ("teams.csv", 2, "event_id"),
        ("teams.csv", 3, "event_id"),
    }
    assert ds.read_counts == {"participants": 8, "events": 7, "achievements": 12, "teams": 2}
    assert_balanced(ds)
    assert ds.tables["participants"]["participant_id"].tolist() == ["p1", "p7"]
    assert ds.tables["events"]["event_id"].tolist() == ["e1", "e2"]
    assert ds.tables["events"]["title"].tolist() == ["Round 1", "Two\nlines"]
    assert len(ds.tables["achievements"]) == 3
    assert ds.tables["teams"].empty

    assert reason(ds, "participants.csv", 3) == "bad date in birth_date (expected YYYY-MM-DD)"
    assert "'7'" in reason(ds, "participants.csv", 4)
    assert reason(ds, "participants.csv", 5) == "duplicate of line 2"
    assert "'unknown'" in reason(ds, "participants.csv", 6)
    assert reason(ds, "participants.csv", 7) == "expected 6 fields, got 7"
    assert reason(ds, "participants.csv", 8) == "undecodable UTF-8 bytes in last_name"
    assert reason(ds, "events.csv", 5).startswith("bad level 'galactic' (expected one of school")
    assert reason(ds, "events.csv", 6) == "unknown competence 'cooking' in competences"
    assert reason(ds, "events.csv", 7) == "end_date 2012-02-01 is before start_date 2012-03-01"
    assert "bad weight '-1'" in reason(ds, "events.csv", 8)
    assert reason(ds, "events.csv", 9) == "bad boolean 'yes' in online (expected true/false/1/0)"
    assert reason(ds, "achievements.csv", 3) == "unknown participant_id 'p2'"
    assert reason(ds, "achievements.csv", 5) == "duplicate of line 2"
    assert reason(ds, "achievements.csv", 7) == "unknown event_id 'e3'"
    assert reason(ds, "achievements.csv", 9) == "bad date '2012-02-30' in date (expected YYYY-MM-DD)"
    assert reason(ds, "achievements.csv", 10) == "rank '0' out of range [1..]"
    assert reason(ds, "achievements.csv", 11) == "missing required field 'date'"
    assert reason(ds, "achievements.csv", 12) == "bad integer '1.5' in rank"
    assert reason(ds, "teams.csv", 2) == "missing required column 'event_id'"

    raw = ds.quarantine.set_index(["file", "line"])["raw"]
    assert raw[("achievements.csv", 9)] == "p7,e1,participant,winner,2012-02-30,1"
    assert raw[("events.csv", 5)] == "e3,Bad,contest,galactic,math,2012-01-01,,"
    assert raw[("teams.csv", 3)] == "t2,B"


def test_quarantine_never_reveals_personal_data(tmp_path: Path) -> None:
    ds = read_dataset(make_dataset(tmp_path / "bad", CORRUPTED))
    text = ds.quarantine.astype(str).to_csv()
    for secret in ("Ivanov", "Petrova", "2010-13-45", "Sm"):
        assert secret not in text
    raw = ds.quarantine.set_index(["file", "line"])["raw"]
    assert raw[("participants.csv", 3)] == "p2,***,50,***,8,female"
    assert raw[("participants.csv", 8)] == "p6,,,***,,"
    # A ragged row does not line up with the header: everything but the id is masked.
    assert raw[("participants.csv", 7)] == "p5,,,,,,***"


def test_quarantine_frame_shape_and_file(tmp_path: Path) -> None:
    ds = read_dataset(make_dataset(tmp_path / "bad", CORRUPTED))
    assert tuple(ds.quarantine.columns) == QUARANTINE_COLUMNS
    assert ds.quarantine["line"].dtype == "int64"
    out = tmp_path / "q" / "quarantine.csv"
    write_quarantine(ds.quarantine, out)
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(back.columns) == list(QUARANTINE_COLUMNS)
    assert len(back) == len(ds.quarantine)


def test_typed_parsing_and_unknown_values(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "ok",
            {
                "participants.csv": (
                    "participant_id,region_code,grade,consent_research,consent_admissions,organization_id\n"
                    " p1 , 07 ,9,TRUE,0,school-5\n"
                    "p2,,,,,\n"
                ),
                "events.csv": (
                    "event_id,title,format,level,competences,start_date,online,min_grade,max_grade\n"
                    'e1,"  Spaced title ",camp,school, math : 0.50 ;informatics ,2012-01-01,False,5,\n'
                ),
                "achievements.csv": (
                    "participant_id,event_id,role,result,date,score,rank,verified,achievement_id\n"
                    "p1,e1,participant,winner,2012-01-01,12.5,1,1,\n"
                    "p2,e1,participant,dropped,2012-01-01,,,,a-2\n"
                ),
            },
        )
    )
    assert ds.quarantine.empty
    people = ds.tables["participants"]
    assert people["participant_id"].tolist() == ["p1", "p2"]
    assert people["region_code"].tolist()[0] == "07"
    assert people["region_code"].isna().tolist() == [False, True]
    assert people["grade"].dtype == "Int64" and people["grade"].isna().tolist() == [False, True]
    assert people["consent_research"].tolist()[0] is True
    assert people["consent_admissions"].tolist()[0] is False
    # No organizations table anywhere: an optional reference is kept as an unknown entity id.
    assert people["organization_id"].tolist()[0] == "school-5"
    assert people["birth_date"].isna().all() and people["email"].isna().all()
    event = ds.tables["events"].iloc[0]
    assert event["competences"] == "math:0.5;informatics:1"
    assert event["title"] == "  Spaced title "
    assert event["start_date"] == pd.Timestamp("2012-01-01")
    assert ds.tables["events"]["start_date"].dtype == "datetime64[s]"
    assert pd.isna(event["max_grade"]) and pd.isna(event["end_date"]) and pd.isna(event["region_code"])
    ach = ds.tables["achievements"]
    assert ach["score"].dtype == "float64" and ach["score"].isna().tolist() == [False, True]
    assert ach["achievement_id"].isna().tolist() == [True, False]
    assert ach["verified"].isna().tolist() == [False, True]
    assert ds.tables["achievements"]["extra"].isna().all()


def test_extra_columns_are_kept_as_json(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "x",
            {"participants.csv": "participant_id,school_name,club\np1,School 5,\np2,,\np3,Lyceum,chess\n"},
        )
    )
    extra = ds.tables["participants"]["extra"]
    assert json.loads(extra[0]) == {"school_name": "School 5"}
    assert pd.isna(extra[1])
    assert json.loads(extra[2]) == {"school_name": "Lyceum", "club": "chess"}


def test_dataset_competences_extend_the_taxonomy(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "c",
            {
                "competences.csv": "competence_id,name_en,parent_id\ncooking,Cooking,soft\nbaking,Baking,cooking\n"
                "orphan,Orphan,nowhere\n",
                "events.csv": "event_id,title,format,level,competences,start_date\n"
                "e1,Cook-off,contest,school,cooking:1;baking:0.3,2012-01-01\n",
            },
        )
    )
    assert ds.tables["competences"]["competence_id"].tolist() == ["cooking", "baking"]
    assert quarantined(ds) == {("competences.csv", 4, "parent_id")}
    assert ds.tables["events"]["competences"].tolist() == ["cooking:1;baking:0.3"]


def test_extra_competences_argument(tmp_path: Path) -> None:
    root = make_dataset(
        tmp_path / "c",
        {"events.csv": "event_id,title,format,level,competences,start_date\ne1,T,contest,school,cooking,2012-01-01\n"},
    )
    assert len(read_dataset(root).quarantine) == 1
    assert read_dataset(root, extra_competences={"cooking"}).quarantine.empty


def test_self_reference_cascades(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "s",
            {
                "events.csv": "event_id,title,format,level,competences,start_date,parent_event_id\n"
                "final,Final,olympiad,national,math,2012-03-01,regional\n"
                "regional,Regional,olympiad,regional,math,2012-02-01,school\n"
                "school,School,olympiad,galaxy,math,2012-01-01,\n"
                "other,Other,olympiad,school,math,2012-01-01,\n"
                "next,Next,olympiad,regional,math,2012-02-01,other\n"
            },
        )
    )
    assert ds.tables["events"]["event_id"].tolist() == ["other", "next"]
    assert quarantined(ds) == {
        ("events.csv", 2, "parent_event_id"),
        ("events.csv", 3, "parent_event_id"),
        ("events.csv", 4, "level"),
    }


def test_optional_references_checked_only_when_the_table_is_known(tmp_path: Path) -> None:
    achievements = "participant_id,event_id,role,result,date,team_id\np1,e1,participant,winner,2012-01-01,t9\n"
    root = make_dataset(tmp_path / "a", {"achievements.csv": achievements})
    known = {"participants": {"p1"}, "events": {"e1"}}
    assert read_dataset(root, known_ids=known).tables["achievements"]["team_id"].tolist() == ["t9"]
    with_teams = read_dataset(root, known_ids={**known, "teams": {"t1"}})
    assert reason(with_teams, "achievements.csv", 2) == "unknown team_id 't9'"
    assert read_dataset(root, known_ids={**known, "teams": {"t9"}}).quarantine.empty


def test_known_ids_let_an_incremental_dataset_load(tmp_path: Path) -> None:
    root = make_dataset(
        tmp_path / "inc",
        {
            "achievements.csv": "participant_id,event_id,role,result,date\n"
            "p1,e1,participant,winner,2012-01-01\n"
            "p2,e1,participant,winner,2012-01-01\n"
        },
    )
    alone = read_dataset(root)
    assert quarantined(alone) == {("achievements.csv", 2, "participant_id"), ("achievements.csv", 3, "participant_id")}
    ds = read_dataset(root, known_ids={"participants": {"p1", "p2"}, "events": {"e1"}})
    assert ds.quarantine.empty
    assert len(ds.tables["achievements"]) == 2
    assert set(ds.tables) == {"achievements"}


def test_achievement_id_duplicates(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "d",
            {
                "participants.csv": "participant_id\np1\np2\n",
                "events.csv": "event_id,title,format,level,competences,start_date\n"
                "e1,T,contest,school,math,2012-01-01\n",
                "achievements.csv": "achievement_id,participant_id,event_id,role,result,date\n"
                "a1,p1,e1,participant,winner,2012-01-01\n"
                "a1,p2,e1,participant,winner,2012-01-01\n"
                ",p2,e1,mentor,winner,2012-01-01\n",
            },
        )
    )
    assert quarantined(ds) == {("achievements.csv", 3, "achievement_id")}
    assert reason(ds, "achievements.csv", 3) == "duplicate of line 2"


def test_semantic_order_checks(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "o",
            {
                "events.csv": "event_id,title,format,level,competences,start_date,"
                "min_grade,max_grade,team_min,team_max\n"
                "e1,T,hackathon,school,math,2012-01-01,9,7,,\n"
                "e2,T,hackathon,school,math,2012-01-01,7,9,5,2\n"
                "e3,T,hackathon,school,math,2012-01-01,7,7,2,2\n"
                "e4,T,hackathon,school,math,2012-01-01,,7,2,\n"
            },
        )
    )
    assert quarantined(ds) == {("events.csv", 2, "max_grade"), ("events.csv", 3, "team_max")}
    assert reason(ds, "events.csv", 2) == "max_grade 7 is less than min_grade 9"


def test_jsonl_tables(tmp_path: Path) -> None:
    lines = [
        {"participant_id": "p1", "grade": 9, "consent_research": True, "region_code": "77", "hobby": "chess"},
        {"participant_id": "p2", "grade": None, "birth_date": "2009-02-03"},
        "{not json",
        {"participant_id": "p3", "grade": 9.5},
        ["p4"],
        {"participant_id": "p5", "last_name": "Secret", "birth_date": "2009-13-01"},
    ]
    body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n"
    ds = read_dataset(make_dataset(tmp_path / "j", {"participants.jsonl": body}))
    assert quarantined(ds) == {
        ("participants.jsonl", 3, None),
        ("participants.jsonl", 4, "grade"),
        ("participants.jsonl", 5, None),
        ("participants.jsonl", 6, "birth_date"),
    }
    assert reason(ds, "participants.jsonl", 3).startswith("invalid JSON")
    assert ds.read_counts == {"participants": 6}
    assert_balanced(ds)
    people = ds.tables["participants"]
    assert people["participant_id"].tolist() == ["p1", "p2"]
    assert people["grade"].tolist()[0] == 9 and pd.isna(people["grade"].tolist()[1])
    assert people["consent_research"].tolist()[0] is True
    assert people["birth_date"].tolist()[1] == pd.Timestamp("2009-02-03")
    assert json.loads(people["extra"][0]) == {"hobby": "chess"}
    raw = ds.quarantine.set_index("line")["raw"]
    assert raw[3] == "***"  # unparseable participant line: personal data cannot be located, so masked whole
    assert json.loads(raw[6]) == {"participant_id": "p5", "last_name": "***", "birth_date": "***"}


def test_jsonl_broken_encoding(tmp_path: Path) -> None:
    body = b'{"participant_id": "p1"}\n{"participant_id": "p\xff2"}\n'
    ds = read_dataset(make_dataset(tmp_path / "j", {"participants.jsonl": body}))
    assert quarantined(ds) == {("participants.jsonl", 2, None)}
    assert reason(ds, "participants.jsonl", 2) == "undecodable UTF-8 bytes"


def test_duplicate_header_column_quarantines_every_row(tmp_path: Path) -> None:
    ds = read_dataset(make_dataset(tmp_path / "h", {"participants.csv": "participant_id,grade,grade\np1,1,2\n"}))
    assert quarantined(ds) == {("participants.csv", 2, "grade")}
    assert_balanced(ds)


def test_empty_files_and_bom(tmp_path: Path) -> None:
    ds = read_dataset(
        make_dataset(
            tmp_path / "e",
            {"participants.csv": "\ufeffparticipant_id\r\np1\r\n", "events.csv": "", "teams.jsonl": ""},
        )
    )
    assert ds.tables["participants"]["participant_id"].tolist() == ["p1"]
    assert ds.read_counts == {"participants": 1, "events": 0, "teams": 0}
    assert list(ds.tables["events"].columns)[:2] == ["event_id", "title"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "manifest.json: missing"),
        ({"format": "csv", "version": "1.0"}, "format is 'csv'"),
        ({"format": "aif", "version": "2.0"}, "version '2.0'"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_manifest_is_a_dataset_error(tmp_path: Path, manifest: object, message: str) -> None:
    root = tmp_path / "m"
    root.mkdir()
    if isinstance(manifest, dict):
        (root / "manifest.json").write_text(json.dumps(manifest))
    elif isinstance(manifest, str):
        (root / "manifest.json").write_text(manifest)
    with pytest.raises(AifError, match=message):
        read_dataset(root)


def test_minor_versions_are_accepted(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "v", {}, {"format": "aif", "version": "1.3", "source": "s"})
    assert read_dataset(root).source == "s"


def test_table_in_both_formats_is_a_dataset_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "b", {"participants.csv": "participant_id\n", "participants.jsonl": ""})
    with pytest.raises(AifError, match=r"participants\.csv and participants\.jsonl"):
        read_dataset(root)


def test_contest_shaped_dataset_loads_without_quarantine(tmp_path: Path) -> None:
    # Shaped like the real Codeforces export: bare participants, weighted competences, ranks.
    ds = read_dataset(
        make_dataset(
            tmp_path / "cf",
            {
                "participants.csv": "participant_id\ncf8de575b6dfbc3f\ncff5a2f5c6393d01\n",
                "events.csv": "event_id,title,format,level,competences,start_date,online,description\n"
                "cf1,Codeforces Beta Round #1,contest,international,informatics:1;math:0.5,2010-02-19,true,"
                '"Rated programming contest, 66 ranked participants"\n',
                "achievements.csv": "participant_id,event_id,role,result,date,rank,verified\n"
                "cf8de575b6dfbc3f,cf1,participant,participant,2010-02-19,1,true\n"
                "cff5a2f5c6393d01,cf1,participant,participant,2010-02-19,1,true\n",
            },
            {**MANIFEST, "notes": "rank: tied participants share the best rank"},
        )
    )
    assert ds.quarantine.empty
    assert ds.read_counts == {"participants": 2, "events": 1, "achievements": 2}
    assert ds.tables["events"]["competences"].tolist() == ["informatics:1;math:0.5"]
    assert ds.tables["achievements"]["rank"].tolist() == [1, 1]
    assert ds.manifest["notes"].startswith("rank")


def test_canonical_dtypes(tmp_path: Path) -> None:
    ds = read_dataset(make_dataset(tmp_path / "t", CORRUPTED))
    ach = ds.tables["achievements"]
    assert {name: str(dtype) for name, dtype in ach.dtypes.items()} == {
        "participant_id": "string",
        "event_id": "string",
        "role": "string",
        "result": "string",
        "date": "datetime64[s]",
        "achievement_id": "string",
        "score": "float64",
        "rank": "Int64",
        "team_id": "string",
        "verified": "boolean",
        "extra": "string",
    }
    assert list(ach.index) == list(range(len(ach)))


def test_fast_and_row_by_row_csv_readers_agree(tmp_path: Path) -> None:
    body = (
        "participant_id,event_id,role,result,date,score,rank,verified,note\n"
        'p1,e1,participant,winner,2012-01-01,1.5,1,true,"a, b"\n'
        "p2,e1,captain,dropped,2012-01-02,,,,\n"
        " p3 ,e1,mentor,completed,2012-01-03,-2e3,7,0,x\n"
    )
    known = {"participants": {"p1", "p2", "p3"}, "events": {"e1"}}
    fast = read_dataset(make_dataset(tmp_path / "fast", {"achievements.csv": body}), known_ids=known)
    # A trailing blank line breaks the one-record-per-line promise: the csv module reads this copy.
    slow = read_dataset(make_dataset(tmp_path / "slow", {"achievements.csv": body + "\n"}), known_ids=known)
    assert fast.quarantine.empty and slow.quarantine.empty
    pd.testing.assert_frame_equal(fast.tables["achievements"], slow.tables["achievements"], check_exact=True)
    assert fast.tables["achievements"]["participant_id"].tolist() == ["p1", "p2", "p3"]


def test_line_numbers_after_multiline_records(tmp_path: Path) -> None:
    body = (
        "event_id,title,format,level,competences,start_date\n"
        'e1,"A\nlong\ntitle",camp,school,math,2012-01-01\n'  # lines 2-4
        "e2,B,camp,school,math,2012-13-01\n"  # line 5
        'e3,"C\n",camp,nowhere,math,2012-01-01\n'  # lines 6-7
    )
    ds = read_dataset(make_dataset(tmp_path / "m", {"events.csv": body}))
    assert quarantined(ds) == {("events.csv", 5, "start_date"), ("events.csv", 6, "level")}
    assert ds.quarantine.set_index("line")["raw"][6] == 'e3,"C\n",camp,nowhere,math,2012-01-01'


def test_fast_and_object_by_object_jsonl_readers_agree(tmp_path: Path) -> None:
    rows = [
        {"participant_id": "p1", "event_id": "e1", "role": "participant", "result": "winner", "date": "2012-01-01"},
        {"participant_id": "p2", "event_id": "e1", "role": "captain", "result": "dropped", "date": "2012-01-02",
         "score": 1, "rank": 3, "verified": False, "achievement_id": None},
        {"participant_id": "p3", "event_id": "e1", "role": "mentor", "result": "completed", "date": "2012-01-03",
         "score": 2.5e-3, "verified": True},
    ]  # fmt: skip
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    known = {"participants": {"p1", "p2", "p3"}, "events": {"e1"}}
    fast = read_dataset(make_dataset(tmp_path / "fast", {"achievements.jsonl": body}), known_ids=known)
    slow = read_dataset(make_dataset(tmp_path / "slow", {"achievements.jsonl": body + "\n"}), known_ids=known)
    assert fast.quarantine.empty and slow.quarantine.empty
    pd.testing.assert_frame_equal(fast.tables["achievements"], slow.tables["achievements"], check_exact=True)
    assert fast.tables["achievements"]["score"].tolist()[1:] == [1.0, 0.0025]
