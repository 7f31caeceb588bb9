"""Admissions partners' program scores."""

from __future__ import annotations

from fastapi import APIRouter

from serving.auth import PartnerDep
from serving.deps import StateDep
from serving.schemas import AUTH_RESPONSES, ErrorOut
from serving.schemas_people import ProgramScoresIn, ProgramScoresOut
from serving.services.admissions import program_scores

router = APIRouter(prefix="/v1/programs", tags=["admissions"])


@router.post("/{program_id}/scores", response_model=ProgramScoresOut,
             responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
def post_scores(program_id: str, body: ProgramScoresIn, state: StateDep, principal: PartnerDep) -> ProgramScoresOut:
    """Scores of the consenting participants against the program; the others listed as not consented or unknown."""
    return program_scores(state, principal, program_id, body.participant_ids)
