"""What the people services share: the state's side models, participant look-up, readable competence names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from serving.errors import ApiError
from serving.state import ServingState

if TYPE_CHECKING:
    from serving.side_models import SideModels


def unavailable(what: str, why: str) -> ApiError:
    return ApiError(503, "model_unavailable", f"{what} are unavailable: {why}")


def require_side(state: ServingState) -> SideModels:
    side = state.side
    if side is None:
        raise unavailable("profiles, mentors, teammates and admissions scores", "their models did not load")
    return side


def participant_position(side: SideModels, participant_id: str) -> int:
    """The participant's position in the side models' graph; 404 when unknown."""
    position = int(side.graph.participant_positions([participant_id])[0])
    if position < 0:
        raise ApiError(404, "participant_not_found", f"participant {participant_id!r} is not known")
    return position


def competence_names(graph: AchievementsGraph) -> list[str]:
    """English name of each competence (by position); the id when the taxonomy has no name."""
    comp = graph.competences
    ids = comp[Columns.Competence].astype(str)
    names = comp["name_en"].astype("string").fillna(ids) if "name_en" in comp.columns else ids
    return [str(n) for n in names]
