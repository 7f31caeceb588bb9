"""Business rules every recommendation obeys, applied before ranking: open, eligible, reachable, free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.graph import AchievementsGraph, to_timestamp


@dataclass(frozen=True)
class EventFilters:
    """What the caller narrows the catalog to (on top of the rules, which always apply)."""

    horizon_days: int | None = None
    formats: tuple[str, ...] | None = None
    online_only: bool = False


def is_online(events: pd.DataFrame) -> np.ndarray:
    """An event is online when it says so or names no region (AIF: empty region = online)."""
    online = np.zeros(len(events), dtype=bool)
    if "online" in events.columns:
        online |= events["online"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if Columns.Region in events.columns:
        online |= events[Columns.Region].isna().to_numpy()
    else:
        online[:] = True
    return online


def open_events(
    graph: AchievementsGraph, as_of: date | str | pd.Timestamp, filters: EventFilters | None = None
) -> np.ndarray:
    """Positions of the events announced, not yet started and open for registration at `as_of`.

    Registration is open from `registration_opens` (unknown: from the announcement) until
    `registration_deadline` (unknown: until the start).
    """
    f = filters or EventFilters()
    now = to_timestamp(as_of)
    ev = graph.events
    start = pd.to_datetime(ev[Columns.StartDate])
    mask = (start > now).to_numpy() & graph.announced()
    if Columns.RegistrationDeadline in ev.columns:
        deadline = pd.to_datetime(ev[Columns.RegistrationDeadline])
        mask &= (deadline.isna() | (deadline >= now)).to_numpy()
    if Columns.RegistrationOpens in ev.columns:
        opens = pd.to_datetime(ev[Columns.RegistrationOpens])
        mask &= (opens.isna() | (opens <= now)).to_numpy()
    if f.horizon_days is not None:
        mask &= (start <= now + pd.Timedelta(days=f.horizon_days)).to_numpy()
    if f.formats:
        mask &= ev["format"].isin(f.formats).to_numpy()
    if f.online_only:
        mask &= is_online(ev)
    return np.flatnonzero(mask)


def _optional_int(events: pd.DataFrame, column: str) -> np.ndarray:
    if column not in events.columns:
        return np.full(len(events), np.nan)
    return events[column].astype("Float64").astype("float64").to_numpy()


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
    ev = graph.events.iloc[e]
    mask = np.ones((len(p), len(e)), dtype=bool)
    if len(p) == 0 or len(e) == 0:
        return mask

    grade = graph.grades_at(as_of)[p][:, None]
    lo = _optional_int(ev, "min_grade")[None, :]
    hi = _optional_int(ev, "max_grade")[None, :]
    with np.errstate(invalid="ignore"):
        mask &= np.isnan(grade) | np.isnan(lo) | (grade >= lo)
        mask &= np.isnan(grade) | np.isnan(hi) | (grade <= hi)

    online = is_online(ev)
    if not online.all():
        if Columns.Region in graph.participants.columns:
            p_region = graph.participants[Columns.Region].astype("string").fillna("").to_numpy(dtype=str)[p]
        else:
            p_region = np.full(len(p), "", dtype=object)
        # Distinct fill values: an unknown participant region never equals an event's.
        e_region = ev[Columns.Region].astype("string").fillna("~online").to_numpy(dtype=str)
        same = p_region[:, None] == e_region[None, :]
        mask &= online[None, :] | same

    capacity = _optional_int(ev, "capacity")
    if not np.isnan(capacity).all():
        taken_counts = np.bincount(graph.achievements["event_idx"].to_numpy(), minlength=graph.n_events)[e]
        full = ~np.isnan(capacity) & (taken_counts >= capacity)
        mask &= ~full[None, :]

    pe = graph.participant_event()[p][:, e]
    mask &= pe.toarray() == 0

    if check_stage and Columns.ParentEvent in ev.columns:
        parents = graph.event_index.get_indexer(ev[Columns.ParentEvent].astype("string").fillna(""))
        staged = np.flatnonzero(parents >= 0)
        has_parent_id = ev[Columns.ParentEvent].notna().to_numpy()
        # A parent missing from the graph cannot be qualified for.
        mask[:, has_parent_id & (parents < 0)] = False
        if len(staged):
            q = graph.qualified()[p][:, parents[staged]].toarray() > 0
            mask[:, staged] &= q
    return mask
