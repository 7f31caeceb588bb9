"""Long jobs for operators: mentor assignment and team formation of an event, and their status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from serving.auth import AdminDep
from serving.deps import StateDep
from serving.schemas import ErrorOut
from serving.schemas_writes import JobAcceptedOut, JobOut, TeamFormationIn
from serving.services.jobs import (
    JobRunner,
    job_runner_for,
    job_status,
    submit_mentor_assignment,
    submit_team_formation,
)

router = APIRouter(prefix="/v1", tags=["jobs"])
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (401, 403, 404, 503)}


def get_job_runner(request: Request) -> JobRunner:
    return job_runner_for(request.app)


JobRunnerDep = Annotated[JobRunner, Depends(get_job_runner)]


@router.post("/events/{event_id}/mentor-assignment", status_code=202, response_model=JobAcceptedOut,
             responses=ERRORS)
def mentor_assignment(event_id: str, state: StateDep, runner: JobRunnerDep, principal: AdminDep) -> JobAcceptedOut:
    """Start assigning mentors to the event's teams without one; GET the returned status_url for the result."""
    return submit_mentor_assignment(state, runner, event_id, principal.key_id)


@router.post("/events/{event_id}/team-formation", status_code=202, response_model=JobAcceptedOut,
             responses={**ERRORS, 422: {"model": ErrorOut}})
def team_formation(
    event_id: str, state: StateDep, runner: JobRunnerDep, principal: AdminDep,
    body: Annotated[TeamFormationIn | None, Body()] = None,
) -> JobAcceptedOut:
    """Start splitting the event's registrants (or the given participants) into teams; GET status_url for them."""
    return submit_team_formation(state, runner, event_id, principal.key_id, body)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS)
def get_job(job_id: str, state: StateDep, principal: AdminDep) -> JobOut:
    """A job's status; its result when it succeeded, its error when it failed (from any worker)."""
    return job_status(state, job_id)
