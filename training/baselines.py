"""Reference rankers every model is compared with: random and global popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from features.series import series_map
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender


class RandomConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0


class RandomRecommender(EventRecommender):
    """Uniformly random among the eligible events: the floor of every metric."""

    name = "random"

    def __init__(self, config: RandomConfig | None = None) -> None:
        self.config = config or RandomConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        self.fitted_ = True

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        # Seeded by the participants asked for, so a call is reproducible whatever the batch.
        rng = np.random.default_rng([self.config.seed, int(participants.sum()), len(participants)])
        return rng.random((len(participants), len(events)))


class GlobalPopularityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GlobalPopularityRecommender(EventRecommender):
    """How many took part in the event's series, everyone alike."""

    name = "popularity"

    def __init__(self, config: GlobalPopularityConfig | None = None) -> None:
        self.config = config or GlobalPopularityConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        self.series_ = series_map(graph)
        counts = np.bincount(
            self.series_.of_event[graph.achievements["event_idx"].to_numpy()], minlength=self.series_.n_series
        )
        self.counts_ = pd.Series(counts.astype(np.float64), index=self.series_.index)

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        keys = graph.series_keys().to_numpy()[events].astype(str)
        scores = self.counts_.reindex(keys).fillna(0.0).to_numpy()
        return np.broadcast_to(scores, (len(participants), len(events))).copy()
