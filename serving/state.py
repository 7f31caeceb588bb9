"""What the service holds: the current graph snapshot and the champion model, or a declared fallback."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from serving.settings import Settings

log = logging.getLogger("trajectory.serving")


@dataclass
class ServingState:
    graph: AchievementsGraph
    model: EventRecommender
    model_label: str
    model_version: str | None
    degraded_reasons: list[str] = field(default_factory=list)
    fixed_today: date | None = None

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_reasons)

    def today(self) -> pd.Timestamp:
        return pd.Timestamp(self.fixed_today or date.today())


def load_graph(settings: Settings) -> AchievementsGraph:
    from recommender.store.store import Store

    return AchievementsGraph.from_tables(Store(settings.store).tables())


def load_state(settings: Settings, graph: AchievementsGraph | None = None) -> ServingState:
    """Load the graph and the champion; a missing or broken model degrades to popularity, never fails."""
    g = graph if graph is not None else load_graph(settings)
    reasons: list[str] = []
    try:
        from training.tracking import configure, load_champion

        configure()
        model, version = load_champion(settings.model_name)
        return ServingState(g, model, f"{settings.model_name}:{model.name}", version, reasons, settings.as_of)
    except Exception as exc:  # any registry or unpickling failure must degrade, not take the service down
        reason = f"champion model '{settings.model_name}' unavailable ({type(exc).__name__}); serving popularity"
        log.warning(reason)
        reasons.append(reason)
    from training.popularity import PopularityRecommender

    fallback = PopularityRecommender().fit(g)
    return ServingState(g, fallback, f"fallback:{fallback.name}", None, reasons, settings.as_of)
