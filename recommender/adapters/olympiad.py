"""Olympiad results sheets (CSV or XLSX, Russian column headers) to AIF.

One row is one participant's result at one stage: Фамилия, Имя, Отчество, Дата рождения, Регион,
Школа, Олимпиада, Профиль, Этап, Дата проведения, Статус (победитель / призёр / участник), Баллы.
Every row becomes a participant record (entity resolution merges the same child later) and an
achievement; each distinct olympiad stage becomes an event.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.adapters.base import (
    Conversion,
    Rejects,
    competence_lookup,
    dates_array,
    quarantine_of,
    region_codes_of,
    string_array,
    text,
)
from recommender.identity.normalize import parse_dates

# Header (lower case, ё as е) -> canonical name; the first spelling is the documented one.
HEADERS = {
    "last_name": ("фамилия",),
    "first_name": ("имя",),
    "middle_name": ("отчество",),
    "birth_date": ("дата рождения", "дата рожд.", "др"),
    "region": ("регион", "субъект рф", "субъект"),
    "school": ("школа", "образовательная организация", "оо"),
    "title": ("олимпиада", "название", "мероприятие"),
    "profile": ("профиль", "предмет"),
    "stage": ("этап",),
    "date": ("дата проведения", "дата"),
    "status": ("статус", "результат"),
    "score": ("баллы", "балл"),
}
REQUIRED = ("last_name", "first_name", "title", "profile", "stage", "status", "date")
STAGES = {"школьный": "school", "муниципальный": "municipal", "региональный": "regional",
          "заключительный": "national", "всероссийский": "national", "международный": "international"}
STATUSES = {"победитель": "winner", "призер": "prize_winner", "призёр": "prize_winner", "участник": "participant"}


def _header_name(raw: str) -> str | None:
    key = raw.strip().lower().replace("ё", "е").lstrip("\ufeff")
    for name, spellings in HEADERS.items():
        if key in spellings:
            return name
    return None


def read_sheet(path: Path) -> pd.DataFrame:
    """All cells as text with canonical column names (unknown columns keep their header)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        rows = list(book.worksheets[0].iter_rows(values_only=True))
        book.close()
        header = [str(h) if h is not None else "" for h in rows[0]] if rows else []
        body = [["" if v is None else (v.strftime("%Y-%m-%d") if hasattr(v, "strftime") else str(v)) for v in r]
                for r in rows[1:]]
        frame = pd.DataFrame(body, columns=header, dtype=object)
    else:
        raw = path.read_bytes()
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            content = raw.decode("cp1251")  # Excel on Russian Windows
        first = content.split("\n", 1)[0]
        sep = ";" if first.count(";") >= first.count(",") else ","
        frame = pd.read_csv(io.StringIO(content), sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    frame.columns = [_header_name(c) or str(c) for c in frame.columns]
    return frame.astype(object).fillna("")


class OlympiadSheet:
    name = "olympiad"
    description = "Olympiad results sheet (CSV/XLSX, Russian headers: Фамилия, Имя, ..., Этап, Статус)"

    def sniff(self, path: Path) -> bool:
        if path.suffix.lower() not in (".csv", ".xlsx"):
            return False
        try:
            if path.suffix.lower() == ".xlsx":
                columns: set[str | None] = set(read_sheet(path).columns)
            else:
                with path.open(encoding="utf-8-sig", errors="replace") as handle:
                    header = handle.readline()
                columns = {_header_name(c) for c in header.replace(",", ";").split(";")}
        except (OSError, ValueError):
            return False
        return {"last_name", "stage", "status"} <= columns

    def convert(self, path: Path, *, source: str | None = None) -> Conversion:
        path = Path(path)
        source = source or path.stem
        sheet = read_sheet(path)
        n = len(sheet)
        rejects = Rejects(path.name, "achievements")
        lines = np.arange(n) + 2  # line 1 is the header
        alive = np.ones(n, dtype=bool)

        def reject(mask: np.ndarray, field: str, reason: str | np.ndarray) -> None:
            for k in np.flatnonzero(mask & alive):
                why = reason if isinstance(reason, str) else str(reason[k])
                rejects.add(int(lines[k]), field, why, sheet.iloc[k].to_dict())
            alive[mask] = False

        missing = [c for c in REQUIRED if c not in sheet.columns]
        if missing:
            reject(np.ones(n, bool), missing[0], f"missing required column '{HEADERS[missing[0]][0]}'")
            sheet = sheet.reindex(columns=list(HEADERS), fill_value="")
        for column in REQUIRED:
            reject(text(sheet[column]).to_numpy() == "", column, f"missing required field '{HEADERS[column][0]}'")

        status_text = text(sheet["status"]).str.lower()
        status = status_text.map(STATUSES).to_numpy(dtype=object)
        reject(pd.isna(status), "status", "unknown status (expected победитель, призёр or участник)")
        stage_text = text(sheet["stage"]).str.lower().str.split().str[0].fillna("")
        level = stage_text.map(STAGES).to_numpy(dtype=object)
        reject(pd.isna(level), "stage", "unknown stage")
        comps = competence_lookup()
        profile = text(sheet["profile"]).str.lower().str.replace("ё", "е").map(comps).to_numpy(dtype=object)
        reject(pd.isna(profile), "profile", "unknown profile")
        date_day, date_bad = parse_dates(sheet["date"])
        reject(date_bad, "date", "event date is not a date")
        birth = sheet["birth_date"] if "birth_date" in sheet.columns else pd.Series([""] * n)
        birth_day, birth_bad = parse_dates(birth)
        reject(birth_bad, "birth_date", "birth date is not a date")  # the value is personal: not repeated
        score = pd.to_numeric(text(sheet.get("score", pd.Series([""] * n))).str.replace(",", "."), errors="coerce")
        region, region_unknown = region_codes_of(sheet.get("region", pd.Series([""] * n)))

        keep = np.flatnonzero(alive)
        middle = text(sheet.get("middle_name", pd.Series([""] * n))).to_numpy(dtype=object)
        title = text(sheet["title"]).to_numpy(dtype=object)
        event_key = pd.Series(title[keep] + "\x1f" + level[keep].astype(str) + "\x1f" + profile[keep].astype(str))
        event_ids = np.array(
            ["olympiad:" + hashlib.sha1(k.encode()).hexdigest()[:12] for k in event_key], dtype=object
        )
        record_ids = np.array([f"{source}:{k + 1}" for k in keep], dtype=object)
        school_text = text(sheet.get("school", pd.Series([""] * n))).to_numpy(dtype=object)[keep]
        number = pd.Series(school_text).str.extract(r"(\d+)")[0].fillna("").to_numpy(dtype=object)
        reg = region[keep]
        university = pd.Series(school_text).str.lower().str.contains("университет").to_numpy()
        org_id = np.where(
            (reg != "") & (number != ""), "school:" + reg + ":" + number,
            np.where((reg != "") & university, "university:" + reg, ""),
        )

        events = pd.DataFrame({
            "event_id": event_ids,
            "title": title[keep],
            "format": "olympiad",
            "level": level[keep],
            "competences": profile[keep].astype(str) + ":1",
            "start_date": dates_array(date_day[keep]),
        }).sort_values(["event_id", "start_date"]).drop_duplicates("event_id").reset_index(drop=True)
        events = events.astype({c: "string" for c in ("event_id", "title", "format", "level", "competences")})
        orgs = pd.DataFrame({"organization_id": org_id, "region_code": reg, "university": university})
        orgs = orgs[orgs["organization_id"] != ""].drop_duplicates("organization_id").sort_values("organization_id")
        organizations = pd.DataFrame({
            "organization_id": string_array(orgs["organization_id"]),
            "kind": string_array(np.where(orgs["university"], "university", "school")),
            "region_code": string_array(orgs["region_code"]),
        })
        participants = pd.DataFrame({
            "participant_id": string_array(record_ids),
            "birth_date": dates_array(birth_day[keep]),
            "region_code": string_array(reg),
            "last_name": string_array(text(sheet["last_name"]).to_numpy(dtype=object)[keep]),
            "first_name": string_array(text(sheet["first_name"]).to_numpy(dtype=object)[keep]),
            "middle_name": string_array(middle[keep]),
            "organization_id": string_array(org_id),
        })
        achievements = pd.DataFrame({
            "participant_id": string_array(record_ids),
            "event_id": string_array(event_ids),
            "role": pd.array(["participant"] * len(keep), dtype="string"),
            "result": string_array(status[keep]),
            "date": dates_array(date_day[keep]),
            "score": score.to_numpy(dtype=np.float64)[keep],
            "verified": pd.array([True] * len(keep), dtype="boolean"),
        })
        return Conversion(
            source=source,
            tables={"organizations": organizations, "participants": participants, "events": events,
                    "achievements": achievements},
            quarantine=quarantine_of([rejects]),
            rows_read=n,
            notes={"unknown_region_left_blank": int(region_unknown[keep].sum())},
        )
