"""Business rules every recommendation obeys, applied before ranking: open, eligible, reachable, free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.graph import AchievementsGraph, day_number

# Open catalogs kept per events table: a few days times the filters front ends use.
OPEN_CACHE_SIZE = 64


@dataclass(frozen=True)
class EventFilters:
    """What the caller narrows the catalog to (on top of the rules, which always apply)."""

    horizon_days: int | None = None
    formats: tuple[str, ...] | None = None
    online_only: bool = False


def open_events(
    graph: AchievementsGraph, as_of: date | str | pd.Timestamp, filters: EventFilters | None = None
) -> np.ndarray:
    """Positions of the events announced, not yet started and open for registration at `as_of`.

    Registration is open from `registration_opens` (unknown: from the announcement) until
    `registration_deadline` (unknown: until the start). The answer is kept per day and filters with the
    events' arrays (a new events table starts afresh) and is read-only.
    """
    f = filters or EventFilters()
    now = day_number(as_of)
    ev = graph.event_arrays
    key = (now, f.horizon_days, None if f.formats is None else tuple(f.formats), f.online_only)
    cached = ev.open_cache.get(key)
    if cached is not None:
        return cached
    with np.errstate(invalid="ignore"):
        mask = (ev.start > now) & ev.announced
        mask &= np.isnan(ev.deadline) | (ev.deadline >= now)
        mask &= np.isnan(ev.opens) | (ev.opens <= now)
        if f.horizon_days is not None:
            mask &= ev.start <= now + f.horizon_days
    if f.formats:
        mask &= np.isin(ev.format, list(f.formats))
    if f.online_only:
        mask &= ev.online
    positions = np.flatnonzero(mask)
    positions.flags.writeable = False  # shared by every caller of the day
    if len(ev.open_cache) >= OPEN_CACHE_SIZE:
        ev.open_cache.clear()
    ev.open_cache[key] = positions
    return positions


def eligibility_mask(
    graph: AchievementsGraph,
    as_of: date | str | pd.Timestamp,
    participant_positions: np.ndarray,
    event_positions: np.ndarray,
    *,
    check_stage: bool = True,
) -> np.ndarray:
    """Boolean [participants x events]: may this participant take this (open) event?

    Rules: grade within the event's bounds (unknown grade or bounds pass), reachable (online, or an
    offline event in the participant's own region; an unknown region reaches only online events),
    capacity left, not already taken, and qualified at the previous stage when the event has one.
    """
    p = np.asarray(participant_positions, dtype=np.int64)
    e = np.asarray(event_positions, dtype=np.int64)
    mask = np.ones((len(p), len(e)), dtype=bool)
    if len(p) == 0 or len(e) == 0:
        return mask
    ev = graph.event_arrays

    grade = graph.grades_at(as_of, p)[:, None]
    lo = ev.min_grade[e][None, :]
    hi = ev.max_grade[e][None, :]
    with np.errstate(invalid="ignore"):
        mask &= np.isnan(grade) | np.isnan(lo) | (grade >= lo)
        mask &= np.isnan(grade) | np.isnan(hi) | (grade <= hi)

    online = ev.online[e]
    if not online.all():
        # Unknown participant regions are -2, online events -1: neither ever matches an offline event.
        same = graph.participant_region_codes[p][:, None] == ev.region[e][None, :]
        mask &= online[None, :] | same

    capacity = ev.capacity[e]
    if not np.isnan(capacity).all():
        full = ~np.isnan(capacity) & (graph.registrations_per_event[e] >= capacity)
        mask &= ~full[None, :]

    pe = graph.participant_event()
    if len(p) == 1:  # a request: the participant's own row, no sparse slicing (1 ms at 1,000,000 participants)
        mask &= ~_marked(pe.shape[1], _row_columns(pe, int(p[0])))[e][None, :]
    else:
        mask &= pe[p][:, e].toarray() == 0

    if check_stage:
        parents = ev.parent[e]
        mask[:, parents == -2] = False  # a previous stage missing from the graph cannot be qualified for
        staged = np.flatnonzero(parents >= 0)
        if len(staged):
            if len(p) == 1:
                q = _marked(graph.n_events, _row_columns(graph.qualified(), int(p[0])))[parents[staged]][None, :]
            else:
                q = graph.qualified()[p][:, parents[staged]].toarray() > 0
            mask[:, staged] &= q
    return mask


def _marked(n: int, positions: np.ndarray) -> np.ndarray:
    """A boolean array of length n, true at `positions` (a lookup table: cheaper than `np.isin` on a request)."""
    out = np.zeros(n, dtype=bool)
    out[positions] = True
    return out


def _row_columns(m: sp.csr_matrix, row: int) -> np.ndarray:
    """Columns of a row's positive entries (duplicates summed first, as `toarray` would)."""
    start, end = m.indptr[row], m.indptr[row + 1]
    cols, data = m.indices[start:end], m.data[start:end]
    if not m.has_canonical_format:
        cols, inverse = np.unique(cols, return_inverse=True)
        data = np.bincount(inverse, weights=data, minlength=len(cols))
    return cols[data > 0]
