"""Prequential replay: every achievement row's skill estimate from strictly earlier events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings, RatingConfig
from recommender.columns import Columns
from recommender.graph import AchievementsGraph

REPLAY_COLUMNS = (Columns.Participant, Columns.Event, Columns.Competence, "skill", "skill_sd")


def replay_frame(graph: AchievementsGraph, config: RatingConfig | None = None) -> pd.DataFrame:
    """For every achievement row (in order): the participant's pre-event estimate in the event's main competence.

    Events without a competence get an empty competence and no estimate.
    """
    out = CompetenceRatings(config or RatingConfig()).replay(graph)
    a = graph.achievements
    comp = graph.competence_index.to_numpy(dtype=object)
    c = out["competence"].to_numpy()
    # Position -1 (an event without competences) picks the appended None.
    competence = pd.array(np.append(comp, np.array([None], dtype=object))[c], dtype="string")
    return pd.DataFrame({
        Columns.Participant: a[Columns.Participant].astype("string").to_numpy(),
        Columns.Event: a[Columns.Event].astype("string").to_numpy(),
        Columns.Competence: competence,
        "skill": out["skill"].round(6).to_numpy(),
        "skill_sd": out["skill_sd"].round(6).to_numpy(),
    })
