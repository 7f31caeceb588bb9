"""What the service holds: the current graph snapshot and the champion model, or a declared fallback."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from recommender.store.store import Store
from serving.loaded_model import LoadedModel
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.side_models import SideModels

log = logging.getLogger("trajectory.serving")
_FALLBACK_LOCK = threading.Lock()


@dataclass
class ServingState:
    graph: AchievementsGraph
    model: EventRecommender
    model_label: str
    model_version: str | None
    degraded_reasons: list[str] = field(default_factory=list)
    fixed_today: date | None = None
    store: Store | None = None  # the online store (keys, audit, writes); None only in tests without one
    # The next-steps model as requests must read it: one immutable reference, replaced whole by a swap.
    # `model`, `model_label` and `model_version` are the start-up values, mirrored after each swap.
    next_steps: LoadedModel = field(init=False)
    # Other models the service holds (profiles, mentors, teams): listed by GET /v1/models.
    other_models: list[LoadedModel] = field(default_factory=list)
    # Competence profiles, mentors, teammates and admissions scores (serving/side_models.py); None: not loaded.
    side: SideModels | None = None

    def __post_init__(self) -> None:
        kind = str(getattr(self.model, "name", type(self.model).__name__))
        alias = None if self.model_version is None else "champion"
        self.next_steps = LoadedModel("next-steps", kind, self.model_label, self.model, self.model_version, alias)

    def swap_next_steps(self, loaded: LoadedModel) -> None:
        """Serve `loaded` from the next request on; requests under way finish with the model they read."""
        self.next_steps = loaded
        self.model, self.model_label, self.model_version = loaded.model, loaded.label, loaded.version

    def fall_back(self, reason: str) -> LoadedModel:
        """Serve popularity from now on because the model failed; say why in /v1/health. The watcher swaps a
        working champion back in when the registry offers one."""
        with _FALLBACK_LOCK:
            if self.next_steps.fallback:
                return self.next_steps
            from training.popularity import PopularityRecommender

            model = PopularityRecommender().fit(self.graph)
            self.degraded_reasons.append(reason)
            self.swap_next_steps(LoadedModel("next-steps", model.name, f"fallback:{model.name}", model))
            log.warning(reason)
            return self.next_steps

    def loaded_models(self) -> list[LoadedModel]:
        return [self.next_steps, *self.other_models]

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_reasons)

    def today(self) -> pd.Timestamp:
        return pd.Timestamp(self.fixed_today or date.today())


def smoke_test(model: Any, graph: AchievementsGraph, today: pd.Timestamp) -> None:
    """Rank and explain for the most active participant: a model that cannot is not served."""
    if graph.n_participants == 0:
        return
    from recommender.models import ScoreExplainer

    position = int(np.asarray(graph.participant_event().getnnz(axis=1)).argmax())
    recs = model.recommend([str(graph.participant_index[position])], 3, as_of=today, graph=graph)
    if isinstance(model, ScoreExplainer) and len(recs):
        events = graph.event_index.get_indexer(recs[Columns.Event].astype(str))
        model.score_drivers(graph, position, events, today)


def load_graph(store: Store) -> AchievementsGraph:
    return AchievementsGraph.from_tables(store.tables())


def load_state(settings: Settings, graph: AchievementsGraph | None = None) -> ServingState:
    """Load the graph and the champion; a missing or broken model degrades to popularity, never fails."""
    store = Store(settings.store)
    store.migrate()  # the service's own tables (keys, audit, jobs) exist before the first request
    from serving.side_models import attach_side_models

    g = graph if graph is not None else load_graph(store)
    reasons: list[str] = []
    try:
        from training.tracking import configure, load_champion

        configure()
        model, version = load_champion(settings.model_name)
        smoke_test(model, g, pd.Timestamp(settings.as_of or date.today()))
        return attach_side_models(ServingState(g, model, f"{settings.model_name}:{model.name}", version, reasons,
                                               settings.as_of, store=store), settings)
    except Exception as exc:  # any registry or unpickling failure must degrade, not take the service down
        reason = f"champion model '{settings.model_name}' unavailable ({type(exc).__name__}); serving popularity"
        log.warning(reason)
        reasons.append(reason)
    from training.popularity import PopularityRecommender

    fallback = PopularityRecommender().fit(g)
    return attach_side_models(ServingState(g, fallback, f"fallback:{fallback.name}", None, reasons, settings.as_of,
                                           store=store), settings)
