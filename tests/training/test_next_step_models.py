"""The contract every next-step model passes (fit returns self, rules, k, determinism, save/load)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.eligibility import eligibility_mask, open_events
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender, _strings
from tests.tiny import tiny_tables
from training.als import AlsConfig, AlsRecommender
from training.bpr import BprConfig, BprRecommender
from training.content import ContentRecommender
from training.item_knn import ItemKnnConfig, ItemKnnRecommender
from training.popularity import PopularityRecommender, _regions_of
from training.sequential import SequentialConfig, SequentialRecommender

AS_OF = "2025-01-10"
MODELS = [
    lambda: PopularityRecommender(),
    lambda: AlsRecommender(AlsConfig(factors=4, iterations=3, seed=1)),
    lambda: BprRecommender(BprConfig(factors=4, iterations=5, seed=1)),
    lambda: ItemKnnRecommender(ItemKnnConfig(neighbours=3)),
    lambda: ItemKnnRecommender(ItemKnnConfig(weighting="bm25")),
    lambda: ContentRecommender(),
    lambda: SequentialRecommender(SequentialConfig(d_model=8, epochs=2, negatives=4, seed=1)),
]


@pytest.fixture(params=MODELS, ids=["popularity", "als", "bpr", "item_knn", "item_knn_bm25", "content", "sequential"])
def model(request: pytest.FixtureRequest) -> EventRecommender:
    return request.param()


@pytest.fixture
def graph() -> AchievementsGraph:
    return AchievementsGraph.from_tables(tiny_tables())


def test_fit_returns_self(model: EventRecommender, graph: AchievementsGraph) -> None:
    assert model.fit(graph.as_of(AS_OF)) is model


def test_only_eligible_events_and_k_respected(model: EventRecommender, graph: AchievementsGraph) -> None:
    past = graph.as_of(AS_OF)
    model.fit(past)
    recs = model.recommend(["p1", "p2", "p3", "p4", "nobody"], 2, as_of=AS_OF)
    assert set(recs.columns) == {"participant_id", "event_id", "score", "rank"}
    assert recs.groupby("participant_id").size().max() <= 2
    assert "nobody" not in set(recs["participant_id"])
    events = open_events(past, AS_OF)
    for pid, rows in recs.groupby("participant_id"):
        mask = eligibility_mask(past, AS_OF, past.participant_positions([pid]), events)[0]
        allowed = set(past.event_index[events][mask])
        assert set(rows["event_id"]) <= allowed
        assert list(rows["rank"]) == list(range(1, len(rows) + 1))
        assert rows["score"].is_monotonic_decreasing
    # p1 is the only one qualified for the regional final: it must be among p1's options only.
    assert "e_reg_final" not in set(recs.loc[recs["participant_id"] != "p1", "event_id"])


def test_no_leakage_through_a_later_graph(model: EventRecommender, graph: AchievementsGraph) -> None:
    model.fit(graph.as_of(AS_OF))
    # Given the full graph, a model must see only what was known at as_of: the answer equals the one
    # computed on the graph cut at that date.
    a = model.recommend(["p1", "p2", "p3"], 3, as_of=AS_OF, graph=graph)
    b = model.recommend(["p1", "p2", "p3"], 3, as_of=AS_OF, graph=graph.as_of(AS_OF))
    pd.testing.assert_frame_equal(a, b)


def test_deterministic_and_save_load_round_trip(model: EventRecommender, graph: AchievementsGraph,
                                                tmp_path: Path) -> None:
    past = graph.as_of(AS_OF)
    first = model.fit(past).recommend(["p1", "p2", "p3"], 3, as_of=AS_OF)
    again = type(model)(model.config).fit(past).recommend(["p1", "p2", "p3"], 3, as_of=AS_OF)  # type: ignore[call-arg,attr-defined]
    pd.testing.assert_frame_equal(first, again)
    model.save(tmp_path / "m.pkl")
    loaded = EventRecommender.load(tmp_path / "m.pkl")
    pd.testing.assert_frame_equal(first, loaded.recommend(["p1", "p2", "p3"], 3, as_of=AS_OF, graph=past))


def test_rejects_bad_k(model: EventRecommender, graph: AchievementsGraph) -> None:
    model.fit(graph.as_of(AS_OF))
    with pytest.raises(ValueError, match="k must be"):
        model.recommend(["p1"], 0, as_of=AS_OF)


def test_scores_are_finite(model: EventRecommender, graph: AchievementsGraph) -> None:
    model.fit(graph.as_of(AS_OF))
    recs = model.recommend(["p1", "p2", "p3", "p4"], 5, as_of=AS_OF)
    assert np.isfinite(recs["score"]).all()


def test_popularity_reads_regions_alike_for_a_request_and_a_batch(graph: AchievementsGraph) -> None:
    # A request reads its participants' regions one by one, a batch takes them at once; an unknown region is "?".
    everyone = np.arange(graph.n_participants)
    one_by_one = [str(_regions_of(graph, np.asarray([p]))[0]) for p in everyone]
    batch = _regions_of(graph, np.tile(everyone, 5))  # more than a request's few
    assert list(batch) == one_by_one * 5
    assert one_by_one[graph.participant_positions(["p4"])[0]] == "?"
    assert one_by_one[graph.participant_positions(["p1"])[0]] == "77"


def test_the_id_columns_are_the_strings_pandas_would_make() -> None:
    for values in (["p1", "p2"], ["p1", 7], []):
        built = _strings(np.asarray(values, dtype=object))
        expected = pd.array(np.asarray(values, dtype=object), dtype="string")
        pd.testing.assert_extension_array_equal(built, expected)
