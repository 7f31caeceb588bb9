"""Write canonical-typed tables as an AIF v1 dataset (CSV or JSON Lines), vectorized for tens of millions of rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.columns import Columns
from recommender.schema import AIF_FORMAT, AIF_VERSION, TABLES_BY_NAME, FieldSpec, Kind, TableSpec

# Rows formatted and written at a time: bounds memory on the 15-million-row achievements table.
CHUNK_ROWS = 1_000_000

_STRING_KINDS = frozenset({Kind.ID, Kind.TEXT, Kind.ENUM, Kind.LIST, Kind.WEIGHTED, Kind.REGION})
_JSON_BARE_KINDS = frozenset({Kind.BOOL, Kind.INT, Kind.FLOAT})  # written as JSON literals, not strings
_CSV_SPECIAL = '[",\r\n]'
_JSON_SPECIAL = '["\\\\\x00-\x1f]'


def write_dataset(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    manifest: dict[str, Any],
    fmt: Literal["csv", "jsonl"] = "csv",
) -> None:
    """Write `manifest.json` and one `<table>.csv` / `<table>.jsonl` per given table into `out_dir`.

    Frames hold canonical dtypes (see `AifDataset`); columns are written in spec order, then any
    column the schema does not know, then the keys of the `extra` JSON objects. A field absent from
    a frame, or optional and entirely unknown, is not written. Unknown values (NA) become empty CSV
    fields or omitted JSON keys.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown AIF file format {fmt!r} (expected 'csv' or 'jsonl')")
    unknown = sorted(set(tables) - set(TABLES_BY_NAME))
    if unknown:
        raise ValueError(f"not AIF tables: {', '.join(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(out_dir / "manifest.json", manifest)
    for name, frame in tables.items():
        spec = TABLES_BY_NAME[name]
        # A stale file in the other format would make the dataset ambiguous for the reader.
        (out_dir / f"{name}.{'jsonl' if fmt == 'csv' else 'csv'}").unlink(missing_ok=True)
        with (out_dir / f"{name}.{fmt}").open("w", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                _write_csv(handle, spec, frame)
            else:
                _write_jsonl(handle, spec, frame)


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    body = {
        "format": AIF_FORMAT,
        "version": AIF_VERSION,
        "source": manifest.get("source", "unknown"),
        "exported_at": manifest.get("exported_at") or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    body.update({k: v for k, v in manifest.items() if k not in ("format", "version", "exported_at")})
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# --- one column to AIF text --------------------------------------------------------------------------


def _format_dates(series: pd.Series) -> pa.Array:
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, format="ISO8601")
    days = series.to_numpy(dtype="datetime64[s]", na_value=np.datetime64("NaT")).astype("datetime64[D]")
    # Few distinct dates among millions of rows: format each once (Arrow's strftime is slow per row).
    codes, uniques = pd.factorize(days.view("int64"), use_na_sentinel=True)
    missing = np.datetime64("NaT").astype("datetime64[D]").view("int64")
    uniques_text = np.datetime_as_string(uniques.view("datetime64[D]"), unit="D").astype(object)
    uniques_text[uniques == missing] = None
    return pc.take(pa.array(uniques_text, type=pa.string()), pa.array(codes))


def _format_bools(series: pd.Series) -> pa.Array:
    values = pa.array(series.astype("boolean"), type=pa.bool_())
    return pc.if_else(values, "true", "false")


def _format_ints(series: pd.Series) -> pa.Array:
    return pc.cast(pa.array(pd.array(series, dtype="Int64"), type=pa.int64()), pa.string())


def _format_floats(series: pd.Series) -> pa.Array:
    values = pd.to_numeric(series).astype("float64").to_numpy()
    # Arrow prints the shortest text that parses back to the same double; NaN means unknown.
    return pc.cast(pa.array(values, from_pandas=True), pa.string())


def _format_strings(series: pd.Series) -> pa.Array:
    return pa.array(series.astype("string"), type=pa.string())


_FORMATTERS: dict[Kind, Callable[[pd.Series], pa.Array]] = {
    Kind.DATE: _format_dates,
    Kind.BOOL: _format_bools,
    Kind.INT: _format_ints,
    Kind.FLOAT: _format_floats,
    **{kind: _format_strings for kind in _STRING_KINDS},
}


def _kind_of(series: pd.Series) -> Kind:
    """The kind an unknown column is written as, by its dtype."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return Kind.BOOL
    if pd.api.types.is_integer_dtype(dtype):
        return Kind.INT
    if pd.api.types.is_float_dtype(dtype):
        return Kind.FLOAT
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return Kind.DATE
    return Kind.TEXT


def format_field(series: pd.Series, spec: FieldSpec) -> pa.Array:
    """AIF text of one column as an Arrow string array, null where the value is unknown."""
    return _FORMATTERS[spec.kind](series)


# --- layout --------------------------------------------------------------------------------------------


def _layout(spec: TableSpec, frame: pd.DataFrame) -> list[tuple[str, Kind]]:
    """Columns to write with their kinds: spec fields present in order, then other non-extra columns.

    An optional column with no known value at all is left out: in AIF an absent column and an
    empty one both mean unknown, and the files stay as narrow as the source's.
    """

    def written(name: str, required: bool) -> bool:
        return required or len(frame) == 0 or bool(frame[name].notna().any())

    known = [(f.name, f.kind) for f in spec.fields if f.name in frame.columns and written(f.name, f.required)]
    others = [
        (str(c), _kind_of(frame[c]))
        for c in frame.columns
        if c not in spec.names and c != Columns.Extra and written(c, False)
    ]
    return known + others


def _extra_objects(frame: pd.DataFrame) -> list[dict[str, Any]] | None:
    """The parsed `extra` JSON object of each row ({} where NA), or None without an `extra` column."""
    if Columns.Extra not in frame.columns:
        return None
    objects: list[dict[str, Any]] = []
    for text in frame[Columns.Extra].astype("string").tolist():
        obj = {} if text is pd.NA or text is None else json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError(f"`extra` must hold JSON objects, got {text!r}")
        objects.append(obj)
    return objects


def _extra_keys(objects: list[dict[str, Any]] | None, taken: list[str]) -> list[str]:
    keys: dict[str, None] = {}
    for obj in objects or ():
        keys.update(dict.fromkeys(obj))
    return [k for k in keys if k not in taken]


def _extra_text(value: Any) -> str | None:
    """AIF text of one `extra` value: strings as they are, other JSON values in AIF notation."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _chunk_starts(frame: pd.DataFrame) -> range:
    return range(0, len(frame), CHUNK_ROWS)


# --- CSV -----------------------------------------------------------------------------------------------


def _csv_field(text: pa.Array) -> pa.Array:
    """Quote the values that need it (standard CSV: comma, quote or line break inside)."""
    special = pc.match_substring_regex(text, _CSV_SPECIAL)
    if not pc.any(special).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(special, quoted, text)


def _write_lines(handle: IO[str], lines: pa.Array) -> None:
    if len(lines):
        handle.write("\n".join(lines.to_pylist()))
        handle.write("\n")


def _write_csv(handle: IO[str], spec: TableSpec, frame: pd.DataFrame) -> None:
    layout = _layout(spec, frame)
    extras = _extra_objects(frame)
    extra_keys = _extra_keys(extras, [name for name, _ in layout])
    header = [name for name, _ in layout] + extra_keys
    handle.write(",".join(_csv_field(pa.array(header, type=pa.string())).to_pylist()) + "\n")
    for start in _chunk_starts(frame):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        fields = [_csv_field(_FORMATTERS[kind](chunk[name])) for name, kind in layout]
        if extras is not None:
            rows = extras[start : start + CHUNK_ROWS]
            for key in extra_keys:
                column = pa.array([_extra_text(obj.get(key)) for obj in rows], type=pa.string())
                fields.append(_csv_field(column))
        if len(fields) == 1:
            lines = pc.fill_null(fields[0], "")
        else:
            lines = pc.binary_join_element_wise(*fields, ",", null_handling="replace", null_replacement="")
        _write_lines(handle, lines)


# --- JSON Lines ----------------------------------------------------------------------------------------


def _json_strings(text: pa.Array) -> pa.Array:
    """JSON string literals; only values with quotes, backslashes or control characters need json.dumps."""
    special = pc.match_substring_regex(text, _JSON_SPECIAL)
    plain = pc.binary_join_element_wise('"', text, '"', "")
    if not pc.any(special).as_py():
        return plain
    escaped = pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False) for v in text.to_pylist()], type=pa.string()
    )
    return pc.if_else(special, escaped, plain)


def _write_jsonl(handle: IO[str], spec: TableSpec, frame: pd.DataFrame) -> None:
    layout = _layout(spec, frame)
    extras = _extra_objects(frame)
    taken = {name for name, _ in layout}
    for start in _chunk_starts(frame):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        # Each present value becomes ',"key":value' and unknown ones null, so joining with nulls as ""
        # leaves exactly one leading comma to cut (Arrow's null_handling="skip" drops rows here).
        fragments: list[pa.Array] = []
        for name, kind in layout:
            text = _FORMATTERS[kind](chunk[name])
            literal = text if kind in _JSON_BARE_KINDS else _json_strings(text)
            key = "," + json.dumps(name, ensure_ascii=False) + ":"
            fragments.append(pc.binary_join_element_wise(key, literal, ""))
        if extras is not None:
            rows = extras[start : start + CHUNK_ROWS]
            tails = [
                "".join(
                    f",{json.dumps(k, ensure_ascii=False)}:{json.dumps(v, ensure_ascii=False)}"
                    for k, v in obj.items()
                    if k not in taken and v is not None
                )
                for obj in rows
            ]
            fragments.append(pa.array(tails, type=pa.string()))
        body = pa.array([""] * len(chunk), type=pa.string())
        if fragments:
            joined = pc.binary_join_element_wise(*fragments, "", null_handling="replace", null_replacement="")
            body = pc.utf8_slice_codeunits(joined, 1)
        _write_lines(handle, pc.binary_join_element_wise("{", body, "}", ""))
