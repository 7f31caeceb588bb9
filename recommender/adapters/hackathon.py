"""A hackathon platform's JSON export (hackathons -> teams -> members) to AIF.

Each member entry becomes a participant record and an achievement in the team's name; each
hackathon an event and each team a team. Member names come as one `full_name` field in either
order ("Имя Фамилия" or "Фамилия Имя Отчество"); entity resolution compares both orders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.adapters.base import (
    Conversion,
    Rejects,
    dates_array,
    quarantine_of,
    region_codes_of,
    string_array,
)
from recommender.aif.parsing import normalize_weighted
from recommender.columns import EVENT_FORMATS, LEVELS, RESULTS_ALL
from recommender.identity.normalize import parse_dates, split_full_name
from recommender.reference import competence_ids

ROLES = {"captain": "captain", "member": "participant", "participant": "participant", "mentor": "mentor"}


def _place_result(place: Any) -> str:
    if place == 1:
        return "winner"
    if place in (2, 3):
        return "prize_winner"
    return "participant"


class HackathonExport:
    name = "hackathon"
    description = "Hackathon platform JSON export: {hackathons: [{id, title, teams: [{members: [...]}]}]}"

    def sniff(self, path: Path) -> bool:
        if path.suffix.lower() != ".json":
            return False
        with path.open(encoding="utf-8", errors="replace") as handle:
            return '"hackathons"' in handle.read(4096)

    def convert(self, path: Path, *, source: str | None = None) -> Conversion:
        path = Path(path)
        source = source or path.stem
        rejects = Rejects(path.name, "achievements")
        document = json.loads(path.read_text(encoding="utf-8"))
        known_comps = competence_ids()
        events: list[dict[str, Any]] = []
        teams: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        ordinal = 0
        for h in document.get("hackathons", []):
            event_id = f"hackathon:{h.get('id')}"
            problem = None
            try:
                competences = normalize_weighted(str(h.get("tracks") or ""), known_comps)
            except ValueError:
                competences, problem = "", "unknown competence in the hackathon's tracks"
            if not competences and problem is None:
                problem = "the hackathon has no tracks"
            fmt = h.get("format") if h.get("format") in EVENT_FORMATS else "hackathon"
            level = h.get("level")
            if level not in LEVELS:
                problem = problem or "unknown hackathon level"
            (start,), (bad_start,) = parse_dates([h.get("start")])
            (end,), _ = parse_dates([h.get("end")])
            if start < 0:
                why = "hackathon start date is not a date" if bad_start else "hackathon has no start date"
                problem = problem or why
            if problem is None:
                events.append({"event_id": event_id, "title": str(h.get("title") or event_id), "format": fmt,
                               "level": level, "competences": competences, "start": start, "end": end,
                               "region": h.get("region") or ""})
            for t in h.get("teams", []):
                team_id = f"{source}:{t.get('id')}"
                if problem is None:
                    teams.append({"team_id": team_id, "event_id": event_id, "name": t.get("name"),
                                  "project_title": t.get("project")})
                for m in t.get("members", []):
                    ordinal += 1
                    rid = m.get("registration_id", ordinal)
                    row = {"record": f"{source}:{rid}", "line": int(rid) if str(rid).isdigit() else ordinal,
                           "event_id": event_id, "team_id": team_id, "place": t.get("place"),
                           "date": end if end >= 0 else start, **m}
                    if problem is not None:
                        rejects.add(row["line"], "hackathon", problem, m)
                        continue
                    members.append(row)
        frame = pd.DataFrame(members)
        if frame.empty:
            frame = pd.DataFrame(columns=["record", "line", "event_id", "team_id", "place", "date", "full_name",
                                          "email", "birth_date", "region", "role", "result"])
        for column in ("full_name", "email", "birth_date", "region", "role", "result"):
            if column not in frame.columns:
                frame[column] = None
        alive = np.ones(len(frame), dtype=bool)

        def reject(mask: np.ndarray, field: str, reason: str) -> None:
            for k in np.flatnonzero(mask & alive):
                rec = {c: frame.iloc[k][c] for c in ("full_name", "email", "birth_date", "region", "role", "result")}
                rejects.add(int(frame["line"].iloc[k]), field, reason, rec)
            alive[mask] = False

        full = frame["full_name"].fillna("").astype(str).str.strip()
        email = frame["email"].fillna("").astype(str).str.strip()
        nameless = (full == "").to_numpy() & (email == "").to_numpy()
        reject(nameless, "full_name", "member has neither a name nor an e-mail")
        birth, birth_bad = parse_dates(frame["birth_date"])
        reject(birth_bad, "birth_date", "birth date is not a date")
        role = frame["role"].fillna("member").map(ROLES).to_numpy(dtype=object)
        reject(pd.isna(role), "role", "unknown member role")
        result = np.array(
            [r if r in RESULTS_ALL else _place_result(p) for r, p in zip(frame["result"], frame["place"], strict=True)],
            dtype=object,
        )
        region, _ = region_codes_of(frame["region"])
        keep = np.flatnonzero(alive)
        f = frame.iloc[keep]
        split = [split_full_name(x) for x in full.to_numpy(dtype=object)[keep]]
        # "Имя Фамилия" unless a patronymic shows the Russian order "Фамилия Имя Отчество".
        last = [(a if mid else b) for a, b, mid in split]
        first = [(b if mid else a) for a, b, mid in split]
        middle = [mid for _, _, mid in split]
        place = pd.to_numeric(f["place"], errors="coerce")
        participants = pd.DataFrame({
            "participant_id": string_array(f["record"]),
            "birth_date": dates_array(birth[keep]),
            "region_code": string_array(region[keep]),
            "last_name": string_array(last),
            "first_name": string_array(first),
            "middle_name": string_array(middle),
            "email": string_array(email.to_numpy(dtype=object)[keep]),
        })
        achievements = pd.DataFrame({
            "participant_id": string_array(f["record"]),
            "event_id": string_array(f["event_id"]),
            "role": string_array(role[keep]),
            "result": string_array(result[keep]),
            "date": dates_array(f["date"].to_numpy(dtype=np.int64)),
            "rank": pd.array(place.to_numpy(dtype=object), dtype="Int64") if len(f) else pd.array([], dtype="Int64"),
            "team_id": string_array(f["team_id"]),
            "verified": pd.array([True] * len(f), dtype="boolean"),
        })
        ev = pd.DataFrame(events, columns=["event_id", "title", "format", "level", "competences", "start", "end",
                                           "region"])
        event_frame = pd.DataFrame({
            "event_id": string_array(ev["event_id"]),
            "title": string_array(ev["title"]),
            "format": string_array(ev["format"]),
            "level": string_array(ev["level"]),
            "competences": string_array(ev["competences"]),
            "start_date": dates_array(ev["start"].to_numpy(dtype=np.int64)),
            "end_date": dates_array(ev["end"].to_numpy(dtype=np.int64)),
            "region_code": string_array(region_codes_of(ev["region"])[0]),
            "online": pd.array((ev["region"] == "").to_numpy(dtype=bool), dtype="boolean"),
        })
        tm = pd.DataFrame(teams, columns=["team_id", "event_id", "name", "project_title"])
        team_frame = pd.DataFrame({c: string_array(tm[c]) for c in tm.columns})
        read = ordinal
        return Conversion(
            source=source,
            tables={"participants": participants, "events": event_frame, "teams": team_frame,
                    "achievements": achievements},
            quarantine=quarantine_of([rejects]),
            rows_read=read,
        )
