"""Implicit BPR over participants x event series, scoring new editions through their series or content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from features.event_content import borrowed_weights, weighted_history
from features.series import participant_series, series_competence, series_map
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training.popularity import PopularityConfig, PopularityRecommender


class BprConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factors: int = Field(48, ge=2, le=512)
    learning_rate: float = Field(0.05, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(60, ge=1, le=1000)
    half_life_days: float = Field(365.0, gt=0, description="recent series weigh more in the participant fold-in")
    sharpen: float = Field(4.0, gt=0, description="power on competence similarity when borrowing series factors")
    seed: int = 0
    popularity: PopularityConfig = Field(default_factory=PopularityConfig)


def fold_in(history: sp.csr_matrix, item_factors: np.ndarray) -> np.ndarray:
    """Participant factors as the weighted mean of their series' factors, with BPR's bias column kept at 1.

    BPR learns no way to place a participant it was not trained on; the mean of the taken items'
    factors places everyone from their current history (a new achievement counts at once), and
    scored better offline than a least-squares projection.
    """
    totals = np.asarray(history.sum(axis=1)).ravel()
    weights = sp.diags(1.0 / np.where(totals > 0, totals, 1.0)) @ history
    users = np.asarray(weights @ item_factors[:, :-1])
    return np.hstack([users, np.ones((len(users), 1))]).astype(np.float32)


class BprRecommender(EventRecommender):
    """Bayesian personalized ranking of participants x series (implicit BPR, single-threaded: deterministic).

    An upcoming event is scored through its series; an event of a series nobody took yet borrows
    the factors of the series with the most similar competences. Participants are folded in from
    their current history at every call; those with no history get popularity per region and grade.
    """

    name = "implicit_bpr"

    def __init__(self, config: BprConfig | None = None) -> None:
        self.config = config or BprConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        cfg = self.config
        self.series_ = series_map(graph)
        items = participant_series(graph, self.series_)
        items.data[:] = 1.0
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=cfg.factors,
                learning_rate=cfg.learning_rate,
                regularization=cfg.regularization,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                num_threads=1,  # Hogwild updates from several threads are not reproducible
            )
            model.fit(items, show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.seen_ = np.asarray(items.sum(axis=0)).ravel() > 0
        self.series_competence_ = series_competence(graph, self.series_)
        self.fallback_ = PopularityRecommender(cfg.popularity).fit(graph)

    def _item_factors(self, graph: AchievementsGraph, events: np.ndarray) -> np.ndarray:
        s = self.series_.project(graph).of_event[events]
        known = s >= 0
        known[known] &= self.seen_[s[known]]
        factors = np.zeros((len(events), self.item_factors_.shape[1]), dtype=np.float32)
        factors[known] = self.item_factors_[s[known]]
        if (~known).any():
            learned = np.flatnonzero(self.seen_)
            weights = borrowed_weights(
                graph.event_competence()[events[~known]], self.series_competence_[learned], self.config.sharpen
            )
            factors[~known] = weights @ self.item_factors_[learned]
        return factors

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        cfg = self.config
        history = weighted_history(graph, self.series_.project(graph), as_of, cfg.half_life_days, participants)
        users = fold_in(history, self.item_factors_)
        scores = users @ self._item_factors(graph, events).T
        cold = np.asarray(history.sum(axis=1)).ravel() == 0
        if cold.any():
            scores[cold] = self.fallback_._score(graph, participants[cold], events, as_of, allowed[cold])
        return scores
