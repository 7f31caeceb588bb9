"""A participant's plan toward a goal, as the API answers it."""

from __future__ import annotations

from serving.schemas import TrajectoryOut, TrajectoryStepOut
from serving.services.next_steps import UnknownParticipant
from serving.state import ServingState
from training.trajectory import plan_trajectory


def trajectory(state: ServingState, participant_id: str, goal: str, horizon_days: int) -> TrajectoryOut:
    if int(state.graph.participant_positions([participant_id])[0]) < 0:
        raise UnknownParticipant(participant_id)
    today = state.today()
    plan = plan_trajectory(state.graph, state.next_steps.model, participant_id, goal, as_of=today,
                           horizon_days=horizon_days)
    return TrajectoryOut(
        participant_id=participant_id, goal=goal, as_of=today.date(), probability=plan.probability,
        steps=[TrajectoryStepOut(event_id=s.event_id, title=s.title, start_date=s.start_date.date(), level=s.level,
                                 format=s.format, p_qualify=s.p_qualify, counts_for_goal=s.counts_for_goal,
                                 reason=s.reason) for s in plan.steps],
    )
