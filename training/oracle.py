"""The oracle ranker: a synthetic world's true choice probabilities, the bound on every ranking metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.models import empty_recommendations


def oracle_recommendations(
    world_dir: Path, as_of: pd.Timestamp, participant_ids: list[str], k: int, catalog: set[str]
) -> pd.DataFrame:
    """Top k of each participant's open events by true probability, within the evaluation catalog."""
    from recommender.synth.oracle import choice_probabilities

    probs = choice_probabilities(Path(world_dir), as_of.date(), participant_ids)
    if len(probs) == 0:
        return empty_recommendations()
    frame = pd.DataFrame({
        Columns.Participant: probs[Columns.Participant].astype(str).to_numpy(),
        Columns.Event: probs[Columns.Event].astype(str).to_numpy(),
        Columns.Score: probs["probability"].to_numpy(),
    })
    frame = frame[frame[Columns.Event].isin(catalog)]
    frame = frame.sort_values([Columns.Participant, Columns.Score, Columns.Event], ascending=[True, False, True])
    frame[Columns.Rank] = frame.groupby(Columns.Participant).cumcount().to_numpy(dtype=np.int64) + 1
    out = frame[frame[Columns.Rank] <= k].reset_index(drop=True)
    out[Columns.Participant] = out[Columns.Participant].astype("string")
    out[Columns.Event] = out[Columns.Event].astype("string")
    return out
