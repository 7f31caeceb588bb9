"""Participant resources: next steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from recommender.columns import EVENT_FORMATS, LEVELS
from serving.auth import FrontendDep
from serving.deps import SettingsDep, StateDep
from serving.errors import ApiError
from serving.schemas import AUTH_RESPONSES, ErrorOut, NextStepsOut, TrajectoryOut
from serving.services.next_steps import UnknownParticipant, next_steps
from serving.services.trajectory import trajectory
from training.trajectory import GoalError

router = APIRouter(prefix="/v1/participants", tags=["participants"])
_LEVEL = "(" + "|".join(LEVELS) + ")"
# Documented in the schema; the service checks it itself so a bad goal answers `invalid_goal`.
GOAL_PATTERN = f"^(level:{_LEVEL}|competence:[^:]+(:{_LEVEL})?|program:.+)$"


@router.get(
    "/{participant_id}/next-steps",
    response_model=NextStepsOut,
    responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def get_next_steps(
    participant_id: str,
    state: StateDep,
    settings: SettingsDep,
    _: FrontendDep,
    k: Annotated[int, Query(ge=1, le=100, description="how many events")] = 10,
    horizon_days: Annotated[int | None, Query(ge=1, le=730, description="only events starting within")] = None,
    format: Annotated[list[str] | None, Query(description="only these formats",
                                              json_schema_extra={"items": {"enum": list(EVENT_FORMATS)}})] = None,
    online_only: bool = False,
) -> NextStepsOut:
    """Ranked upcoming events the participant may take, each with short reasons."""
    # Async on purpose: the ranking is a few milliseconds of CPU under the GIL, so a hop to the thread pool
    # would only add latency (the hot path of every front-end page).
    if format:
        unknown = [f for f in format if f not in EVENT_FORMATS]
        if unknown:
            raise ApiError(422, "invalid_request", f"format: unknown value {unknown[0]!r}")
    try:
        return next_steps(
            state, participant_id, min(k, settings.max_k),
            horizon_days=horizon_days, formats=tuple(format) if format else None, online_only=online_only,
        )
    except UnknownParticipant:
        raise ApiError(404, "participant_not_found", f"participant {participant_id!r} is not known") from None


@router.get(
    "/{participant_id}/trajectory",
    response_model=TrajectoryOut,
    responses=AUTH_RESPONSES | {404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def get_trajectory(
    participant_id: str,
    state: StateDep,
    _: FrontendDep,
    goal: Annotated[str, Query(description="level:<level>, competence:<id>[:<level>] or program:<id>",
                               examples=["level:national"], json_schema_extra={"pattern": GOAL_PATTERN})],
    horizon_days: Annotated[int, Query(ge=7, le=730, description="plan events starting within")] = 270,
) -> TrajectoryOut:
    """A dated plan of events toward a goal, stages in order, with the chance of reaching it."""
    try:
        return trajectory(state, participant_id, goal, horizon_days)
    except UnknownParticipant:
        raise ApiError(404, "participant_not_found", f"participant {participant_id!r} is not known") from None
    except GoalError as exc:
        raise ApiError(422, "invalid_goal", str(exc)) from None
