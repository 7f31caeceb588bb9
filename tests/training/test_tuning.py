"""`trajectory tune`: an Optuna study in shared storage, every trial an MLflow run."""

import json
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from recommender.cli import cli
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world


def test_trials_accumulate_in_the_study_and_in_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_world(SynthConfig(participants=600, seed=2), tmp_path / "world")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({
        "study": "t", "data": str(tmp_path / "world" / "aif"), "storage": storage, "model": "implicit_als",
        "cut": "2024-11-01", "space": {"factors": {"type": "int", "low": 4, "high": 16},
                                       "regularization": {"low": 0.01, "high": 1.0, "log": True}},
    }))
    runner = CliRunner()
    first = runner.invoke(cli, ["tune", "--config", str(config), "--trials", "2"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["tune", "--config", str(config), "--trials", "1"])
    report = json.loads(second.output)
    assert report["trials"] == 3 and 0 <= report["best_value"] <= 1
    assert set(report["best_params"]) == {"factors", "regularization"}
    study = optuna.load_study(study_name="t", storage=storage)
    assert len(study.trials) == 3
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["trajectory-tuning"])
    assert len(runs) == 3 and runs["metrics.ndcg_at_10"].notna().all()


def test_bad_space_fails_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({"data": str(tmp_path), "space": {"factors": {"type": "int"}}}))
    result = CliRunner().invoke(cli, ["tune", "--config", str(config), "--trials", "1"])
    assert result.exit_code != 0


def test_the_pipeline_tuned_a_year_before_the_cut_starts_from_its_own_settings(tmp_path: Path) -> None:
    from recommender.graph import AchievementsGraph
    from training.reranker import RerankerConfig
    from training.tuning import RERANKER_SPACE, tuned_reranker_config

    generate_world(SynthConfig(participants=1500, seed=3), tmp_path / "world")
    graph = AchievementsGraph.from_aif(tmp_path / "world" / "aif")
    cut = pd.Timestamp("2025-03-01")
    base = RerankerConfig(cuts=2, seasonal_years=1, n_estimators=20, groups_per_cut=400, seed=4)
    past = graph.as_of(cut)
    # One trial is the base itself: nothing else was tried.
    assert tuned_reranker_config(past, cut, base, k=10, trials=1, eval_participants=300) == base
    tuned = tuned_reranker_config(past, cut, base, k=10, trials=3, eval_participants=300)
    for name, space in RERANKER_SPACE.items():
        assert getattr(tuned, name) in space["choices"]
    unchanged = set(RerankerConfig.model_fields) - set(RERANKER_SPACE)
    assert {name: getattr(tuned, name) for name in unchanged} == {name: getattr(base, name) for name in unchanged}
    # A year before the first achievements there is nothing to validate on.
    with pytest.raises(ValueError, match="validation window"):
        tuned_reranker_config(graph.as_of("2022-06-01"), pd.Timestamp("2022-06-01"), base, k=10, trials=1)


def test_a_point_drawn_again_is_scored_once() -> None:
    from training.tuning import _best_params

    calls: list[dict] = []

    def score(params: dict) -> float:
        calls.append(params)
        return float(params["a"])

    space = {"a": {"type": "categorical", "choices": [1, 2]}}
    assert _best_params(score, space, trials=6, seed=0, start={"a": 1}) == {"a": 2}
    assert calls[0] == {"a": 1} and sorted(p["a"] for p in calls) == [1, 2]
