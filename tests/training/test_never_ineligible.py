"""Property: no model ever returns an event the rules forbid, for any participant and date."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.eligibility import eligibility_mask, open_events
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.als import AlsConfig, AlsRecommender
from training.baselines import RandomRecommender
from training.popularity import PopularityRecommender
from training.reranker import RerankerConfig, RerankerRecommender


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[AchievementsGraph, list[EventRecommender]]:
    out: Path = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=800, seed=21), out)
    graph = AchievementsGraph.from_aif(out / "aif")
    past = graph.as_of("2024-09-01")
    models: list[EventRecommender] = [
        RandomRecommender(), PopularityRecommender(), AlsRecommender(AlsConfig(factors=8, iterations=4)),
        RerankerRecommender(RerankerConfig(cuts=2, n_estimators=20, groups_per_cut=300)),
    ]
    return graph, [m.fit(past) for m in models]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_ineligible_event_in_any_output(fitted: tuple[AchievementsGraph, list[EventRecommender]],
                                           data: st.DataObject) -> None:
    graph, models = fitted
    day = data.draw(st.integers(min_value=0, max_value=600), label="days after 2023-09-01")
    as_of = pd.Timestamp("2023-09-01") + pd.Timedelta(days=day)
    people = data.draw(st.lists(st.integers(0, graph.n_participants - 1), min_size=1, max_size=6, unique=True))
    ids = [str(graph.participant_index[i]) for i in people]
    model = data.draw(st.sampled_from(models), label="model")
    horizon = data.draw(st.sampled_from([None, 30, 120]), label="horizon")
    from recommender.eligibility import EventFilters

    filters = EventFilters(horizon_days=horizon)
    recs = model.recommend(ids, 10, as_of=as_of, filters=filters, graph=graph)
    past = graph.as_of(as_of)
    events = open_events(past, as_of, filters)
    for pid, rows in recs.groupby("participant_id"):
        allowed = eligibility_mask(past, as_of, past.participant_positions([pid]), events)[0]
        assert set(rows["event_id"].astype(str)) <= set(past.event_index[events][allowed])
        # The rules again, written out independently of the eligibility module.
        ev = past.events.set_index(past.events["event_id"].astype(str)).loc[rows["event_id"].astype(str)]
        assert (ev["start_date"] > as_of).all()
        assert (ev["registration_deadline"].isna() | (ev["registration_deadline"] >= as_of)).all()
        assert (ev["registration_opens"].isna() | (ev["registration_opens"] <= as_of)).all()
        me = past.participants.set_index(past.participants["participant_id"].astype(str)).loc[pid]
        grade = past.grades_at(as_of)[past.participant_positions([pid])[0]]
        assert ((ev["min_grade"].isna()) | (ev["min_grade"] <= grade)).all()
        assert ((ev["max_grade"].isna()) | (ev["max_grade"] >= grade)).all()
        offline = ev["online"].fillna(False).eq(False) & ev["region_code"].notna()
        assert (ev.loc[offline, "region_code"] == me["region_code"]).all()
        taken = set(past.achievements.loc[past.achievements["participant_id"] == pid, "event_id"].astype(str))
        assert not taken & set(ev.index)
