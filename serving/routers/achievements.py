"""Achievements posted by front ends (registrations and results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from serving.auth import FrontendDep
from serving.deps import StateDep
from serving.schemas import ErrorOut
from serving.schemas_writes import MAX_ITEMS, AchievementIn, AchievementsWriteOut
from serving.services.achievements import post_achievements
from serving.services.fold_in import GraphSyncDep

router = APIRouter(prefix="/v1", tags=["writes"])


@router.post(
    "/achievements",
    status_code=202,
    response_model=AchievementsWriteOut,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut},
               503: {"model": ErrorOut}},
)
def create_achievements(
    items: Annotated[list[AchievementIn], Body(max_length=MAX_ITEMS)],
    state: StateDep,
    sync: GraphSyncDep,
    principal: FrontendDep,
) -> AchievementsWriteOut:
    """Store achievements (registrations too) exactly once; the participant's suggestions change at once.

    An achievement whose participant, event and role are stored already updates that row when it brings
    new values (a registration followed by its result): `updated` counts those.
    """
    return post_achievements(state, sync, principal.key_id, [item.model_dump() for item in items])
