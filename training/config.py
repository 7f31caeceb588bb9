"""The training configuration: one YAML file, one MLflow run; hyperparameters defined once here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from training.als import AlsConfig
from training.popularity import PopularityConfig
from training.reranker import RerankerConfig


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    popularity: PopularityConfig = Field(default_factory=PopularityConfig)
    als: AlsConfig = Field(default_factory=AlsConfig)
    reranker: RerankerConfig = Field(default_factory=RerankerConfig)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str = "trajectory"
    run_name: str | None = None
    horizon_days: int = Field(90, ge=1, description="evaluation window after the temporal cut")
    cut: str | None = Field(None, description="ISO date of the holdout cut; default: latest date - horizon")
    k: int = Field(10, ge=1)
    eval_participants: int | None = Field(20000, ge=1, description="participants sampled for the holdout")
    seed: int = 0
    models: ModelsConfig = Field(default_factory=ModelsConfig)

    @classmethod
    def from_yaml(cls, path: Path | None) -> TrainConfig:
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(raw)


def flatten(config: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat MLflow params (`models.als.factors`)."""
    out: dict[str, Any] = {}
    for key, value in config:
        name = f"{prefix}{key}"
        if isinstance(value, BaseModel):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
