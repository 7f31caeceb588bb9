"""The model contract: a `Recommender` protocol and a base class doing id mapping, rules and top-k once."""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.eligibility import EventFilters, eligibility_mask, open_events
from recommender.graph import AchievementsGraph, to_timestamp

RECOMMENDATION_COLUMNS = (Columns.Participant, Columns.Event, Columns.Score, Columns.Rank)
# Participants scored per block: bounds memory at [block x open events] floats.
BLOCK = 4096


@runtime_checkable
class Recommender(Protocol):
    def fit(self, graph: AchievementsGraph) -> Self: ...

    def recommend(
        self,
        participant_ids: Sequence[str],
        k: int,
        *,
        as_of: date | str | pd.Timestamp,
        filters: EventFilters | None = None,
        graph: AchievementsGraph | None = None,
    ) -> pd.DataFrame: ...


@runtime_checkable
class ScoreExplainer(Protocol):
    """A model that can say which of its features drove a score (used for the reasons shown)."""

    def score_drivers(
        self, graph: AchievementsGraph, participant: int, events: np.ndarray, as_of: pd.Timestamp, top: int = 3
    ) -> list[list[str]]:
        """For each event (positions), the names of the features that raised its score most."""
        ...


@runtime_checkable
class GraphFollower(Protocol):
    """A model that keeps state per graph and can carry it over a fold-in instead of rebuilding it."""

    def graph_folded(self, before: AchievementsGraph, after: AchievementsGraph, participants: np.ndarray) -> None:
        """`after` is `before` with achievement rows of `participants` (positions in `after`) folded in."""
        ...


def empty_recommendations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.Participant: pd.Series(dtype="string"),
            Columns.Event: pd.Series(dtype="string"),
            Columns.Score: pd.Series(dtype="float64"),
            Columns.Rank: pd.Series(dtype="int64"),
        }
    )


class EventRecommender(ABC):
    """Base of every next-step model.

    Subclasses implement `_fit(graph)` and `_score(graph, participants, events, as_of)`; this class
    applies the business rules to the open catalog before ranking (never after the cut), keeps
    ties deterministic (by event position), and shapes the output. Fitted state ends in `_`; the
    graph a model was fitted on is not part of its saved state.
    """

    name: str = "base"

    @property
    def pairwise_scores(self) -> bool:
        """True when a pair's score does not depend on which other events are scored with it (no normalizing
        over the candidates): `recommend` then scores only the events the rules allow, the same ranking for
        less work (a participant may take a few hundred of the open events)."""
        return False

    def fit(self, graph: AchievementsGraph) -> Self:
        self._fit(graph)
        self.graph_ = graph
        return self

    @abstractmethod
    def _fit(self, graph: AchievementsGraph) -> None: ...

    @abstractmethod
    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        """Scores [participants x events] (higher is better); only pairs `allowed` by the rules are read."""

    def recommend(
        self,
        participant_ids: Sequence[str],
        k: int,
        *,
        as_of: date | str | pd.Timestamp,
        filters: EventFilters | None = None,
        graph: AchievementsGraph | None = None,
    ) -> pd.DataFrame:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        g = graph if graph is not None else getattr(self, "graph_", None)
        if g is None:
            raise RuntimeError(f"{type(self).__name__} has no graph: fit it or pass graph=")
        now = to_timestamp(as_of)
        if not g.known_before(now):
            g = g.as_of(now)
        positions = g.participant_positions(list(participant_ids))
        known = positions >= 0
        p_known = positions[known]
        ids_known = np.asarray(participant_ids, dtype=object)[known]
        events = open_events(g, now, filters)
        if len(events) == 0 or len(p_known) == 0:
            return empty_recommendations()
        frames = []
        event_ids = g.event_index[events].to_numpy()  # the open events only: never all events per request
        for start in range(0, len(p_known), BLOCK):
            block = p_known[start : start + BLOCK]
            allowed = eligibility_mask(g, now, block, events)
            cand, cand_ids = events, event_ids
            if self.pairwise_scores:  # score only the events someone in the block may take
                cols = np.flatnonzero(allowed.any(axis=0))
                if len(cols) < len(events):
                    cand, cand_ids, allowed = events[cols], event_ids[cols], allowed[:, cols]
            scores = np.asarray(self._score(g, block, cand, now, allowed), dtype=np.float64)
            scores = np.where(allowed, scores, -np.inf)
            frames.append(_top_k(scores, ids_known[start : start + BLOCK], cand_ids, k))
        out = pd.concat(frames, ignore_index=True)
        return out if len(out) else empty_recommendations()

    def score_events(
        self, graph: AchievementsGraph, participant: int, events: np.ndarray, as_of: date | str | pd.Timestamp
    ) -> np.ndarray:
        """Raw scores of given events for one participant (position), rules not applied: for planners."""
        allowed = np.ones((1, len(events)), dtype=bool)
        scores = self._score(graph, np.asarray([participant]), np.asarray(events), to_timestamp(as_of), allowed)
        return np.asarray(scores, dtype=np.float64)[0]

    # ---- persistence --------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("graph_", None)
        return state

    def save(self, path: Path) -> None:
        Path(path).write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: Path) -> EventRecommender:
        model = pickle.loads(Path(path).read_bytes())
        if not isinstance(model, EventRecommender):
            raise TypeError(f"{path} does not hold a next-step model")
        return model


def _top_k(scores: np.ndarray, participant_ids: np.ndarray, event_ids: np.ndarray, k: int) -> pd.DataFrame:
    n_p, n_e = scores.shape
    kk = min(k, n_e)
    # Stable order: score descending, then event position ascending.
    order = np.lexsort((np.broadcast_to(np.arange(n_e), scores.shape), -scores), axis=1)[:, :kk]
    top = np.take_along_axis(scores, order, axis=1)
    valid = np.isfinite(top)
    rows = np.repeat(np.arange(n_p), kk).reshape(n_p, kk)
    ranks = np.cumsum(valid, axis=1)
    return pd.DataFrame(
        {
            Columns.Participant: pd.array(participant_ids[rows[valid]], dtype="string"),
            Columns.Event: pd.array(event_ids[order[valid]], dtype="string"),
            Columns.Score: top[valid].astype(np.float64),
            Columns.Rank: ranks[valid].astype(np.int64),
        }
    )
