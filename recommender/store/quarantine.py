"""The quarantine file of one ingest: every rejected row with its reason, identity values masked."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recommender.aif.dataset import QUARANTINE_COLUMNS
from recommender.aif.quarantine import MASK
from recommender.aif.quarantine import write_quarantine as write_quarantine_csv
from recommender.columns import IDENTITY_FIELDS


def _mask_raw(raw: Any) -> tuple[Any, list[str]]:
    """A JSON raw record with identity values masked, and the values masked (to scrub reasons too).

    The reader already masks the records it quarantines (CSV by column, JSON by key); this is a
    second line of defence for JSON records, and leaves other text as the reader wrote it.
    """
    if not isinstance(raw, str):
        return raw, []
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw, []
    if not isinstance(obj, dict):
        return raw, []
    removed = [str(v) for k, v in obj.items() if k in IDENTITY_FIELDS and v not in (None, "", MASK)]
    if not removed:
        return raw, []
    masked = {k: MASK if k in IDENTITY_FIELDS and v not in (None, "") else v for k, v in obj.items()}
    return json.dumps(masked, ensure_ascii=False), removed


def redact(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows safe to keep in a file: identity values neither in `raw` nor in `reason`."""
    out = quarantine.reindex(columns=list(QUARANTINE_COLUMNS)).reset_index(drop=True).copy()
    raws, reasons = [], []
    for raw, reason in zip(out["raw"].astype(object), out["reason"].astype(object), strict=True):
        clean, removed = _mask_raw(raw)
        text = reason if isinstance(reason, str) else ""
        for value in sorted(removed, key=len, reverse=True):
            if len(value) >= 2:
                text = text.replace(value, MASK)
        raws.append(clean)
        reasons.append(text)
    out["raw"] = pd.Series(raws, dtype="string")
    out["reason"] = pd.Series(reasons, dtype="string")
    return out


def quarantine_path(directory: Path, source: str, at: datetime) -> Path:
    """`<dir>/<source>-<UTC timestamp>.csv`, never overwriting an earlier file."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("._") or "dataset"
    stem = f"{safe}-{at.strftime('%Y%m%dT%H%M%SZ')}"
    path = directory / f"{stem}.csv"
    counter = 1
    while path.exists():
        path = directory / f"{stem}-{counter}.csv"
        counter += 1
    return path


def write_quarantine(quarantine: pd.DataFrame, directory: Path, source: str, at: datetime) -> Path | None:
    """Write the rejected rows (masked) as the reader's quarantine CSV; None when nothing was rejected."""
    if quarantine.empty:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = quarantine_path(directory, source, at)
    write_quarantine_csv(redact(quarantine), path)
    return path
