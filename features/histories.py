"""Each participant's ordered history (events and results by date) as padded arrays for sequence models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.columns import RESULTS_ALL, Columns
from recommender.graph import AchievementsGraph

RESULT_CODES = {name: i + 1 for i, name in enumerate(RESULTS_ALL)}  # 0: unknown result


@dataclass(frozen=True)
class Histories:
    """Histories of some participants, oldest first, right-padded with -1 (events) and 0 (results)."""

    participants: np.ndarray  # [n] participant positions
    events: np.ndarray  # [n, length] event positions, -1 past the end
    results: np.ndarray  # [n, length] result codes (RESULT_CODES), 0 past the end
    days: np.ndarray  # [n, length] date of each step (days since epoch), 0 past the end
    lengths: np.ndarray  # [n]


def participant_histories(graph: AchievementsGraph, participants: np.ndarray, max_length: int) -> Histories:
    """The last `max_length` distinct events of each given participant, by date (ties: event position)."""
    participants = np.asarray(participants, dtype=np.int64)
    n = len(participants)
    a = graph.achievements
    p_all = a["participant_idx"].to_numpy(dtype=np.int64)
    row_of = np.full(graph.n_participants, -1, dtype=np.int64)
    row_of[participants] = np.arange(n)
    rows = row_of[p_all]
    keep = rows >= 0
    rows = rows[keep]
    events = a["event_idx"].to_numpy(dtype=np.int64)[keep]
    days = (a[Columns.Date].to_numpy()[keep].astype("datetime64[D]").astype(np.int64))
    results = a[Columns.Result].astype("string").map(RESULT_CODES).fillna(0).to_numpy(dtype=np.int64)[keep]
    order = np.lexsort((events, days, rows))
    rows, events, days, results = rows[order], events[order], days[order], results[order]
    # One step per (participant, event): the first record of it.
    first = np.ones(len(rows), dtype=bool)
    if len(rows):
        pair = rows * (graph.n_events + 1) + events
        _, at = np.unique(pair, return_index=True)
        first[:] = False
        first[at] = True
    rows, events, days, results = rows[first], events[first], days[first], results[first]
    counts = np.bincount(rows, minlength=n)
    start = np.cumsum(counts) - counts
    rank = np.arange(len(rows)) - start[rows]  # 0-based position in the participant's history
    lengths = np.minimum(counts, max_length)
    slot = rank - (counts[rows] - lengths[rows])  # the last max_length steps, shifted to start at 0
    kept = slot >= 0
    ev = np.full((n, max_length), -1, dtype=np.int64)
    res = np.zeros((n, max_length), dtype=np.int64)
    dd = np.zeros((n, max_length), dtype=np.int64)
    ev[rows[kept], slot[kept]] = events[kept]
    res[rows[kept], slot[kept]] = results[kept]
    dd[rows[kept], slot[kept]] = days[kept]
    return Histories(participants=participants, events=ev, results=res, days=dd, lengths=lengths)
