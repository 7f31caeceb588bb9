"""A synthetic world's achievements as three organizers' own exports, with realistic mess and known identities.

The olympiad results sheet (CSV with Russian headers, `;`-separated, as Excel saves it), the
hackathon platform's JSON export and the online-course completions CSV each carry their share of
the world's achievements. Names, birth dates and e-mails come from the world's participants and
are damaged the way real registrations damage them: ё written as е, Latin look-alike letters,
typos, swapped first and last names, transliteration, date formats, missing fields, duplicates
and a few unusable rows. `truth/records.csv` tells which participant each source record is (the
record ids are the ones the adapters assign), so entity resolution can be scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender import reference
from recommender.synth.catalog import STAGE_RU
from recommender.synth.dates import to_date, to_day
from recommender.synth.names import translit

OLYMPIAD_FILE = "olympiad_results.csv"
HACKATHON_FILE = "hackathon_export.json"
COURSE_FILE = "course_completions.csv"
TRUTH_FILE = "truth/records.csv"

STATUS_RU = {"winner": "победитель", "prize_winner": "призёр"}  # every other finished result: участник
OLYMPIAD_FORMATS = ("olympiad", "contest")
_LOOKALIKE = {"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "к": "k", "м": "m",
              "т": "t", "н": "h", "в": "b", "А": "A", "Е": "E", "О": "O", "Р": "P", "С": "C", "Х": "X",
              "К": "K", "М": "M", "Т": "T", "Н": "H", "В": "B"}
_LETTERS = "абвгдеёжзийклмнопрстуфхцчшщыьэюя"
_ALT_TRANSLIT = {"й": "i", "я": "ia", "ю": "iu", "ы": "y", "ё": "e", "щ": "shch"}


@dataclass(frozen=True)
class Mess:
    """Probabilities of each kind of damage, per record."""

    yo_as_e: float = 0.5  # of names containing ё
    lookalike: float = 0.03
    typo: float = 0.03
    swap: float = 0.03
    translit: float = 0.12  # hackathon and course records only
    upper: float = 0.05
    missing_birth_olympiad: float = 0.02
    missing_birth_hackathon: float = 0.15
    missing_birth_course: float = 0.3
    birth_typo: float = 0.01
    other_email: float = 0.03
    missing_region: float = 0.05
    duplicate: float = 0.01
    unusable: float = 0.002  # rows a adapter must quarantine (no status / no name, impossible dates)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


class _Damage:
    def __init__(self, rng: np.random.Generator, mess: Mess):
        self.rng = rng
        self.mess = mess

    def pick(self, n: int, p: float) -> np.ndarray:
        return np.flatnonzero(self.rng.random(n) < p)

    def names(self, values: np.ndarray, *, allow_translit: bool) -> np.ndarray:
        out = values.astype(object).copy()
        n = len(out)
        m = self.mess
        for k in self.pick(n, m.yo_as_e):
            out[k] = str(out[k]).replace("ё", "е").replace("Ё", "Е")
        for k in self.pick(n, m.typo):
            out[k] = self._typo(str(out[k]))
        for k in self.pick(n, m.lookalike):
            out[k] = self._lookalike(str(out[k]))
        if allow_translit:
            alt = self.rng.random(n) < 0.5
            for k in self.pick(n, m.translit):
                word = str(out[k])
                if alt[k]:
                    word = "".join(_ALT_TRANSLIT.get(ch, ch) for ch in word.lower())
                out[k] = translit(word).capitalize()
        for k in self.pick(n, m.upper):
            out[k] = str(out[k]).upper()
        return out

    def _typo(self, word: str) -> str:
        if len(word) < 4:
            return word
        pos = int(self.rng.integers(1, len(word) - 1))
        op = int(self.rng.integers(0, 4))
        letter = _LETTERS[int(self.rng.integers(0, len(_LETTERS)))]
        if op == 0:
            return word[:pos] + letter + word[pos + 1 :]
        if op == 1:
            return word[:pos] + word[pos + 1 :]
        if op == 2:
            return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
        return word[:pos] + letter + word[pos:]

    def _lookalike(self, word: str) -> str:
        spots = [i for i, ch in enumerate(word) if ch in _LOOKALIKE]
        if not spots:
            return word
        i = spots[int(self.rng.integers(0, len(spots)))]
        return word[:i] + _LOOKALIKE[word[i]] + word[i + 1 :]

    def dates(self, days: np.ndarray, formats: tuple[str, ...], weights: tuple[float, ...]) -> np.ndarray:
        """Day numbers as text in a mix of formats ("" for -1)."""
        fmt = self.rng.choice(len(formats), len(days), p=np.asarray(weights) / sum(weights))
        stamps = pd.to_datetime(np.where(days >= 0, days, 0).astype("datetime64[D]"))
        out = np.full(len(days), "", dtype=object)
        for f_i, f in enumerate(formats):
            rows = np.flatnonzero((fmt == f_i) & (days >= 0))
            out[rows] = stamps[rows].strftime(f).to_numpy(dtype=object)
        return out

    def birth_days(self, days: np.ndarray, missing: float) -> np.ndarray:
        out = days.copy()
        for k in self.pick(len(out), self.mess.birth_typo):
            d = to_date(int(out[k]))
            if d.day <= 12 and d.day != d.month:  # day and month swapped
                out[k] = to_day(d.replace(day=d.month, month=d.day))
            else:
                out[k] += int(self.rng.choice([-1, 1]))
        out[self.pick(len(out), missing)] = -1
        return out


def _unique_emails(emails: np.ndarray, pids: np.ndarray) -> np.ndarray:
    """A mailbox belongs to one person: colliding synthetic addresses get the participant's number."""
    series = pd.Series(emails, dtype=object)
    clash = series.duplicated(keep=False).to_numpy()
    local = series.str.split("@").str[0].to_numpy(dtype=object)
    domain = series.str.split("@").str[1].to_numpy(dtype=object)
    tail = pd.Series(pids, dtype=object).str.replace(r"\D", "", regex=True).str.lstrip("0").to_numpy(dtype=object)
    fixed = local + "." + tail + "@" + domain
    return np.where(clash, fixed, emails).astype(object)


def emit_sources(world_dir: Path, out_dir: Path, *, seed: int = 0, mess: Mess | None = None) -> dict[str, Any]:
    """Write the three source files and truth/records.csv for the world in `world_dir` (DIR or DIR/aif)."""
    mess = mess or Mess()
    world_dir = Path(world_dir)
    aif = world_dir / "aif" if (world_dir / "aif").is_dir() else world_dir
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    damage = _Damage(rng, mess)

    people = _read(aif / "participants.csv")
    events = _read(aif / "events.csv").set_index("event_id")
    teams = _read(aif / "teams.csv").set_index("team_id")
    orgs = _read(aif / "organizations.csv").set_index("organization_id")
    ach = _read(aif / "achievements.csv")
    ach = ach[~ach["result"].isin(["registered", "dropped"])].reset_index(drop=True)

    people["email"] = _unique_emails(
        people["email"].to_numpy(dtype=object), people["participant_id"].to_numpy(dtype=object)
    )
    people = people.set_index("participant_id")
    p = people.loc[ach["participant_id"]].reset_index()
    ev = events.loc[ach["event_id"]].reset_index()
    team_rows = ach["team_id"].notna().to_numpy()
    olympiad = ~team_rows & ev["format"].isin(OLYMPIAD_FORMATS).to_numpy()
    course = ~team_rows & ~olympiad

    # Duplicated source rows: the same registration exported twice.
    rows = np.arange(len(ach))
    rows = np.sort(np.concatenate([rows, damage.pick(len(ach), mess.duplicate)]))
    ach, p, ev = (f.iloc[rows].reset_index(drop=True) for f in (ach, p, ev))
    team_rows, olympiad, course = team_rows[rows], olympiad[rows], course[rows]
    birth = (pd.to_datetime(p["birth_date"]).to_numpy().astype("datetime64[D]").astype(np.int64))

    region_names = reference.regions().set_index("region_code")["name_ru"]
    comp_ru = reference.competences().set_index("competence_id")["name_ru"]
    comp_en = reference.competences().set_index("competence_id")["name_en"]
    main_comp = ev["competences"].str.split(":").str[0]
    summary: dict[str, Any] = {}
    truth: list[pd.DataFrame] = []

    # --- olympiad sheet -------------------------------------------------------------------------
    o = np.flatnonzero(olympiad)
    n = len(o)
    last = damage.names(p["last_name"].to_numpy(dtype=object)[o], allow_translit=False)
    first = damage.names(p["first_name"].to_numpy(dtype=object)[o], allow_translit=False)
    middle = damage.names(p["middle_name"].to_numpy(dtype=object)[o], allow_translit=False)
    swap = damage.pick(n, mess.swap)
    last[swap], first[swap] = first[swap], last[swap].copy()
    bdays = damage.birth_days(birth[o], mess.missing_birth_olympiad)
    region_code = p["region_code"].to_numpy(dtype=object)[o]
    as_name = rng.random(n) < 0.8
    region = np.where(as_name, region_names.reindex(region_code).to_numpy(dtype=object), region_code)
    region[damage.pick(n, mess.missing_region)] = ""
    school_name = orgs["name"].reindex(p["organization_id"].to_numpy(dtype=object)[o]).fillna("").to_numpy(dtype=object)
    style = rng.integers(0, 3, n)
    number = pd.Series(school_name).str.extract(r"(\d+)")[0].fillna("").to_numpy(dtype=object)
    school = np.where(
        number == "", school_name,
        np.where(style == 0, school_name, np.where(style == 1, "МБОУ СОШ № " + number, "школа " + number)),
    )
    result = ach["result"].to_numpy(dtype=object)[o]
    status = np.array([STATUS_RU.get(str(r), "участник") for r in result], dtype=object)
    birth_text = damage.dates(bdays, ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y"), (0.8, 0.15, 0.05))
    bad = damage.pick(n, mess.unusable)
    status[bad[: len(bad) // 2]] = ""  # no status: the row says nothing about the result
    birth_text[bad[len(bad) // 2 :]] = "31.02." + pd.Series(bdays[bad[len(bad) // 2 :]]).map(
        lambda d: str(np.datetime64(int(max(d, 0)), "D").astype(object).year)).to_numpy(dtype=object)
    level = ev["level"].to_numpy(dtype=object)[o]
    sheet = pd.DataFrame({
        "№": np.arange(1, n + 1),
        "Фамилия": last,
        "Имя": first,
        "Отчество": middle,
        "Дата рождения": birth_text,
        "Регион": region,
        "Школа": school,
        "Олимпиада": ev["title"].to_numpy(dtype=object)[o],
        "Профиль": comp_ru.reindex(main_comp.to_numpy(dtype=object)[o]).to_numpy(dtype=object),
        "Этап": np.array([STAGE_RU[str(lv)] for lv in level], dtype=object),
        "Дата проведения": damage.dates(
            pd.to_datetime(ev["start_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)[o],
            ("%d.%m.%Y", "%Y-%m-%d"), (0.7, 0.3)),
        "Статус": status,
        "Баллы": ach["score"].to_numpy(dtype=object)[o],
    })
    sheet.to_csv(out_dir / OLYMPIAD_FILE, sep=";", index=False, encoding="utf-8-sig", lineterminator="\n")
    stem = Path(OLYMPIAD_FILE).stem
    truth.append(pd.DataFrame({
        "record_id": [f"{stem}:{i}" for i in range(1, n + 1)],
        "participant_id": p["participant_id"].to_numpy(dtype=object)[o],
    }))
    summary["olympiad_rows"] = n

    # --- hackathon platform JSON -----------------------------------------------------------------
    h = np.flatnonzero(team_rows)
    n = len(h)
    first = damage.names(p["first_name"].to_numpy(dtype=object)[h], allow_translit=True)
    last = damage.names(p["last_name"].to_numpy(dtype=object)[h], allow_translit=True)
    middle = p["middle_name"].to_numpy(dtype=object)[h]
    with_middle = rng.random(n) < 0.3
    order = rng.random(n) < 0.75  # "Имя Фамилия" on most platforms, "Фамилия Имя Отчество" on some
    order[damage.pick(n, mess.swap)] ^= True
    full = np.where(order, first + " " + last, last + " " + first + np.where(with_middle, " " + middle, ""))
    email = p["email"].to_numpy(dtype=object)[h].copy()
    email = _damage_emails(damage, email, p["last_name"].to_numpy(dtype=object)[h])
    bdays = damage.birth_days(birth[h], mess.missing_birth_hackathon)
    btext = damage.dates(bdays, ("%Y-%m-%d", "%d.%m.%Y"), (0.8, 0.2))
    hregion = p["region_code"].to_numpy(dtype=object)[h].copy()
    hregion[damage.pick(n, 0.3)] = ""
    bad = damage.pick(n, mess.unusable)
    full[bad] = ""
    email[bad] = ""
    frame = pd.DataFrame({
        "event": ach["event_id"].to_numpy(dtype=object)[h],
        "team": ach["team_id"].to_numpy(dtype=object)[h],
        "full_name": full, "email": email, "birth_date": btext, "region": hregion,
        "role": ach["role"].to_numpy(dtype=object)[h], "result": ach["result"].to_numpy(dtype=object)[h],
        "rank": ach["rank"].to_numpy(dtype=object)[h],
    })
    frame["registration_id"] = np.arange(1, n + 1)
    document = _hackathon_document(frame, events, teams)
    (out_dir / HACKATHON_FILE).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    stem = Path(HACKATHON_FILE).stem
    truth.append(pd.DataFrame({
        "record_id": [f"{stem}:{i}" for i in range(1, n + 1)],
        "participant_id": p["participant_id"].to_numpy(dtype=object)[h],
    }))
    summary["hackathon_members"] = n

    # --- course completions -----------------------------------------------------------------------
    c = np.flatnonzero(course)
    n = len(c)
    first = damage.names(p["first_name"].to_numpy(dtype=object)[c], allow_translit=True)
    last = damage.names(p["last_name"].to_numpy(dtype=object)[c], allow_translit=True)
    swap = damage.pick(n, mess.swap)
    full = last + " " + first
    full[swap] = (first + " " + last)[swap]
    email = _damage_emails(
        damage, p["email"].to_numpy(dtype=object)[c].copy(), p["last_name"].to_numpy(dtype=object)[c]
    )
    bdays = damage.birth_days(birth[c], mess.missing_birth_course)
    creg = p["region_code"].to_numpy(dtype=object)[c].copy()
    creg[damage.pick(n, 0.4)] = ""
    done = pd.to_datetime(ach["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)[c]
    score = pd.to_numeric(ach["score"], errors="coerce").to_numpy()[c]
    bad = damage.pick(n, mess.unusable)
    email[bad] = ""
    full[bad] = ""
    courses = pd.DataFrame({
        "email": email,
        "full_name": full,
        "birth_date": damage.dates(bdays, ("%Y-%m-%d", "%d.%m.%Y"), (0.6, 0.4)),
        "region": creg,
        "course_id": ach["event_id"].to_numpy(dtype=object)[c],
        "course_title": ev["title"].to_numpy(dtype=object)[c],
        "format": ev["format"].to_numpy(dtype=object)[c],
        "level": ev["level"].to_numpy(dtype=object)[c],
        "topic": comp_en.reindex(main_comp.to_numpy(dtype=object)[c]).to_numpy(dtype=object),
        "completed_at": damage.dates(done, ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y", "%Y-%m-%d"), (0.5, 0.25, 0.25)),
        "grade": np.where(np.isnan(score), "", np.round(np.nan_to_num(score), 1).astype(str)),
        "status": ach["result"].to_numpy(dtype=object)[c],
    })
    courses.to_csv(out_dir / COURSE_FILE, index=False, encoding="utf-8", lineterminator="\n")
    stem = Path(COURSE_FILE).stem
    truth.append(pd.DataFrame({
        "record_id": [f"{stem}:{i}" for i in range(1, n + 1)],
        "participant_id": p["participant_id"].to_numpy(dtype=object)[c],
    }))
    summary["course_rows"] = n

    records = pd.concat(truth, ignore_index=True)
    records.to_csv(out_dir / TRUTH_FILE, index=False, lineterminator="\n")
    summary["records"] = len(records)
    summary["persons"] = int(records["participant_id"].nunique())
    return summary


def _damage_emails(damage: _Damage, email: np.ndarray, last_names: np.ndarray) -> np.ndarray:
    n = len(email)
    for k in damage.pick(n, damage.mess.other_email):  # a second mailbox of the same child
        email[k] = f"{translit(str(last_names[k]))}{int(damage.rng.integers(10_000, 99_999))}@example.net"
    for k in damage.pick(n, 0.05):
        email[k] = " " + str(email[k]).upper()
    return email


def _hackathon_document(frame: pd.DataFrame, events: pd.DataFrame, teams: pd.DataFrame) -> dict[str, Any]:
    """Nested export: hackathons -> teams -> members, as platforms publish it (one pass over the rows)."""
    frame = frame.sort_values(["event", "team", "registration_id"], kind="stable")
    rank = pd.to_numeric(frame["rank"], errors="coerce")
    place = rank.groupby(frame["team"]).min()
    team_info = teams.reindex(pd.unique(frame["team"]))
    team_info = team_info.astype(object).where(team_info.notna(), None)
    event_info = events.reindex(pd.unique(frame["event"]))
    event_info = event_info.astype(object).where(event_info.notna(), None)
    hackathons: list[dict[str, Any]] = []
    current_event: Any = None
    current_team: Any = None
    team_entry: dict[str, Any] = {}
    columns = ["event", "team", "registration_id", "full_name", "email", "birth_date", "region", "role", "result"]
    for event_id, team_id, rid, full_name, email, birth_date, region, role, result in frame[columns].itertuples(
        index=False, name=None
    ):
        if event_id != current_event:
            ev = event_info.loc[event_id]
            hackathons.append({
                "id": str(event_id), "title": ev["title"], "format": ev["format"], "level": ev["level"],
                "tracks": ev["competences"], "start": ev["start_date"], "end": ev["end_date"],
                "region": ev["region_code"], "teams": [],
            })
            current_event, current_team = event_id, None
        if team_id != current_team:
            team = team_info.loc[team_id]
            best = place.get(team_id)
            team_entry = {
                "id": str(team_id), "name": team["name"], "project": team["project_title"],
                "mentor_id": team["mentor_id"], "place": None if best is None or np.isnan(best) else int(best),
                "members": [],
            }
            hackathons[-1]["teams"].append(team_entry)
            current_team = team_id
        team_entry["members"].append({
            "registration_id": int(rid), "full_name": full_name, "email": email or None,
            "birth_date": birth_date or None, "region": region or None,
            "role": "captain" if role == "captain" else "member", "result": result,
        })
    return {"platform": "hackathons.example", "version": 2, "hackathons": hackathons}
