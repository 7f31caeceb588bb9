"""The quarantine: rejected source rows with file, line, field and reason, and its CSV file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recommender.aif.dataset import QUARANTINE_COLUMNS
from recommender.aif.sources import RAW_CHARS

MASK = "***"

_DTYPES = {
    "file": "string",
    "line": "int64",
    "table": "string",
    "field": "string",
    "reason": "string",
    "raw": "string",
}


def quarantine_frame(
    file: str,
    table: str,
    lines: Sequence[int],
    fields: Sequence[str | None],
    reasons: Sequence[str],
    raws: Sequence[str | None],
) -> pd.DataFrame:
    """Quarantine rows of one file, in QUARANTINE_COLUMNS with stable dtypes."""
    frame = pd.DataFrame(
        {
            "file": [file] * len(lines),
            "line": list(lines),
            "table": [table] * len(lines),
            "field": list(fields),
            "reason": list(reasons),
            "raw": list(raws),
        },
        columns=list(QUARANTINE_COLUMNS),
    )
    return frame.astype(_DTYPES)


def empty_quarantine() -> pd.DataFrame:
    return quarantine_frame("", "", [], [], [], [])


def concat_quarantine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_quarantine()
    return pd.concat(frames, ignore_index=True).astype(_DTYPES)


def cut_raw(text: str) -> str:
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS]


def mask_csv_record(raw: str, columns: Sequence[str], identity: frozenset[str], keep: frozenset[str]) -> str:
    """The record with every non-empty identity field replaced by `***` (names, birth dates, e-mails).

    When the record's fields do not line up with the header (a stray comma inside a name), any
    field may hold personal data: everything but the `keep` columns (the key) is masked.
    """
    record = next(csv.reader(io.StringIO(raw)), [])
    aligned = len(record) == len(columns)

    def hidden(i: int, value: str) -> bool:
        name = columns[i] if i < len(columns) else None
        return bool(value.strip()) and (name in identity if aligned else name not in keep)

    masked = [MASK if hidden(i, value) else value for i, value in enumerate(record)]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(masked)
    return out.getvalue()


def mask_json_record(raw: str, identity: frozenset[str]) -> str:
    """The JSON object with identity values masked; a line that is not a JSON object is masked whole."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return MASK  # it cannot be told where the personal data is, so none of it is kept
    if not isinstance(obj, dict):
        return MASK
    masked = {k: MASK if k in identity and v not in (None, "") else v for k, v in obj.items()}
    return json.dumps(masked, ensure_ascii=False)


def write_quarantine(df: pd.DataFrame, path: Path) -> None:
    """Write the quarantine frame as CSV (UTF-8, header row): the operator's list of rows to fix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.loc[:, list(QUARANTINE_COLUMNS)].to_csv(path, index=False, na_rep="", lineterminator="\n")
