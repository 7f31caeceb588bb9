"""What events share beyond their id (competences, level, format, organizer, reach) and profiles built on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.series import SeriesMap
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph, online_flags, to_timestamp

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
    online = online_flags(ev)
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
    return recency_at(graph.achievements[Columns.Date].to_numpy(), as_of, half_life_days)


def recency_at(dates: np.ndarray, as_of: pd.Timestamp | str, half_life_days: float) -> np.ndarray:
    """Recency weight of each date: halves every `half_life_days` before `as_of`."""
    age = (to_timestamp(as_of).to_datetime64() - dates) / np.timedelta64(1, "D")
    return np.power(0.5, np.maximum(age.astype(np.float64), 0.0) / half_life_days).astype(np.float32)


@dataclass(frozen=True)
class ParticipantRows:
    """The achievement rows of some participants and the output row each lands in."""

    keep: np.ndarray  # bool mask over the graph's achievement rows
    out: np.ndarray  # output row of every kept achievement row
    height: int  # output rows
    expand: np.ndarray | None  # output row of each requested participant (repeats allowed); None: all, in order

    def finish(self, m: sp.csr_matrix) -> sp.csr_matrix:
        return m if self.expand is None else sp.csr_matrix(m[self.expand])


def participant_rows(graph: AchievementsGraph, participants: np.ndarray | None) -> ParticipantRows:
    """Select the rows of `participants` (positions; None = everyone) so builders touch only those rows."""
    p = graph.achievements["participant_idx"].to_numpy()
    if participants is None:
        return ParticipantRows(np.ones(len(p), dtype=bool), p.astype(np.int64), graph.n_participants, None)
    unique, inverse = np.unique(np.asarray(participants, dtype=np.int64), return_inverse=True)
    out_row = np.full(graph.n_participants, -1, dtype=np.int64)
    out_row[unique] = np.arange(len(unique))
    rows = out_row[p]
    keep = rows >= 0
    return ParticipantRows(keep, rows[keep], len(unique), inverse.ravel())


def competence_profile(graph: AchievementsGraph, as_of: pd.Timestamp | str, half_life_days: float,
                       participants: np.ndarray | None = None) -> sp.csr_matrix:
    """Participants x competences: recency-weighted competence weights of the events taken, unit L2 rows.

    Rows follow `participants` (positions) when given, else every participant of the graph.
    """
    a = graph.achievements
    sel = participant_rows(graph, participants)
    pe = sp.csr_matrix(
        (recency_at(a[Columns.Date].to_numpy()[sel.keep], as_of, half_life_days),
         (sel.out, a["event_idx"].to_numpy()[sel.keep])),
        shape=(sel.height, graph.n_events),
    )
    return sel.finish(rows_normalized(pe @ graph.event_competence()))


def declared_profile(graph: AchievementsGraph, participants: np.ndarray | None = None) -> sp.csr_matrix:
    """Participants x competences: declared interests (AIF extension `interests`), unit L2 rows, empty when none.

    Rows follow `participants` (positions) when given, else every participant of the graph.
    """
    declared = graph.participant_interests()
    if participants is not None:
        declared = declared[np.asarray(participants, dtype=np.int64)]
    return rows_normalized(declared)


def with_declared(history: sp.csr_matrix, declared: sp.csr_matrix, prior: float) -> sp.csr_matrix:
    """Unit L2 rows of a history profile plus declared interests: alone when the history is empty (cold start),
    else weighted `prior` beside the history's unit weight (a weak prior: what one does beats what one said)."""
    has_history = np.asarray(history.getnnz(axis=1)) > 0
    scale = np.where(has_history, prior, 1.0).astype(np.float32)
    return rows_normalized(sp.csr_matrix(history, dtype=np.float32) + sp.diags(scale) @ declared)


def reached_levels(graph: AchievementsGraph, participants: np.ndarray | None = None) -> np.ndarray:
    """Highest level at which each participant reached a qualifying result; -1 when none."""
    a = graph.achievements
    sel = participant_rows(graph, participants)
    good = a[Columns.Result].isin(QUALIFYING_RESULTS).to_numpy()[sel.keep]
    level = graph.events["level_rank"].to_numpy(dtype=np.int64)
    reached = np.full(sel.height, -1, dtype=np.int64)
    np.maximum.at(reached, sel.out[good], level[a["event_idx"].to_numpy()[sel.keep][good]])
    return reached if sel.expand is None else reached[sel.expand]


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
                     half_life_days: float, participants: np.ndarray | None = None) -> sp.csr_matrix:
    """Participants x series, each participation weighted by its recency at `as_of` (unknown series left out).

    Rows follow `participants` (positions) when given, else every participant of the graph.
    """
    a = graph.achievements
    sel = participant_rows(graph, participants)
    s = series.of_event[a["event_idx"].to_numpy()[sel.keep]]
    known = s >= 0
    m = sp.csr_matrix(
        (recency_at(a[Columns.Date].to_numpy()[sel.keep][known], as_of, half_life_days), (sel.out[known], s[known])),
        shape=(sel.height, series.n_series),
    )
    m.sum_duplicates()
    return sel.finish(m)
