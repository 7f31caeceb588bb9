"""Response schemas of the model resources: what the service holds and what a reload did."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ModelOut(BaseModel):
    name: str = Field(..., description="role and registered model name", examples=["next-steps"])
    kind: str = Field(..., description="the model's own name", examples=["als", "popularity_region_grade"])
    label: str = Field(..., description="what answers carry in their `model` field", examples=["next-steps:als@4"])
    version: str | None = Field(None, description="registry version; empty for a fallback built at start-up")
    alias: str | None = Field(None, description="the registry alias it was loaded by", examples=["champion"])
    fallback: bool = Field(..., description="a simpler ranker serving because no registered model could")
    run_id: str | None = Field(None, description="the MLflow run that produced it, when known")
    loaded_at: datetime


class ModelsOut(BaseModel):
    models: list[ModelOut]


class ReloadOut(BaseModel):
    outcome: Literal["unchanged", "swapped", "broken", "no_champion", "registry_unavailable"] = Field(
        ..., description="swapped: a new champion serves now; broken: it failed to load or rank and was not swapped in"
    )
    champion_version: str | None = Field(None, description="the version the registry's champion alias points at")
    serving: ModelOut = Field(..., description="the next-steps model answering after the check")
    degraded: bool
    reasons: list[str]
