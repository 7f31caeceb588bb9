"""Mentor assignment (capacities, reach, rural first, optimality) and mentor ranking on a small world."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.mentor_features import mentor_track_record, reach_matrix, team_table
from recommender.cli import cli
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.truth import load_truth
from training.mentors import MentorModel, assign_mentors, expected_without_mentor, rank_mentors, solve_assignment


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mentors_world")
    generate_world(SynthConfig(participants=1500, seed=11), out)
    return out


@pytest.fixture(scope="module")
def graph(world: Path) -> AchievementsGraph:
    return AchievementsGraph.from_aif(world / "aif")


def _brute_force(benefit: np.ndarray, reach: np.ndarray, capacity: np.ndarray) -> float:
    slots = [j for j in range(benefit.shape[1]) for _ in range(capacity[j])] + [-1] * benefit.shape[0]
    best = 0.0
    for combo in itertools.permutations(slots, benefit.shape[0]):
        used = [m for m in combo if m >= 0]
        if any(used.count(m) > capacity[m] for m in set(used)):
            continue
        if any(m >= 0 and not reach[t, m] for t, m in enumerate(combo)):
            continue
        best = max(best, sum(benefit[t, m] for t, m in enumerate(combo) if m >= 0))
    return best


def test_solver_is_optimal_and_keeps_capacities() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        benefit = rng.random((5, 3))
        reach = rng.random((5, 3)) < 0.7
        capacity = np.array([1, 2, 1])
        choice = solve_assignment(benefit, reach, capacity, np.zeros(5, bool))
        used = np.bincount(choice[choice >= 0], minlength=3)
        assert (used <= capacity).all()
        assert all(reach[t, m] for t, m in enumerate(choice) if m >= 0)
        total = sum(benefit[t, m] for t, m in enumerate(choice) if m >= 0)
        assert total == pytest.approx(_brute_force(benefit, reach, capacity), abs=1e-9)


def test_rural_teams_served_first_while_capacity_exists() -> None:
    # One mentor with one place: the urban team would gain more, but the rural team must get it.
    benefit = np.array([[5.0], [0.1]])
    choice = solve_assignment(benefit, np.ones((2, 1), bool), np.array([1]), np.array([False, True]))
    assert choice.tolist() == [-1, 0]


def test_groups_give_the_same_optimum_as_single_teams() -> None:
    rng = np.random.default_rng(1)
    rows = rng.random((4, 6))
    reach_rows = rng.random((4, 6)) < 0.6
    group = rng.integers(0, 4, 40)
    benefit, reach = rows[group], reach_rows[group]
    capacity = rng.integers(0, 5, 6)
    single = solve_assignment(benefit, reach, capacity, np.zeros(40, bool), candidates_per_team=6)
    grouped = solve_assignment(benefit, reach, capacity, np.zeros(40, bool), groups=group)

    def total(c: np.ndarray) -> float:
        return float(benefit[np.flatnonzero(c >= 0), c[c >= 0]].sum())

    assert total(grouped) == pytest.approx(total(single))
    assert (np.bincount(grouped[grouped >= 0], minlength=6) <= capacity).all()


def test_refill_uses_places_the_shortlists_strand() -> None:
    # Both teams shortlist mentor 0 only, mentor 1 shortlists team 0 only; the LP gives mentor 0 to team 0
    # (10 > 1 + 8.9), which strands mentor 1's place although team 1 could use it.
    benefit = np.array([[10.0, 1.0], [8.9, 0.5]])
    args = (benefit, np.ones((2, 2), bool), np.array([1, 1]), np.zeros(2, bool))
    plain = solve_assignment(*args, candidates_per_team=1, mentor_candidates=1, refill=False)
    assert plain.tolist() == [0, -1]
    assert solve_assignment(*args, candidates_per_team=1, mentor_candidates=1).tolist() == [0, 1]
    rng = np.random.default_rng(4)
    for _ in range(5):
        benefit = rng.random((40, 12))
        reach = rng.random((40, 12)) < 0.5
        capacity = rng.integers(0, 4, 12)
        rural = rng.random(40) < 0.2
        choice = solve_assignment(benefit, reach, capacity, rural, candidates_per_team=1, mentor_candidates=1)
        used = np.bincount(choice[choice >= 0], minlength=12)
        assert (used <= capacity).all()
        assert all(reach[t, m] for t, m in enumerate(choice) if m >= 0)
        left = capacity - used
        # No team is left without a mentor while a mentor who reaches it has room.
        assert not any((reach[t] & (left > 0)).any() for t in np.flatnonzero(choice < 0))
        plain = solve_assignment(benefit, reach, capacity, rural, candidates_per_team=1, mentor_candidates=1,
                                 refill=False)
        assert (choice >= 0).sum() >= (plain >= 0).sum()


def test_track_record_is_estimated_from_history(graph: AchievementsGraph) -> None:
    rec = mentor_track_record(graph)
    assert len(rec) == len(graph.mentors)
    assert (rec["mentored_teams"] > 0).any()
    none = rec["mentored_teams"] == 0
    assert (rec.loc[none, "uplift"] == 0).all()
    # A mentor without a record is the average mentor of their kind.
    np.testing.assert_allclose(rec.loc[none, "effect"], rec.loc[none, "kind_effect"])
    assert np.isfinite(rec["effect"]).all()


def test_track_record_credits_the_mentor_whose_teams_beat_expectations(graph: AchievementsGraph) -> None:
    from features.mentor_features import team_percentiles

    pct = team_percentiles(graph)
    mentor_of = graph.teams[Columns.Mentor].astype("string").to_numpy(dtype=object, na_value=None)
    pct = pct.assign(mentor=mentor_of[pct["team_idx"].to_numpy()])
    counts = pct["mentor"].value_counts()
    star = str(counts.index[0])  # the mentor with the most teams
    # Every team did as expected, except the star's, which did one normal score better.
    expected = pd.Series(pct["normal_score"].to_numpy() - np.where(pct["mentor"] == star, 1.0, 0.0),
                         index=pct["team_idx"].to_numpy())
    rec = mentor_track_record(graph, expected=expected, shrinkage=0.0).set_index(Columns.Mentor)
    assert rec.loc[star, "uplift"] == pytest.approx(1.0)
    others = rec.drop(index=star)
    assert np.abs(others.loc[others["mentored_teams"] > 0, "uplift"]).max() < 1e-9
    assert rec["effect"].idxmax() == star
    shrunk = mentor_track_record(graph, expected=expected, shrinkage=50.0).set_index(Columns.Mentor)
    assert 0 < shrunk.loc[star, "effect"] - shrunk.loc[star, "kind_effect"] < rec.loc[star, "effect"]


def test_mentored_teams_beat_what_their_members_promised(graph: AchievementsGraph) -> None:
    from features.mentor_features import team_percentiles

    expected = expected_without_mentor(graph)
    assert expected is not None and np.isfinite(expected.to_numpy()).all()
    pct = team_percentiles(graph).set_index("team_idx").loc[expected.index]
    residual = pct["normal_score"].to_numpy() - expected.to_numpy()
    mentored = graph.teams[Columns.Mentor].notna().to_numpy()[expected.index.to_numpy()]
    # In the generator mentors help: their teams beat the no-mentor expectation, the others do not.
    assert residual[mentored].mean() > 0.1
    assert abs(residual[~mentored].mean()) < residual[mentored].mean()


def test_assignment_on_a_world_beats_random_by_true_effect(world: Path, graph: AchievementsGraph) -> None:
    truth = load_truth(world)
    teams = team_table(graph)
    as_of = pd.Timestamp("2024-09-01")
    region = teams.loc[(teams["end_date"] >= as_of) & teams[Columns.Mentor].isna(), "region_code"].value_counts()
    result = assign_mentors(graph, as_of, region=str(region.index[0]))
    pairs = result.pairs
    assert len(pairs) > 0
    assert pairs[Columns.Team].is_unique
    mentors = MentorModel().fit(graph.as_of(as_of)).mentors_
    cap = mentors.set_index(Columns.Mentor)["capacity"]
    assert (pairs[Columns.Mentor].value_counts() <= cap.loc[pairs[Columns.Mentor].value_counts().index]).all()
    assert (result.remaining_capacity >= np.minimum(mentors["capacity"].to_numpy(), 0)).all()
    chosen = teams.set_index(Columns.Team).loc[pairs[Columns.Team]]
    reach = reach_matrix(chosen["region_code"].to_numpy(), mentors)
    m_pos = pd.Index(mentors[Columns.Mentor]).get_indexer(pairs[Columns.Mentor])
    assert reach[np.arange(len(pairs)), m_pos].all()
    true = truth.mentor_benefit(list(pairs[Columns.Mentor]), list(chosen[Columns.Event]))
    rng = np.random.default_rng(0)
    random_mentors = mentors[Columns.Mentor].to_numpy()[rng.integers(0, len(mentors), (200, len(pairs)))]
    random_total = np.mean([truth.mentor_benefit(list(r), list(chosen[Columns.Event])).sum() for r in random_mentors])
    assert true.sum() > random_total


def test_rank_mentors_reachable_with_reasons(graph: AchievementsGraph) -> None:
    model = MentorModel().fit(graph)
    team = graph.teams[Columns.Team].iloc[0]
    ranked = rank_mentors(model, graph, team_id=team, k=5)
    assert 0 < len(ranked) <= 5
    assert ranked[Columns.Rank].tolist() == list(range(1, len(ranked) + 1))
    assert ranked["score"].is_monotonic_decreasing
    assert all(len(r) >= 2 for r in ranked["reasons"])
    region = team_table(graph).set_index(Columns.Team).loc[team, "region_code"]
    reach = reach_matrix(np.array([region], dtype=object), model.mentors_)[0]
    pos = pd.Index(model.mentors_[Columns.Mentor]).get_indexer(ranked[Columns.Mentor])
    assert reach[pos].all()
    pid = graph.participants[Columns.Participant].iloc[0]
    assert len(rank_mentors(model, graph, participant_id=pid, k=3)) <= 3


def test_cli_assign_writes_csv(world: Path, graph: AchievementsGraph, tmp_path: Path) -> None:
    teams = team_table(graph)
    event = teams.loc[teams[Columns.Mentor].isna(), Columns.Event].value_counts().index[0]
    out = tmp_path / "assign.csv"
    res = CliRunner().invoke(cli, ["mentors", "assign", "--data", str(world / "aif"), "--as-of", "2024-09-01",
                                   "--event", str(event), "--out", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out, dtype={"team_id": str, "mentor_id": str})
    assert list(frame.columns) == ["team_id", "mentor_id", "expected_benefit"]
    free = set(teams.loc[(teams[Columns.Event] == event) & teams[Columns.Mentor].isna(), Columns.Team])
    assert set(frame["team_id"]) <= free
    bad = CliRunner().invoke(cli, ["mentors", "assign", "--data", str(world / "aif"), "--as-of", "2024-09-01",
                                   "--out", str(out)])
    assert bad.exit_code != 0


def test_mentor_model_is_logged(graph: AchievementsGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from training.mentors import log_mentor_model
    from training.tracking import configure

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    configure()
    with mlflow.start_run() as run:
        log_mentor_model(MentorModel().fit(graph), {"mentors": len(graph.mentors)})
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params["mentor.fit_base"] == "0.5"
    assert got.data.metrics["mentor.mentors"] == len(graph.mentors)
