"""Implicit ALS reads a participant's history from the graph's cached matrix, the same counts as the full build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.series import participant_series
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.als import AlsConfig, AlsRecommender

CUT = "2024-09-01"


def test_history_rows_match_the_full_series_matrix_and_follow_a_fold_in(tmp_path: Path) -> None:
    out = tmp_path / "world"
    generate_world(SynthConfig(participants=600, seed=5), out)
    graph = AchievementsGraph.from_aif(out / "aif")
    past = graph.as_of(CUT)
    model = AlsRecommender(AlsConfig(factors=8, iterations=3)).fit(past)
    people = np.unique(past.achievements["participant_idx"].to_numpy())[::7]
    full = participant_series(past, model.series_.project(past))[people].toarray()
    assert full.sum() > 0
    assert np.array_equal(model._history(past, people).toarray(), full)

    # A participant takes one more event: the folded graph shares the events table, the history follows it.
    later = graph.achievements[graph.achievements["date"] >= pd.Timestamp(CUT)]
    row = later.iloc[[0]].drop(columns=["participant_idx", "event_idx"], errors="ignore")
    folded, added, _ = past.fold_achievements(row)
    assert added == 1 and folded.events is past.events
    who = folded.participant_positions([str(row["participant_id"].iloc[0])])
    before = model._history(past, who).sum()
    assert model._history(folded, who).sum() == before + 1
    assert np.array_equal(model._history(folded, who).toarray(),
                          participant_series(folded, model.series_.project(folded))[who].toarray())
    # And the scores are those of the rows built from every achievement.
    events = np.arange(folded.n_events)
    allowed = np.ones((len(people), len(events)), dtype=bool)
    scores = model._score(folded, people, events, pd.Timestamp(CUT), allowed)
    model._history = lambda g, p: participant_series(g, model.series_.project(g))[p]  # type: ignore[method-assign,assignment]
    assert np.array_equal(scores, model._score(folded, people, events, pd.Timestamp(CUT), allowed))


def test_item_factors_are_computed_once_per_event_and_match_a_batch_of_all(tmp_path: Path) -> None:
    out = tmp_path / "world"
    generate_world(SynthConfig(participants=400, seed=3), out)
    graph = AchievementsGraph.from_aif(out / "aif").as_of(CUT)
    model = AlsRecommender(AlsConfig(factors=8, iterations=3)).fit(graph)
    everything = np.arange(graph.n_events)
    expected = model._compute_item_factors(graph, everything)
    assert (expected != 0).any(axis=1).mean() > 0.5  # most events have factors, borrowed or learned
    some = everything[::3][::-1]  # another batch: BLAS may round the borrowed rows differently in the last bit
    np.testing.assert_allclose(model._item_factors(graph, some), expected[some], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model._item_factors(graph, everything), expected, rtol=1e-5, atol=1e-7)
    # Already computed rows are gathered, not computed again (a computation would now raise).
    model._compute_item_factors = None  # type: ignore[assignment,method-assign]
    np.testing.assert_allclose(model._item_factors(graph, some), expected[some], rtol=1e-5, atol=1e-7)
