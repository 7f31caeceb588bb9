"""Offline evaluation on a global temporal split: fit before the cut, score the next real steps after it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.eligibility import open_events
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.metrics import summary
from recommender.models import EventRecommender


@dataclass(frozen=True)
class TemporalSplit:
    cut: pd.Timestamp
    horizon_days: int
    train: AchievementsGraph
    relevant: pd.DataFrame  # participant_id, event_id: the next real steps among events open at the cut
    catalog_size: int


def temporal_split(graph: AchievementsGraph, cut: str | pd.Timestamp, horizon_days: int) -> TemporalSplit:
    """Rows dated before `cut` train; the steps taken in [cut, cut + horizon) among open events are truth."""
    when = to_timestamp(cut)
    train = graph.as_of(when)
    catalog = open_events(train, when)
    a = graph.achievements
    window = (a[Columns.Date] >= when) & (a[Columns.Date] < when + pd.Timedelta(days=horizon_days))
    in_catalog = np.isin(a["event_idx"].to_numpy(), catalog)
    steps = a.loc[window.to_numpy() & in_catalog, [Columns.Participant, Columns.Event]].drop_duplicates()
    return TemporalSplit(when, horizon_days, train, steps.reset_index(drop=True), len(catalog))


def default_cut(graph: AchievementsGraph, horizon_days: int) -> pd.Timestamp:
    """The latest cut that still leaves a full horizon of observed steps."""
    latest = graph.achievements[Columns.Date].max()
    return to_timestamp(latest - pd.Timedelta(days=horizon_days))


def evaluate(
    model: EventRecommender, split: TemporalSplit, k: int = 10, *, max_participants: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit on the train side of the split and measure ranking quality on its truth."""
    relevant = split.relevant
    participants = relevant[Columns.Participant].drop_duplicates()
    if max_participants is not None and len(participants) > max_participants:
        participants = participants.sample(max_participants, random_state=seed)
        relevant = relevant[relevant[Columns.Participant].isin(participants)]
    model.fit(split.train)
    recs = model.recommend(participants.tolist(), k, as_of=split.cut, graph=split.train)
    return summary(recs, relevant, k, catalog_size=split.catalog_size)
