"""`trajectory evaluate` and `trajectory backtest` as DESIGN.md's command-line contract gives them."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.cli import cli
from recommender.eligibility import EventFilters, open_events
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.models import EventRecommender
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training import tuning
from training.evaluation import TemporalSplit, evaluate, temporal_split
from training.tuning import tuned_als_config

CUT = "2024-11-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("offline") / "world"
    generate_world(SynthConfig(participants=500, seed=4), out)
    return out


def test_evaluate_puts_every_model_beside_the_oracle_and_a_tuned_als(world: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(world / "aif"), "--as-of", CUT, "--truth",
                                      str(world / "truth"), "--tune-als", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["as_of"] == CUT and report["k"] == 10
    table = pd.DataFrame(report["models"]).set_index("model")
    assert {"random", "popularity_region_grade", "implicit_als", "implicit_als_tuned", "lightgbm_lambdarank",
            "oracle"} <= set(table.index)
    assert table.loc["oracle", "ndcg@10_vs_oracle"] == pytest.approx(1.0)
    ratio = table["ndcg@10"] / table.loc["oracle", "ndcg@10"]
    assert (table["ndcg@10_vs_oracle"] - ratio).abs().max() < 1e-12
    assert table.loc["oracle", "ndcg@10"] > table.loc["random", "ndcg@10"]
    assert {"ndcg@10_urban", "ndcg@10_rural", "coverage"} <= set(table.columns)
    assert table["coverage"].between(0, 1).all()
    fair = table.loc["oracle"]
    assert fair["ndcg@10_rural_vs_urban"] == pytest.approx(fair["ndcg@10_rural"] / fair["ndcg@10_urban"])
    assert fair["ndcg@10_rural_vs_urban_low"] <= fair["ndcg@10_rural_vs_urban"] <= fair["ndcg@10_rural_vs_urban_high"]


def test_als_is_tuned_on_a_window_before_the_cut_and_reproducibly(world: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    graph = AchievementsGraph.from_aif(world / "aif")
    split = temporal_split(graph, CUT, 90)
    seen: list[TemporalSplit] = []

    def recording(model: EventRecommender, validation: TemporalSplit, k: int, **kw: Any) -> dict[str, float]:
        seen.append(validation)
        return evaluate(model, validation, k, **kw)

    monkeypatch.setattr(tuning, "evaluate", recording)
    first = tuned_als_config(split.train, split.cut, horizon_days=90, k=10, trials=3, seed=1)
    again = tuned_als_config(split.train, split.cut, horizon_days=90, k=10, trials=3, seed=1)
    assert first == again and len(seen) == 6
    # Every trial fits before the validation cut and is judged on steps dated before the test cut.
    dates = split.train.achievements.set_index(["participant_id", "event_id"])["date"]
    for validation in seen:
        assert validation.cut == split.cut - pd.Timedelta(days=90)
        assert validation.train.achievements["date"].max() < validation.cut
        steps = dates.loc[pd.MultiIndex.from_frame(validation.relevant)]
        assert len(steps) and steps.max() < split.cut


def test_backtest_writes_top_k_eligible_events_per_participant(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs.csv"
    result = CliRunner().invoke(cli, ["backtest", "--data", str(world / "aif"), "--as-of", CUT, "--horizon-days",
                                      "60", "-k", "5", "--out", str(out), "--model", "popularity_region_grade"])
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(out, dtype={"participant_id": str, "event_id": str})
    assert list(recs.columns) == ["participant_id", "event_id", "rank", "score"]
    assert recs.groupby("participant_id").size().max() == 5
    assert (recs.groupby("participant_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1)))).all()
    graph = AchievementsGraph.from_aif(world / "aif").as_of(to_timestamp(CUT))
    allowed = set(graph.event_index[open_events(graph, to_timestamp(CUT), EventFilters(horizon_days=60))])
    assert set(recs["event_id"]) <= allowed


def test_evaluate_names_a_bad_date() -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--data", "nowhere", "--as-of", "01.11.2024"])
    assert result.exit_code != 0 and "--as-of" in result.output
