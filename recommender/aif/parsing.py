"""Vectorized parsers from AIF field text to canonical typed Arrow arrays, one per field kind."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.schema import FieldSpec, Kind

_SHOWN_CHARS = 80  # a value echoed in a reason is cut to this length
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_PATTERN = r"^[+-]?[0-9]{1,18}$"
_FLOAT_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TRUE = ("true", "1")
_FALSE = ("false", "0")

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.DATE: pa.timestamp("s"),
    Kind.BOOL: pa.bool_(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
}


def arrow_type(kind: Kind) -> pa.DataType:
    """The Arrow type a parsed field of this kind is stored as in a table.

    Text is `large_string`, the storage of pandas' Arrow-backed `string` dtype, so turning the
    parsed table into a DataFrame copies no text.
    """
    return ARROW_TYPES.get(kind, pa.large_string())


@dataclass(frozen=True)
class ParseContext:
    """What parsing needs beyond the text: the valid competence ids and region codes."""

    competence_ids: frozenset[str]
    region_codes: frozenset[str]


@dataclass(frozen=True)
class Parsed:
    """One parsed column: typed values (null where unknown or bad) and which rows were bad."""

    values: pa.Array
    bad: np.ndarray  # bool per row
    reason: Callable[[str], str]  # the reason for one bad text, built only for the few bad rows


def shown(spec: FieldSpec, text: str) -> str:
    """The value as quoted in a reason, or nothing for personal data (names, birth dates, e-mails)."""
    if spec.identity:
        return ""
    cut = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
    return f" '{cut}'"


def blank(text: pa.Array) -> np.ndarray:
    """Rows whose text is null or empty after trimming whitespace: the value is unknown."""
    empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    return np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _by_dictionary(
    text: pa.Array, convert: Callable[[str], object], value_type: pa.DataType
) -> tuple[pa.Array, np.ndarray]:
    """Convert each distinct text once (dates, enums, flags repeat millions of times).

    `convert` returns the value, or raises ValueError for bad text. Null text stays null.
    """
    encoded = pc.dictionary_encode(text)
    converted: list[object] = []
    bad_codes: list[int] = []
    for code, value in enumerate(encoded.dictionary.to_pylist()):
        try:
            converted.append(convert(value))
        except ValueError:
            converted.append(None)
            bad_codes.append(code)
    dictionary = pa.array(converted, type=value_type)
    values = pc.take(dictionary, encoded.indices)
    bad = np.isin(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), bad_codes)
    return values, bad


def _trimmed(text: pa.Array) -> pa.Array:
    """Trimmed text with empty values as null: an empty field is unknown, never a default."""
    trimmed = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def _parse_id(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    return Parsed(_trimmed(text), np.zeros(len(text), dtype=bool), lambda t: f"bad {spec.name}{shown(spec, t)}")


def _parse_text(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    # Free text keeps its spaces; only a field that is empty (or all blanks) is unknown.
    values = pc.if_else(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), pa.scalar(None, pa.string()), text)
    return Parsed(values, np.zeros(len(text), dtype=bool), lambda t: f"bad {spec.name}")


def _parse_enum(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    values = _trimmed(text)
    bad = _np(pc.invert(pc.is_in(values, value_set=pa.array(spec.values, pa.string())))) & _np(pc.is_valid(values))
    allowed = ", ".join(spec.values)
    return Parsed(
        pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), values),
        bad,
        lambda t: f"bad {spec.name}{shown(spec, t.strip())} (expected one of {allowed})",
    )


def _parse_region(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    values = _trimmed(text)
    codes = pa.array(sorted(ctx.region_codes), pa.string())
    bad = _np(pc.invert(pc.is_in(values, value_set=codes))) & _np(pc.is_valid(values))
    return Parsed(
        pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), values),
        bad,
        lambda t: f"unknown {spec.name}{shown(spec, t.strip())} (expected a two-digit region code)",
    )


def _iso_date(text: str) -> date:
    # date.fromisoformat alone would also take "20100219"; AIF dates are exactly YYYY-MM-DD.
    if not _DATE_TEXT.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _parse_date(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    days, bad = _by_dictionary(_trimmed(text), _iso_date, pa.date32())
    return Parsed(
        pc.cast(days, pa.timestamp("s")),
        bad,
        lambda t: f"bad date{shown(spec, t.strip())} in {spec.name} (expected YYYY-MM-DD)",
    )


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _parse_bool(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    values, bad = _by_dictionary(_trimmed(text), _flag, pa.bool_())
    return Parsed(
        values, bad, lambda t: f"bad boolean{shown(spec, t.strip())} in {spec.name} (expected true/false/1/0)"
    )


def _in_range(spec: FieldSpec, values: pa.Array) -> np.ndarray:
    """Rows whose number is outside the field's [min_value, max_value]."""
    out = np.zeros(len(values), dtype=bool)
    if spec.min_value is not None:
        out |= _np(pc.less(values, spec.min_value))
    if spec.max_value is not None:
        out |= _np(pc.greater(values, spec.max_value))
    return out


def _range_text(spec: FieldSpec) -> str:
    low = "" if spec.min_value is None else f"{spec.min_value:g}"
    high = "" if spec.max_value is None else f"{spec.max_value:g}"
    return f"[{low}..{high}]"


def _parse_number(spec: FieldSpec, text: pa.Array, pattern: str, value_type: pa.DataType, noun: str) -> Parsed:
    trimmed = _trimmed(text)
    well_formed = pc.match_substring_regex(trimmed, pattern)
    malformed = _np(pc.invert(well_formed)) & _np(pc.is_valid(trimmed))
    # Arrow's integer cast rejects a leading "+", which AIF allows.
    clean = pc.if_else(well_formed, pc.replace_substring_regex(trimmed, r"^\+", ""), pa.scalar(None, pa.string()))
    values = pc.cast(clean, value_type)
    if value_type == pa.float64():
        # "1e999" parses to infinity: a score must be a finite number.
        malformed |= _np(pc.invert(pc.is_finite(values)))
    out_of_range = _in_range(spec, values) & ~malformed
    bad = malformed | out_of_range
    values = pc.if_else(pa.array(bad), pa.scalar(None, value_type), values)

    def reason(t: str) -> str:
        t = t.strip()
        if re.fullmatch(pattern.strip("^$"), t):
            try:
                if math.isfinite(float(t)):
                    return f"{spec.name}{shown(spec, t)} out of range {_range_text(spec)}"
            except ValueError:
                pass
        return f"bad {noun}{shown(spec, t)} in {spec.name}"

    return Parsed(values, bad, reason)


def _parse_int(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    return _parse_number(spec, text, _INT_PATTERN, pa.int64(), "integer")


def _parse_float(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    return _parse_number(spec, text, _FLOAT_PATTERN, pa.float64(), "number")


def normalize_list(text: str) -> str:
    """`a; b;;c` -> `a;b;c`."""
    return ";".join(item.strip() for item in text.split(";") if item.strip())


def _parse_list(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    values, bad = _by_dictionary(_trimmed(text), normalize_list, pa.string())
    values = pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values)
    return Parsed(values, bad, lambda t: f"bad list{shown(spec, t)} in {spec.name}")


def format_weight(weight: float) -> str:
    """Shortest text of a weight, without a trailing `.0` (`1`, `0.5`)."""
    text = repr(float(weight))
    return text[:-2] if text.endswith(".0") else text


def parse_weighted(text: str, known: frozenset[str] | None = None) -> list[tuple[str, float]]:
    """`id:w;id` -> [(id, w), (id, 1.0)]; raises ValueError with a readable reason.

    A bare id weighs 1; weights are finite and >= 0; an id appears once; with `known`, every id
    must be in it.
    """
    pairs: list[tuple[str, float]] = []
    seen: set[str] = set()
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, weight_text = item.partition(":")
        name = name.strip()
        if not name:
            raise ValueError(f"empty id in '{item}'")
        weight = 1.0
        if sep:
            try:
                weight = float(weight_text)
            except ValueError:
                raise ValueError(f"bad weight '{weight_text.strip()}' for '{name}'") from None
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"bad weight '{weight_text.strip()}' for '{name}' (must be finite and >= 0)")
        if name in seen:
            raise ValueError(f"'{name}' given twice")
        if known is not None and name not in known:
            raise ValueError(f"unknown competence '{name}'")
        seen.add(name)
        pairs.append((name, weight))
    return pairs


def normalize_weighted(text: str, known: frozenset[str] | None = None) -> str:
    """Canonical text of a weighted list: `id:w;id:w`, trimmed, every weight explicit."""
    return ";".join(f"{name}:{format_weight(w)}" for name, w in parse_weighted(text, known))


def _parse_weighted(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    known = ctx.competence_ids if spec.ref == "competences" else None

    def convert(t: str) -> str:
        return normalize_weighted(t, known)

    def reason(t: str) -> str:
        try:
            convert(t)
        except ValueError as exc:
            return f"{exc} in {spec.name}"
        return f"bad weighted list in {spec.name}"

    values, bad = _by_dictionary(_trimmed(text), convert, pa.string())
    values = pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values)
    return Parsed(values, bad, reason)


_PARSERS: dict[Kind, Callable[[FieldSpec, pa.Array, ParseContext], Parsed]] = {
    Kind.ID: _parse_id,
    Kind.TEXT: _parse_text,
    Kind.ENUM: _parse_enum,
    Kind.REGION: _parse_region,
    Kind.DATE: _parse_date,
    Kind.BOOL: _parse_bool,
    Kind.INT: _parse_int,
    Kind.FLOAT: _parse_float,
    Kind.LIST: _parse_list,
    Kind.WEIGHTED: _parse_weighted,
}


def parse_field(spec: FieldSpec, text: pa.Array, ctx: ParseContext) -> Parsed:
    """Parse one column of field text (null or "" = unknown) into its canonical Arrow type."""
    return _PARSERS[spec.kind](spec, text, ctx)
