"""A small seeded synthetic world with fitted side models, and serving states over it, for the people API tests."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from features.competence.estimator import CompetenceRatings
from recommender.aif.reader import read_dataset
from recommender.columns import IDENTITY_FIELDS, Columns
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from serving.loaded_model import LoadedModel
from serving.side_models import COMPETENCE_MODEL, MENTOR_MODEL, SideModels, build_side_models, formation_skills
from serving.state import ServingState
from training.mentors import MentorModel
from training.popularity import PopularityRecommender
from training.teams import TEAM_MODEL, TeamSuccessModel, historical_teams

SEED = 4
PARTICIPANTS = 600


@dataclass(frozen=True)
class World:
    tables: dict[str, pd.DataFrame]  # AIF tables without identity fields (graph input)
    identities: pd.DataFrame  # names, birth dates and e-mails: what no answer may contain
    as_of: pd.Timestamp  # the export date: the service's "today"


@lru_cache(maxsize=1)
def world() -> World:
    with tempfile.TemporaryDirectory() as tmp:
        generate_world(SynthConfig(participants=PARTICIPANTS, seed=SEED), Path(tmp))
        dataset = read_dataset(Path(tmp) / "aif")
    tables = {name: frame.copy() for name, frame in dataset.tables.items()}
    parts = tables["participants"]
    identities = parts[[Columns.Participant, *[c for c in IDENTITY_FIELDS if c in parts.columns]]].copy()
    as_of = pd.Timestamp(str(dataset.manifest["exported_at"])[:10])
    parts["grade_date"] = as_of
    return World(tables, identities, as_of)


def graph_of(tables: dict[str, pd.DataFrame]) -> AchievementsGraph:
    return AchievementsGraph.from_tables(tables)


def fitted_side(graph: AchievementsGraph, as_of: pd.Timestamp, *, team_model: bool = True) -> SideModels:
    """Side models fitted on the graph, as if loaded from the registry (versions set)."""
    ratings = CompetenceRatings().fit(graph)
    competence = LoadedModel(COMPETENCE_MODEL, "competence_ratings", f"{COMPETENCE_MODEL}:competence_ratings",
                             ratings, "run-test")
    mentors = LoadedModel(MENTOR_MODEL, "mentor_effects", f"{MENTOR_MODEL}:mentor_effects",
                          MentorModel().fit(graph), "run-test")
    team = None
    if team_model:
        features, target = historical_teams(graph, formation_skills(ratings))
        team = LoadedModel(TEAM_MODEL, "lightgbm", f"{TEAM_MODEL}:lightgbm", TeamSuccessModel().fit(features, target),
                           "1")
    return build_side_models(graph, as_of, competence, mentors, team)


@lru_cache(maxsize=1)
def default_side() -> SideModels:
    w = world()
    return fitted_side(graph_of(w.tables), w.as_of)


def state_over(side: SideModels | None, graph: AchievementsGraph | None = None) -> ServingState:
    """A fresh serving state (its own degraded reasons, no store yet) over shared side models."""
    g = graph if graph is not None else (side.graph if side is not None else graph_of(world().tables))
    state = ServingState(g, PopularityRecommender().fit(g), "next-steps:popularity", "1", [], world().as_of.date())
    state.side = side
    if side is not None:
        state.other_models.extend(side.loaded())
        state.degraded_reasons.extend(side.reasons())
    return state


def _strings(payload: Any) -> list[str]:
    if isinstance(payload, dict):
        return [*payload.keys(), *(s for v in payload.values() for s in _strings(v))]
    if isinstance(payload, list):
        return [s for v in payload for s in _strings(v)]
    return [payload] if isinstance(payload, str) else []


def assert_no_identity(payload: Any) -> None:
    """No name, birth date or e-mail of any participant of the world is a value (or a key) in `payload`, and
    no e-mail or birth date appears inside any text of it."""
    ids = world().identities
    names = {str(v) for c in ("last_name", "first_name", "middle_name") if c in ids.columns for v in ids[c].dropna()}
    contained = {str(v) for v in ids["email"].dropna()} | {str(v)[:10] for v in ids["birth_date"].dropna()}
    for text in _strings(payload):
        assert text not in names, "a name leaked"
        assert not any(value in text for value in contained), "an e-mail or birth date leaked"
