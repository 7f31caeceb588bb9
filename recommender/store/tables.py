"""The store's SQL schema (SQLAlchemy Core), derived from the AIF table specs; identities kept apart."""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from recommender.columns import IDENTITY_FIELDS
from recommender.schema import TABLES, FieldSpec, Kind, TableSpec

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Achievements are the one large table: their references are stored as integer pks, which keeps
# 100M rows small and joins cheap. Other references stay external ids (validated by the reader).
ACHIEVEMENT_REFS: Final = {"participant_id": "participants", "event_id": "events", "team_id": "teams"}

# Derived, non-identifying participant columns: models need age and the date a grade refers to.
BIRTH_YEAR: Final = "birth_year"
GRADE_DATE: Final = "grade_date"
PK: Final = "pk"
SOURCE: Final = "source"
EXTRA: Final = "extra"


def sql_type(kind: Kind) -> sa.types.TypeEngine[Any]:
    """The column type a field kind is stored as."""
    types: dict[Kind, sa.types.TypeEngine[Any]] = {
        Kind.DATE: sa.Date(),
        Kind.BOOL: sa.Boolean(),
        Kind.INT: sa.Integer(),
        Kind.FLOAT: sa.Float(),
        Kind.TEXT: sa.Text(),
        Kind.LIST: sa.Text(),
        Kind.WEIGHTED: sa.Text(),
    }
    return types.get(kind, sa.String())


def stored_fields(spec: TableSpec) -> tuple[FieldSpec, ...]:
    """The spec's fields that live in the table itself (identity fields live in `identities`)."""
    return tuple(f for f in spec.fields if not f.identity)


def _pk_column() -> sa.Column[int]:
    return sa.Column(PK, sa.Integer, primary_key=True, autoincrement=True)


def _aif_table(spec: TableSpec) -> sa.Table:
    columns: list[sa.Column[object]] = [_pk_column()]  # type: ignore[list-item]
    for f in stored_fields(spec):
        if spec.name == "achievements" and f.name in ACHIEVEMENT_REFS:
            target = ACHIEVEMENT_REFS[f.name]
            columns.append(
                sa.Column(
                    f.name.removesuffix("_id") + "_pk",
                    sa.Integer,
                    sa.ForeignKey(f"{target}.{PK}"),
                    nullable=not f.required,
                )
            )
            continue
        is_key = f.name in spec.key and len(spec.key) == 1
        columns.append(sa.Column(f.name, sql_type(f.kind), nullable=not f.required, unique=is_key))
    if spec.name == "participants":
        columns.append(sa.Column(BIRTH_YEAR, sa.Integer))
        columns.append(sa.Column(GRADE_DATE, sa.Date))
    columns.append(sa.Column(SOURCE, sa.String, nullable=False))
    # Unknown participant columns may be personal (a phone, a school), so they live with the identity.
    if spec.name != "participants":
        columns.append(sa.Column(EXTRA, sa.Text))
    return sa.Table(spec.name, metadata, *columns)


AIF_TABLES: Final = {spec.name: _aif_table(spec) for spec in TABLES}

achievements = AIF_TABLES["achievements"]
# The natural key of an achievement (who, where, in which role); its leading column serves the
# API's "achievements of a participant" lookup. achievement_id, when a source gives one, is unique too.
# Unique indexes rather than constraints: a bulk load into an empty table drops and rebuilds them.
sa.Index(
    "uq_achievements_key", achievements.c.participant_pk, achievements.c.event_pk, achievements.c.role, unique=True
)
sa.Index("uq_achievements_achievement_id", achievements.c.achievement_id, unique=True)
sa.Index(None, achievements.c.event_pk)
sa.Index(None, AIF_TABLES["events"].c.start_date)
sa.Index(None, AIF_TABLES["teams"].c.event_id)

identities = sa.Table(
    "identities",
    metadata,
    _pk_column(),
    sa.Column("participant_pk", sa.Integer, sa.ForeignKey(f"participants.{PK}"), nullable=False, unique=True),
    *(sa.Column(name, sa.Date if name == "birth_date" else sa.Text) for name in IDENTITY_FIELDS),
    sa.Column(EXTRA, sa.Text),
)

feedback = sa.Table(
    "feedback",
    metadata,
    _pk_column(),
    sa.Column("feedback_id", sa.String, nullable=False, unique=True),
    sa.Column("participant_pk", sa.Integer, sa.ForeignKey(f"participants.{PK}"), nullable=False),
    sa.Column("event_pk", sa.Integer, sa.ForeignKey(f"events.{PK}")),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Migration 0004: where the event was shown, by which model, in which request, when the action happened,
    # and which API key posted it.
    sa.Column("position", sa.Integer),
    sa.Column("model", sa.String),
    sa.Column("request_id", sa.String),
    sa.Column("occurred_at", sa.DateTime(timezone=True)),
    sa.Column("key_id", sa.String),
)
sa.Index(None, feedback.c.participant_pk)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    _pk_column(),
    sa.Column(SOURCE, sa.String, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.Text, nullable=False),
)

# ---- service tables (migration 0003) --------------------------------------------------------------
# API keys are kept as a SHA-256 of the secret; the key id (the secret's public prefix) finds the row.
api_keys = sa.Table(
    "api_keys",
    metadata,
    _pk_column(),
    sa.Column("key_id", sa.String, nullable=False, unique=True),
    sa.Column("key_hash", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("scopes", sa.String, nullable=False),  # space-separated
    sa.Column("rate_per_minute", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Who (key) read what (resource, participant ids) when: every partner access.
audit_log = sa.Table(
    "audit_log",
    metadata,
    _pk_column(),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_id", sa.String, nullable=False, index=True),
    sa.Column("scopes", sa.String, nullable=False),
    sa.Column("method", sa.String, nullable=False),
    sa.Column("resource", sa.String, nullable=False),
    sa.Column("participant_ids", sa.Text),  # JSON list of pseudonymous ids
    sa.Column("request_id", sa.String),
)

jobs = sa.Table(
    "jobs",
    metadata,
    _pk_column(),
    sa.Column("job_id", sa.String, nullable=False, unique=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("event_id", sa.String),
    sa.Column("status", sa.String, nullable=False),  # queued | running | succeeded | failed
    sa.Column("params", sa.Text),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("key_id", sa.String),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    # Migration 0004: the worker process running the job (host:pid) and its last sign of life.
    sa.Column("worker", sa.String),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
)

# Migration 0006: one row per change the API made to a stored achievement (a result upgrade, say
# registered -> winner). Its pk is the revision: written under the achievement write lock, revisions
# commit in order, so a worker's revision watermark finds every row changed since its last look.
achievement_revisions = sa.Table(
    "achievement_revisions",
    metadata,
    _pk_column(),
    sa.Column("achievement_pk", sa.Integer, sa.ForeignKey(f"achievements.{PK}"), nullable=False),
    sa.Column(SOURCE, sa.String, nullable=False),  # who changed it: api:<key id>
    sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
)
