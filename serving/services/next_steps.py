"""Next steps for one participant: rules, ranking by the loaded model, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.eligibility import EventFilters
from recommender.models import ScoreExplainer
from serving.schemas import NextStepOut, NextStepsOut
from serving.services.reasons import event_reasons, participant_facts
from serving.state import ServingState


class UnknownParticipant(LookupError):
    pass


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
    recs = state.model.recommend([participant_id], k, as_of=today, filters=filters, graph=graph)
    events = graph.event_index.get_indexer(recs[Columns.Event].astype(str))
    model = state.model
    drivers = (
        model.score_drivers(graph, position, events, today) if isinstance(model, ScoreExplainer)
        else [[] for _ in events]
    )
    facts = participant_facts(graph, position)
    items = []
    for (_, row), pos, why in zip(recs.iterrows(), events, drivers, strict=True):
        ev = graph.events.iloc[pos]
        region = ev.get(Columns.Region)
        items.append(
            NextStepOut(
                event_id=str(row[Columns.Event]),
                title=str(ev["title"]),
                format=str(ev["format"]),
                level=str(ev["level"]),
                start_date=ev[Columns.StartDate].date(),
                region_code=None if pd.isna(region) else str(region),
                online=bool(graph.event_arrays.online[pos]),
                score=float(row[Columns.Score]) if np.isfinite(row[Columns.Score]) else 0.0,
                rank=int(row[Columns.Rank]),
                reasons=event_reasons(graph, position, int(pos), why, facts=facts),
            )
        )
    label = state.model_label + (f"@{state.model_version}" if state.model_version else "")
    return NextStepsOut(participant_id=participant_id, as_of=today.date(), model=label, items=items)
