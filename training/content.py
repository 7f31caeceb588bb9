"""Content match: a participant's recency-weighted competence profile against event competences, level and format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from features.event_content import (
    FORMAT_CODES,
    competence_profile,
    declared_profile,
    event_attributes,
    participant_rows,
    reached_levels,
    recency_at,
    rows_normalized,
    with_declared,
)
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training.popularity import PopularityConfig, PopularityRecommender


class ContentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    half_life_days: float = Field(365.0, gt=0, description="recent events shape the profile more")
    competence: float = Field(3.0, ge=0, description="x cosine of competence profile and event competences")
    declared: float = Field(
        0.3, ge=0, description="weight of declared interests in the profile beside the history (alone without one)"
    )
    format: float = Field(0.5, ge=0, description="x recency-weighted share of the participant's events in the format")
    level_above: float = Field(1.0, ge=0, description="penalty per level above the one after the level reached")
    level_below: float = Field(0.8, ge=0, description="penalty per level below it")
    next_stage: float = Field(2.0, ge=0, description="bonus of a next stage (eligible only when qualified)")
    popularity: float = Field(1.0, ge=0, description="x local popularity, log-scaled to 0..1 per participant")
    weeks_ahead: float = Field(0.02, ge=0, description="penalty per week until the start: near events first")
    popularity_model: PopularityConfig = Field(default_factory=PopularityConfig)


class ContentRecommender(EventRecommender):
    """Scores events by what they are, never by who took them: every event is scorable the day it is announced.

    score = competence fit + format affinity - distance from the next level + next-stage bonus
    + a little local popularity - time to start. The competence profile is the history's, with declared
    interests as a weak prior; a participant with no history is profiled by declared interests alone and
    still gets the level, stage, popularity and timing terms (popularity per region and grade is the
    cold-start prior for those who declared nothing).
    """

    name = "content_match"

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or ContentConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        # The model has no learned weights: its only fitted state is the popularity prior.
        self.popularity_ = PopularityRecommender(self.config.popularity_model).fit(graph)

    def _format_share(self, graph: AchievementsGraph, participants: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
        a = graph.achievements
        formats = event_attributes(graph).format
        sel = participant_rows(graph, participants)
        weights = recency_at(a[Columns.Date].to_numpy()[sel.keep], as_of, self.config.half_life_days)
        m = sel.finish(sp.csr_matrix(
            (weights, (sel.out, formats[a["event_idx"].to_numpy()[sel.keep]])),
            shape=(sel.height, len(FORMAT_CODES)),
        )).toarray()
        total = m.sum(axis=1, keepdims=True)
        return m / np.where(total > 0, total, 1.0)

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        cfg = self.config
        attrs = event_attributes(graph)
        history = competence_profile(graph, as_of, cfg.half_life_days, participants)
        profile = with_declared(history, declared_profile(graph, participants), cfg.declared)
        fit = (profile @ rows_normalized(graph.event_competence()[events]).T).toarray()
        fmt = self._format_share(graph, participants, as_of)[:, attrs.format[events]]
        target = reached_levels(graph, participants) + 1
        gap = attrs.level[events][None, :] - target[:, None]
        level = cfg.level_above * np.maximum(gap, 0) + cfg.level_below * np.maximum(-gap, 0)
        popular = np.log1p(np.maximum(self.popularity_._score(graph, participants, events, as_of, allowed), 0.0))
        top = popular.max(axis=1, keepdims=True)
        popular = popular / np.where(top > 0, top, 1.0)
        weeks = (graph.events[Columns.StartDate].to_numpy()[events] - as_of.to_datetime64()) / np.timedelta64(7, "D")
        per_event = cfg.next_stage * attrs.staged[events] - cfg.weeks_ahead * np.maximum(weeks.astype(float), 0.0)
        return cfg.competence * fit + cfg.format * fmt - level + cfg.popularity * popular + per_event[None, :]
