"""Bulk writes on the raw driver connection: executemany batches for SQLite, COPY for PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy.engine import Connection

# Rows per executemany call or COPY chunk: big enough to amortize the round trip, small enough
# that the Python tuples of one batch stay in the tens of megabytes.
BATCH_ROWS: Final = 100_000


def driver_connection(conn: Connection) -> Any:
    """The DBAPI connection under a SQLAlchemy connection, in the same transaction."""
    return conn.connection.driver_connection


def _batches(table: pa.Table) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, BATCH_ROWS):
        yield table.slice(offset, BATCH_ROWS)


def _python_columns(batch: pa.Table) -> list[list[Any]]:
    columns = []
    for column in batch.columns:
        if pa.types.is_date32(column.type):
            # sqlite3's date adapter is deprecated; the ISO text is what SQLAlchemy stores anyway.
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    return columns


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def insert_rows(conn: Connection, table: str, rows: pa.Table) -> None:
    """Append `rows` (columns named as the table's) to `table`."""
    if rows.num_rows == 0:
        return
    names = ", ".join(quote(n) for n in rows.column_names)
    dbapi = driver_connection(conn)
    if conn.dialect.name == "postgresql":
        options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        # In COPY's CSV format an unquoted empty field is NULL and a quoted one is an empty string,
        # which is exactly how Arrow writes nulls and valid values with quoting_style="all_valid".
        statement = f"COPY {quote(table)} ({names}) FROM STDIN WITH (FORMAT csv)"
        with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
            for batch in _batches(rows):
                buffer = io.BytesIO()
                pacsv.write_csv(batch, buffer, options)
                copy.write(buffer.getvalue())
        return
    marks = ", ".join("?" for _ in rows.column_names)
    sql = f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})"
    cursor = dbapi.cursor()
    try:
        for batch in _batches(rows):
            cursor.executemany(sql, list(zip(*_python_columns(batch), strict=True)))
    finally:
        cursor.close()


def fetch_rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of a query on the raw driver (no per-value SQLAlchemy type processing)."""
    dbapi = driver_connection(conn)
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def iter_row_batches(conn: Connection, sql: str, size: int = 500_000) -> Iterator[list[tuple[Any, ...]]]:
    """A large query's rows in batches; PostgreSQL streams them through a server-side cursor."""
    dbapi = driver_connection(conn)
    if conn.dialect.name == "postgresql":
        cursor = dbapi.cursor(name="trajectory_export")
        cursor.itersize = size
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                return
            yield rows
    finally:
        cursor.close()


def execute(conn: Connection, sql: str) -> int:
    """Run one statement on the raw driver; the number of rows it touched."""
    cursor = driver_connection(conn).cursor()
    try:
        cursor.execute(sql)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def update_coalesced(conn: Connection, table: str, key: str, rows: pa.Table) -> int:
    """Merge `rows` into `table` by `key`: a known new value replaces the stored one, an unknown one keeps it.

    Only rows where something changes are written, so merging the same data again touches nothing.
    Returns the number of rows changed.
    """
    columns = [c for c in rows.column_names if c != key]
    if rows.num_rows == 0 or not columns:
        return 0
    staging = f"_merge_{table}"
    execute(conn, f"DROP TABLE IF EXISTS {quote(staging)}")
    selected = ", ".join(quote(c) for c in rows.column_names)
    execute(conn, f"CREATE TEMPORARY TABLE {quote(staging)} AS SELECT {selected} FROM {quote(table)} WHERE 1 = 0")
    insert_rows(conn, staging, rows)
    distinct = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    t, m = quote(table), quote(staging)
    assignments = ", ".join(f"{quote(c)} = COALESCE({m}.{quote(c)}, {t}.{quote(c)})" for c in columns)
    changed = " OR ".join(f"({m}.{quote(c)} IS NOT NULL AND {m}.{quote(c)} {distinct} {t}.{quote(c)})" for c in columns)
    count = execute(
        conn, f"UPDATE {t} SET {assignments} FROM {m} WHERE {t}.{quote(key)} = {m}.{quote(key)} AND ({changed})"
    )
    execute(conn, f"DROP TABLE {m}")
    return count


def fetch_arrow(conn: Connection, sql: str, schema: pa.Schema) -> pa.Table:
    """A large query's rows as an Arrow table of the given (int/string) schema, built batch by batch."""
    batches = []
    for rows in iter_row_batches(conn, sql):
        columns = list(zip(*rows, strict=True))
        batches.append(
            pa.Table.from_arrays(
                [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
                schema=schema,
            )
        )
    return pa.concat_tables(batches) if batches else schema.empty_table()
