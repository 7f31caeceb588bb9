"""Canonical frame dtypes (as the AIF reader gives them) and their Arrow form for bulk database writes."""

from __future__ import annotations

from typing import Final

import pandas as pd
import pyarrow as pa

from recommender.schema import Kind, TableSpec

# The dtypes of AifDataset tables: see recommender.aif.dataset.AifDataset.
CANONICAL_DTYPES: Final[dict[Kind, str]] = {
    Kind.DATE: "datetime64[s]",
    Kind.BOOL: "boolean",
    Kind.INT: "Int64",
    Kind.FLOAT: "float64",
}
STRING_DTYPE: Final = "string"


def canonical_dtype(kind: Kind) -> str:
    return CANONICAL_DTYPES.get(kind, STRING_DTYPE)


def conform(frame: pd.DataFrame | None, spec: TableSpec, *, with_extra: bool = True) -> pd.DataFrame:
    """The frame with every spec field (absent ones unknown) in spec order and canonical dtypes."""
    frame = pd.DataFrame() if frame is None else frame
    columns: dict[str, pd.Series] = {}
    for f in spec.fields:
        columns[f.name] = _as_dtype(frame, f.name, canonical_dtype(f.kind))
    if with_extra:
        columns["extra"] = _as_dtype(frame, "extra", STRING_DTYPE)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _as_dtype(frame: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(index=range(len(frame)), dtype=dtype)
    series = frame[name].reset_index(drop=True)
    if dtype == "datetime64[s]":
        return pd.to_datetime(series).astype(dtype)
    return series.astype(dtype)


def to_arrow_column(series: pd.Series) -> pa.Array:
    """One column as Arrow, unknown values null, dates as date32 (the SQL DATE both databases take)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return pa.array(series, from_pandas=True).cast(pa.date32())
    if isinstance(series.dtype, pd.StringDtype) or series.dtype == object:
        return pa.array(series.astype(STRING_DTYPE), type=pa.string(), from_pandas=True)
    return pa.array(series, from_pandas=True)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.table({str(name): to_arrow_column(frame[name]) for name in frame.columns})
