"""Dates and reference data of the alternative world (its own code: nothing here comes from recommender/synth)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

EPOCH = date(1970, 1, 1)
SEASONS = (2021, 2022, 2023, 2024)  # academic years starting in September
SIM_START = date(2021, 8, 1)
SIM_END = date(2025, 6, 30)  # also the export date: grades in the AIF are grades on this day
DATA_DIR = Path(__file__).resolve().parents[2] / "data"

FORMATS = ("olympiad", "hackathon", "project_school", "contest", "course", "camp", "conference", "accelerator")
LEVELS = ("school", "municipal", "regional", "national", "international")
RESULTS = ("registered", "participant", "completed", "finalist", "prize_winner", "winner", "dropped")
SETTLEMENTS = ("city", "town", "rural")
# Nested logit: formats grouped into "compete", "build" and "learn" nests.
NEST_OF_FORMAT = np.array([0, 1, 1, 0, 2, 2, 2, 1], dtype=np.int8)
NEST_NAMES = ("compete", "build", "learn")


def day(when: date) -> int:
    """Day number since 1970-01-01."""
    return (when - EPOCH).days


def iso(days: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD text of day numbers."""
    return np.datetime_as_string(np.asarray(days, dtype="int64").astype("datetime64[D]"), unit="D")


def academic_year(days: np.ndarray | int) -> np.ndarray:
    """The September year of the academic year each day falls in."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return np.where(month >= 9, year, year - 1)


def month_index(days: np.ndarray | int) -> np.ndarray:
    """0 = September ... 11 = August."""
    m = np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return (m - 8) % 12


def grade_on(birth_year: np.ndarray, days: np.ndarray | int) -> np.ndarray:
    return (academic_year(days) - birth_year.astype(np.int64) - 6).astype(np.int16)


def regions() -> pd.DataFrame:
    """region_code, urban_share, population_k from the product's reference data file (plain CSV)."""
    return pd.read_csv(DATA_DIR / "regions.csv", dtype={"region_code": str})


def competences() -> pd.DataFrame:
    """Leaf competences of the taxonomy (the three group nodes are parents, never event competences)."""
    table = pd.read_csv(DATA_DIR / "competences.csv", dtype=str, keep_default_na=False)
    return table[table["parent_id"] != ""].reset_index(drop=True)
