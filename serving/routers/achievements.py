"""Achievements posted by front ends (registrations and results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from serving.auth import FrontendDep
from serving.deps import StateDep
from serving.schemas import ErrorOut
from serving.schemas_writes import MAX_ITEMS, AchievementIn, WriteOut
from serving.services.achievements import post_achievements
from serving.services.fold_in import GraphSyncDep

router = APIRouter(prefix="/v1", tags=["writes"])


@router.post(
    "/achievements",
    status_code=202,
    response_model=WriteOut,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut},
               503: {"model": ErrorOut}},
)
def create_achievements(
    items: Annotated[list[AchievementIn], Body(max_length=MAX_ITEMS)],
    state: StateDep,
    sync: GraphSyncDep,
    principal: FrontendDep,
) -> WriteOut:
    """Store achievements (registrations too) exactly once; the participant's suggestions change at once."""
    return post_achievements(state, sync, principal.key_id, [item.model_dump() for item in items])
