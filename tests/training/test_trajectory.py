"""Trajectories on a small world: dated, non-overlapping, stages after their previous stage, rules kept."""

from pathlib import Path

import pandas as pd
import pytest

from recommender.eligibility import eligibility_mask
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.popularity import PopularityRecommender
from training.trajectory import GoalError, plan_trajectory

CUT = pd.Timestamp("2024-09-01")


@pytest.fixture(scope="module")
def past(tmp_path_factory: pytest.TempPathFactory) -> AchievementsGraph:
    out: Path = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=1500, seed=4), out)
    return AchievementsGraph.from_aif(out / "aif").as_of(CUT)


@pytest.mark.parametrize("goal", ["level:national", "competence:informatics:regional", "program:PRG000"])
def test_plans_are_dated_ordered_and_allowed(past: AchievementsGraph, goal: str) -> None:
    model = PopularityRecommender().fit(past)
    people = past.achievements["participant_id"].value_counts().index[:15]
    planned = 0
    for pid in people:
        plan = plan_trajectory(past, model, str(pid), goal, as_of=CUT, horizon_days=270)
        assert 0.0 <= plan.probability <= 1.0
        starts = [s.start_date for s in plan.steps]
        assert starts == sorted(starts) and all(CUT < d <= CUT + pd.Timedelta(days=270) for d in starts)
        ids = [s.event_id for s in plan.steps]
        ev = past.events.set_index(past.events["event_id"].astype(str))
        me = past.participant_positions([str(pid)])
        qualified = set(past.event_index[past.qualified()[me[0]].toarray().ravel() > 0])
        for i, event_id in enumerate(ids):
            parent = ev.loc[event_id, "parent_event_id"]
            if isinstance(parent, str) and parent not in qualified:
                assert parent in ids[:i], "a stage is planned only after its previous stage"
            pos = past.event_index.get_indexer([event_id])
            assert eligibility_mask(past, CUT, me, pos, check_stage=False)[0, 0]
        ends = [ev.loc[e, "end_date"] if pd.notna(ev.loc[e, "end_date"]) else ev.loc[e, "start_date"] for e in ids]
        assert all(ends[i] < starts[i + 1] for i in range(len(ids) - 1)), "one event at a time"
        planned += bool(ids)
    assert planned >= 10


def test_goal_probability_grows_with_a_longer_horizon(past: AchievementsGraph) -> None:
    model = PopularityRecommender().fit(past)
    pid = str(past.achievements["participant_id"].value_counts().index[0])
    short = plan_trajectory(past, model, pid, "level:regional", as_of=CUT, horizon_days=60)
    long = plan_trajectory(past, model, pid, "level:regional", as_of=CUT, horizon_days=300)
    assert long.probability >= short.probability


def test_unknown_goal(past: AchievementsGraph) -> None:
    with pytest.raises(GoalError):
        plan_trajectory(past, PopularityRecommender().fit(past), "x", "competence:cooking", as_of=CUT)
