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
from recommender.store.tables import AIF_TABLES, PK, SOURCE, achievement_revisions, achievements, feedback, jobs

# Rows the API stored carry this source prefix followed by the posting key's id.
API_SOURCE_PREFIX: Final = "api:"
# Achievements are written under one lock (PostgreSQL: a transaction advisory lock; SQLite: the database
# write lock), so they commit in pk order (revisions in revision order) and a reader's watermarks never
# skip a row committed late.
ACHIEVEMENT_WRITE_LOCK: Final = 0x7472616A
# Ids looked up per IN (...) query: far below every driver's limit on bound parameters.
LOOKUP_CHUNK: Final = 500
# What a posted achievement may change in the stored row of its natural key (`source` stays the first one).
MERGED_FIELDS: Final = ("result", "date", "score", "rank", "team_pk", "verified", "extra")
REGISTERED: Final = "registered"
REVISION: Final = "revision"
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
    """Rows stored now, stored rows they updated, rows already stored as they are (by id or natural key), and
    rows the store rejected."""

    inserted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    updated: int = 0


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


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
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


def write_achievements(engine: Engine, frame: pd.DataFrame, source: str) -> WriteResult:
    """Store valid achievement rows (AIF fields, canonical dtypes, distinct ids and natural keys) exactly once.

    A row whose natural key (participant, event, role) is stored already merges into the stored row by the
    ingest's rule: a known value replaces the stored one (`MERGED_FIELDS`; an achievement_id is filled when
    the stored row has none, never changed). A row that changes nothing is a duplicate, so posting the same
    thing again is idempotent; so is a registration posted after the result (it would only undo the result),
    and a row whose achievement_id names another stored achievement. Each updated row gets a revision
    (`achievement_revisions`), by which other workers find it. Rows naming a participant, event or team the
    store does not hold are rejected.
    """
    frame = frame.reset_index(drop=True)
    if not len(frame):
        return WriteResult()
    refs = {Columns.Participant: "participants", Columns.Event: "events", Columns.Team: "teams"}
    with engine.begin() as conn:
        # References first, outside the write lock: API writes never change participants, events or teams.
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
        if not params:
            return WriteResult(rejected=rejected)
        lock_writes(conn)
        by_key, by_id = _stored_matches(conn, params)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row in params:
            stored = by_key.get((row["participant_pk"], row["event_pk"], row["role"]))
            named = None if row["achievement_id"] is None else by_id.get(row["achievement_id"])
            if named is not None and (stored is None or named[PK] != stored[PK]):
                continue  # the id names another stored achievement: a duplicate
            if stored is None:
                inserts.append(row)
            elif (merged := _merged(stored, row)) is not None:
                updates.append(merged)
        inserted = conn.execute(_insert(conn, achievements).returning(achievements.c[PK]), inserts).all() \
            if inserts else []
        if updates:
            names = [*MERGED_FIELDS, "achievement_id"]
            conn.execute(
                achievements.update().where(achievements.c[PK] == sa.bindparam("b_pk"))
                .values({n: sa.bindparam(f"b_{n}") for n in names}),
                [{"b_pk": u[PK], **{f"b_{n}": u[n] for n in names}} for u in updates],
            )
            now = datetime.now(UTC)
            conn.execute(achievement_revisions.insert(),
                         [{"achievement_pk": u[PK], SOURCE: source, "revised_at": now} for u in updates])
    return WriteResult(len(inserted), len(params) - len(inserted) - len(updates), rejected, len(updates))


def _stored_matches(
    conn: Connection, params: Sequence[dict[str, Any]]
) -> tuple[dict[tuple[int, int, str], dict[str, Any]], dict[str, dict[str, Any]]]:
    """The stored rows the rows may match: by natural key (participant_pk, event_pk, role) and by achievement_id."""
    a = achievements
    columns = [a.c[PK], a.c.participant_pk, a.c.event_pk, a.c.role, a.c.achievement_id,
               *(a.c[n] for n in MERGED_FIELDS)]
    found: dict[int, dict[str, Any]] = {}
    people = sorted({int(row["participant_pk"]) for row in params})
    ids = sorted({str(row["achievement_id"]) for row in params if row["achievement_id"] is not None})
    for part in _chunks(people):
        found.update((int(r[PK]), dict(r)) for r in conn.execute(sa.select(*columns)
                                                                  .where(a.c.participant_pk.in_(part))).mappings())
    for ids_part in _chunks(ids):
        found.update((int(r[PK]), dict(r)) for r in conn.execute(sa.select(*columns)
                                                                  .where(a.c.achievement_id.in_(ids_part))).mappings())
    by_key = {(int(r["participant_pk"]), int(r["event_pk"]), str(r["role"])): r for r in found.values()}
    by_id = {str(r["achievement_id"]): r for r in found.values() if r["achievement_id"] is not None}
    return by_key, by_id


def _merged(stored: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    """The stored row with the posted row's known values, or None when that changes nothing."""
    if row["result"] == REGISTERED and stored["result"] != REGISTERED:
        return None  # a registration posted (again) after the result: it would only undo the result
    changes = {n: row[n] for n in MERGED_FIELDS if row[n] is not None and row[n] != stored[n]}
    if stored["achievement_id"] is None and row["achievement_id"] is not None:
        changes["achievement_id"] = row["achievement_id"]
    if not changes:
        return None
    return {**stored, **changes}


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


def _achievement_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
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


def achievements_revised_after(conn: Connection, after_revision: int, limit: int) -> pd.DataFrame:
    """Up to `limit` achievements the API changed in revisions above `after_revision`, oldest revision first,
    as they are stored now, with `pk` and their `revision` (a row changed twice comes twice)."""
    r = achievement_revisions
    query = (_achievement_select().add_columns(r.c[PK].label(REVISION))
             .join(r, r.c.achievement_pk == achievements.c[PK])
             .where(r.c[PK] > after_revision).order_by(r.c[PK]).limit(limit))
    rows = conn.execute(query).all()
    frame = _achievement_frame([row[:-1] for row in rows])
    frame[REVISION] = np.asarray([row[-1] for row in rows], dtype=np.int64)
    return frame


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


def achievement_marks(conn: Connection) -> tuple[int, int]:
    """The newest achievement pk and the newest revision, in one round trip (two index look-ups)."""
    newest = sa.select(sa.func.coalesce(sa.func.max(achievements.c[PK]), 0)).scalar_subquery()
    revised = sa.select(sa.func.coalesce(sa.func.max(achievement_revisions.c[PK]), 0)).scalar_subquery()
    pk, revision = conn.execute(sa.select(newest, revised)).one()
    return int(pk), int(revision)


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
