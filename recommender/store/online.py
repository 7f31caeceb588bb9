"""Store-side writes and reads of the serving path: posted achievements and feedback, newest rows, long jobs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from recommender.columns import Columns
from recommender.schema import ACHIEVEMENTS, PARTICIPANTS, Kind
from recommender.store import bulk
from recommender.store.snapshot import snapshot_columns
from recommender.store.tables import AIF_TABLES, PK, SOURCE, achievements, feedback, jobs

# Rows the API stored carry this source prefix followed by the posting key's id.
API_SOURCE_PREFIX: Final = "api:"
# Achievements are written under one lock (PostgreSQL: a transaction advisory lock; SQLite: the database
# write lock), so they commit in pk order and a reader's pk watermark never skips a row committed late.
ACHIEVEMENT_WRITE_LOCK: Final = 0x7472616A
# Ids looked up per IN (...) query: far below every driver's limit on bound parameters.
LOOKUP_CHUNK: Final = 500
JOB_STATUSES: Final = ("queued", "running", "succeeded", "failed")
ACTIVE_JOB_STATUSES: Final = ("queued", "running")


@dataclass(frozen=True)
class Rejected:
    """One row the store cannot take: its position in the written frame, the field and the reason."""

    position: int
    field: str
    reason: str


@dataclass
class WriteResult:
    """Rows stored now, rows already stored (by id or natural key), and rows the store rejected."""

    inserted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT with ON CONFLICT DO NOTHING in the connection's dialect (SQLite or PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def lock_writes(conn: Connection) -> None:
    """Serialize achievement writes until the transaction ends (see ACHIEVEMENT_WRITE_LOCK)."""
    if conn.dialect.name == "sqlite":
        dbapi = bulk.driver_connection(conn)
        if not dbapi.in_transaction:
            bulk.execute(conn, "BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ACHIEVEMENT_WRITE_LOCK})


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def resolve_ids(conn: Connection, table: str, ids: Iterable[str]) -> dict[str, int]:
    """External id -> pk for the ids stored in `table` (participants, events, teams)."""
    t = AIF_TABLES[table]
    key = t.c[f"{table.removesuffix('s')}_id"]
    wanted = sorted({str(i) for i in ids})
    out: dict[str, int] = {}
    for part in _chunks(wanted):
        for pk, ext in conn.execute(sa.select(t.c[PK], key).where(key.in_(part))):
            out[str(ext)] = int(pk)
    return out


def _value(value: Any) -> Any:
    """A frame cell as a DBAPI parameter: unknown -> None, timestamps -> dates, numpy scalars -> Python."""
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value.item() if hasattr(value, "item") else value


def _moment(value: Any) -> datetime | None:
    """A timestamp cell in UTC (taken as UTC when it came without a zone), None when unknown.

    In UTC because SQLite keeps the wall-clock time and drops the zone.
    """
    if value is None or value is pd.NA or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_convert(UTC) if ts.tzinfo is not None else ts.tz_localize(UTC)).to_pydatetime()


def _references(
    conn: Connection, frame: pd.DataFrame, refs: dict[str, str]
) -> tuple[dict[str, dict[str, int]], list[Rejected]]:
    """Resolve each reference column (column -> table); rows naming an unknown id are rejected (first field)."""
    maps: dict[str, dict[str, int]] = {}
    rejected: dict[int, Rejected] = {}
    for column, table in refs.items():
        if column not in frame.columns:
            continue
        present = frame[column].dropna().astype(str)
        maps[column] = resolve_ids(conn, table, present.unique().tolist())
        for position, value in present.items():
            if value not in maps[column] and int(position) not in rejected:
                rejected[int(position)] = Rejected(int(position), column, f"unknown {column} '{value}'")
    return maps, sorted(rejected.values(), key=lambda r: r.position)


def insert_achievements(engine: Engine, frame: pd.DataFrame, source: str) -> WriteResult:
    """Store valid achievement rows (AIF fields, canonical dtypes) exactly once each.

    A row whose achievement_id or natural key (participant, event, role) is already stored is a
    duplicate and changes nothing, however many clients post it at the same time. Rows naming a
    participant, event or team the store does not hold are rejected.
    """
    frame = frame.reset_index(drop=True)
    if not len(frame):
        return WriteResult()
    refs = {Columns.Participant: "participants", Columns.Event: "events", Columns.Team: "teams"}
    with engine.begin() as conn:
        lock_writes(conn)
        maps, rejected = _references(conn, frame, refs)
        bad = {r.position for r in rejected}
        params = []
        for position, row in enumerate(frame.to_dict("records")):
            if position in bad:
                continue
            team = _value(row.get(Columns.Team))
            params.append({
                "participant_pk": maps[Columns.Participant][str(row[Columns.Participant])],
                "event_pk": maps[Columns.Event][str(row[Columns.Event])],
                "team_pk": None if team is None else maps[Columns.Team][str(team)],
                **{name: _value(row.get(name)) for name in ("role", "result", "date", "achievement_id", "score",
                                                           "rank", "verified", "extra")},
                SOURCE: source,
            })
        inserted = conn.execute(_insert(conn, achievements).returning(achievements.c[PK]), params).all() \
            if params else []
    return WriteResult(len(inserted), len(params) - len(inserted), rejected)


def insert_feedback(engine: Engine, frame: pd.DataFrame, key_id: str | None) -> WriteResult:
    """Store feedback rows (feedback_id, participant_id, event_id?, kind, position?, model?, request_id?,
    occurred_at?) exactly once per feedback_id; rows naming an unknown participant or event are rejected."""
    frame = frame.reset_index(drop=True)
    if not len(frame):
        return WriteResult()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        maps, rejected = _references(conn, frame, {Columns.Participant: "participants", Columns.Event: "events"})
        bad = {r.position for r in rejected}
        params = []
        for position, row in enumerate(frame.to_dict("records")):
            if position in bad:
                continue
            event = _value(row.get(Columns.Event))
            params.append({
                "feedback_id": str(row["feedback_id"]),
                "participant_pk": maps[Columns.Participant][str(row[Columns.Participant])],
                "event_pk": None if event is None else maps[Columns.Event][str(event)],
                "kind": str(row["kind"]),
                "position": _value(row.get("position")),
                "model": _value(row.get("model")),
                "request_id": _value(row.get("request_id")),
                "occurred_at": _moment(row.get("occurred_at")),
                "key_id": key_id,
                "created_at": now,
            })
        inserted = conn.execute(_insert(conn, feedback).returning(feedback.c[PK]), params).all() if params else []
    return WriteResult(len(inserted), len(params) - len(inserted), rejected)


# ---- newest rows, for the serving graph ----------------------------------------------------------------

def _achievement_select() -> sa.Select[Any]:
    p, e, t = AIF_TABLES["participants"], AIF_TABLES["events"], AIF_TABLES["teams"]
    a = achievements
    return (
        sa.select(
            a.c[PK], p.c.participant_id, e.c.event_id, a.c.role, a.c.result, a.c.date, a.c.achievement_id,
            a.c.score, a.c.rank, t.c.team_id, a.c.verified, a.c.source, a.c.extra,
        )
        .select_from(a.join(p, p.c[PK] == a.c.participant_pk).join(e, e.c[PK] == a.c.event_pk)
                     .outerjoin(t, t.c[PK] == a.c.team_pk))
    )


# Arrow -> canonical pandas dtypes (see recommender.store.frames): text, nullable integers and booleans.
PANDAS_TYPES: Final[dict[pa.DataType, Any]] = {
    pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
_ARROW_TYPES: Final[dict[Kind, pa.DataType]] = {
    Kind.DATE: pa.date32(), Kind.INT: pa.int64(), Kind.FLOAT: pa.float64(), Kind.BOOL: pa.bool_(),
}


def canonical_frame(columns: dict[str, list[Any]], kinds: dict[str, Kind]) -> pd.DataFrame:
    """Python column values as a frame of canonical dtypes (dates datetime64[s]), through Arrow in one go."""
    arrays = {}
    for name, values in columns.items():
        array = pa.array(values, type=_ARROW_TYPES.get(kinds[name], pa.string()))
        arrays[name] = array.cast(pa.timestamp("s")) if kinds[name] is Kind.DATE else array
    return pa.table(arrays).to_pandas(types_mapper=PANDAS_TYPES.get)


_ACHIEVEMENT_KINDS: Final = {f.name: f.kind for f in ACHIEVEMENTS.fields} | {SOURCE: Kind.TEXT, "extra": Kind.TEXT}


def _achievement_frame(rows: Sequence[sa.Row[Any]]) -> pd.DataFrame:
    """Rows of `_achievement_select` as canonical achievement columns plus `pk` (int64)."""
    names = ["participant_id", "event_id", "role", "result", "date", "achievement_id", "score", "rank", "team_id",
             "verified", SOURCE, "extra"]
    values = list(zip(*rows, strict=True)) if rows else [() for _ in range(len(names) + 1)]
    frame = canonical_frame({n: list(v) for n, v in zip(names, values[1:], strict=True)}, _ACHIEVEMENT_KINDS)
    frame.insert(0, PK, np.asarray(values[0], dtype=np.int64))
    return frame[[PK, *ACHIEVEMENTS.names, SOURCE, "extra"]]


def achievements_after(conn: Connection, after_pk: int, limit: int) -> pd.DataFrame:
    """Up to `limit` stored achievements with pk above `after_pk`, oldest first, with external ids and `pk`."""
    query = _achievement_select().where(achievements.c[PK] > after_pk).order_by(achievements.c[PK]).limit(limit)
    return _achievement_frame(conn.execute(query).all())


def posted_achievements(conn: Connection, up_to_pk: int) -> pd.DataFrame:
    """Every achievement the API stored with pk up to `up_to_pk` (a worker reconciling its graph at start)."""
    query = _achievement_select().where(
        achievements.c.source.like(f"{API_SOURCE_PREFIX}%"), achievements.c[PK] <= up_to_pk
    ).order_by(achievements.c[PK])
    return _achievement_frame(conn.execute(query).all())


def achievement_pk(conn: Connection, participant_id: str, event_id: str, role: str) -> int | None:
    """The pk of the achievement with this natural key, if stored."""
    p, e = AIF_TABLES["participants"], AIF_TABLES["events"]
    query = (
        sa.select(achievements.c[PK])
        .select_from(achievements.join(p, p.c[PK] == achievements.c.participant_pk)
                     .join(e, e.c[PK] == achievements.c.event_pk))
        .where(p.c.participant_id == participant_id, e.c.event_id == event_id, achievements.c.role == role)
    )
    value = conn.execute(query).scalar()
    return None if value is None else int(value)


def max_achievement_pk(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(achievements.c[PK]), 0))).scalar_one())


def participant_rows(conn: Connection, ids: Iterable[str]) -> pd.DataFrame:
    """Stored participants as the snapshot holds them (no identity fields), canonical dtypes."""
    t = AIF_TABLES["participants"]
    columns = snapshot_columns(PARTICIPANTS)
    wanted = sorted({str(i) for i in ids})
    rows: list[tuple[Any, ...]] = []
    for part in _chunks(wanted):
        rows.extend(tuple(r) for r in conn.execute(sa.select(*(t.c[n] for n, _ in columns))
                                                   .where(t.c.participant_id.in_(part))))
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return canonical_frame({n: list(v) for (n, _), v in zip(columns, values, strict=True)}, dict(columns))


# ---- long jobs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobRecord:
    job_id: str
    kind: str
    event_id: str | None
    status: str
    params: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    key_id: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were written in UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def create_job(engine: Engine, job_id: str, kind: str, event_id: str | None, params: dict[str, Any],
               key_id: str | None, worker: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(jobs.insert().values(
            job_id=job_id, kind=kind, event_id=event_id, status="queued", params=json.dumps(params, default=str),
            key_id=key_id, worker=worker, created_at=now, heartbeat_at=now,
        ))


def start_job(engine: Engine, job_id: str) -> bool:
    """queued -> running; False when the job is no longer queued (e.g. reported failed meanwhile)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        done = conn.execute(jobs.update().where(jobs.c.job_id == job_id, jobs.c.status == "queued")
                            .values(status="running", started_at=now, heartbeat_at=now))
    return bool(done.rowcount)


def finish_job(engine: Engine, job_id: str, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
    """running -> succeeded (with a result) or failed (with an error)."""
    status = "failed" if error is not None else "succeeded"
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id, jobs.c.status.in_(ACTIVE_JOB_STATUSES)).values(
            status=status, finished_at=datetime.now(UTC), error=error,
            result=None if result is None else json.dumps(result, default=str, ensure_ascii=False),
        ))


def heartbeat(engine: Engine, job_ids: Sequence[str]) -> int:
    """Mark these queued or running jobs alive (their worker is still at them); how many were."""
    if not job_ids:
        return 0
    with engine.begin() as conn:
        done = conn.execute(jobs.update().where(jobs.c.job_id.in_(list(job_ids)),
                                                jobs.c.status.in_(ACTIVE_JOB_STATUSES))
                            .values(heartbeat_at=datetime.now(UTC)))
    return int(done.rowcount)


def fail_jobs(engine: Engine, *, error: str, workers: Iterable[str] = (), silent_since: datetime | None = None,
              job_ids: Sequence[str] | None = None) -> int:
    """Report as failed the queued or running jobs of the given (dead) workers or with no sign of life since
    `silent_since`, only among `job_ids` when given; the number of jobs failed."""
    workers = list(workers)
    alive: list[sa.ColumnElement[bool]] = []
    if workers:
        alive.append(jobs.c.worker.in_(workers))
    if silent_since is not None:
        alive.append(sa.or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < silent_since))
    if not alive:
        return 0
    where = [jobs.c.status.in_(ACTIVE_JOB_STATUSES), sa.or_(*alive)]
    if job_ids is not None:
        where.append(jobs.c.job_id.in_(list(job_ids)))
    with engine.begin() as conn:
        done = conn.execute(jobs.update().where(*where)
                            .values(status="failed", error=error, finished_at=datetime.now(UTC)))
    return int(done.rowcount)


def active_job_workers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.worker).distinct().where(jobs.c.status.in_(ACTIVE_JOB_STATUSES),
                                                                       jobs.c.worker.is_not(None)))
        return [str(r[0]) for r in rows]


def get_job(engine: Engine, job_id: str) -> JobRecord | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
    if row is None:
        return None
    return JobRecord(
        job_id=row["job_id"], kind=row["kind"], event_id=row["event_id"], status=row["status"],
        params=json.loads(row["params"]) if row["params"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"], key_id=row["key_id"], worker=row["worker"],
        created_at=_utc(row["created_at"]) or datetime.now(UTC), started_at=_utc(row["started_at"]),
        finished_at=_utc(row["finished_at"]), heartbeat_at=_utc(row["heartbeat_at"]),
    )
