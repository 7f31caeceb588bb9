"""The synthetic world's declared interests: a sparse, noisy, seeded reading of the true interests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.aif.parsing import parse_weighted
from recommender.aif.reader import read_dataset
from recommender.synth.config import SynthConfig
from recommender.synth.export import declared_text, weighted_text
from recommender.synth.generate import generate_world
from recommender.synth.population import DECLARED_SHARE, competence_ids, declared_interests, make_population
from recommender.synth.simulate import stream


def _population(seed: int = 4) -> np.ndarray:
    population, _ = make_population(SynthConfig(participants=20_000, seed=seed), stream(seed, 0))
    return population.interest


def test_a_share_declares_one_to_three_mostly_true_interests() -> None:
    interest = _population()
    comp_idx, comp_w = declared_interests(interest, stream(4, 1001))
    declared = comp_idx[:, 0] >= 0
    assert abs(declared.mean() - DECLARED_SHARE) < 0.02
    counts = (comp_idx >= 0).sum(axis=1)[declared]
    assert set(np.unique(counts)) == {1, 2, 3}
    assert ((comp_idx >= 0) == (comp_w > 0)).all()
    assert set(np.unique(comp_w[comp_w > 0])) == {0.5, 1.0} and (comp_w[declared, 0] == 1.0).all()
    # No competence twice in a row.
    picked = np.where(comp_idx >= 0, comp_idx, -np.arange(1, 4))
    assert (np.sort(picked, axis=1)[:, 1:] != np.sort(picked, axis=1)[:, :-1]).all()
    rows = np.repeat(np.arange(len(comp_idx))[:, None], comp_idx.shape[1], axis=1)
    true_share = interest[rows[comp_idx >= 0], comp_idx[comp_idx >= 0]]
    # Noisy but informative: most ticks are a main interest (well above the floor), some are not.
    main = true_share > 0.05
    assert 0.7 < main.mean() < 0.95
    # The strongest true interest is the first ticked far more often than chance.
    assert (comp_idx[declared, 0] == interest[declared].argmax(axis=1)).mean() > 0.5


def test_declared_interests_are_seeded() -> None:
    interest = _population()
    first = declared_interests(interest, stream(4, 1001))
    again = declared_interests(interest, stream(4, 1001))
    other = declared_interests(interest, stream(5, 1001))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert (first[0] != other[0]).any()


def test_text_is_the_weighted_list_of_each_row() -> None:
    interest = _population()
    comp_idx, comp_w = declared_interests(interest, stream(4, 1001))
    text = declared_text(comp_idx, comp_w)
    expected = weighted_text(comp_idx, comp_w)
    declared = comp_idx[:, 0] >= 0
    assert list(text[declared]) == list(expected[declared])
    assert all(t is None for t in text[~declared])
    ids = competence_ids()
    for row in np.flatnonzero(declared)[:200]:
        pairs = parse_weighted(str(text[row]))
        assert [(ids[c], float(w)) for c, w in zip(comp_idx[row], comp_w[row], strict=True) if c >= 0] == pairs


def test_world_writes_interests_the_reader_accepts(tmp_path: Path) -> None:
    generate_world(SynthConfig(participants=600, seed=2), tmp_path)
    raw = pd.read_csv(tmp_path / "aif/participants.csv", dtype=str, keep_default_na=False)
    assert raw.columns[-1] == "interests"
    assert 0.3 < (raw["interests"] != "").mean() < 0.5
    data = read_dataset(tmp_path / "aif")
    assert data.quarantine.empty
    assert data.tables["participants"]["interests"].notna().sum() == (raw["interests"] != "").sum()
