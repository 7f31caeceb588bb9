"""Streaming record readers for AIF table files (CSV and JSON Lines): text columns, line numbers, broken rows."""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from recommender.schema import Kind, TableSpec

# Rows parsed into Arrow at a time: large enough to amortize per-chunk work, small enough for memory.
CHUNK_ROWS = 500_000
_FAST_BLOCK_BYTES = 1 << 26
_SCAN_BYTES = 1 << 24
RAW_CHARS = 500  # the raw text kept for a quarantined record is cut to this length
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by `surrogateescape`

csv.field_size_limit(sys.maxsize)


@dataclass
class RowFailure:
    """A record that could not even be split into fields."""

    line: int
    field: str | None
    reason: str


@dataclass
class RawChunk:
    """Consecutive records of one file: the text of each column for the well-formed ones."""

    columns: dict[str, pa.Array]  # column name -> text ("" when empty); absent key = no such column
    lines: np.ndarray  # physical line where each well-formed record starts
    extras: list[str | None] | None = None  # JSON Lines: the `extra` object text per record
    failures: list[RowFailure] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.lines)


class NotClean(Exception):
    """The fast CSV reader cannot vouch for this file's fields or line numbers; use `csv_chunks`."""


@dataclass(frozen=True)
class FileScan:
    undecodable: bool  # some bytes are not UTF-8
    physical_lines: int  # lines in the file, a last line without a line break included


def scan_file(path: Path) -> FileScan:
    """One fast pass over the bytes: UTF-8 validity and the number of physical lines."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    undecodable = False
    newlines = 0
    last = b""
    with path.open("rb") as handle:
        while block := handle.read(_SCAN_BYTES):
            newlines += block.count(b"\n")
            last = block[-1:]
            if not undecodable:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    undecodable = True
    if not undecodable:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            undecodable = True
    return FileScan(undecodable, newlines + (1 if last not in (b"", b"\n") else 0))


def fast_csv_chunks(path: Path, columns: list[str], scan: FileScan) -> Iterator[RawChunk]:
    """The records of a clean CSV file, read by Arrow's multi-threaded parser.

    Clean means: valid UTF-8, every record on one line with the header's number of fields, no
    blank lines; then record i starts on line i + 2. Anything else raises NotClean, possibly
    after some chunks were yielded, and the caller starts over with `csv_chunks`.
    """
    if scan.undecodable or len(set(columns)) != len(columns) or not columns:
        raise NotClean("needs the row-by-row reader")
    rows = 0
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=columns, skip_rows=1, block_size=_FAST_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False
            ),
        )
        for batch in reader:
            n = batch.num_rows
            texts = {name: batch.column(i) for i, name in enumerate(columns)}
            yield RawChunk(texts, np.arange(rows + 2, rows + 2 + n, dtype=np.int64))
            rows += n
    except pa.ArrowException as exc:  # ragged rows, stray quotes: the csv module reports them per row
        raise NotClean(str(exc)) from None
    # A quoted line break or a blank line makes the counts differ: line numbers would be wrong.
    if rows + 1 != scan.physical_lines:
        raise NotClean("records and physical lines differ")


def read_csv_header(path: Path) -> list[str]:
    """Column names of a CSV file (empty list for an empty file)."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        header = next(csv.reader(handle), [])
    return [name.strip() for name in header]


def csv_chunks(path: Path, columns: list[str], scan: FileScan, chunk_rows: int = CHUNK_ROWS) -> Iterator[RawChunk]:
    """The records of any CSV file after its header row, in chunks, with the csv module; blank lines are skipped."""
    check_bytes = scan.undecodable
    width = len(columns)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        if next(reader, None) is None:
            return
        rows: list[list[str]] = []
        starts: list[int] = []
        failures: list[RowFailure] = []
        previous_end = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                failures.append(RowFailure(previous_end + 1, None, f"unreadable CSV record: {exc}"))
                previous_end = reader.line_num
                continue
            start, previous_end = previous_end + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                failures.append(RowFailure(start, None, f"expected {width} fields, got {len(row)}"))
            elif check_bytes and (bad := _undecodable_field(row, columns)) is not None:
                failures.append(RowFailure(start, bad, f"undecodable UTF-8 bytes in {bad}"))
            else:
                rows.append(row)
                starts.append(start)
            if len(rows) + len(failures) >= chunk_rows:
                yield _csv_chunk(columns, rows, starts, failures)
                rows, starts, failures = [], [], []
        if rows or failures:
            yield _csv_chunk(columns, rows, starts, failures)


def _undecodable_field(row: list[str], columns: list[str]) -> str | None:
    for name, value in zip(columns, row, strict=True):
        if _UNDECODABLE.search(value):
            return name
    return None


def _csv_chunk(columns: list[str], rows: list[list[str]], starts: list[int], failures: list[RowFailure]) -> RawChunk:
    if rows:
        texts = [pa.array(values, type=pa.string()) for values in zip(*rows, strict=True)]
    else:
        texts = [pa.array([], type=pa.string()) for _ in columns]
    return RawChunk(dict(zip(columns, texts, strict=True)), np.asarray(starts, dtype=np.int64), None, failures)


def _json_text(value: Any) -> str:
    """AIF text of a JSON value, so JSON Lines go through the same parsers as CSV."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return ";".join(_json_text(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}:{_json_text(v)}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False)


# JSON types the fast JSON Lines reader demands per field kind; any other JSON type sends the file
# to the object-by-object reader, which turns every value into text the way CSV gives it.
_JSON_TYPES: dict[Kind, pa.DataType] = {Kind.INT: pa.int64(), Kind.FLOAT: pa.float64(), Kind.BOOL: pa.bool_()}


def _as_text(values: pa.Array) -> pa.Array:
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false")
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def fast_jsonl_chunks(path: Path, spec: TableSpec, scan: FileScan) -> Iterator[RawChunk]:
    """The objects of a clean JSON Lines file, read by Arrow's parser.

    Clean means: valid UTF-8, one object per line, no blank lines, only the spec's keys, each with
    the JSON type its kind expects (numbers for int/float, booleans, strings otherwise); then
    record i is on line i + 1. Anything else raises NotClean and the caller uses `jsonl_chunks`.
    """
    if scan.undecodable:
        raise NotClean("needs the object-by-object reader")
    schema = pa.schema([pa.field(f.name, _JSON_TYPES.get(f.kind, pa.string())) for f in spec.fields])
    rows = 0
    try:
        reader = pa_json.open_json(
            path,
            read_options=pa_json.ReadOptions(block_size=_FAST_BLOCK_BYTES),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
        for batch in reader:
            n = batch.num_rows
            texts = {name: _as_text(batch.column(name)) for name in schema.names}
            yield RawChunk(texts, np.arange(rows + 1, rows + 1 + n, dtype=np.int64))
            rows += n
    except pa.ArrowException as exc:
        raise NotClean(str(exc)) from None
    if rows != scan.physical_lines:
        raise NotClean("records and physical lines differ")


def jsonl_chunks(path: Path, known: frozenset[str], chunk_rows: int = CHUNK_ROWS) -> Iterator[RawChunk]:
    """The objects of a JSON Lines file in chunks; keys outside `known` are gathered as `extra` JSON."""
    with path.open("rb") as handle:
        objects: list[dict[str, Any]] = []
        starts: list[int] = []
        failures: list[RowFailure] = []
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                failures.append(RowFailure(number, None, "undecodable UTF-8 bytes"))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                failures.append(RowFailure(number, None, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(obj, dict):
                failures.append(RowFailure(number, None, "invalid JSON: the line is not an object"))
                continue
            objects.append(obj)
            starts.append(number)
            if len(objects) + len(failures) >= chunk_rows:
                yield _jsonl_chunk(objects, starts, failures, known)
                objects, starts, failures = [], [], []
        if objects or failures:
            yield _jsonl_chunk(objects, starts, failures, known)


def _jsonl_chunk(
    objects: list[dict[str, Any]], starts: list[int], failures: list[RowFailure], known: frozenset[str]
) -> RawChunk:
    keys: dict[str, None] = {}
    for obj in objects:
        keys.update(dict.fromkeys(obj))
    columns = {
        key: pa.array([_json_text(obj.get(key)) for obj in objects], type=pa.string()) for key in keys if key in known
    }
    extras: list[str | None] = []
    for obj in objects:
        unknown = {k: v for k, v in obj.items() if k not in known and v is not None and v != ""}
        extras.append(json.dumps(unknown, ensure_ascii=False) if unknown else None)
    return RawChunk(columns, np.asarray(starts, dtype=np.int64), extras, failures)


def raw_records(path: Path, lines: list[int], *, jsonl: bool) -> dict[int, str]:
    """The raw text of the records starting at `lines` (one pass over the file, only when rows failed).

    A CSV record may span several physical lines (a quoted line break); its text is re-read with
    the csv module from its first line. Undecodable bytes are shown as backslash escapes.
    """
    wanted = sorted(set(lines))
    out: dict[int, str] = {}
    if not wanted:
        return out
    with path.open("rb") as handle:
        numbered = enumerate(handle, start=1)
        index = 0
        for number, raw in numbered:
            if number != wanted[index]:
                continue
            first = raw.decode("utf-8", errors="backslashreplace")
            start = number
            if jsonl:
                out[start] = first.rstrip("\r\n")
            else:
                out[start], number = _csv_record_text(first, numbered, number)
            index += 1
            while index < len(wanted) and wanted[index] <= number:
                index += 1
            if index == len(wanted):
                break
    return out


def _csv_record_text(first: str, numbered: Iterator[tuple[int, bytes]], number: int) -> tuple[str, int]:
    """Text of the CSV record starting with `first` and the number of its last physical line."""
    parts = [first]
    quotes = first.count('"')
    # An odd number of quote characters so far means a quoted field is still open; the raw text is
    # cut to RAW_CHARS anyway, so an unterminated quote does not swallow the rest of the file.
    while quotes % 2 == 1 and sum(map(len, parts)) <= RAW_CHARS:
        nxt = next(numbered, None)
        if nxt is None:
            break
        number = nxt[0]
        parts.append(nxt[1].decode("utf-8", errors="backslashreplace"))
        quotes += parts[-1].count('"')
    return "".join(parts).rstrip("\r\n"), number
