"""The canonical store: the online SQL database (SQLite or PostgreSQL) and its Parquet snapshot."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recommender.aif.dataset import AifDataset, LoadReport, TableCounts
from recommender.columns import IDENTITY_FIELDS
from recommender.schema import ACHIEVEMENTS, PARTICIPANTS, TABLES
from recommender.store import bulk, migrate
from recommender.store.frames import conform, to_arrow
from recommender.store.merge import (
    ACHIEVEMENT_ID,
    PARTICIPANT_PK,
    KeyIndex,
    TablePlan,
    plan_achievements,
    plan_entities,
    plan_identities,
)
from recommender.store.quarantine import write_quarantine
from recommender.store.settings import data_dir_for, masked_url, resolve_store_url, snapshot_dir_for
from recommender.store.snapshot import (
    MANIFEST,
    duckdb_connection,
    export_snapshot,
    latest_ingest_run,
    read_snapshot,
    snapshot_ingest_run,
)
from recommender.store.tables import AIF_TABLES, PK, identities, ingest_runs

if TYPE_CHECKING:
    import duckdb

# Tables with a single external id, i.e. everything another table can refer to.
KEYED_TABLES = tuple(spec for spec in TABLES if len(spec.key) == 1)
# Inserts into an empty table from this many rows on drop its secondary indexes and rebuild them after.
REBUILD_INDEXES_ROWS = 200_000


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver the product ships)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_store_engine(url: str) -> Engine:
    """An engine tuned for bulk loads: SQLite in WAL mode with foreign keys enforced."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the API read while an ingest writes; NORMAL sync is durable at checkpoints.
            # threads: CREATE INDEX may sort with a helper thread (the bulk-load index rebuild).
            pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-262144", "threads=2")
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        return engine
    # An unreachable server must fail a request in seconds (a clear 503), not hang it on TCP retries.
    connect_args = {"connect_timeout": 5} if "connect_timeout" not in url else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _exported_date(manifest: Mapping[str, Any]) -> pd.Timestamp | None:
    text = manifest.get("exported_at")
    if not text:
        return None
    try:
        return pd.Timestamp(datetime.fromisoformat(str(text).replace("Z", "+00:00")).date())
    except ValueError:
        return None


def _quarantined_per_table(quarantine: pd.DataFrame) -> dict[str, int]:
    """Rejected source rows per table; a row rejected for several reasons counts once."""
    if quarantine.empty:
        return {}
    frame = quarantine.reset_index(drop=True)
    # Rows without a line number (the store's own rejects) are distinct rows each.
    line = frame["line"].astype(object).where(frame["line"].notna(), pd.Series(range(-1, -len(frame) - 1, -1)))
    unique = pd.DataFrame({"table": frame["table"], "file": frame["file"], "line": line}).drop_duplicates()
    return {str(k): int(v) for k, v in unique["table"].value_counts().items()}


class Store:
    """The online store and its snapshot. `Store(url)` with None -> `TRAJECTORY_STORE` or data/trajectory.db."""

    def __init__(
        self, url: str | None = None, *, snapshot_dir: Path | None = None, quarantine_dir: Path | None = None
    ) -> None:
        self.url = normalize_url(resolve_store_url(url))
        self.engine = create_store_engine(self.url)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else snapshot_dir_for(self.url)
        self.quarantine_dir = (
            Path(quarantine_dir) if quarantine_dir is not None else data_dir_for(self.url) / "quarantine"
        )
        self._migrated = False

    @property
    def masked_url(self) -> str:
        return masked_url(self.url)

    def __repr__(self) -> str:
        return f"Store({self.masked_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration (a no-op when it is current)."""
        migrate.upgrade(self.engine)
        self._migrated = True

    def _ensure_schema(self) -> None:
        if not self._migrated:
            self.migrate()

    # --- ingest -------------------------------------------------------------------------------

    def known_ids(self) -> dict[str, set[str]]:
        """External ids already stored, per table: what an incremental dataset may refer to."""
        self._ensure_schema()
        with self.engine.connect() as conn:
            return {spec.name: index.ids() for spec, index in self._key_indexes(conn).items()}

    def ingest(self, path: Path, *, snapshot: bool = True) -> LoadReport:
        """Read, validate and merge one AIF dataset; then refresh the snapshot (unless told not to)."""
        from recommender.aif.reader import read_dataset  # the reader is only needed for files

        self._ensure_schema()
        dataset = read_dataset(Path(path), known_ids=self.known_ids())
        return self.ingest_dataset(dataset, snapshot=snapshot)

    def ingest_dataset(self, dataset: AifDataset, *, snapshot: bool = True) -> LoadReport:
        """Merge a validated dataset in one transaction; the report balances for every table."""
        self._ensure_schema()
        started = datetime.now(UTC)
        report = LoadReport(dataset.source)
        with self.engine.begin() as conn:
            self._lock(conn)
            rejected = self._merge(conn, dataset, report)
            quarantine = pd.concat([dataset.quarantine, *rejected], ignore_index=True)
            quarantined = _quarantined_per_table(quarantine)
            for name, counts in report.tables.items():
                counts.quarantined = quarantined.get(name, 0)
                if not counts.balanced():
                    # A broken count is a bug somewhere; better no load than a report that lies.
                    raise RuntimeError(f"load report of {name} does not balance: {vars(counts)}")
            path = write_quarantine(quarantine, self.quarantine_dir, dataset.source, started)
            report.quarantine_file = str(path) if path is not None else None
            conn.execute(
                ingest_runs.insert().values(
                    source=dataset.source,
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    report=json.dumps(report.to_dict(), ensure_ascii=False),
                )
            )
        if snapshot:
            self.export_snapshot()
        return report

    def _lock(self, conn: Connection) -> None:
        """Take the write lock first, so the key maps read below stay true until commit."""
        if conn.dialect.name == "sqlite":
            dbapi = bulk.driver_connection(conn)
            if not dbapi.in_transaction:
                bulk.execute(conn, "BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            names = ", ".join([*(bulk.quote(spec.name) for spec in TABLES), identities.name])
            bulk.execute(conn, f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")

    def _key_indexes(self, conn: Connection) -> dict[Any, KeyIndex]:
        indexes = {}
        for spec in KEYED_TABLES:
            rows = bulk.fetch_rows(conn, f"SELECT {PK}, {spec.key[0]} FROM {spec.name}")
            indexes[spec] = KeyIndex.from_rows(rows)
        return indexes

    def _next_pk(self, conn: Connection, table: str) -> int:
        return int(bulk.fetch_rows(conn, f"SELECT COALESCE(MAX({PK}), 0) + 1 FROM {table}")[0][0])

    def _merge(self, conn: Connection, dataset: AifDataset, report: LoadReport) -> list[pd.DataFrame]:
        grade_date = _exported_date(dataset.manifest)
        by_spec = self._key_indexes(conn)
        indexes = {spec.name: index for spec, index in by_spec.items()}
        names = [spec.name for spec in TABLES if spec.name in dataset.read_counts or spec.name in dataset.tables]
        rejected: list[pd.DataFrame] = []
        for spec in TABLES:
            if spec.name not in names:
                continue
            frame = conform(dataset.tables.get(spec.name), spec)
            if spec.name == ACHIEVEMENTS.name:
                index = KeyIndex(next_pk=self._next_pk(conn, spec.name))
                plan = plan_achievements(
                    frame, indexes, self._stored_achievements(conn, frame, indexes), index, source=dataset.source
                )
            else:
                index = indexes[spec.name]
                plan = plan_entities(spec, frame, index, source=dataset.source, grade_date=grade_date)
            self._apply(conn, plan)
            if not plan.rejected.empty:
                rejected.append(plan.rejected)
            report.tables[spec.name] = TableCounts(
                read=int(dataset.read_counts.get(spec.name, len(frame))), loaded=plan.loaded, merged=plan.merged
            )
        return rejected

    def _stored_achievements(self, conn: Connection, frame: pd.DataFrame, indexes: dict[str, KeyIndex]) -> pd.DataFrame:
        """Stored achievements the dataset's rows could match: of its participants, or with its ids."""
        columns = [PK, PARTICIPANT_PK, "event_pk", "role", ACHIEVEMENT_ID]
        if not bulk.fetch_rows(conn, f"SELECT 1 FROM {ACHIEVEMENTS.name} LIMIT 1"):
            return pd.DataFrame({c: pd.Series([], dtype="Int64" if c.endswith("pk") else "string") for c in columns})
        participants = indexes[PARTICIPANTS.name].lookup(frame["participant_id"]).dropna().unique()
        ids = frame[ACHIEVEMENT_ID].dropna().unique()
        for name, values, column in (("_match_participants", participants, "pk"), ("_match_ids", ids, "id")):
            bulk.execute(conn, f"DROP TABLE IF EXISTS {name}")
            kind = "INTEGER" if column == "pk" else "VARCHAR"
            bulk.execute(conn, f"CREATE TEMPORARY TABLE {name} ({column} {kind} PRIMARY KEY)")
            bulk.insert_rows(conn, name, to_arrow(pd.DataFrame({column: pd.Series(values)})))
        select = ", ".join(columns)
        schema = pa.schema([(c, pa.int64() if c.endswith("pk") else pa.string()) for c in columns])
        # Arrow batches rather than one list of tuples: a re-load may match tens of millions of rows.
        stored = bulk.fetch_arrow(
            conn,
            f"SELECT {select} FROM {ACHIEVEMENTS.name} WHERE {PARTICIPANT_PK} IN (SELECT pk FROM _match_participants)"
            f" UNION SELECT {select} FROM {ACHIEVEMENTS.name} WHERE {ACHIEVEMENT_ID} IN (SELECT id FROM _match_ids)",
            schema,
        )
        bulk.execute(conn, "DROP TABLE _match_participants")
        bulk.execute(conn, "DROP TABLE _match_ids")
        frame = stored.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}.get)
        return frame.astype({c: "Int64" if c.endswith("pk") else "string" for c in columns})

    def _apply(self, conn: Connection, plan: TablePlan) -> None:
        # A first bulk load builds the secondary indexes once, after the rows are in: sorting
        # millions of keys once is much faster than inserting them one by one into B-trees.
        rebuild = plan.loaded >= REBUILD_INDEXES_ROWS and not bulk.fetch_rows(
            conn, f"SELECT 1 FROM {plan.name} LIMIT 1"
        )
        table = AIF_TABLES[plan.name]
        indexes = sorted(table.indexes, key=lambda ix: str(ix.name)) if rebuild else []
        # PostgreSQL checks foreign keys with a trigger per row; one validating join after is far cheaper.
        foreign_keys = (
            sorted(table.foreign_key_constraints, key=lambda fk: str(fk.name))
            if rebuild and conn.dialect.name == "postgresql"
            else []
        )
        for fk in foreign_keys:
            conn.execute(sa.schema.DropConstraint(fk))
        for ix in indexes:
            ix.drop(conn)
        bulk.insert_rows(conn, plan.name, to_arrow(plan.inserts))
        for ix in indexes:
            ix.create(conn)
        for fk in foreign_keys:
            conn.execute(sa.schema.AddConstraint(fk))
        bulk.update_coalesced(conn, plan.name, PK, to_arrow(plan.updates))
        if conn.dialect.name == "postgresql" and plan.loaded:
            # Rows came with explicit pks; keep the serial sequence ahead of them for API inserts.
            bulk.execute(
                conn,
                f"SELECT setval(pg_get_serial_sequence('{plan.name}', '{PK}'), (SELECT MAX({PK}) FROM {plan.name}))",
            )
        if plan.identities is not None:
            rows = bulk.fetch_rows(conn, f"SELECT {PARTICIPANT_PK} FROM {identities.name}")
            stored = pd.Index([row[0] for row in rows])
            index = KeyIndex(next_pk=self._next_pk(conn, identities.name))
            inserts, updates = plan_identities(plan.identities, stored, index)
            bulk.insert_rows(conn, identities.name, to_arrow(inserts))
            bulk.update_coalesced(conn, identities.name, PARTICIPANT_PK, to_arrow(updates))
            if conn.dialect.name == "postgresql" and len(inserts):
                bulk.execute(
                    conn,
                    f"SELECT setval(pg_get_serial_sequence('{identities.name}', '{PK}'),"
                    f" (SELECT MAX({PK}) FROM {identities.name}))",
                )

    # --- reading --------------------------------------------------------------------------------

    def export_snapshot(self) -> dict[str, int]:
        """Rewrite the Parquet snapshot from the store (e.g. after the API added achievements)."""
        self._ensure_schema()
        return export_snapshot(self.engine, self.snapshot_dir)

    def _current_snapshot(self) -> Path:
        """The snapshot directory, re-exported first if it is missing or older than the last ingest."""
        self._ensure_schema()
        with self.engine.connect() as conn:
            latest = latest_ingest_run(conn)
        if not (self.snapshot_dir / MANIFEST).exists() or snapshot_ingest_run(self.snapshot_dir) != latest:
            self.export_snapshot()
        return self.snapshot_dir

    def tables(self, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
        """The normalized graph from the snapshot, canonical-typed, identity-free."""
        return read_snapshot(self._current_snapshot(), names)

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """DuckDB over the snapshot: one view per table."""
        return duckdb_connection(self._current_snapshot())

    def identity(self, participant_id: str) -> dict[str, Any] | None:
        """A participant's identity row (names, birth date, e-mail): the only way to read identities."""
        self._ensure_schema()
        participants = sa.table("participants", sa.column(PK), sa.column("participant_id"))
        query = (
            sa.select(*(identities.c[name] for name in IDENTITY_FIELDS))
            .select_from(identities.join(participants, identities.c.participant_pk == participants.c[PK]))
            .where(participants.c.participant_id == participant_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}
