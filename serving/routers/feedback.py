"""Feedback on suggestions posted by front ends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from serving.auth import FrontendDep
from serving.deps import StateDep
from serving.schemas import ErrorOut
from serving.schemas_writes import MAX_ITEMS, FeedbackIn, WriteOut
from serving.services.feedback import post_feedback

router = APIRouter(prefix="/v1", tags=["writes"])


@router.post(
    "/feedback",
    status_code=202,
    response_model=WriteOut,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut},
               503: {"model": ErrorOut}},
)
def create_feedback(
    items: Annotated[list[FeedbackIn], Body(max_length=MAX_ITEMS)], state: StateDep, principal: FrontendDep
) -> WriteOut:
    """Store impressions, clicks and registrations exactly once per feedback_id."""
    return post_feedback(state, principal.key_id, items)
