"""Next steps for one participant: rules, ranking by the loaded model, reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.eligibility import EventFilters
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender, ScoreExplainer
from serving.schemas import NextStepOut, NextStepsOut
from serving.services.reasons import event_reasons, participant_facts
from serving.state import ServingState


class UnknownParticipant(LookupError):
    pass


def _rank(model: Any, graph: AchievementsGraph, participant_id: str, position: int, k: int, today: pd.Timestamp,
          filters: EventFilters) -> tuple[np.ndarray, np.ndarray, list[list[Any]]]:
    """Event positions and scores of the top k, best first, and what drove each score."""
    if isinstance(model, EventRecommender):  # arrays all the way: no frame on the request path
        events, scores = model.top_events(participant_id, k, as_of=today, filters=filters, graph=graph)
    else:
        recs = model.recommend([participant_id], k, as_of=today, filters=filters, graph=graph)
        events = graph.event_index.get_indexer(recs[Columns.Event].astype(str))
        scores = recs[Columns.Score].to_numpy(np.float64)
    drivers = (
        model.score_drivers(graph, position, events, today) if isinstance(model, ScoreExplainer)
        else [[] for _ in events]
    )
    return events, scores, drivers


def next_steps(
    state: ServingState,
    participant_id: str,
    k: int,
    *,
    horizon_days: int | None = None,
    formats: tuple[str, ...] | None = None,
    online_only: bool = False,
) -> NextStepsOut:
    graph = state.graph
    position = int(graph.participant_positions([participant_id])[0])
    if position < 0:
        raise UnknownParticipant(participant_id)
    today = state.today()
    filters = EventFilters(horizon_days=horizon_days, formats=formats, online_only=online_only)
    loaded = state.next_steps  # read once: a model swapped in meanwhile serves the next request, not half of this
    try:
        events, scores, drivers = _rank(loaded.model, graph, participant_id, position, k, today, filters)
    except Exception as exc:  # a model that breaks on live data degrades the service; it never answers 500
        if loaded.fallback:
            raise
        loaded = state.fall_back(f"model {loaded.tagged_label} failed on a request ({type(exc).__name__}); "
                                 "serving popularity")
        events, scores, drivers = _rank(loaded.model, graph, participant_id, position, k, today, filters)
    facts = participant_facts(graph, position)
    ev = facts.events  # the events' columns as arrays: no pandas row is built on the request path
    items = []
    event_ids = ev.ids[events]
    for rank, (event_id, score, pos, why) in enumerate(zip(event_ids, scores, events, drivers, strict=True), 1):
        start = ev.start_date[pos]
        if start is None:
            raise ValueError(f"event {event_id} has no start date")
        items.append(
            NextStepOut(
                event_id=str(event_id),
                title=ev.title[pos],
                format=ev.format[pos],
                level=ev.level[pos],
                start_date=start,
                region_code=ev.region[pos],
                online=bool(graph.event_arrays.online[pos]),
                score=float(score) if np.isfinite(score) else 0.0,
                rank=rank,
                reasons=event_reasons(graph, position, int(pos), why, facts=facts),
            )
        )
    return NextStepsOut(participant_id=participant_id, as_of=today.date(), model=loaded.tagged_label, items=items)
