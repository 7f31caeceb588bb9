"""Reference data shipped with the product: the competence taxonomy and the region codes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

_FILES = ("competences.csv", "regions.csv")


@lru_cache(maxsize=1)
def reference_dir() -> Path:
    """The directory holding the reference CSV files (wheel install first, then the repo's `data/`)."""
    installed = Path(__file__).parent / "reference_data"
    if all((installed / name).is_file() for name in _FILES):
        return installed
    return Path(__file__).resolve().parents[1] / "data"


@lru_cache(maxsize=1)
def _competences() -> pd.DataFrame:
    frame = pd.read_csv(reference_dir() / "competences.csv", dtype="string", keep_default_na=False)
    return frame.replace("", pd.NA)


def competences() -> pd.DataFrame:
    """The competence taxonomy: competence_id, name_ru, name_en, parent_id (NA at the roots)."""
    # A copy: callers may add columns without corrupting the cached table.
    return _competences().copy()


@lru_cache(maxsize=1)
def competence_ids() -> frozenset[str]:
    """The ids of the fixed competence taxonomy."""
    return frozenset(_competences()["competence_id"].tolist())


@lru_cache(maxsize=1)
def _regions() -> pd.DataFrame:
    # Read as text: a numeric parse would turn "01" into 1.
    frame = pd.read_csv(
        reference_dir() / "regions.csv",
        dtype={"region_code": "string", "name_ru": "string", "name_en": "string"},
        keep_default_na=False,
    )
    frame["region_code"] = frame["region_code"].str.strip().str.zfill(2)
    return frame


def regions() -> pd.DataFrame:
    """Subjects of the Russian Federation; region_code is the zero-padded two-character code."""
    return _regions().copy()


@lru_cache(maxsize=1)
def region_codes() -> frozenset[str]:
    """The valid two-digit region codes."""
    return frozenset(_regions()["region_code"].tolist())
