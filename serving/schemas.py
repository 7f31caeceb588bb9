"""Request and response schemas of API v1."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


# Documented on every route that takes a key (OpenAPI): the error shape of 401, 403, 429 and 503.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no API key, or not a valid one"},
    403: {"model": ErrorOut, "description": "the key lacks the scope"},
    429: {"model": ErrorOut, "description": "the key's rate limit is exceeded (see Retry-After)"},
    503: {"model": ErrorOut, "description": "the database is unavailable"},
}


class NextStepOut(BaseModel):
    event_id: str
    title: str
    format: str
    level: str
    start_date: date
    region_code: str | None = Field(None, description="empty for online events")
    online: bool
    score: float
    rank: int
    reasons: list[str] = Field(..., examples=[["You took part in robotics events; this one is about robotics"]])


class NextStepsOut(BaseModel):
    participant_id: str
    as_of: date
    model: str = Field(..., description="name and version of the model that ranked, or the fallback")
    items: list[NextStepOut]


class ModelStatus(BaseModel):
    name: str
    version: str | None
    kind: str
    loaded: bool


class HealthOut(BaseModel):
    status: str = Field(..., examples=["ok", "degraded"])
    degraded: bool
    reasons: list[str]
    models: list[ModelStatus]
    participants: int
    events: int


class TrajectoryStepOut(BaseModel):
    event_id: str
    title: str
    start_date: date
    level: str
    format: str
    p_qualify: float = Field(..., description="chance of a finalist-or-better result at this step")
    counts_for_goal: bool
    reason: str


class TrajectoryOut(BaseModel):
    participant_id: str
    goal: str = Field(..., examples=["level:national", "competence:robotics:regional", "program:PRG001"])
    as_of: date
    probability: float = Field(..., description="chance of reaching the goal by following the plan")
    steps: list[TrajectoryStepOut]
