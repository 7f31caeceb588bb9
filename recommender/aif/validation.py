"""Row checks that need whole columns: value order (dates, grades, team sizes), duplicate keys, references."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.schema import TableSpec

# (low field, high field): a row is rejected when low > high; the high field is named.
ORDERED_PAIRS: tuple[tuple[str, str], ...] = (
    ("start_date", "end_date"),
    ("min_grade", "max_grade"),
    ("team_min", "team_max"),
)


@dataclass(frozen=True)
class Rejection:
    """Rows (positions in the checked frame) rejected by one check, with the field and reasons."""

    rows: np.ndarray
    field: str
    reasons: list[str]


def _text(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def order_violations(spec: TableSpec, frame: pd.DataFrame) -> list[Rejection]:
    """end_date >= start_date, min_grade <= max_grade, team_min <= team_max where both are known."""
    out = []
    for low, high in ORDERED_PAIRS:
        if low not in spec.names or high not in spec.names:
            continue
        rows = np.flatnonzero((frame[low] > frame[high]).fillna(False).to_numpy(dtype=bool))
        if len(rows):
            verb = "is before" if low == "start_date" else "is less than"
            pairs = zip(frame[low].iloc[rows].tolist(), frame[high].iloc[rows].tolist(), strict=True)
            reasons = [f"{high} {_text(h)} {verb} {low} {_text(lo)}" for lo, h in pairs]
            out.append(Rejection(rows, high, reasons))
    return out


def key_codes(frame: pd.DataFrame, key: Iterable[str]) -> np.ndarray:
    """One int64 code per row for its key tuple, -1 where a key part is unknown.

    Integer codes make duplicate detection on 15 million composite string keys cheap.
    """
    codes = np.zeros(len(frame), dtype=np.int64)
    unknown = np.zeros(len(frame), dtype=bool)
    span = 1  # codes are below span
    for name in key:
        part, uniques = pd.factorize(frame[name], use_na_sentinel=True)
        unknown |= part < 0
        radix = len(uniques) + 1
        if span * radix >= 2**62:
            # Renumber densely (a hash pass) only when mixed-radix codes would overflow int64.
            codes, dense = pd.factorize(codes)
            codes, span = codes.astype(np.int64), len(dense)
        codes = codes * radix + (part.astype(np.int64) + 1)
        span *= radix
    codes[unknown] = -1
    return codes


def duplicate_rows(
    frame: pd.DataFrame, key: Iterable[str], lines: np.ndarray, alive: np.ndarray | None = None
) -> Rejection | None:
    """Later rows repeating an earlier row's key, among the `alive` rows (default all).

    Rows with an unknown key part are not compared. Positions refer to the whole frame.
    """
    key = list(key)
    raw_codes = key_codes(frame, key)
    if alive is not None:
        raw_codes[~alive] = -1
    codes = pd.Series(raw_codes)
    involved = codes.duplicated(keep=False).to_numpy() & (codes.to_numpy() >= 0)
    if not involved.any():
        return None
    positions = np.flatnonzero(involved)
    part = codes.iloc[positions].reset_index(drop=True)
    later = part.duplicated(keep="first").to_numpy()
    # The line of the first occurrence of each key, for the reason "duplicate of line N".
    first_line = pd.Series(lines[positions]).groupby(part.to_numpy(), sort=False).transform("first")
    reasons = [f"duplicate of line {n}" for n in first_line.to_numpy()[later]]
    return Rejection(positions[later], "+".join(key), reasons)


def string_array(values: pd.Series) -> pa.Array:
    """The values as one Arrow large_string array (zero-copy for Arrow-backed `string` columns)."""
    array = pa.array(values.astype("string"), type=pa.large_string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def unknown_references(values: pd.Series, targets: pa.Array) -> np.ndarray:
    """Positions whose (known) value is not among `targets`."""
    column = string_array(values)
    missing = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=targets)))
    return np.flatnonzero(missing.to_numpy(zero_copy_only=False))
