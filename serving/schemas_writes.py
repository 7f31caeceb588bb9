"""Request and response schemas of the API v1 writes: achievements, feedback and long jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# Items per POST: a front end batches a few hundred; bigger loads go through `trajectory ingest`.
MAX_ITEMS: Final = 10_000


class AchievementIn(BaseModel):
    """One achievement in AIF v1 fields (a registration is an achievement with result `registered`).

    Values are checked by the AIF rules item by item, so one bad item is rejected with its reason and
    the others are still taken; unknown fields are kept as `extra`.
    """

    model_config = ConfigDict(extra="allow")

    participant_id: Any = Field(None, description="required", examples=["P000123"])
    event_id: Any = Field(None, description="required", examples=["E2025-ROBO-REG"])
    role: Any = Field(None, description="required: participant, captain, author, ...", examples=["participant"])
    result: Any = Field(None, description="required: registered, participant, ..., winner, dropped",
                        examples=["registered"])
    date: Any = Field(None, description="required, YYYY-MM-DD, not after today", examples=["2025-01-10"])
    achievement_id: Any = Field(None, description="the source's id: posting it again changes nothing")
    score: Any = None
    rank: Any = Field(None, description="1-based")
    team_id: Any = None
    verified: Any = None


class RejectedItemOut(BaseModel):
    index: int = Field(..., description="position of the item in the posted list (0-based)")
    field: str | None
    reason: str


class WriteOut(BaseModel):
    """What became of the posted items: `accepted + duplicates + rejected` is the number posted."""

    accepted: int = Field(..., description="stored now")
    duplicates: int = Field(..., description="already stored (same id or natural key); nothing changed")
    rejected: int = Field(..., description="not valid; quarantined with the reason")
    rejected_items: list[RejectedItemOut]


class AchievementsWriteOut(WriteOut):
    """What became of the posted achievements: `accepted` counts the items stored now, as new rows (`stored`)
    or as changes to a stored row of the same participant, event and role (`updated`, e.g. registered ->
    winner: a known value replaces the stored one). An item that would change nothing is a duplicate,
    and so is a registration posted after that achievement's result."""

    accepted: int = Field(..., description="stored now: `stored + updated`")
    duplicates: int = Field(..., description="already stored as posted (same id or natural key, nothing new), or "
                                             "a registration posted after the result; nothing changed")
    stored: int = Field(0, description="new achievements stored")
    updated: int = Field(0, description="stored achievements whose values the item changed (e.g. a result upgrade)")


class FeedbackIn(BaseModel):
    """What a participant did with a suggestion: saw it, clicked it, registered through it."""

    model_config = ConfigDict(extra="forbid")

    feedback_id: str = Field(..., min_length=1, max_length=200, description="the client's id: posting it again "
                                                                              "changes nothing")
    participant_id: str = Field(..., min_length=1, max_length=200)
    event_id: str | None = Field(None, max_length=200)
    kind: Literal["impression", "click", "registration"]
    position: int | None = Field(None, ge=1, le=10_000, description="rank at which the event was shown")
    model: str | None = Field(None, max_length=200, description="the `model` field of the answer shown")
    request_id: str | None = Field(None, max_length=200, description="the X-Request-ID of the answer shown")
    occurred_at: datetime | None = Field(None, description="when it happened (ISO 8601); default: when received")


class TeamFormationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    participant_ids: list[str] | None = Field(
        None, max_length=100_000, description="who to split into teams; default: the event's registrants"
    )
    groups: list[str | None] | None = Field(
        None, description="one entry per participant: people with the same group are kept together"
    )


JobKind = Literal["mentor_assignment", "team_formation"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobAcceptedOut(BaseModel):
    job_id: str
    kind: JobKind
    event_id: str
    status: JobStatus
    status_url: str = Field(..., examples=["/v1/jobs/job_3f2a..."])


class JobOut(BaseModel):
    job_id: str
    kind: JobKind
    event_id: str | None
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(None, description="set when succeeded")
    error: str | None = Field(None, description="set when failed")
