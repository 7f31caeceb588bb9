import math

import numpy as np
import pandas as pd
import pytest

from recommender.metrics import per_participant, ratio_of_means, summary


def _recs(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["participant_id", "event_id", "rank"]).assign(score=1.0)


def test_known_values() -> None:
    recs = _recs([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1), ("b", "y", 2)])
    relevant = pd.DataFrame({"participant_id": ["a", "a", "b", "c"], "event_id": ["y", "q", "q", "x"]})
    per = per_participant(recs, relevant, k=10)
    # a: hit at rank 2 of two relevant -> dcg 1/log2(3), idcg 1 + 1/log2(3)
    assert per.loc["a", "ndcg"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert per.loc["a", "recall"] == pytest.approx(0.5)
    assert per.loc["a", "mrr"] == pytest.approx(0.5)
    # b missed; c got nothing at all and still counts, as a miss
    assert per.loc["b", "ndcg"] == 0 and per.loc["c", "hit_rate"] == 0
    s = summary(recs, relevant, k=10, catalog_size=4)
    assert s["hit_rate@10"] == pytest.approx(1 / 3)
    assert s["coverage"] == pytest.approx(3 / 4)


def test_perfect_ranking_scores_one() -> None:
    recs = _recs([("a", "x", 1), ("a", "y", 2)])
    relevant = pd.DataFrame({"participant_id": ["a", "a"], "event_id": ["x", "y"]})
    assert summary(recs, relevant, k=10)["ndcg@10"] == pytest.approx(1.0)


def test_cut_at_k() -> None:
    recs = _recs([("a", "x", 1), ("a", "y", 2)])
    relevant = pd.DataFrame({"participant_id": ["a"], "event_id": ["y"]})
    assert summary(recs, relevant, k=1)["hit_rate@1"] == 0.0


def test_the_ratio_of_two_groups_means_comes_with_a_reproducible_interval_that_narrows_with_data() -> None:
    rng = np.random.default_rng(3)
    rural, urban = rng.random(200) * 0.8, rng.random(2000)
    ratio, low, high = ratio_of_means(rural, urban)
    assert ratio == pytest.approx(rural.mean() / urban.mean())
    assert low < ratio < high
    assert (ratio, low, high) == ratio_of_means(rural, urban)  # seeded
    _, low_more, high_more = ratio_of_means(np.tile(rural, 16), np.tile(urban, 16))
    assert high_more - low_more < (high - low) / 2  # 16 times the participants: about a quarter of the width
    assert all(math.isnan(v) for v in ratio_of_means(rural[:0], urban))
    assert all(math.isnan(v) for v in ratio_of_means(rural, np.zeros(5)))
