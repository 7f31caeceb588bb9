"""Readable, sortable string identifiers of the world's entities."""

from __future__ import annotations

import numpy as np

PARTICIPANT, EVENT, SERIES, TEAM, MENTOR, ORGANIZATION, RESOURCE_CENTER, PROGRAM, ACHIEVEMENT = (
    "P", "E", "S", "T", "M", "ORG", "RC", "PRG", "A",
)


def make_ids(prefix: str, n: int, width: int = 6) -> np.ndarray:
    """prefix + zero-padded number, e.g. P000042; object array (sorted order = number order)."""
    w = max(width, len(str(max(n - 1, 0))))
    return np.array([f"{prefix}{i:0{w}d}" for i in range(n)], dtype=object)


def parse_ids(prefix: str, ids: np.ndarray) -> np.ndarray:
    """The numbers back from ids made by `make_ids` (-1 for anything else)."""
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, text in enumerate(ids):
        s = str(text)
        if s.startswith(prefix) and s[len(prefix) :].isdigit():
            out[i] = int(s[len(prefix) :])
    return out
