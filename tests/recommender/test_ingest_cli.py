"""`trajectory ingest` end to end: AIF files in, JSON load report out, store and snapshot written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender.cli import cli
from recommender.store import Store, read_snapshot

SURNAME = "Сидорова"
EMAIL = "masha.sidorova@example.org"

PARTICIPANTS = f"""participant_id,birth_date,region_code,last_name,first_name,email,grade,gender
p1,2009-04-02,16,{SURNAME},Мария,{EMAIL},9,female
p2,,77,,,,,
p3,2008-01-15,,Орлов,Иван,,13,male
p4,2010-02-30,50,Котова,Анна,,8,female
"""
EVENTS = """event_id,title,format,level,competences,start_date,online,venue
e1,Regional robotics olympiad,olympiad,regional,robotics:1,2024-01-10,false,Kazan
e2,National robotics final,olympiad,national,robotics:1;informatics:0.5,2024-03-15,true,
"""
ACHIEVEMENTS = """participant_id,event_id,role,result,date,rank,score
p1,e1,participant,winner,2024-01-10,1,98.5
p2,e1,participant,prize_winner,2024-01-10,2,
p3,e1,participant,participant,2024-01-10,,
p1,e2,participant,finalist,2024-03-15,,
p2,e2,participant,champion,2024-03-15,,
p9,e2,participant,participant,2024-03-15,,
"""


def write_aif(directory: Path, source: str = "regional-olympiads") -> Path:
    directory.mkdir(parents=True)
    manifest = {"format": "aif", "version": "1.0", "source": source, "exported_at": "2024-09-01T12:00:00+00:00"}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (directory / "participants.csv").write_text(PARTICIPANTS, encoding="utf-8")
    (directory / "events.csv").write_text(EVENTS, encoding="utf-8")
    (directory / "achievements.csv").write_text(ACHIEVEMENTS, encoding="utf-8")
    return directory


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # The default store lives under ./data: run every test in its own directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAJECTORY_STORE", raising=False)
    monkeypatch.delenv("TRAJECTORY_SNAPSHOT_DIR", raising=False)
    return CliRunner()


def test_ingest_prints_balanced_reports_and_quarantines_exactly_the_bad_rows(runner: CliRunner, tmp_path: Path) -> None:
    dataset = write_aif(tmp_path / "aif")
    result = runner.invoke(cli, ["ingest", str(dataset)])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["store"] == "sqlite:///data/trajectory.db"
    [report] = out["reports"]
    tables = report["tables"]
    # p4 has an impossible birth date; p2's second achievement an unknown result; p9 does not exist.
    assert tables["participants"] == {"read": 4, "loaded": 3, "merged": 0, "quarantined": 1}
    assert tables["events"] == {"read": 2, "loaded": 2, "merged": 0, "quarantined": 0}
    assert tables["achievements"] == {"read": 6, "loaded": 4, "merged": 0, "quarantined": 2}
    for counts in tables.values():
        assert counts["read"] == counts["loaded"] + counts["merged"] + counts["quarantined"]
    quarantine = Path(report["quarantine_file"]).read_text(encoding="utf-8")
    assert "champion" in quarantine and "p9" in quarantine
    assert "Котова" not in quarantine and "2010-02-30" not in quarantine

    again = runner.invoke(cli, ["ingest", str(dataset)])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["reports"][0]["total"] == {"read": 12, "loaded": 0, "merged": 9, "quarantined": 3}


def test_ingest_keeps_identity_out_of_the_snapshot(runner: CliRunner, tmp_path: Path) -> None:
    dataset = write_aif(tmp_path / "aif")
    assert runner.invoke(cli, ["ingest", str(dataset)]).exit_code == 0
    snapshot = tmp_path / "data" / "trajectory.snapshot"
    for path in snapshot.iterdir():
        content = path.read_bytes()
        assert SURNAME.encode() not in content and EMAIL.encode() not in content, path.name
    tables = read_snapshot(snapshot)
    participants = tables["participants"].set_index("participant_id")
    assert participants.loc["p1", "birth_year"] == 2009
    assert participants.loc["p1", "grade_date"] == participants.loc["p3", "grade_date"]
    # Missing optional values stay unknown.
    assert participants.loc["p2", ["grade", "birth_year", "gender"]].isna().all()
    assert json.loads(tables["events"].set_index("event_id").loc["e1", "extra"]) == {"venue": "Kazan"}
    with Store() as store:
        assert store.identity("p1") == {
            "last_name": SURNAME,
            "first_name": "Мария",
            "middle_name": None,
            "birth_date": "2009-04-02",
            "email": EMAIL,
        }


def test_several_datasets_and_an_explicit_store(runner: CliRunner, tmp_path: Path) -> None:
    first = write_aif(tmp_path / "one", source="one")
    second = write_aif(tmp_path / "two", source="two")
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = runner.invoke(cli, ["ingest", str(first), str(second), "--store", url])
    assert result.exit_code == 0, result.stderr
    reports = json.loads(result.stdout)["reports"]
    assert [r["source"] for r in reports] == ["one", "two"]
    assert reports[1]["tables"]["participants"] == {"read": 4, "loaded": 0, "merged": 3, "quarantined": 1}
    assert (tmp_path / "elsewhere.snapshot" / "achievements.parquet").exists()


def test_unreadable_dataset_fails_with_one_line(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    result = runner.invoke(cli, ["ingest", str(broken)])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")

    missing = runner.invoke(cli, ["ingest", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "is not a directory" in missing.stderr


def test_unreachable_store_fails_without_showing_the_password(runner: CliRunner, tmp_path: Path) -> None:
    dataset = write_aif(tmp_path / "aif")
    url = "postgresql+psycopg://trajectory:s3cret-pw@127.0.0.1:9/nowhere?connect_timeout=2"
    result = runner.invoke(cli, ["ingest", str(dataset), "--store", url])
    assert result.exit_code != 0
    assert "s3cret-pw" not in result.stderr and "s3cret-pw" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
