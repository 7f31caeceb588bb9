"""What a source adapter is, what it returns, and the helpers every adapter shares."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from recommender import reference
from recommender.aif.dataset import LoadReport, TableCounts
from recommender.aif.quarantine import MASK, concat_quarantine, quarantine_frame, write_quarantine
from recommender.aif.writer import write_dataset
from recommender.columns import IDENTITY_FIELDS
from recommender.identity.normalize import name_key

# Source fields that hold personal data, whatever the source calls them: masked in the quarantine.
PERSONAL_SOURCE_FIELDS = frozenset({
    *IDENTITY_FIELDS, "Фамилия", "Имя", "Отчество", "Дата рождения", "full_name", "birth_date", "email", "name",
})


@dataclass
class Conversion:
    """An adapter's result: AIF tables (canonical dtypes), the rejected rows, and the row accounting.

    Every source row (`rows_read`) is either converted into AIF rows (`rows_converted`) or in the
    quarantine with a reason (`rows_quarantined`): `rows_read == rows_converted + rows_quarantined`.
    """

    source: str
    tables: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    rows_read: int
    notes: dict[str, int] = field(default_factory=dict)  # e.g. values found unusable and left unknown

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantine["line"].nunique()) if len(self.quarantine) else 0

    @property
    def rows_converted(self) -> int:
        return self.rows_read - self.rows_quarantined

    def report(self) -> dict[str, Any]:
        counts = LoadReport(self.source)
        counts.tables["source_rows"] = TableCounts(
            read=self.rows_read, loaded=self.rows_converted, quarantined=self.rows_quarantined
        )
        body = counts.to_dict()
        body["aif_rows"] = {name: len(frame) for name, frame in self.tables.items()}
        body["reasons"] = (
            {str(k): int(v) for k, v in self.quarantine["reason"].value_counts().sort_index().items()}
            if len(self.quarantine) else {}
        )
        body["notes"] = dict(sorted(self.notes.items()))
        return body

    def write(self, out_dir: Path, exported_at: str | None = None) -> dict[str, Any]:
        """Write the AIF dataset, `quarantine.csv` and `report.json` into `out_dir`; return the report."""
        out_dir = Path(out_dir)
        manifest = {"source": self.source, "adapter": "recommender.adapters"}
        if exported_at:
            manifest["exported_at"] = exported_at
        write_dataset(out_dir, self.tables, manifest, fmt="csv")
        report = self.report()
        if len(self.quarantine):
            write_quarantine(self.quarantine, out_dir / "quarantine.csv")
            report["quarantine_file"] = str(out_dir / "quarantine.csv")
        (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return report


@runtime_checkable
class SourceAdapter(Protocol):
    """Converts one organizer's export format to AIF. See recommender/adapters/README.md to add one."""

    name: str  # the format name used on the command line
    description: str

    def sniff(self, path: Path) -> bool:
        """True when the file looks like this format (used when no format is given)."""
        ...

    def convert(self, path: Path, *, source: str | None = None) -> Conversion:
        """Read the whole file; never raise for a bad row, quarantine it with a reason instead."""
        ...


class Rejects:
    """Rejected rows of one file, with a masked copy of each (no names, birth dates or e-mails)."""

    def __init__(self, file: str, table: str):
        self.file = file
        self.table = table
        self.lines: list[int] = []
        self.fields: list[str | None] = []
        self.reasons: list[str] = []
        self.raws: list[str | None] = []

    def add(self, line: int, field_name: str | None, reason: str, record: dict[str, Any] | None) -> None:
        self.lines.append(int(line))
        self.fields.append(field_name)
        self.reasons.append(reason)
        self.raws.append(None if record is None else masked_json(record))

    def frame(self) -> pd.DataFrame:
        return quarantine_frame(self.file, self.table, self.lines, self.fields, self.reasons, self.raws)


def masked_json(record: dict[str, Any]) -> str:
    masked = {
        str(k): (MASK if str(k) in PERSONAL_SOURCE_FIELDS and v not in (None, "") else v)
        for k, v in record.items()
    }
    return json.dumps(masked, ensure_ascii=False, default=str)[:500]


def quarantine_of(parts: Sequence[Rejects]) -> pd.DataFrame:
    return concat_quarantine([p.frame() for p in parts])


def text(values: pd.Series) -> pd.Series:
    """Trimmed text, "" for missing."""
    return values.astype("string").fillna("").str.strip()


def string_array(values: Any) -> pd.arrays.ArrowStringArray | pd.api.extensions.ExtensionArray:
    series = pd.Series(values, dtype=object).replace("", None)
    return pd.array(series.to_numpy(dtype=object), dtype="string")


def dates_array(days: np.ndarray) -> np.ndarray:
    """datetime64[s] of day numbers, NaT for -1."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[s]")
    out[np.asarray(days) < 0] = np.datetime64("NaT")
    return out


def _region_lookup() -> dict[str, str]:
    regions = reference.regions()
    lookup = {code: code for code in regions["region_code"]}
    for code, name in zip(regions["region_code"], regions["name_ru"], strict=True):
        lookup[name_key(str(name))] = code
    for code, name in zip(regions["region_code"], regions["name_en"], strict=True):
        lookup[name_key(str(name))] = code
    return lookup


_REGIONS: dict[str, str] = {}


def region_codes_of(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Region codes from codes ("7", "07") or names in Russian or English; and which values were unknown."""
    if not _REGIONS:
        _REGIONS.update(_region_lookup())
    raw = text(values)
    codes, uniques = pd.factorize(raw)
    mapped = []
    for u in uniques:
        u = str(u)
        key = u.zfill(2) if u.isdigit() else name_key(u)
        mapped.append(_REGIONS.get(key, ""))
    out = np.asarray([*mapped, ""], dtype=object)[codes]
    unknown = (out == "") & (raw.to_numpy(dtype=object) != "")
    return out, unknown


def competence_lookup() -> dict[str, str]:
    """Competence id by id, Russian or English name (compared case- and spelling-insensitively)."""
    comp = reference.competences()
    lookup: dict[str, str] = {}
    for column in ("competence_id", "name_ru", "name_en"):
        for cid, name in zip(comp["competence_id"], comp[column], strict=True):
            if isinstance(name, str):
                lookup[name.strip().lower().replace("ё", "е")] = str(cid)
    return lookup
