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
import pyarrow as pa

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
        g, now = self._graph_at(graph, as_of)
        positions = g.participant_positions(list(participant_ids))
        known = positions >= 0
        p_known = positions[known]
        ids_known = np.asarray(participant_ids, dtype=object)[known]
        events = open_events(g, now, filters)
        if len(events) == 0 or len(p_known) == 0:
            return empty_recommendations()
        frames = []
        for start in range(0, len(p_known), BLOCK):
            columns, scores = self._block_top(g, now, p_known[start : start + BLOCK], events, k)
            frames.append(_top_k_frame(columns, scores, ids_known[start : start + BLOCK], g.event_ids, events))
        out = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return out if len(out) else empty_recommendations()

    def top_events(
        self,
        participant_id: str,
        k: int,
        *,
        as_of: date | str | pd.Timestamp,
        filters: EventFilters | None = None,
        graph: AchievementsGraph | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One participant's top k as arrays, best first: event positions in the graph and their scores, the
        rows `recommend([participant_id], k)` gives, without building a frame (the request path)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        g, now = self._graph_at(graph, as_of)
        position = g.participant_positions([participant_id])
        events = open_events(g, now, filters)
        if len(events) == 0 or position[0] < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        columns, scores = self._block_top(g, now, position, events, k)
        valid = np.isfinite(scores[0])
        return events[columns[0][valid]], scores[0][valid]

    def _graph_at(self, graph: AchievementsGraph | None, as_of: date | str | pd.Timestamp
                  ) -> tuple[AchievementsGraph, pd.Timestamp]:
        g = graph if graph is not None else getattr(self, "graph_", None)
        if g is None:
            raise RuntimeError(f"{type(self).__name__} has no graph: fit it or pass graph=")
        now = to_timestamp(as_of)
        return (g if g.known_before(now) else g.as_of(now)), now

    def _block_top(self, g: AchievementsGraph, now: pd.Timestamp, block: np.ndarray, events: np.ndarray, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
        """A block's best events: columns of `events` [block x k] and scores (-inf past the allowed ones)."""
        allowed = eligibility_mask(g, now, block, events)
        cols = np.arange(len(events))
        if self.pairwise_scores:  # score only the events someone in the block may take
            cols = np.flatnonzero(allowed.any(axis=0))
            if len(cols) < len(events):
                events, allowed = events[cols], allowed[:, cols]
        scores = np.asarray(self._score(g, block, events, now, allowed), dtype=np.float64)
        scores = np.where(allowed, scores, -np.inf)
        order, top = _top_columns(scores, k)
        return cols[order], top

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


def _top_columns(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of each row's k best scores, and those scores: score descending, ties by column (event position)."""
    n_p, n_e = scores.shape
    kk = min(k, n_e)
    if n_p == 1 and n_e > kk:  # a request: only the candidates that can reach the top k are sorted
        row = scores[0]
        cut = row[np.argpartition(-row, kk - 1)[:kk]].min()
        near = np.flatnonzero(row >= cut) if cut > -np.inf else np.arange(n_e)
        order = near[np.lexsort((near, -row[near]))][:kk][None, :]
    else:
        order = np.lexsort((np.broadcast_to(np.arange(n_e), scores.shape), -scores), axis=1)[:, :kk]
    return order, np.take_along_axis(scores, order, axis=1)


def _strings(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """`pd.array(values, dtype="string")`; built straight from pyarrow when that is the storage, as pandas would
    (a request's frame takes half the time)."""
    dtype = pd.StringDtype()
    if dtype.storage == "pyarrow":
        try:
            return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()))
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # ids that are not str (a caller's ints): pandas converts them
            pass
    return pd.array(values, dtype=dtype)


def _top_k_frame(columns: np.ndarray, scores: np.ndarray, participant_ids: np.ndarray, event_ids: np.ndarray,
                 events: np.ndarray) -> pd.DataFrame:
    """Rows of the top k: `columns` index `events`, positions in `event_ids` (only the chosen ones are looked up:
    a request maps its ten events, not the whole open catalog)."""
    n_p, kk = columns.shape
    valid = np.isfinite(scores)
    rows = np.repeat(np.arange(n_p), kk).reshape(n_p, kk)
    ranks = np.cumsum(valid, axis=1)
    return pd.DataFrame(
        {
            Columns.Participant: _strings(participant_ids[rows[valid]]),
            Columns.Event: _strings(event_ids[events[columns[valid]]]),
            Columns.Score: scores[valid].astype(np.float64),
            Columns.Rank: ranks[valid].astype(np.int64),
        }
    )
