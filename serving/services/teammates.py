"""Ranked teammates for a participant at a team event, with the predicted success of each pair."""

from __future__ import annotations

import numpy as np

from features.team_features import pair_feature_frame
from serving.errors import ApiError
from serving.schemas_people import TeammateOut, TeammatesOut
from serving.services.people import participant_position, require_side, unavailable
from serving.side_models import SideModels
from serving.state import ServingState
from training.teams import TeamSuccessModel, rank_teammates, teamwork_column


def teammates(state: ServingState, participant_id: str, event_id: str, k: int) -> TeammatesOut:
    """The event's registrants who would make the best teammates for the participant, best first."""
    side = require_side(state)
    skills = side.skills
    if skills is None:
        raise unavailable("teammate rankings", side.why("competence"))
    position = participant_position(side, participant_id)
    event = int(side.graph.event_index.get_indexer([event_id])[0])
    if event < 0:
        raise ApiError(404, "event_not_found", f"event {event_id!r} is not known")
    if not side.team_events[event]:
        raise ApiError(422, "not_a_team_event", f"event {event_id!r} is not taken part in as a team")
    pool = side.registrants.get(event_id, [])
    ranked = rank_teammates(side.graph, participant_id, event_id, skills, candidates=pool, k=k,
                            context=side.teammates)
    ids = [str(p) for p in ranked["participant_id"]]
    loaded = side.team_success
    success: list[float | None] = [None] * len(ids)
    if loaded is not None and ids:
        success = [round(float(v), 4) for v in pair_success(side, loaded.model, position, event, ids)]
    items = [
        TeammateOut(participant_id=pid, score=float(score), rank=int(rank), predicted_success=p,
                    reasons=[r[:1].upper() + r[1:] for r in reasons])
        for pid, score, rank, reasons, p in zip(ids, ranked["score"], ranked["rank"], ranked["reasons"], success,
                                                strict=True)
    ]
    return TeammatesOut(
        participant_id=participant_id, event_id=event_id, as_of=side.as_of.date(),
        candidates=len([p for p in pool if p != participant_id]),
        model=loaded.tagged_label if loaded is not None else "none", items=items,
    )


def pair_success(side: SideModels, model: TeamSuccessModel, position: int, event: int,
                 partner_ids: list[str]) -> np.ndarray:
    """Predicted result percentile (0-1) of the participant and each partner as a team of two at the event."""
    assert side.skills is not None
    partners = side.graph.participant_positions(partner_ids)
    ctx = side.teammates
    school = ctx.school
    features = pair_feature_frame(
        side.skills[position], side.skills[partners], ctx.need[event], teamwork_col=teamwork_column(side.graph),
        same_school=(school[partners] == school[position]) & (school[position] >= 0),
        former_teammates=np.array([(min(position, int(c)), max(position, int(c))) in ctx.ties for c in partners],
                                  dtype=bool),
    )
    return np.clip(model.predict(features), 0.0, 1.0)
