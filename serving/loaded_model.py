"""One model the service holds, with where it came from: immutable, so replacing it is one assignment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoadedModel:
    """A model and its registry coordinates. Requests read the state's reference once, so they never see a
    model of one version with the label of another."""

    name: str  # the role and registered model name, e.g. "next-steps"
    kind: str  # the model's own name, e.g. "als" or "popularity_region_grade"
    label: str  # what answers carry in their `model` field, e.g. "next-steps:als"
    model: Any = field(repr=False, compare=False)
    version: str | None = None  # registry version; None for a fallback built at start-up
    alias: str | None = None  # the registry alias it was loaded by, e.g. "champion"
    run_id: str | None = None  # the MLflow run that produced it, when known
    loaded_at: datetime = field(default_factory=_now)

    @property
    def fallback(self) -> bool:
        return self.version is None

    @property
    def tagged_label(self) -> str:
        """The label with the version: `next-steps:als@4`, or the bare label of a fallback."""
        return self.label + (f"@{self.version}" if self.version else "")
