"""Ranked mentors for a participant or a team, from the loaded mentor model and today's free places."""

from __future__ import annotations

import pandas as pd

from recommender.columns import Columns
from serving.errors import ApiError
from serving.schemas_people import MentorOut, MentorsOut
from serving.services.people import participant_position, require_side, unavailable
from serving.side_models import SideModels
from serving.state import ServingState
from training.mentors import MentorModel, rank_mentors


def _model(side: SideModels) -> tuple[MentorModel, str] | None:
    """The mentor model and its label; None when the data holds no mentors (an empty answer, not an error)."""
    if side.mentors is None or side.free_places is None or side.mentor_cards is None:
        if not len(side.graph.mentors) and "mentors" not in side.problems:
            return None
        raise unavailable("mentor rankings", side.why("mentors"))
    return side.mentors.model, side.mentors.tagged_label


def participant_mentors(state: ServingState, participant_id: str, k: int) -> MentorsOut:
    """Mentors who fit the participant's competences, can reach them and have a free place, best first."""
    side = require_side(state)
    loaded = _model(side)
    participant_position(side, participant_id)
    if loaded is None:
        return MentorsOut(participant_id=participant_id, as_of=side.as_of.date(), model="none", items=[])
    model, label = loaded
    ranked = rank_mentors(model, side.graph, participant_id=participant_id, k=k, capacity_left=side.free_places)
    return MentorsOut(participant_id=participant_id, as_of=side.as_of.date(), model=label,
                      items=_items(side, ranked))


def team_mentors(state: ServingState, team_id: str, k: int) -> MentorsOut:
    """Mentors who fit the team's event, can reach the team and have a free place, best first."""
    side = require_side(state)
    loaded = _model(side)
    row = side.teams.index[side.teams[Columns.Team] == team_id]
    if not len(row):
        raise ApiError(404, "team_not_found", f"team {team_id!r} is not known")
    if int(side.teams.at[row[0], "event_idx"]) < 0:
        raise ApiError(422, "team_event_unknown", f"team {team_id!r} refers to an event the service does not know")
    if loaded is None:
        return MentorsOut(team_id=team_id, as_of=side.as_of.date(), model="none", items=[])
    model, label = loaded
    ranked = rank_mentors(model, side.graph, team_id=team_id, k=k, capacity_left=side.free_places, teams=side.teams)
    return MentorsOut(team_id=team_id, as_of=side.as_of.date(), model=label, items=_items(side, ranked))


def _items(side: SideModels, ranked: pd.DataFrame) -> list[MentorOut]:
    cards, free = side.mentor_cards, side.free_places
    assert cards is not None and free is not None
    items = []
    for mentor_id, score, rank, reasons in zip(ranked[Columns.Mentor], ranked[Columns.Score], ranked[Columns.Rank],
                                               ranked["reasons"], strict=True):
        j = int(side.mentor_positions.get_loc(str(mentor_id)))
        items.append(MentorOut(
            mentor_id=str(mentor_id), score=float(score), rank=int(rank), region_code=cards.region[j],
            online=bool(cards.online[j]), free_places=int(free[j]), tech_leader=bool(cards.tech_leader[j]),
            organization_type=str(cards.organization_type[j]), competences=cards.competences[j],
            reasons=[_sentence(r) for r in reasons],
        ))
    return items


def _sentence(reason: str) -> str:
    return reason[:1].upper() + reason[1:]
