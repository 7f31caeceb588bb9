"""One vocabulary: the column, field and enumeration names used in AIF files, frames, payloads and params."""

from __future__ import annotations

from typing import Final


class Columns:
    """Canonical column names shared by AIF files, DataFrames, API payloads and MLflow params."""

    Participant: Final = "participant_id"
    Event: Final = "event_id"
    Team: Final = "team_id"
    Mentor: Final = "mentor_id"
    Competence: Final = "competence_id"
    Organization: Final = "organization_id"
    ResourceCenter: Final = "resource_center_id"
    Program: Final = "program_id"
    Series: Final = "series_id"
    ParentEvent: Final = "parent_event_id"
    Achievement: Final = "achievement_id"
    Region: Final = "region_code"
    Grade: Final = "grade"
    Date: Final = "date"
    StartDate: Final = "start_date"
    EndDate: Final = "end_date"
    RegistrationDeadline: Final = "registration_deadline"
    RegistrationOpens: Final = "registration_opens"
    Interests: Final = "interests"
    Role: Final = "role"
    Result: Final = "result"
    Score: Final = "score"
    Rank: Final = "rank"
    Weight: Final = "weight"
    K: Final = "k"
    Extra: Final = "extra"
    Source: Final = "source"


# Ordered low to high; the position is the ordinal value models use.
EVENT_FORMATS: Final = (
    "olympiad",
    "hackathon",
    "project_school",
    "contest",
    "course",
    "camp",
    "conference",
    "accelerator",
)
LEVELS: Final = ("school", "municipal", "regional", "national", "international")
# `dropped` is outside the ladder: the participant left before finishing.
RESULTS: Final = ("registered", "participant", "completed", "finalist", "prize_winner", "winner")
RESULTS_ALL: Final = (*RESULTS, "dropped")
ROLES: Final = ("participant", "captain", "author", "mentor", "expert", "organizer", "volunteer", "visitor")
SETTLEMENT_TYPES: Final = ("city", "town", "rural")
GENDERS: Final = ("male", "female")
ORGANIZATION_KINDS: Final = ("school", "university", "company", "college", "other")
MENTOR_ORGANIZATION_TYPES: Final = ("company", "university", "school", "other")
RESOURCE_CENTER_KINDS: Final = ("kvantorium", "cmit", "fablab", "school_circle", "it_cube", "other")

LEVEL_RANK: Final = {name: i for i, name in enumerate(LEVELS)}
RESULT_RANK: Final = {name: i for i, name in enumerate(RESULTS)}

# Personal data of minors: these fields live only in the store's identity table.
IDENTITY_FIELDS: Final = ("last_name", "first_name", "middle_name", "birth_date", "email")
