"""Source adapters: each format to valid AIF; every row converted or quarantined with a reason, no personal data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.adapters import ADAPTERS, adapter_for, convert
from recommender.adapters.base import SourceAdapter
from recommender.aif.reader import read_dataset
from recommender.cli import cli

OLYMPIAD_ROWS = [
    ["1", "Иванов", "Пётр", "Сергеевич", "05.03.2008", "Москва", "МБОУ СОШ № 7", "Олимпиада «Физика» 2023/24",
     "Физика", "региональный этап", "12.01.2024", "победитель", "87,5"],
    ["2", "Смирнова", "Анна", "Олеговна", "2009-11-30", "77", "Школа №12", "Олимпиада «Физика» 2023/24",
     "физика", "Региональный этап", "2024-01-12", "призёр", "70"],
    ["3", "Кузнецов", "Иван", "", "31.02.2008", "Москва", "", "Олимпиада «Физика» 2023/24",
     "Физика", "региональный этап", "12.01.2024", "участник", ""],
    ["4", "Попов", "Илья", "Андреевич", "01.01.2008", "Москва", "", "Олимпиада «Физика» 2023/24",
     "Физика", "региональный этап", "12.01.2024", "", ""],
    ["5", "Попов", "Илья", "Андреевич", "01.01.2008", "Москва", "", "Олимпиада «Астрология» 2023/24",
     "Астрология", "региональный этап", "12.01.2024", "участник", ""],
]
OLYMPIAD_HEADER = ["№", "Фамилия", "Имя", "Отчество", "Дата рождения", "Регион", "Школа", "Олимпиада", "Профиль",
                   "Этап", "Дата проведения", "Статус", "Баллы"]
PERSONAL = ["Иванов", "Смирнова", "Кузнецов", "Попов", "05.03.2008", "2009-11-30", "31.02.2008", "01.01.2008",
            "anna@example.org", "ANNA@EXAMPLE.ORG", "Анна Смирнова", "Иван Петров"]


def write_olympiad_csv(path: Path, encoding: str = "utf-8-sig") -> Path:
    lines = [";".join(OLYMPIAD_HEADER)] + [";".join(r) for r in OLYMPIAD_ROWS]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def write_hackathon(path: Path) -> Path:
    doc = {"platform": "x", "hackathons": [
        {"id": "h1", "title": "Хакатон «ИИ»", "level": "national", "tracks": "ai:0.7;teamwork:0.3",
         "start": "2024-03-01", "end": "2024-03-03", "region": None, "teams": [
             {"id": "t1", "name": "Альфа", "project": "Чат-бот", "place": 1, "members": [
                 {"registration_id": 1, "full_name": "Анна Смирнова", "email": " ANNA@EXAMPLE.ORG",
                  "birth_date": "30.11.2009", "role": "captain"},
                 {"registration_id": 2, "full_name": "Петров Иван Сергеевич", "email": None, "birth_date": None,
                  "role": "member"},
                 {"registration_id": 3, "full_name": "", "email": "", "role": "member"},
             ]}]},
        {"id": "h2", "title": "Хакатон без треков", "level": "school", "tracks": "", "start": "2024-04-01",
         "teams": [{"id": "t2", "members": [{"registration_id": 4, "full_name": "Иван Петров"}]}]},
    ]}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_courses(path: Path) -> Path:
    frame = pd.DataFrame({
        "email": ["anna@example.org", "", "ivan@example.org"],
        "full_name": ["Смирнова Анна", "", "Петров Иван"],
        "birth_date": ["2009-11-30", "", "2008-03-05"],
        "region": ["77", "", "Москва"],
        "course_id": ["c1", "c1", "c2"],
        "course_title": ["Основы ИИ", "Основы ИИ", "Робототехника"],
        "format": ["course", "course", "course"],
        "level": ["school", "school", "regional"],
        "topic": ["Artificial intelligence", "Artificial intelligence", "robotics"],
        "completed_at": ["2024-05-01 10:00:00", "02.05.2024", "03.05.2024"],
        "grade": ["95", "", "80.5"],
        "status": ["completed", "completed", ""],
    })
    frame.to_csv(path, index=False)
    return path


def assert_accounted_and_valid(conversion_dir: Path, report: dict, expected_quarantined: int) -> None:
    source = report["tables"]["source_rows"]
    assert source["read"] == source["loaded"] + source["quarantined"]
    assert source["quarantined"] == expected_quarantined
    dataset = read_dataset(conversion_dir)
    assert dataset.quarantine.empty, dataset.quarantine.to_dict("records")  # adapters write valid AIF
    assert len(dataset.tables["achievements"]) == source["loaded"]


def assert_no_personal_data(directory: Path, files: tuple[str, ...] = ("quarantine.csv", "report.json")) -> None:
    for name in files:
        path = directory / name
        if path.exists():
            content = path.read_text(encoding="utf-8")
            for value in PERSONAL:
                assert value not in content, (name, value)


def test_registry_lists_three_formats_that_follow_the_protocol() -> None:
    assert set(ADAPTERS) == {"olympiad", "hackathon", "courses"}
    assert all(isinstance(a, SourceAdapter) for a in ADAPTERS.values())


def test_formats_are_recognized(tmp_path: Path) -> None:
    assert adapter_for(write_olympiad_csv(tmp_path / "o.csv")).name == "olympiad"
    assert adapter_for(write_hackathon(tmp_path / "h.json")).name == "hackathon"
    assert adapter_for(write_courses(tmp_path / "c.csv")).name == "courses"
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no adapter"):
        adapter_for(tmp_path / "x.csv")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1251"])
def test_olympiad_sheet(tmp_path: Path, encoding: str) -> None:
    conversion = convert(write_olympiad_csv(tmp_path / "sheet.csv", encoding), "olympiad")
    report = conversion.write(tmp_path / "aif")
    assert_accounted_and_valid(tmp_path / "aif", report, expected_quarantined=3)
    assert report["reasons"] == {
        "birth date is not a date": 1, "missing required field 'статус'": 1, "unknown profile": 1,
    }
    assert_no_personal_data(tmp_path / "aif")
    people = conversion.tables["participants"]
    assert people["participant_id"].tolist() == ["sheet:1", "sheet:2"]
    assert people["region_code"].tolist() == ["77", "77"]
    assert people["organization_id"].tolist() == ["school:77:7", "school:77:12"]
    ach = conversion.tables["achievements"]
    assert ach["result"].tolist() == ["winner", "prize_winner"]
    assert ach["score"].tolist() == [87.5, 70.0]
    events = conversion.tables["events"]
    assert len(events) == 1 and events["level"].iloc[0] == "regional" and events["competences"].iloc[0] == "physics:1"


def test_olympiad_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(OLYMPIAD_HEADER)
    for row in OLYMPIAD_ROWS[:2]:
        sheet.append(row)
    book.save(tmp_path / "sheet.xlsx")
    conversion = convert(tmp_path / "sheet.xlsx")
    assert conversion.rows_read == 2 and conversion.rows_converted == 2
    assert conversion.tables["participants"]["birth_date"].dt.year.tolist() == [2008, 2009]


def test_hackathon_export(tmp_path: Path) -> None:
    conversion = convert(write_hackathon(tmp_path / "hack.json"))
    report = conversion.write(tmp_path / "aif")
    assert_accounted_and_valid(tmp_path / "aif", report, expected_quarantined=2)
    assert report["reasons"] == {"member has neither a name nor an e-mail": 1, "the hackathon has no tracks": 1}
    assert_no_personal_data(tmp_path / "aif")
    people = conversion.tables["participants"].set_index("participant_id")
    # "Имя Фамилия" by default; a patronymic shows the "Фамилия Имя Отчество" order.
    assert people.loc["hack:1", ["last_name", "first_name"]].tolist() == ["Смирнова", "Анна"]
    assert people.loc["hack:2", ["last_name", "first_name", "middle_name"]].tolist() == ["Петров", "Иван", "Сергеевич"]
    ach = conversion.tables["achievements"]
    assert ach["role"].tolist() == ["captain", "participant"]
    assert ach["result"].tolist() == ["winner", "winner"]
    assert conversion.tables["teams"]["team_id"].tolist() == ["hack:t1"]


def test_course_completions(tmp_path: Path) -> None:
    conversion = convert(write_courses(tmp_path / "courses.csv"))
    report = conversion.write(tmp_path / "aif")
    assert_accounted_and_valid(tmp_path / "aif", report, expected_quarantined=1)
    ach = conversion.tables["achievements"]
    assert ach["result"].tolist() == ["completed", "completed"]
    assert ach["score"].tolist() == [95.0, 80.5]
    events = conversion.tables["events"].set_index("event_id")
    assert events.loc["course:c1", "competences"] == "ai:1"
    assert conversion.tables["participants"]["region_code"].tolist() == ["77", "77"]


def test_cli_convert(tmp_path: Path) -> None:
    source = write_olympiad_csv(tmp_path / "sheet.csv")
    result = CliRunner().invoke(cli, ["adapt", "convert", str(source), "--out", str(tmp_path / "aif")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == {"read": 5, "loaded": 2, "merged": 0, "quarantined": 3}
    missing = CliRunner().invoke(cli, ["adapt", "convert", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    assert missing.exit_code != 0
