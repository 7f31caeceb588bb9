"""Team formation (size limits, groups, complementarity), the team-success model and teammate ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.cli import cli
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.truth import load_truth
from training.teams import (
    TeamSuccessModel,
    event_registrants,
    form_event_teams,
    form_teams,
    historical_teams,
    participant_skills,
    random_teams,
    rank_teammates,
    strongest_first_teams,
    team_sizes,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teams_world")
    generate_world(SynthConfig(participants=1500, seed=12), out)
    return out


@pytest.fixture(scope="module")
def graph(world: Path) -> AchievementsGraph:
    return AchievementsGraph.from_aif(world / "aif")


@pytest.fixture(scope="module")
def skills(graph: AchievementsGraph) -> np.ndarray:
    return participant_skills(graph)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 23, 101])
@pytest.mark.parametrize(("lo", "hi"), [(2, 4), (3, 5), (1, 1), (4, 6)])
def test_team_sizes_within_limits(n: int, lo: int, hi: int) -> None:
    sizes = team_sizes(n, lo, hi)
    assert sizes.sum() == n
    assert sizes.max() <= hi
    if any(t * lo <= n <= t * hi for t in range(1, n + 1)):
        assert sizes.min() >= lo


def test_specialists_are_spread_one_per_team() -> None:
    # Four competences, four specialists of each: every team should get one of each kind.
    kinds = np.repeat(np.arange(4), 4)
    skills = np.eye(4)[kinds] * 2.0 + 0.01 * np.arange(16)[:, None] / 16
    need = np.full(4, 0.25)
    labels = form_teams(skills, need, 4, 4)
    for t in range(4):
        assert sorted(kinds[labels == t].tolist()) == [0, 1, 2, 3]
    # The strongest-first baseline stacks them instead.
    greedy = strongest_first_teams(skills, need, 4, 4)
    assert any(len(set(kinds[greedy == t])) < 4 for t in range(4))


def test_groups_stay_together_and_sizes_hold() -> None:
    rng = np.random.default_rng(0)
    skills = rng.normal(size=(23, 5))
    groups = np.array([None] * 23, dtype=object)
    groups[[0, 5, 9]] = "a"
    groups[[3, 4]] = "b"
    labels = form_teams(skills, np.full(5, 0.2), 2, 4, groups=groups)
    assert len(set(labels[[0, 5, 9]])) == 1
    assert len(set(labels[[3, 4]])) == 1
    sizes = np.bincount(labels)
    assert sizes.min() >= 2 and sizes.max() <= 4


def test_formation_beats_baselines_by_true_success(world: Path, graph: AchievementsGraph) -> None:
    truth = load_truth(world)
    as_of = pd.Timestamp("2024-09-01")
    skills = participant_skills(graph.as_of(as_of))
    rng = np.random.default_rng(0)
    ids_all = graph.participants[Columns.Participant].astype(str).to_numpy()
    over_random, over_greedy = [], []
    for _, ev in graph.events[graph.events["team_max"].notna()].head(4).iterrows():
        e = graph.event_index.get_loc(ev[Columns.Event])
        need = np.asarray(graph.event_competence()[e].toarray()).ravel()
        need = need / need.sum()
        pos = np.sort(rng.choice(graph.n_participants, graph.n_participants // 2, replace=False))
        ids = ids_all[pos]
        lo, hi = int(ev["team_min"]), int(ev["team_max"])

        def success(labels: np.ndarray, event: str = ev[Columns.Event], ids: np.ndarray = ids) -> float:
            teams = [list(ids[labels == t]) for t in range(int(labels.max()) + 1)]
            return float(truth.team_success(teams, event, as_of.date()).mean())

        formed = success(form_teams(skills[pos], need, lo, hi))
        over_greedy.append(formed - success(strongest_first_teams(skills[pos], need, lo, hi)))
        over_random.append(formed - np.mean([success(random_teams(len(pos), lo, hi, seed)) for seed in range(3)]))
    assert min(over_greedy) > 0
    assert np.mean(over_random) > 0


def test_team_success_model_learns_from_history(graph: AchievementsGraph, skills: np.ndarray) -> None:
    feats, target = historical_teams(graph, skills)
    assert len(feats) == len(target) > 50
    assert ((target >= 0) & (target <= 1)).all()
    a = TeamSuccessModel().fit(feats, target).predict(feats)
    b = TeamSuccessModel().fit(feats, target).predict(feats)
    np.testing.assert_array_equal(a, b)
    assert np.corrcoef(a, target)[0, 1] > 0.3


def test_form_event_teams_and_cli(world: Path, graph: AchievementsGraph, skills: np.ndarray, tmp_path: Path) -> None:
    team_events = graph.events[graph.events["team_max"].notna()]
    event = next(e for e in team_events[Columns.Event] if len(event_registrants(graph, e)) >= 4)
    result = form_event_teams(graph, event, skills=skills)
    assert set(result.teams[Columns.Participant]) == set(event_registrants(graph, event))
    reg = tmp_path / "reg.csv"
    pids = graph.participants[Columns.Participant].astype(str).iloc[:12].tolist()
    pd.DataFrame({"participant_id": pids, "group": ["g1", "g1", "g1"] + [""] * 9}).to_csv(reg, index=False)
    out = tmp_path / "teams.csv"
    res = CliRunner().invoke(cli, ["teams", "form", "--data", str(world / "aif"), "--event", str(event),
                                   "--registrants", str(reg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == ["participant_id", "team_id"]
    assert frame["participant_id"].tolist() == pids
    assert frame["team_id"].iloc[:3].nunique() == 1
    lo, hi = int(team_events.set_index(Columns.Event).loc[event, "team_min"]), int(
        team_events.set_index(Columns.Event).loc[event, "team_max"])
    sizes = frame["team_id"].value_counts()
    assert sizes.min() >= lo and sizes.max() <= hi


def test_rank_teammates_with_reasons(graph: AchievementsGraph, skills: np.ndarray) -> None:
    a = graph.achievements
    row = a[a["team_idx"] >= 0].iloc[0]
    pool = list(dict.fromkeys(a.loc[a[Columns.Event] == row[Columns.Event], Columns.Participant].astype(str)))
    ranked = rank_teammates(graph, row[Columns.Participant], row[Columns.Event], skills, candidates=pool, k=5)
    assert 0 < len(ranked) <= 5
    assert row[Columns.Participant] not in set(ranked[Columns.Participant])
    assert ranked["score"].is_monotonic_decreasing
    assert all(isinstance(r, list) for r in ranked["reasons"])


def test_team_model_is_logged_and_registered(graph: AchievementsGraph, skills: np.ndarray, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from training.teams import log_team_model
    from training.tracking import configure

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    configure()
    feats, target = historical_teams(graph, skills)
    model = TeamSuccessModel().fit(feats, target)
    with mlflow.start_run():
        version = log_team_model(model, {"history_teams": len(target)})
    assert version == "1"
    loaded = mlflow.pyfunc.load_model("models:/team-success/1")
    np.testing.assert_allclose(np.asarray(loaded.predict(feats.head(5))), model.predict(feats.head(5)))
