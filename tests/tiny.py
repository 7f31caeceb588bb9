"""A hand-made graph with a known answer for every business rule (shared by tests of several packages)."""

from __future__ import annotations

import pandas as pd


def _s(values: list[object]) -> pd.Series:
    return pd.Series(values, dtype="string")


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Four participants, a staged olympiad series over two seasons, regional and online events.

    At 2025-01-10 the open events are e_reg_final (qualified: p1 only), e_online (all but p4 by grade),
    e_region77 (region 77 only) and e_full (at capacity); e_past has started, e_closed's deadline passed.
    """
    participants = pd.DataFrame(
        {
            "participant_id": _s(["p1", "p2", "p3", "p4"]),
            "region_code": _s(["77", "77", "16", pd.NA]),
            "grade": pd.array([9, 10, 9, 5], dtype="Int64"),
            "grade_date": pd.to_datetime(["2025-01-01"] * 4),
        }
    )
    d = pd.to_datetime
    events = pd.DataFrame(
        {
            "event_id": _s(["e_school_23", "e_reg_23", "e_school_24", "e_reg_final", "e_online",
                            "e_region77", "e_full", "e_past", "e_closed"]),
            "title": _s(["School stage 2023", "Regional stage 2023", "School stage 2024", "Regional stage 2024",
                         "Online robotics course", "Moscow hackathon", "Full camp", "Past contest", "Closed"]),
            "format": _s(["olympiad", "olympiad", "olympiad", "olympiad", "course", "hackathon", "camp",
                          "contest", "contest"]),
            "level": _s(["school", "regional", "school", "regional", "national", "regional", "national",
                         "school", "school"]),
            "competences": _s(["math:1", "math:1", "math:1", "math:1", "robotics:1;informatics:0.5",
                               "ai:1;teamwork:0.5", "physics:1", "informatics:1", "informatics:1"]),
            "start_date": d(["2023-10-01", "2024-01-20", "2024-10-01", "2025-01-20", "2025-02-01",
                             "2025-03-01", "2025-02-10", "2025-01-05", "2025-02-15"]),
            "series_id": _s(["vsosh_school", "vsosh_reg", "vsosh_school", "vsosh_reg", "robo_course",
                             "msk_hack", "camp", "cf", "closed"]),
            "registration_deadline": d([None, None, None, "2025-01-15", "2025-01-30", None, None, None,
                                        "2025-01-01"]),
            "region_code": _s([pd.NA, pd.NA, pd.NA, pd.NA, pd.NA, "77", pd.NA, pd.NA, pd.NA]),
            "online": pd.array([True, True, True, True, True, False, True, True, True], dtype="boolean"),
            "min_grade": pd.array([5, 5, 5, 9, 7, 8, None, None, None], dtype="Int64"),
            "max_grade": pd.array([11, 11, 11, 11, 11, 11, None, None, None], dtype="Int64"),
            "capacity": pd.array([None, None, None, None, None, 50, 1, None, None], dtype="Int64"),
            "parent_event_id": _s([pd.NA, "e_school_23", pd.NA, "e_school_24", pd.NA, pd.NA, pd.NA, pd.NA,
                                   pd.NA]),
        }
    )
    achievements = pd.DataFrame(
        {
            "participant_id": _s(["p1", "p2", "p1", "p1", "p2", "p3", "p2"]),
            "event_id": _s(["e_school_23", "e_school_23", "e_reg_23", "e_school_24", "e_school_24",
                            "e_full", "e_online"]),
            "role": _s(["participant"] * 7),
            "result": _s(["winner", "participant", "prize_winner", "finalist", "completed", "registered",
                          "registered"]),
            "date": d(["2023-10-01", "2023-10-01", "2024-01-20", "2024-10-01", "2024-10-01", "2024-12-01",
                       "2025-01-05"]),
        }
    )
    return {"participants": participants, "events": events, "achievements": achievements}
