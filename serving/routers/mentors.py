"""Mentor rankings for a participant or a team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving.auth import FrontendDep
from serving.deps import SettingsDep, StateDep
from serving.schemas import AUTH_RESPONSES, ErrorOut
from serving.schemas_people import MentorsOut
from serving.services.mentors import participant_mentors, team_mentors

router = APIRouter(prefix="/v1", tags=["mentors"])
K = Annotated[int, Query(ge=1, le=100, description="how many mentors")]


@router.get("/participants/{participant_id}/mentors", response_model=MentorsOut,
            responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def get_participant_mentors(participant_id: str, state: StateDep, settings: SettingsDep, _: FrontendDep,
                            k: K = 10) -> MentorsOut:
    """Mentors who fit the participant's competences, reach them and have a free place, with reasons."""
    return participant_mentors(state, participant_id, min(k, settings.max_k))


@router.get("/teams/{team_id}/mentors", response_model=MentorsOut,
            responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def get_team_mentors(team_id: str, state: StateDep, settings: SettingsDep, _: FrontendDep, k: K = 10) -> MentorsOut:
    """Mentors who fit the team's event, reach the team and have a free place, with reasons."""
    return team_mentors(state, team_id, min(k, settings.max_k))
