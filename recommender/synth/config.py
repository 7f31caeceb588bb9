"""Configuration of a synthetic world: size, seed, calendar and the scale knobs derived from the size."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class SynthConfig(BaseModel):
    """One config -> one world. Knobs left as None are derived from `participants`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participants: int = Field(10_000, ge=10)
    seed: int = Field(0, ge=0)
    start_year: int = Field(2022, ge=2000, le=2100)  # first academic year (September)
    seasons: int = Field(3, ge=1, le=10)
    events_per_season: int | None = Field(None, ge=20)
    mentors: int | None = Field(None, ge=5)
    programs: int = Field(30, ge=1)
    # The export date: May 1st of the last season, so summer camps and late courses are still upcoming.
    end_month: int = Field(5, ge=1, le=8)
    mean_events_per_season: float = Field(1.8, gt=0)  # expected registrations a season (median about 1)
    activity_sigma: float = Field(1.15, gt=0)  # lognormal spread: the long tail of very active people
    chunk_cells: int = Field(6_000_000, ge=10_000)  # participants x candidates per utility block

    @property
    def n_events_per_season(self) -> int:
        return self.events_per_season or max(150, self.participants // 50)

    @property
    def n_mentors(self) -> int:
        return self.mentors or max(20, self.participants // 20)

    @property
    def start_date(self) -> date:
        return date(self.start_year, 9, 1)

    @property
    def end_date(self) -> date:
        """The world's export date (the manifest's exported_at): nothing after it is observed."""
        return date(self.start_year + self.seasons, self.end_month, 1)
