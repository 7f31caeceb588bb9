"""The AIF v1 tables: columns, types, keys and references, defined once for reader, writer and store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from recommender.columns import (
    EVENT_FORMATS,
    GENDERS,
    LEVELS,
    MENTOR_ORGANIZATION_TYPES,
    ORGANIZATION_KINDS,
    RESOURCE_CENTER_KINDS,
    RESULTS_ALL,
    ROLES,
    SETTLEMENT_TYPES,
)

AIF_FORMAT: Final = "aif"
AIF_VERSION: Final = "1.0"


class Kind(str, Enum):
    """How a field's text is parsed and validated."""

    ID = "id"  # non-empty string identifier
    TEXT = "text"  # free text
    ENUM = "enum"  # one of `FieldSpec.values`
    DATE = "date"  # ISO YYYY-MM-DD
    BOOL = "bool"  # true/false/1/0
    INT = "int"
    FLOAT = "float"
    LIST = "list"  # `a;b;c`
    WEIGHTED = "weighted"  # `id:weight;id:weight`
    REGION = "region"  # two-digit subject code


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()  # allowed values of an ENUM
    ref: str | None = None  # table whose key this field refers to
    min_value: float | None = None
    max_value: float | None = None
    identity: bool = False  # personal data: kept only in the identity table


@dataclass(frozen=True)
class TableSpec:
    name: str  # file stem: participants -> participants.csv / participants.jsonl
    key: tuple[str, ...]  # unique key of a row; duplicates of it are quarantined
    fields: tuple[FieldSpec, ...]
    optional_key: bool = False  # key fields may be absent; a row key is then derived

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


def _f(name: str, kind: Kind, **kw: object) -> FieldSpec:
    return FieldSpec(name, kind, **kw)  # type: ignore[arg-type]


COMPETENCES = TableSpec(
    "competences",
    key=("competence_id",),
    fields=(
        _f("competence_id", Kind.ID, required=True),
        _f("name_ru", Kind.TEXT),
        _f("name_en", Kind.TEXT),
        _f("parent_id", Kind.ID, ref="competences"),
    ),
)

ORGANIZATIONS = TableSpec(
    "organizations",
    key=("organization_id",),
    fields=(
        _f("organization_id", Kind.ID, required=True),
        _f("kind", Kind.ENUM, required=True, values=ORGANIZATION_KINDS),
        _f("region_code", Kind.REGION, required=True),
        _f("name", Kind.TEXT),
        _f("settlement_type", Kind.ENUM, values=SETTLEMENT_TYPES),
    ),
)

RESOURCE_CENTERS = TableSpec(
    "resource_centers",
    key=("resource_center_id",),
    fields=(
        _f("resource_center_id", Kind.ID, required=True),
        _f("kind", Kind.ENUM, required=True, values=RESOURCE_CENTER_KINDS),
        _f("region_code", Kind.REGION, required=True),
        _f("name", Kind.TEXT),
        _f("competences", Kind.WEIGHTED, ref="competences"),
    ),
)

PARTICIPANTS = TableSpec(
    "participants",
    key=("participant_id",),
    fields=(
        _f("participant_id", Kind.ID, required=True),
        _f("birth_date", Kind.DATE, identity=True),
        _f("region_code", Kind.REGION),
        _f("last_name", Kind.TEXT, identity=True),
        _f("first_name", Kind.TEXT, identity=True),
        _f("middle_name", Kind.TEXT, identity=True),
        _f("gender", Kind.ENUM, values=GENDERS),
        _f("settlement_type", Kind.ENUM, values=SETTLEMENT_TYPES),
        _f("organization_id", Kind.ID, ref="organizations"),
        _f("grade", Kind.INT, min_value=1, max_value=18),
        _f("email", Kind.TEXT, identity=True),
        _f("consent_research", Kind.BOOL),
        _f("consent_admissions", Kind.BOOL),
        # Extension of AIF v1 (optional, so old files stay valid): competences the participant declared an
        # interest in at sign-up, a weighted list like events' `competences` (the cold-start signal).
        _f("interests", Kind.WEIGHTED, ref="competences"),
    ),
)

EVENTS = TableSpec(
    "events",
    key=("event_id",),
    fields=(
        _f("event_id", Kind.ID, required=True),
        _f("title", Kind.TEXT, required=True),
        _f("format", Kind.ENUM, required=True, values=EVENT_FORMATS),
        _f("level", Kind.ENUM, required=True, values=LEVELS),
        _f("competences", Kind.WEIGHTED, required=True, ref="competences"),
        _f("start_date", Kind.DATE, required=True),
        _f("series_id", Kind.ID),
        _f("description", Kind.TEXT),
        _f("end_date", Kind.DATE),
        _f("registration_deadline", Kind.DATE),
        _f("region_code", Kind.REGION),
        _f("online", Kind.BOOL),
        _f("min_grade", Kind.INT, min_value=1, max_value=18),
        _f("max_grade", Kind.INT, min_value=1, max_value=18),
        _f("capacity", Kind.INT, min_value=0),
        _f("team_min", Kind.INT, min_value=1),
        _f("team_max", Kind.INT, min_value=1),
        _f("parent_event_id", Kind.ID, ref="events"),
        _f("organizer_id", Kind.ID),
        _f("resource_center_id", Kind.ID, ref="resource_centers"),
        _f("benefit_level", Kind.INT, min_value=0),
        # Extension of AIF v1 (optional, so old files stay valid): registration is open from this date.
        _f("registration_opens", Kind.DATE),
    ),
)

MENTORS = TableSpec(
    "mentors",
    key=("mentor_id",),
    fields=(
        _f("mentor_id", Kind.ID, required=True),
        _f("competences", Kind.WEIGHTED, required=True, ref="competences"),
        _f("region_code", Kind.REGION, required=True),
        _f("capacity", Kind.INT, min_value=0),
        _f("online", Kind.BOOL),
        _f("organization_type", Kind.ENUM, values=MENTOR_ORGANIZATION_TYPES),
        _f("tech_leader", Kind.BOOL),
        _f("participant_id", Kind.ID, ref="participants"),
    ),
)

TEAMS = TableSpec(
    "teams",
    key=("team_id",),
    fields=(
        _f("team_id", Kind.ID, required=True),
        _f("event_id", Kind.ID, required=True, ref="events"),
        _f("name", Kind.TEXT),
        _f("mentor_id", Kind.ID, ref="mentors"),
        _f("project_title", Kind.TEXT),
    ),
)

ACHIEVEMENTS = TableSpec(
    "achievements",
    # Without an achievement_id a row is identified by who did what where in which role.
    key=("participant_id", "event_id", "role"),
    fields=(
        _f("participant_id", Kind.ID, required=True, ref="participants"),
        _f("event_id", Kind.ID, required=True, ref="events"),
        _f("role", Kind.ENUM, required=True, values=ROLES),
        _f("result", Kind.ENUM, required=True, values=RESULTS_ALL),
        _f("date", Kind.DATE, required=True),
        _f("achievement_id", Kind.ID),
        _f("score", Kind.FLOAT),
        _f("rank", Kind.INT, min_value=1),
        _f("team_id", Kind.ID, ref="teams"),
        _f("verified", Kind.BOOL),
    ),
)

PROGRAMS = TableSpec(
    "programs",
    key=("program_id",),
    fields=(
        _f("program_id", Kind.ID, required=True),
        _f("requirements", Kind.WEIGHTED, required=True, ref="competences"),
        _f("university", Kind.TEXT),
        _f("name", Kind.TEXT),
        _f("min_level", Kind.ENUM, values=LEVELS),
    ),
)

# Load order: a table comes after every table it refers to (events refer to themselves).
TABLES: Final[tuple[TableSpec, ...]] = (
    COMPETENCES,
    ORGANIZATIONS,
    RESOURCE_CENTERS,
    PARTICIPANTS,
    EVENTS,
    MENTORS,
    TEAMS,
    ACHIEVEMENTS,
    PROGRAMS,
)
TABLES_BY_NAME: Final = {t.name: t for t in TABLES}
