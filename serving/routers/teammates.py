"""Teammate rankings for a participant at a team event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving.auth import FrontendDep
from serving.deps import SettingsDep, StateDep
from serving.schemas import AUTH_RESPONSES, ErrorOut
from serving.schemas_people import TeammatesOut
from serving.services.teammates import teammates

router = APIRouter(prefix="/v1/participants", tags=["teams"])


@router.get("/{participant_id}/teammates", response_model=TeammatesOut,
            responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def get_teammates(
    participant_id: str,
    state: StateDep,
    settings: SettingsDep,
    _: FrontendDep,
    event_id: Annotated[str, Query(description="the team event", examples=["E001075"])],
    k: Annotated[int, Query(ge=1, le=100, description="how many teammates")] = 10,
) -> TeammatesOut:
    """The event's registrants who would complement the participant best, with reasons and predicted success."""
    return teammates(state, participant_id, event_id, min(k, settings.max_k))
