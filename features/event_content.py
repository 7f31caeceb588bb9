"""What events share beyond their id (competences, level, format, organizer, reach) and profiles built on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.series import SeriesMap
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.eligibility import is_online
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph, to_timestamp

FORMAT_CODES = {name: i for i, name in enumerate(EVENT_FORMATS)}


@dataclass(frozen=True)
class EventAttributes:
    """Categorical attributes of every event of a graph, as integer codes."""

    level: np.ndarray  # [n_events] 0..len(LEVELS)-1
    format: np.ndarray  # [n_events] 0..len(EVENT_FORMATS)-1 (unknown formats map to 0)
    online: np.ndarray  # [n_events] bool
    region: np.ndarray  # [n_events] region code as str, "" when online
    organizer: np.ndarray  # [n_events] organizer id as str, "" when unknown
    staged: np.ndarray  # [n_events] bool: the event has a previous stage


def event_attributes(graph: AchievementsGraph) -> EventAttributes:
    ev = graph.events
    online = is_online(ev)
    region = ev[Columns.Region].astype("string").fillna("").to_numpy(dtype=str) if Columns.Region in ev.columns \
        else np.full(len(ev), "", dtype=str)
    organizer = ev["organizer_id"].astype("string").fillna("").to_numpy(dtype=str) if "organizer_id" in ev.columns \
        else np.full(len(ev), "", dtype=str)
    staged = ev[Columns.ParentEvent].notna().to_numpy() if Columns.ParentEvent in ev.columns \
        else np.zeros(len(ev), dtype=bool)
    return EventAttributes(
        level=np.clip(ev["level_rank"].to_numpy(dtype=np.int64), 0, len(LEVELS) - 1),
        format=ev["format"].astype(str).map(FORMAT_CODES).fillna(0).to_numpy(dtype=np.int64),
        online=online,
        region=np.where(online, "", region),
        organizer=organizer,
        staged=staged,
    )


def rows_normalized(m: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def recency_weights(graph: AchievementsGraph, as_of: pd.Timestamp | str, half_life_days: float) -> np.ndarray:
    """Weight of every achievement row: halves every `half_life_days` before `as_of`."""
    age = (to_timestamp(as_of) - graph.achievements[Columns.Date]).dt.days.to_numpy(dtype=np.float64)
    return np.power(0.5, np.maximum(age, 0.0) / half_life_days).astype(np.float32)


def competence_profile(graph: AchievementsGraph, as_of: pd.Timestamp | str, half_life_days: float) -> sp.csr_matrix:
    """Participants x competences: recency-weighted competence weights of the events taken, unit L2 rows."""
    a = graph.achievements
    pe = sp.csr_matrix(
        (recency_weights(graph, as_of, half_life_days), (a["participant_idx"].to_numpy(), a["event_idx"].to_numpy())),
        shape=(graph.n_participants, graph.n_events),
    )
    return rows_normalized(pe @ graph.event_competence())


def reached_levels(graph: AchievementsGraph) -> np.ndarray:
    """Highest level at which each participant reached a qualifying result; -1 when none."""
    a = graph.achievements
    good = a[Columns.Result].isin(QUALIFYING_RESULTS).to_numpy()
    level = graph.events["level_rank"].to_numpy(dtype=np.int64)
    reached = np.full(graph.n_participants, -1, dtype=np.int64)
    np.maximum.at(reached, a["participant_idx"].to_numpy()[good], level[a["event_idx"].to_numpy()[good]])
    return reached


def borrowed_weights(
    event_competence: sp.csr_matrix, series_competence: sp.csr_matrix, sharpen: float
) -> np.ndarray:
    """[events x series] weights (rows sum to 1, or 0 without any overlap) toward the most competence-similar series.

    How a never-seen series is scored by models that learn series: through the series it resembles.
    """
    sim = (rows_normalized(event_competence) @ series_competence.T).toarray()
    sim = np.maximum(sim, 0.0) ** sharpen
    total = sim.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return np.asarray(sim / total, dtype=np.float32)


def weighted_history(graph: AchievementsGraph, series: SeriesMap, as_of: pd.Timestamp | str,
                     half_life_days: float) -> sp.csr_matrix:
    """Participants x series, each participation weighted by its recency at `as_of` (unknown series left out)."""
    a = graph.achievements
    s = series.of_event[a["event_idx"].to_numpy()]
    known = s >= 0
    m = sp.csr_matrix(
        (recency_weights(graph, as_of, half_life_days)[known], (a["participant_idx"].to_numpy()[known], s[known])),
        shape=(graph.n_participants, series.n_series),
    )
    m.sum_duplicates()
    return m
