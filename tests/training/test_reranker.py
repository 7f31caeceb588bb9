"""The LambdaRank pipeline on a small synthetic world: beats its baselines, explains its scores."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.ranking import FEATURES
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.evaluation import evaluate, temporal_split
from training.popularity import PopularityRecommender
from training.reranker import RerankerConfig, RerankerRecommender, training_cuts

CUT = "2024-11-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AchievementsGraph:
    out = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=3000, seed=5), out)
    return AchievementsGraph.from_aif(out / "aif")


def _small() -> RerankerConfig:
    return RerankerConfig(cuts=8, n_estimators=100, groups_per_cut=3000, min_child_samples=20,
                          generators=["content_match"])


def test_beats_popularity_per_region_and_grade(world: AchievementsGraph) -> None:
    split = temporal_split(world, CUT, 90)
    ranked = evaluate(RerankerRecommender(_small()), split, 10)
    baseline = evaluate(PopularityRecommender(), split, 10)
    assert ranked["participants"] > 100
    # A small world has few events a season, where popularity is hard to beat; the margin grows with
    # size (see the closing figures of experiments on 100,000 participants).
    assert ranked["ndcg@10"] > baseline["ndcg@10"]


def test_score_drivers_name_features_and_survive_pickling(world: AchievementsGraph, tmp_path: Path) -> None:
    past = world.as_of(CUT)
    model = RerankerRecommender(_small()).fit(past)
    pid = past.achievements["participant_id"].value_counts().index[0]
    recs = model.recommend([pid], 5, as_of=CUT)
    assert len(recs)
    events = past.event_index.get_indexer(recs["event_id"].astype(str))
    drivers = model.score_drivers(past, int(past.participant_positions([pid])[0]), events, past.cutoff)
    assert len(drivers) == len(events)
    assert all(set(d) <= set(model.feature_names_) for d in drivers) and any(drivers)
    assert set(FEATURES) < set(model.feature_names_)
    model.save(tmp_path / "m.pkl")
    again = RerankerRecommender.load(tmp_path / "m.pkl").recommend([pid], 5, as_of=CUT, graph=past)
    np.testing.assert_allclose(again["score"], recs["score"])


def test_training_cuts_add_the_serving_season_of_past_years_with_complete_labels() -> None:
    latest, earliest = pd.Timestamp("2024-11-01"), pd.Timestamp("2022-09-01")
    cfg = RerankerConfig()
    cuts = training_cuts(cfg, latest, earliest)
    last = latest - pd.Timedelta(days=cfg.horizon_days + cfg.label_lag_days)
    assert all(c <= last for c in cuts) and len(set(cuts)) == len(cuts)
    # The monthly cuts before the label window (June back to March) ...
    assert cuts[: cfg.cuts] == [last - pd.Timedelta(days=30 * i) for i in range(cfg.cuts)]
    # ... and November one year back (+/- a month); two years back the history would be too short.
    assert [str(c.date()) for c in cuts[cfg.cuts :]] == ["2023-10-02", "2023-11-01", "2023-12-01"]
    longer = training_cuts(cfg, latest, pd.Timestamp("2021-09-01"))
    assert [str(c.date()) for c in longer[cfg.cuts :]] == [
        "2023-10-02", "2023-11-01", "2023-12-01", "2022-10-02", "2022-11-01", "2022-12-01"
    ]
    assert training_cuts(RerankerConfig(seasonal_years=0), latest, earliest) == cuts[: cfg.cuts]
    # A young graph has no past season to learn from: only the monthly cuts remain.
    assert training_cuts(cfg, latest, pd.Timestamp("2024-01-01")) == cuts[: cfg.cuts]
    # A later serving date moves the seasonal cuts with it, never past the label window.
    spring = training_cuts(cfg, pd.Timestamp("2025-03-01"), earliest)
    assert pd.Timestamp("2024-03-01") in spring and pd.Timestamp("2023-03-01") not in spring
    assert max(spring) <= pd.Timestamp("2025-03-01") - pd.Timedelta(days=cfg.horizon_days + cfg.label_lag_days)


def test_default_config_trains_on_seasonal_cuts_of_a_small_world(world: AchievementsGraph) -> None:
    past = world.as_of(CUT)
    model = RerankerRecommender().fit(past)
    assert pd.Timestamp("2023-11-01") in model.training_cuts_
    assert all(c <= pd.Timestamp(CUT) - pd.Timedelta(days=150) for c in model.training_cuts_)
    assert model.training_groups_ > 100
    pid = past.achievements["participant_id"].value_counts().index[0]
    recs = model.recommend([pid], 5, as_of=CUT)
    assert len(recs) and recs["score"].is_monotonic_decreasing


class _AllEvents(RerankerRecommender):
    """The same model scoring every open event, as before `pairwise_scores` let it skip the ineligible ones."""

    @property
    def pairwise_scores(self) -> bool:
        return False


class _AllEventsPopularity(PopularityRecommender):
    @property
    def pairwise_scores(self) -> bool:
        return False


def test_scoring_only_allowed_events_ranks_as_scoring_all(world: AchievementsGraph) -> None:
    past = world.as_of(CUT)
    model = RerankerRecommender(RerankerConfig(cuts=2, seasonal_years=0, n_estimators=30, groups_per_cut=1000))
    model.fit(past)
    assert model.pairwise_scores
    everything = _AllEvents.__new__(_AllEvents)
    everything.__dict__.update(model.__dict__)
    popularity = PopularityRecommender().fit(past)
    popularity_all = _AllEventsPopularity.__new__(_AllEventsPopularity)
    popularity_all.__dict__.update(popularity.__dict__)
    ids = list(past.participant_index[:300])
    for fast, slow in ((model, everything), (popularity, popularity_all)):
        for pid in ids[:40]:  # one participant at a time, as a request does
            one = fast.recommend([pid], 10, as_of=CUT)
            pd.testing.assert_frame_equal(one, slow.recommend([pid], 10, as_of=CUT))
            events, scores = fast.top_events(pid, 10, as_of=CUT)  # the request path's arrays: the same rows
            assert list(past.event_index[events]) == list(one["event_id"])
            np.testing.assert_array_equal(scores, one["score"].to_numpy())
            if fast is model and len(events):  # reasons read the rows the ranking built, as if built again
                position = int(past.participant_positions([pid])[0])
                cut = pd.Timestamp(CUT)
                reused = model.score_drivers(past, position, events, cut)
                assert model._scored_features(past, position, events, cut) is not None
                model._last_request().scored = None
                assert model.score_drivers(past, position, events, cut) == reused
        together = fast.recommend(ids, 10, as_of=CUT)
        assert len(together) > 0
        pd.testing.assert_frame_equal(together, slow.recommend(ids, 10, as_of=CUT))
    # With candidate generators as features (normalized over the candidates) every open event is scored.
    cheap = RerankerConfig(cuts=1, seasonal_years=0, n_estimators=10, groups_per_cut=300, generators=["content_match"])
    assert not RerankerRecommender(cheap).fit(past).pairwise_scores


def test_a_model_trained_before_a_feature_was_added_keeps_ranking_the_same(
    world: AchievementsGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.reranker as reranker

    past = world.as_of(CUT)
    model = RerankerRecommender(RerankerConfig(cuts=1, seasonal_years=0, n_estimators=20, groups_per_cut=500))
    model.fit(past)
    ids = list(past.participant_index[:200])
    before = model.recommend(ids, 10, as_of=CUT)
    # A later version of the code computes one more feature, in the middle of the list.
    middle = len(FEATURES) // 2
    upgraded = (*FEATURES[:middle], "a_new_feature", *FEATURES[middle:])
    computed = reranker.pair_features

    def with_new_column(*args: object) -> np.ndarray:
        feats = computed(*args)  # type: ignore[arg-type]
        return np.insert(feats, middle, np.float32(7.0), axis=-1)

    monkeypatch.setattr(reranker, "FEATURES", upgraded)
    monkeypatch.setattr(reranker, "pair_features", with_new_column)
    pd.testing.assert_frame_equal(model.recommend(ids, 10, as_of=CUT), before)
    # A model needing a feature the code dropped fails clearly (the service then degrades to popularity).
    monkeypatch.setattr(reranker, "FEATURES", upgraded[1:])
    with pytest.raises(ValueError, match="no longer computes"):
        model.recommend(ids[:1], 10, as_of=CUT)


@pytest.mark.parametrize("name", ["implicit_als", "implicit_bpr", "sequential_transformer"])
def test_collaborative_generators_become_score_features(world: AchievementsGraph, name: str) -> None:
    from training.reranker import generator_feature, make_generator

    past = world.as_of(CUT)
    assert make_generator(name).name == name
    model = RerankerRecommender(RerankerConfig(cuts=1, seasonal_years=0, n_estimators=20, groups_per_cut=500,
                                               generators=[name]))
    model.fit(past)
    assert model.feature_names_[-1] == generator_feature(name)
    assert [g.name for g in model.generators_] == [name]
    pid = past.achievements["participant_id"].value_counts().index[0]
    recs = model.recommend([pid], 5, as_of=CUT)
    assert len(recs) and recs["score"].is_monotonic_decreasing
    # The feature column is the generator's own score of the pair (fitted on the graph the model was fitted on).
    one = past.participant_positions([pid])
    events = past.event_index.get_indexer(recs["event_id"].astype(str))
    allowed = np.ones((1, len(events)), dtype=bool)
    now = pd.Timestamp(CUT)
    feats = model._with_generator_scores(model._pair_features(past, model._context(past, now), one, events),
                                         model.generators_, past, one, events, now, allowed)
    own = make_generator(name).fit(past)._score(past, one, events, now, allowed)[0]
    np.testing.assert_allclose(feats[0, :, -1], np.asarray(own, dtype=np.float32), rtol=1e-5, atol=1e-6)
    assert np.ptp(feats[0, :, -1]) > 0
    with pytest.raises(ValueError, match="unknown generator"):
        make_generator("no_such_generator")


def test_truncation_level_reaches_the_booster_and_changes_the_trees(world: AchievementsGraph) -> None:
    past = world.as_of(CUT)
    base = dict(cuts=1, seasonal_years=0, n_estimators=20, groups_per_cut=500)
    default = RerankerRecommender(RerankerConfig(**base)).fit(past)
    short = RerankerRecommender(RerankerConfig(**base, truncation_level=3)).fit(past)
    assert default.model_.get_params()["lambdarank_truncation_level"] == 30
    assert short.model_.get_params()["lambdarank_truncation_level"] == 3
    assert default.model_.booster_.model_to_string() != short.model_.booster_.model_to_string()
