"""Dates as int32 day numbers (days since 1970-01-01) and the academic calendar of the world."""

from __future__ import annotations

from datetime import date

import numpy as np

EPOCH = date(1970, 1, 1)


def to_day(when: date) -> int:
    """Day number of a date."""
    return (when - EPOCH).days


def to_date(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(day))


def days_to_datetime(days: np.ndarray) -> np.ndarray:
    """datetime64[s] of day numbers (the canonical AIF date dtype)."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[s]")


def academic_year(days: np.ndarray | int) -> np.ndarray:
    """The year an academic year starts in (September to August) for each day number."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = (d.astype("datetime64[M]").astype(np.int64) % 12) + 1
    return np.where(month >= 9, year, year - 1)


def month_of_season(day: int) -> int:
    """0 for September ... 11 for August."""
    month = int(np.datetime64(int(day), "D").astype("datetime64[M]").astype(np.int64)) % 12  # 0 = January
    return (month - 8) % 12


def month_starts(start: date, end: date) -> list[int]:
    """Day numbers of the first of each month in [start, end): the simulation's decision dates."""
    out = []
    y, m = start.year, start.month
    while date(y, m, 1) < end:
        out.append(to_day(date(y, m, 1)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def grade_at(birth_year: np.ndarray, days: np.ndarray | int) -> np.ndarray:
    """Russian school grade: academic year start - birth year - 6 (12 and up: university years)."""
    return (academic_year(days) - np.asarray(birth_year, dtype=np.int64)).astype(np.int16) - 6
