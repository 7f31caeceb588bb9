"""Implicit ALS over participants x event series, scoring new editions through their series or content."""

from __future__ import annotations

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from features.event_content import borrowed_weights
from features.series import participant_series, series_competence, series_map
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training.popularity import PopularityConfig, PopularityRecommender

# How strongly a never-seen series leans toward its closest seen series.
SHARPEN = 4.0


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

    def _item_factors(self, graph: AchievementsGraph, events: np.ndarray) -> np.ndarray:
        s = self.series_.project(graph).of_event[events]
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
        history = participant_series(graph, self.series_.project(graph))[participants]
        # Folding users in on implicit's OpenMP pool would start that pool in the serving parent (its smoke test),
        # and a forked worker then hangs in its first parallel region; one thread each is also what a request
        # wants. Set here, not only after fitting, for models pickled with the fitting pool's setting.
        self.model_.num_threads = 1
        with threadpool_limits(1, "blas"):
            users = self.model_.recalculate_user(np.arange(len(participants)), history)
        scores = np.asarray(users, dtype=np.float32) @ self._item_factors(graph, events).T
        cold = np.asarray(history.sum(axis=1)).ravel() == 0
        if cold.any():
            pop = self.fallback_._score(graph, participants[cold], events, as_of, allowed[cold])
            scores[cold] = pop.astype(np.float32)
        return scores
