"""Feedback on suggestions (impressions, clicks, registrations): stored exactly once per feedback_id."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from recommender.store import online
from serving.errors import ApiError
from serving.schemas_writes import FeedbackIn, RejectedItemOut, WriteOut
from serving.state import ServingState

log = logging.getLogger("trajectory.serving")


def post_feedback(state: ServingState, key_id: str, items: Sequence[FeedbackIn]) -> WriteOut:
    """Store new feedback; repeats of a stored (or earlier posted) feedback_id are duplicates."""
    if state.store is None:
        raise ApiError(503, "store_unavailable", "no store is configured")
    frame = pd.DataFrame([item.model_dump() for item in items],
                         columns=list(FeedbackIn.model_fields)).astype({"position": "Int64"})
    repeat = frame["feedback_id"].duplicated().to_numpy()
    first = frame[~repeat].reset_index(drop=True)
    positions = frame.index[~repeat].to_numpy()
    written = online.insert_feedback(state.store.engine, first, key_id)
    duplicates = written.duplicates + int(repeat.sum())
    rejected = [RejectedItemOut(index=int(positions[r.position]), field=r.field, reason=r.reason)
                for r in written.rejected]
    log.info("feedback posted: %d accepted, %d duplicates, %d rejected", written.inserted, duplicates, len(rejected))
    return WriteOut(accepted=written.inserted, duplicates=duplicates, rejected=len(rejected), rejected_items=rejected)
