"""Implicit ALS over participants x event series, scoring new editions through their series or content."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import ThreadpoolController, threadpool_limits

from features.event_content import borrowed_weights
from features.series import SeriesMap, participant_series, series_competence, series_map
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training.popularity import PopularityConfig, PopularityRecommender

# How strongly a never-seen series leans toward its closest seen series.
SHARPEN = 4.0

_threadpools: ThreadpoolController | None = None


def _one_blas_thread() -> AbstractContextManager[Any]:
    """`threadpool_limits(1, "blas")` on a controller made once: making one scans the process's loaded libraries
    (3.4 ms, more than the rest of a request)."""
    global _threadpools
    if _threadpools is None:
        _threadpools = ThreadpoolController()
    return _threadpools.limit(limits=1, user_api="blas")


class AlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factors: int = Field(48, ge=2, le=512)
    regularization: float = Field(0.05, gt=0)
    alpha: float = Field(8.0, gt=0, description="confidence per participation")
    iterations: int = Field(12, ge=1, le=100)
    seed: int = 0
    popularity: PopularityConfig = Field(default_factory=PopularityConfig)


class AlsRecommender(EventRecommender):
    """Matrix factorization of participants x series (implicit ALS).

    An upcoming event is new, so it is scored through its series; an event of a series nobody has
    taken yet borrows the factors of the series with the most similar competences. Participants
    are folded in from their current history at every call (a new achievement counts at once);
    those with no history at all get popularity per region and grade.
    """

    name = "implicit_als"

    def __init__(self, config: AlsConfig | None = None) -> None:
        self.config = config or AlsConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        cfg = self.config
        self.series_ = series_map(graph)
        items = participant_series(graph, self.series_)
        # implicit checks the BLAS thread pool when constructed: limit it first (it warns otherwise).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                num_threads=0,  # implicit's own pool; per-user solves are order-independent
            )
            model.fit(items, show_progress=False)
        self.model_ = model
        self.seen_ = np.asarray(items.sum(axis=0)).ravel() > 0
        self.series_competence_ = series_competence(graph, self.series_)
        self.fallback_ = PopularityRecommender(cfg.popularity).fit(graph)

    def _series_of(self, graph: AchievementsGraph) -> tuple[SeriesMap, sp.csr_matrix]:
        """The fitted series over `graph`'s events and the events x series 0/1 matrix, kept while the events table
        is the same object (graphs that only gain achievements, as by fold-in, share it)."""
        cached = getattr(self, "_series_cache", None)
        if cached is not None and cached[0] is graph.events:
            return cached[1], cached[2]
        series = self.series_.project(graph)
        known = np.flatnonzero(series.of_event >= 0)
        assign = sp.csr_matrix((np.ones(len(known), dtype=np.float32), (known, series.of_event[known])),
                               shape=(graph.n_events, series.n_series))
        self._series_cache = (graph.events, series, assign)
        return series, assign

    def _history(self, graph: AchievementsGraph, participants: np.ndarray) -> sp.csr_matrix:
        """Rows of `participant_series` for `participants`, from the graph's cached participant x event matrix: a
        request touches its own rows, not every achievement (176 ms a request at 1,000,000 participants)."""
        _, assign = self._series_of(graph)
        history = sp.csr_matrix(graph.participant_event()[np.asarray(participants, dtype=np.int64)] @ assign)
        history.sort_indices()  # the order the full build has: the fold-in sums in it, bit for bit the same scores
        return history

    def _item_factors(self, graph: AchievementsGraph, events: np.ndarray) -> np.ndarray:
        """Factors of `events`, computed once per event while the events table is the same object (an event's
        factors depend on its series and competences only): a request gathers rows instead of recomputing the
        borrowed factors of every open event (11 ms a request at 1,000,000 participants)."""
        cached = getattr(self, "_factors_cache", None)
        if cached is None or cached[0] is not graph.events:
            cached = (graph.events, np.zeros((graph.n_events, self.config.factors), dtype=np.float32),
                      np.zeros(graph.n_events, dtype=bool))
            self._factors_cache = cached
        _, factors, done = cached
        events = np.asarray(events, dtype=np.int64)
        missing = np.unique(events[~done[events]])
        if len(missing):
            factors[missing] = self._compute_item_factors(graph, missing)
            done[missing] = True
        return factors[events]

    def _compute_item_factors(self, graph: AchievementsGraph, events: np.ndarray) -> np.ndarray:
        s = self._series_of(graph)[0].of_event[events]
        known = s >= 0
        known[known] &= self.seen_[s[known]]
        factors = np.zeros((len(events), self.config.factors), dtype=np.float32)
        factors[known] = self.model_.item_factors[s[known]]
        if (~known).any():
            # Never-seen series borrow the factors of the series with the most similar competences.
            learned = np.flatnonzero(self.seen_)
            weights = borrowed_weights(
                graph.event_competence()[events[~known]], self.series_competence_[learned], SHARPEN
            )
            factors[~known] = weights @ self.model_.item_factors[learned]
        return factors

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        history = self._history(graph, participants)
        # Folding users in on implicit's OpenMP pool would start that pool in the serving parent (its smoke test),
        # and a forked worker then hangs in its first parallel region; one thread each is also what a request
        # wants. Set here, not only after fitting, for models pickled with the fitting pool's setting.
        self.model_.num_threads = 1
        with _one_blas_thread():
            users = self.model_.recalculate_user(np.arange(len(participants)), history)
        scores = np.asarray(users, dtype=np.float32) @ self._item_factors(graph, events).T
        cold = np.asarray(history.sum(axis=1)).ravel() == 0
        if cold.any():
            pop = self.fallback_._score(graph, participants[cold], events, as_of, allowed[cold])
            scores[cold] = pop.astype(np.float32)
        return scores

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state.pop("_series_cache", None)
        state.pop("_factors_cache", None)
        return state
