"""`trajectory models promote|rollback|list` move the champion alias and keep its history in the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recommender.cli import cli
from recommender.graph import AchievementsGraph
from tests.registry import register, use_tmp_registry
from tests.tiny import tiny_tables
from training import tracking
from training.baselines import GlobalPopularityRecommender, RandomRecommender
from training.popularity import PopularityRecommender


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["models", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_promote_and_rollback_walk_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_tmp_registry(tmp_path, monkeypatch)
    graph = AchievementsGraph.from_tables(tiny_tables())
    v1, v2, v3 = (register(m.fit(graph)) for m in
                  (PopularityRecommender(), GlobalPopularityRecommender(), RandomRecommender()))

    assert run("promote", "--version", v1)["champion"] == v1
    report = run("promote", "--version", v2)
    assert report["champion"] == v2 and report["previous"] == v1 and report["history"] == [v1]
    report = run("promote", "--version", v3)
    assert report["history"] == [v1, v2]
    aliases = {v["version"]: v["aliases"] for v in report["versions"]}
    assert aliases[v3] == ["champion"] and aliases[v2] == ["previous-champion"] and aliases[v1] == []
    assert all(v["run_id"] for v in report["versions"])

    # Rollback goes back one step at a time and does not push the version it leaves.
    report = run("rollback")
    assert report["champion"] == v2 and report["previous"] == v3 and report["history"] == [v1]
    report = run("rollback")
    assert report["champion"] == v1 and report["history"] == []
    assert "previous-champion" not in {a for v in report["versions"] for a in v["aliases"]}
    assert tracking.load_champion()[1] == v1

    listed = run("list")
    assert listed["champion"] == v1 and [v["version"] for v in listed["versions"]] == [v1, v2, v3]

    # Promoting the champion again is not a move: the history stays empty.
    assert run("promote", "--version", v1)["history"] == []


def test_errors_exit_non_zero_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_tmp_registry(tmp_path, monkeypatch)
    runner = CliRunner()
    missing = runner.invoke(cli, ["models", "list"])
    assert missing.exit_code != 0 and "no registered model 'next-steps'" in missing.output

    version = register(PopularityRecommender().fit(AchievementsGraph.from_tables(tiny_tables())))
    nothing_to_undo = runner.invoke(cli, ["models", "rollback"])
    assert nothing_to_undo.exit_code != 0 and "no previous champion" in nothing_to_undo.output
    unknown = runner.invoke(cli, ["models", "promote", "--version", "99"])
    assert unknown.exit_code != 0 and "resource_does_not_exist" in unknown.output
    assert tracking.champion_version() is None  # a failed promotion moved nothing
    run("promote", "--version", version)
    assert tracking.champion_version() == version
