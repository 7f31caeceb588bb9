"""Request and response schemas of the people resources: profiles, mentors, teammates, admissions scores."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

# A partner's batch: enough for a program's applicants, small enough to answer in one request.
MAX_SCORED_PARTICIPANTS = 1000


class ContributingAchievementOut(BaseModel):
    event_id: str = Field(..., examples=["E000396"])
    title: str = Field(..., examples=["Regional robotics olympiad 2024"])
    date: date
    result: str = Field(..., examples=["finalist"])
    contribution: float = Field(..., description="how much this verified result raised the skill")


class SkillPointOut(BaseModel):
    date: date
    skill: float
    skill_sd: float


class CompetenceOut(BaseModel):
    competence_id: str = Field(..., examples=["robotics"])
    name: str = Field(..., examples=["Robotics"])
    skill: float = Field(..., description="estimated skill (0 = a typical newcomer; higher is stronger)")
    skill_sd: float = Field(..., description="uncertainty of the estimate (standard deviation)")
    interval_90: tuple[float, float] = Field(..., description="90% interval of the skill")
    percentile: float = Field(..., description="percentile among rated participants of the same grade (0-100)",
                              examples=[82.5])
    level: str | None = Field(None, description="highest event level with a result in this competence",
                              examples=["regional"])
    evidence: float = Field(..., description="amount of evidence: summed competence shares of rated results")
    top_achievements: list[ContributingAchievementOut] = Field(
        ..., description="the verified achievements that raised this skill most")
    history: list[SkillPointOut] = Field(..., description="the skill after each rated result, oldest first")


class ProfileOut(BaseModel):
    participant_id: str = Field(..., examples=["P0000472"])
    as_of: date
    grade: int | None = Field(None, description="the school grade whose peers the percentiles compare with")
    model: str = Field(..., description="the competence model that estimated the profile",
                       examples=["competence-profiles:competence_ratings@run-3f2a9c1b"])
    competences: list[CompetenceOut] = Field(..., description="rated competences, strongest first")


class MentorOut(BaseModel):
    mentor_id: str = Field(..., examples=["M00017"])
    score: float = Field(..., description="expected benefit of this mentor")
    rank: int
    region_code: str | None = Field(None, examples=["52"])
    online: bool
    free_places: int = Field(..., description="teams the mentor can still take")
    tech_leader: bool
    organization_type: str = Field(..., examples=["company"])
    competences: list[str] = Field(..., description="the mentor's competences, main first", examples=[["robotics"]])
    reasons: list[str] = Field(..., examples=[["knows robotics and iot, which this needs", "works in your region"]])


class MentorsOut(BaseModel):
    participant_id: str | None = Field(None, description="set when mentors were ranked for a participant")
    team_id: str | None = Field(None, description="set when mentors were ranked for a team")
    as_of: date
    model: str = Field(..., examples=["mentors:mentor_effects@run-1c9e2d07"])
    items: list[MentorOut]


class TeammateOut(BaseModel):
    participant_id: str = Field(..., examples=["P0000253"])
    score: float
    rank: int
    predicted_success: float | None = Field(
        None, description="predicted result percentile (0-1, 1 = first) of the two of you as a team; "
                          "empty when the team-success model is unavailable")
    reasons: list[str] = Field(..., examples=[["stronger in gamedev, which this event needs", "from your school"]])


class TeammatesOut(BaseModel):
    participant_id: str
    event_id: str
    as_of: date
    candidates: int = Field(..., description="registrants of the event the teammates were chosen from")
    model: str = Field(..., description="the team-success model that predicted success, or none",
                       examples=["team-success:lightgbm@3"])
    items: list[TeammateOut]


class ProgramScoresIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"participant_ids": ["P0000001",
                                                                                                 "P0000002"]}]})

    participant_ids: list[str] = Field(..., min_length=1, max_length=MAX_SCORED_PARTICIPANTS)


class ParticipantScoreOut(BaseModel):
    participant_id: str
    score: float = Field(..., description="weighted standardized skill in the program's competences")
    score_low: float = Field(..., description="lower end of the 90% interval")
    score_high: float = Field(..., description="upper end of the 90% interval")
    percentile: float = Field(..., description="percentile among consenting participants with evidence (0-100)")
    requirements_met: list[str] = Field(..., examples=[["iot", "aerospace"]])
    requirements_missing: list[str] = Field(..., examples=[["energy"]])
    all_requirements_met: bool
    achievements: list[str] = Field(..., description="events of the verified achievements behind the score",
                                    examples=[["E000763", "E000627"]])


class ProgramScoresOut(BaseModel):
    program_id: str = Field(..., examples=["PRG000"])
    as_of: date
    model: str
    scored: list[ParticipantScoreOut] = Field(..., description="participants who consented to admissions sharing")
    not_consented: list[str] = Field(..., description="known participants who did not consent: never scored")
    unknown: list[str] = Field(..., description="ids the service does not know")
