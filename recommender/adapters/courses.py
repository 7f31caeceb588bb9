"""An online-course platform's completions export (CSV: e-mail, name, course, completion date, grade) to AIF.

Each row becomes a participant record and a `completed` (or the given status) achievement; each
course an event starting on its earliest completion date seen, since the export has no schedule.
"""

from __future__ import annotations

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
from recommender.columns import EVENT_FORMATS, LEVELS, RESULTS_ALL
from recommender.identity.normalize import parse_dates, split_full_name

REQUIRED = ("email", "course_id", "completed_at")


class CourseCompletions:
    name = "courses"
    description = "Online-course completions CSV: email, full_name, course_id, course_title, completed_at, grade"

    def sniff(self, path: Path) -> bool:
        if path.suffix.lower() != ".csv":
            return False
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline().strip().split(",")
        return {"email", "course_id", "completed_at"} <= set(header)

    def convert(self, path: Path, *, source: str | None = None) -> Conversion:
        path = Path(path)
        source = source or path.stem
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        n = len(frame)
        for column in ("email", "full_name", "birth_date", "region", "course_id", "course_title", "format", "level",
                       "topic", "completed_at", "grade", "status"):
            if column not in frame.columns:
                frame[column] = ""
        rejects = Rejects(path.name, "achievements")
        lines = np.arange(n) + 2
        alive = np.ones(n, dtype=bool)

        def reject(mask: np.ndarray, field: str, reason: str) -> None:
            for k in np.flatnonzero(mask & alive):
                rejects.add(int(lines[k]), field, reason, frame.iloc[k].to_dict())
            alive[mask] = False

        email, full = text(frame["email"]), text(frame["full_name"])
        reject(((email == "") & (full == "")).to_numpy(), "email", "row has neither an e-mail nor a name")
        reject((text(frame["course_id"]) == "").to_numpy(), "course_id", "missing required field 'course_id'")
        done, _ = parse_dates(frame["completed_at"])  # unparseable and missing alike
        reject(done < 0, "completed_at", "completion date missing or not a date")
        birth, birth_bad = parse_dates(frame["birth_date"])
        reject(birth_bad, "birth_date", "birth date is not a date")
        level = text(frame["level"]).str.lower()
        reject(~level.isin(LEVELS).to_numpy(), "level", "unknown course level")
        topic = text(frame["topic"]).str.lower().str.replace("ё", "е").map(competence_lookup())
        reject(topic.isna().to_numpy(), "topic", "unknown course topic")
        status = text(frame["status"]).str.lower()
        result = np.where(status.isin(RESULTS_ALL), status, "completed").astype(object)
        fmt = text(frame["format"]).str.lower()
        fmt = np.where(fmt.isin(EVENT_FORMATS), fmt, "course").astype(object)
        region, _ = region_codes_of(frame["region"])
        score = pd.to_numeric(text(frame["grade"]).str.replace(",", "."), errors="coerce").to_numpy(dtype=np.float64)

        keep = np.flatnonzero(alive)
        record_ids = np.array([f"{source}:{k + 1}" for k in keep], dtype=object)
        event_ids = ("course:" + text(frame["course_id"])).to_numpy(dtype=object)[keep]
        # The platform writes "Фамилия Имя"; entity resolution also tries the other order.
        split = [split_full_name(x) for x in full.to_numpy(dtype=object)[keep]]
        events = pd.DataFrame({
            "event_id": event_ids,
            "title": text(frame["course_title"]).to_numpy(dtype=object)[keep],
            "format": fmt[keep],
            "level": level.to_numpy(dtype=object)[keep],
            "competences": topic.to_numpy(dtype=object)[keep].astype(str) + ":1",
            "start_date": dates_array(done[keep]),
        }).sort_values(["event_id", "start_date"]).drop_duplicates("event_id").reset_index(drop=True)
        events["title"] = events["title"].where(events["title"] != "", events["event_id"])
        events = events.astype({c: "string" for c in ("event_id", "title", "format", "level", "competences")})
        participants = pd.DataFrame({
            "participant_id": string_array(record_ids),
            "birth_date": dates_array(birth[keep]),
            "region_code": string_array(region[keep]),
            "last_name": string_array([a for a, _, _ in split]),
            "first_name": string_array([b for _, b, _ in split]),
            "middle_name": string_array([m for _, _, m in split]),
            "email": string_array(email.to_numpy(dtype=object)[keep]),
        })
        achievements = pd.DataFrame({
            "participant_id": string_array(record_ids),
            "event_id": string_array(event_ids),
            "role": pd.array(["participant"] * len(keep), dtype="string"),
            "result": string_array(result[keep]),
            "date": dates_array(done[keep]),
            "score": score[keep],
            "verified": pd.array([True] * len(keep), dtype="boolean"),
        })
        return Conversion(
            source=source,
            tables={"participants": participants, "events": events, "achievements": achievements},
            quarantine=quarantine_of([rejects]),
            rows_read=n,
        )
