"""The Parquet snapshot of the normalized graph: one file per AIF table, no identity data, DuckDB over it."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.engine import Connection, Engine

from recommender.schema import ACHIEVEMENTS, PARTICIPANTS, TABLES, TABLES_BY_NAME, Kind, TableSpec
from recommender.store import bulk
from recommender.store.frames import canonical_dtype
from recommender.store.tables import (
    ACHIEVEMENT_REFS,
    BIRTH_YEAR,
    EXTRA,
    GRADE_DATE,
    PK,
    SOURCE,
    ingest_runs,
    stored_fields,
)

if TYPE_CHECKING:
    import duckdb

MANIFEST: Final = "snapshot.json"
_ARROW_TYPES: Final[dict[Kind, pa.DataType]] = {
    Kind.DATE: pa.date32(),
    Kind.BOOL: pa.bool_(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
}
# Tables whose pk -> external id map the achievements export needs.
_REFERENCED: Final = frozenset(ACHIEVEMENT_REFS.values())


def snapshot_columns(spec: TableSpec) -> list[tuple[str, Kind]]:
    """The snapshot's columns of a table: its non-identity fields, derived fields, `source`, `extra`."""
    columns = [(f.name, f.kind) for f in stored_fields(spec)]
    if spec.name == PARTICIPANTS.name:
        # Participants carry no `extra`: unknown participant columns may be personal.
        return [*columns, (BIRTH_YEAR, Kind.INT), (GRADE_DATE, Kind.DATE), (SOURCE, Kind.TEXT)]
    return [*columns, (SOURCE, Kind.TEXT), (EXTRA, Kind.TEXT)]


def _arrow_schema(spec: TableSpec) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES.get(kind, pa.string())) for name, kind in snapshot_columns(spec)])


def _db_columns(spec: TableSpec) -> list[str]:
    return [
        n.removesuffix("_id") + "_pk" if spec.name == ACHIEVEMENTS.name and n in ACHIEVEMENT_REFS else n
        for n, _ in snapshot_columns(spec)
    ]


def _csv_field(column: str, target: pa.DataType, dialect: str) -> str:
    """SQL that renders one column as a CSV field: unknown is an empty field, text is quoted."""
    q = bulk.quote(column)
    if pa.types.is_string(target):
        # Quoted, so an empty text stays an empty text and only an unquoted empty field is unknown.
        return f"""CASE WHEN {q} IS NULL THEN '' ELSE '"' || REPLACE({q}, '"', '""') || '"' END"""
    if pa.types.is_floating(target) and dialect == "sqlite":
        # 17 significant digits round-trip a double; printf renders NULL as 0, hence the CASE.
        return f"CASE WHEN {q} IS NULL THEN '' ELSE printf('%!.17g', {q}) END"
    return f"COALESCE(CAST({q} AS TEXT), '')"


def _select_lines(spec: TableSpec, dialect: str) -> str:
    """One CSV line per row, in pk order: the database formats, so Python handles one object per row."""
    schema = _read_schema(spec)
    fields = " || ',' || ".join(_csv_field(f.name, f.type, dialect) for f in schema)
    return f"SELECT {fields} FROM {bulk.quote(spec.name)} ORDER BY {PK}"


def _read_schema(spec: TableSpec) -> pa.Schema:
    """The columns as the database holds them: pk first, achievement references as integer pks."""
    types = {f.name: f.type for f in _arrow_schema(spec)}
    columns = [(PK, pa.int64())]
    for (name, _), db_name in zip(snapshot_columns(spec), _db_columns(spec), strict=True):
        columns.append((db_name, pa.int64() if db_name != name else types[name]))
    return pa.schema(columns)


class _IdMap:
    """Internal pk -> external id of one table, as a dense Arrow take."""

    def __init__(self, pks: np.ndarray, ids: pa.Array) -> None:
        self.positions = np.full(int(pks.max(initial=0)) + 1, -1, dtype="int64")
        self.positions[pks] = np.arange(len(pks))
        self.ids = ids

    def take(self, pks: pa.Array) -> pa.Array:
        values = pks.fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
        return self.ids.take(pa.array(self.positions[values], mask=pks.is_null().to_numpy(zero_copy_only=False)))


def _arrow_batches(conn: Connection, spec: TableSpec) -> Iterator[tuple[np.ndarray, list[pa.Array]]]:
    schema = _read_schema(spec)
    read = pacsv.ReadOptions(column_names=schema.names)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=schema,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["1", "true"],
        false_values=["0", "false"],
    )
    for rows in bulk.iter_row_batches(conn, _select_lines(spec, conn.dialect.name)):
        text = "\n".join(row[0] for row in rows).encode("utf-8") + b"\n"
        table = pacsv.read_csv(io.BytesIO(text), read_options=read, parse_options=parse, convert_options=convert)
        pks = table.column(PK).to_numpy()
        yield pks, [table.column(i).combine_chunks() for i in range(1, table.num_columns)]


def _export_table(conn: Connection, spec: TableSpec, path: Path, id_maps: dict[str, _IdMap]) -> int:
    schema = _arrow_schema(spec)
    key = spec.key[0] if len(spec.key) == 1 else None
    all_pks: list[np.ndarray] = []
    all_ids: list[pa.Array] = []
    count = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for pks, arrays in _arrow_batches(conn, spec):
            if spec.name == ACHIEVEMENTS.name:
                arrays = [
                    id_maps[ACHIEVEMENT_REFS[f.name]].take(a).cast(pa.string()) if f.name in ACHIEVEMENT_REFS else a
                    for f, a in zip(schema, arrays, strict=True)
                ]
            batch = pa.Table.from_arrays(arrays, schema=schema)
            writer.write_table(batch)
            count += batch.num_rows
            if key is not None and spec.name in _REFERENCED:
                all_pks.append(pks)
                all_ids.append(batch.column(key).combine_chunks())
    if spec.name in _REFERENCED:
        pks = np.concatenate(all_pks) if all_pks else np.zeros(0, dtype="int64")
        ids = pa.concat_arrays(all_ids) if all_ids else pa.array([], type=pa.string())
        id_maps[spec.name] = _IdMap(pks, ids)
    return count


def export_snapshot(engine: Engine, directory: Path) -> dict[str, int]:
    """Write the store's current graph to `directory` (replaced whole); rows per table."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    counts: dict[str, int] = {}
    id_maps: dict[str, _IdMap] = {}
    # One read transaction, so every table is read at the same instant of the store.
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn:
        if engine.dialect.name == "sqlite":
            bulk.execute(conn, "BEGIN")
        try:
            for spec in TABLES:
                counts[spec.name] = _export_table(conn, spec, staging / f"{spec.name}.parquet", id_maps)
            ingest_run = latest_ingest_run(conn)
        finally:
            conn.rollback()
    manifest = {
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ingest_run": ingest_run,
        "rows": counts,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # Swap in the new snapshot; a reader sees the old one or the new one, never a half-written one.
    retired = directory.parent / f".{directory.name}.old-{os.getpid()}"
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)
    return counts


def latest_ingest_run(conn: Connection) -> int | None:
    """The id of the newest ingest run: a snapshot taken after it is current."""
    value = bulk.fetch_rows(conn, f"SELECT MAX({PK}) FROM {ingest_runs.name}")[0][0]
    return None if value is None else int(value)


def snapshot_ingest_run(directory: Path) -> int | None:
    """The ingest run a snapshot was taken after (None if there is no snapshot or it predates runs)."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = manifest.get("ingest_run")
    return None if value is None else int(value)


def _pandas_type(arrow_type: pa.DataType) -> object:
    mapping: dict[pa.DataType, object] = {
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.int64(): pd.Int64Dtype(),
    }
    return mapping.get(arrow_type)


def read_snapshot(directory: Path, tables: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The snapshot's tables as canonical-typed frames (the AifDataset dtypes; participants without
    identity fields, with `birth_year` Int64 and `grade_date` datetime64[s])."""
    out: dict[str, pd.DataFrame] = {}
    for name in tables or [spec.name for spec in TABLES]:
        spec = TABLES_BY_NAME[name]
        path = Path(directory) / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"no snapshot of {name} in {directory}")
        frame = pq.read_table(path).to_pandas(types_mapper=_pandas_type, date_as_object=False)
        for column, kind in snapshot_columns(spec):
            frame[column] = frame[column].astype(canonical_dtype(kind))
        out[name] = frame
    return out


def duckdb_connection(directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per snapshot table, for analytics queries."""
    import duckdb  # only analytics needs it; keeps `import recommender.store` light

    connection = duckdb.connect()
    for spec in TABLES:
        path = Path(directory) / f"{spec.name}.parquet"
        if path.exists():
            literal = str(path.resolve()).replace("'", "''")
            connection.execute(f"CREATE VIEW {bulk.quote(spec.name)} AS SELECT * FROM read_parquet('{literal}')")
    return connection
