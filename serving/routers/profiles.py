"""Competence profile of a participant."""

from __future__ import annotations

from fastapi import APIRouter

from serving.auth import FrontendOrAnalystDep
from serving.deps import StateDep
from serving.schemas import AUTH_RESPONSES, ErrorOut
from serving.schemas_people import ProfileOut
from serving.services.profile import competence_profile_out

router = APIRouter(prefix="/v1/participants", tags=["profiles"])


@router.get("/{participant_id}/profile", response_model=ProfileOut,
            responses=AUTH_RESPONSES | {404: {"model": ErrorOut}})
def get_profile(participant_id: str, state: StateDep, _: FrontendOrAnalystDep) -> ProfileOut:
    """Per competence: skill with uncertainty, percentile among same-grade peers, level, achievements, history."""
    return competence_profile_out(state, participant_id)
