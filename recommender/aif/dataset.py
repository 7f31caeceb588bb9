"""The typed result of reading an AIF dataset, and the load report every ingest prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Columns of the quarantine frame: one row per rejected source row, with everything needed to fix it.
QUARANTINE_COLUMNS = ("file", "line", "table", "field", "reason", "raw")


@dataclass
class TableCounts:
    read: int = 0
    loaded: int = 0
    merged: int = 0
    quarantined: int = 0

    def balanced(self) -> bool:
        return self.read == self.loaded + self.merged + self.quarantined


@dataclass
class LoadReport:
    """Counts per table; `read == loaded + merged + quarantined` holds for each table."""

    source: str
    tables: dict[str, TableCounts] = field(default_factory=dict)
    quarantine_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        totals = TableCounts()
        for c in self.tables.values():
            totals.read += c.read
            totals.loaded += c.loaded
            totals.merged += c.merged
            totals.quarantined += c.quarantined
        return {
            "source": self.source,
            "tables": {name: vars(c) for name, c in self.tables.items()},
            "total": vars(totals),
            "quarantine_file": self.quarantine_file,
        }


@dataclass
class AifDataset:
    """A validated AIF dataset: typed tables in canonical columns plus the rows that were rejected.

    Canonical dtypes: ids, text, enums, regions and (weighted) lists are pandas ``string`` with
    ``pd.NA`` for unknown; dates ``datetime64[s]`` with ``NaT``; booleans ``boolean``; integers
    ``Int64``; floats ``float64`` with ``NaN``. Weighted lists are normalized text ``id:w;id:w``.
    Unknown columns are gathered into one ``extra`` column holding a JSON object (or NA).
    """

    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    read_counts: dict[str, int]  # rows read per table, bad ones included

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", "unknown"))
