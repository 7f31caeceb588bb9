"""Event series as items: editions are new every season, their series recur, so models learn series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.graph import AchievementsGraph


@dataclass(frozen=True)
class SeriesMap:
    """Every event's series position, and the series ids in position order."""

    index: pd.Index  # series id by position
    of_event: np.ndarray  # [n_events] series position of each event

    @property
    def n_series(self) -> int:
        return len(self.index)

    def project(self, graph: AchievementsGraph) -> SeriesMap:
        """The same series vocabulary over another (e.g. newer) graph; unknown series map to -1."""
        return SeriesMap(self.index, np.asarray(self.index.get_indexer(graph.series_keys().astype(str))))


def series_map(graph: AchievementsGraph) -> SeriesMap:
    codes, uniques = pd.factorize(graph.series_keys(), sort=True)
    return SeriesMap(index=pd.Index(uniques.astype(str)), of_event=codes.astype(np.int64))


def participant_series(graph: AchievementsGraph, series: SeriesMap) -> sp.csr_matrix:
    """Participants x series: how many editions of each series a participant took part in."""
    a = graph.achievements
    s = series.of_event[a["event_idx"].to_numpy()]
    known = s >= 0
    m = sp.csr_matrix(
        (
            np.ones(int(known.sum()), dtype=np.float32),
            (a["participant_idx"].to_numpy()[known], s[known]),
        ),
        shape=(graph.n_participants, series.n_series),
    )
    m.sum_duplicates()
    return m


def series_competence(graph: AchievementsGraph, series: SeriesMap) -> sp.csr_matrix:
    """Series x competences: mean competence weights of a series' editions, rows L2-normalized."""
    ec = graph.event_competence()
    assign = sp.csr_matrix(
        (np.ones(graph.n_events, dtype=np.float32), (series.of_event, np.arange(graph.n_events))),
        shape=(series.n_series, graph.n_events),
    )
    sc = (assign @ ec).tocsr()
    norms = np.sqrt(np.asarray(sc.multiply(sc).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ sc)
