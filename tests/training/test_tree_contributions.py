"""Path-based contributions: the numpy walk reaches LightGBM's leaves and its raw scores, bit for bit."""

import lightgbm as lgb
import numpy as np
import pytest

from training.tree_contributions import TreePaths


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 6))
    x[:, 4] = rng.integers(0, 8, n)  # categorical
    x[rng.random(n) < 0.1, 1] = np.nan
    x[rng.random(n) < 0.3, 2] = 0.0
    x[rng.random(n) < 0.1, 5] = np.nan
    x[rng.random(n) < 0.2, 5] = 0.0
    return x


@pytest.fixture(scope="module")
def training_rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = _rows(rng, 4000)
    y = x[:, 0] + 2.0 * (x[:, 4] == 2) + np.nan_to_num(x[:, 1]) + (x[:, 2] == 0) + np.nan_to_num(x[:, 5], nan=3.0)
    return x, y


def _probe_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows off the training distribution: odd categories (negative, fractional, unseen, NaN), NaN and zeros
    where training had none, values LightGBM reads as zero, float32-rounded values."""
    x = _rows(rng, n)
    x[:, 4] = rng.choice([-1.5, -0.5, 0.0, 1.0, 2.0, 2.7, 3.0, 7.0, 9.0, 50.0, np.nan], n)
    x[rng.random(n) < 0.05, 0] = np.nan
    x[rng.random(n) < 0.05, 0] = 1e-40
    x[rng.random(n) < 0.05, 3] = 0.0
    return x.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("params", [
    {"max_cat_to_onehot": 2}, {"max_cat_to_onehot": 16}, {"zero_as_missing": True}, {"use_missing": False},
])
def test_walk_reproduces_the_booster(training_rows: tuple[np.ndarray, np.ndarray], params: dict[str, object]) -> None:
    x, y = training_rows
    booster = lgb.train({"objective": "regression", "num_leaves": 31, "min_data_in_leaf": 5, "verbose": -1,
                         "deterministic": True, "num_threads": 1, **params},
                        lgb.Dataset(x, y, categorical_feature=[4]), num_boost_round=60)
    paths = TreePaths.of(booster)
    assert (paths.category >= 0).any() and paths.depth > 3
    probe = np.vstack([_probe_rows(np.random.default_rng(1), 2000), x[:300]])
    expected = booster.predict(probe, raw_score=True)
    # The walk ends where LightGBM's does, and sums the leaves to the same float64 bits.
    leaves = paths.leaves(probe)
    lightgbm_leaves = np.asarray(booster.predict(probe, pred_leaf=True))
    np.testing.assert_array_equal(leaves, paths.nodes_of_leaf_indices(lightgbm_leaves))
    np.testing.assert_array_equal(paths.raw_score(probe), expected)
    contrib = paths.contributions(probe)
    assert contrib.shape == (len(probe), 6)
    np.testing.assert_allclose(contrib.sum(axis=1) + paths.bias, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(paths.contributions(leaves=leaves), contrib)


def test_contributions_credit_the_features_that_move_the_score() -> None:
    # y depends on feature 0 only: nearly all of every contribution goes to it (the other columns only get
    # what late trees fit of the residual noise).
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 3))
    booster = lgb.train({"objective": "regression", "num_leaves": 8, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, 3.0 * x[:, 0]), num_boost_round=30)
    paths = TreePaths.of(booster)
    contrib = paths.contributions(x[:50])
    assert np.abs(contrib[:, 1:]).sum() < 0.02 * np.abs(contrib[:, 0]).sum()
    assert np.corrcoef(contrib[:, 0], x[:50, 0])[0, 1] > 0.99
    # The bias is the training rows' mean score (node values are row-weighted means of their leaves).
    assert paths.bias == pytest.approx(float(np.asarray(booster.predict(x, raw_score=True)).mean()), abs=1e-9)


def test_single_leaf_trees_and_wrong_widths() -> None:
    x = np.zeros((100, 2))
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, np.full(100, 2.0)), num_boost_round=3)
    paths = TreePaths.of(booster)
    np.testing.assert_array_equal(paths.raw_score(x[:4]), booster.predict(x[:4], raw_score=True))
    assert paths.contributions(x[:4]).shape == (4, 2)
    with pytest.raises(ValueError, match="2 features"):
        paths.leaves(np.zeros((3, 5)))
