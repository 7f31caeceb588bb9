"""Competence rating: known answers on hand-made contests, prequential replay, synthetic skill recovery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.competence.estimator import CompetenceRatings, RatingConfig
from features.competence.evaluation import pair_inversion, points_sum, results_per_competence, skill_recovery
from features.competence.profile import competence_profile, skill_table
from features.competence.replay import REPLAY_COLUMNS, replay_frame
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.truth import load_truth


def _s(values: Sequence[object]) -> pd.Series:
    return pd.Series(values, dtype="string")


def contest_tables(standings: list[list[str]], *, competences: str = "informatics:1;math:0.5",
                   teams: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Contests on consecutive weeks; each standing lists participant ids best first ('a=b' for a tie)."""
    rows = []
    for i, standing in enumerate(standings):
        rank = 1
        for place in standing:
            tied = place.split("=")
            for pid in tied:
                rows.append({"participant_id": pid, "event_id": f"c{i}", "role": "participant",
                             "result": "participant", "date": pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=i),
                             "rank": rank, "team_id": (teams or {}).get(pid)})
            rank += len(tied)
    ach = pd.DataFrame(rows)
    ids = sorted(set(ach["participant_id"]))
    events = pd.DataFrame({
        "event_id": _s([f"c{i}" for i in range(len(standings))]), "title": _s(["c"] * len(standings)),
        "format": _s(["contest"] * len(standings)), "level": _s(["national"] * len(standings)),
        "competences": _s([competences] * len(standings)),
        "start_date": pd.to_datetime([pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=i)
                                      for i in range(len(standings))]),
    })
    team_ids = sorted({t for t in (teams or {}).values()})
    tables = {
        "participants": pd.DataFrame({"participant_id": _s(ids)}),
        "events": events,
        "achievements": ach.assign(rank=ach["rank"].astype("Int64"), team_id=ach["team_id"].astype("string")),
    }
    if team_ids:
        tables["teams"] = pd.DataFrame({"team_id": _s(team_ids), "event_id": _s(["c0"] * len(team_ids))})
    return tables


def test_consistent_winners_are_rated_in_order() -> None:
    graph = AchievementsGraph.from_tables(contest_tables([["a", "b", "c", "d"]] * 6))
    model = CompetenceRatings().fit(graph)
    mu, sd = model.skill(graph.participant_positions(["a", "b", "c", "d"]))
    main = graph.competence_index.get_loc("informatics")
    assert np.all(np.diff(mu[:, main]) < 0)
    # More evidence, less uncertainty than a newcomer's.
    assert np.all(sd[:, main] < RatingConfig().prior_sd)


def test_ties_share_a_place_and_unranked_events_say_nothing() -> None:
    graph = AchievementsGraph.from_tables(contest_tables([["a=b", "c"], ["a=b", "c"], ["c=a=b"]]))
    model = CompetenceRatings().fit(graph)
    mu, _ = model.skill(graph.participant_positions(["a", "b", "c"]))
    assert mu[0, 0] == pytest.approx(mu[1, 0])
    assert mu[0, 0] > mu[2, 0]


def test_team_members_share_the_team_result() -> None:
    tables = contest_tables([["a", "t1", "b"]], teams={"t1": "T"})
    # Two members of team T finish second together.
    extra = tables["achievements"].iloc[[1]].assign(participant_id="t2")
    tables["achievements"] = pd.concat([tables["achievements"], extra], ignore_index=True)
    tables["participants"] = pd.DataFrame({"participant_id": _s(["a", "b", "t1", "t2"])})
    graph = AchievementsGraph.from_tables(tables)
    model = CompetenceRatings().fit(graph)
    mu, _ = model.skill(graph.participant_positions(["a", "t1", "t2", "b"]))
    assert mu[1, 0] == pytest.approx(mu[2, 0])
    assert mu[0, 0] > mu[1, 0] > mu[3, 0]


def test_replay_uses_strictly_earlier_events_only() -> None:
    base = [["a", "b", "c"], ["a", "b", "c"], ["c", "b", "a"]]
    changed = [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]]
    one = replay_frame(AchievementsGraph.from_tables(contest_tables(base)))
    two = replay_frame(AchievementsGraph.from_tables(contest_tables(changed)))
    assert list(one.columns) == list(REPLAY_COLUMNS)
    assert len(one) == 9
    # The first contest is predicted from nothing: everyone at the same prior.
    assert one["skill"].iloc[:3].nunique() == 1
    # The last contest's result cannot leak into its own estimates.
    key = ["event_id", "participant_id"]
    pd.testing.assert_frame_equal(one.sort_values(key).reset_index(drop=True),
                                  two.sort_values(key).reset_index(drop=True))
    assert (one["competence_id"] == "informatics").all()


def test_pair_inversion_on_a_known_answer() -> None:
    frame = pd.DataFrame({
        "participant_id": ["a", "b", "c", "a", "b", "c"], "event_id": ["x"] * 3 + ["y"] * 3,
        "date": pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01"] * 3), "rank": [1, 2, 3, 1, 3, 2],
        "rating": [3.0, 2.0, 1.0, 3.0, 2.0, 2.0],
    })
    m = pair_inversion(frame, min_contests=1)
    # x: all orders right (1, 1, 1). y: a right twice; b,c equal ratings (half) and each right vs a.
    assert m["pair_inversion"] == pytest.approx((3 + 1 + 0.75 + 0.75) / 6)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=4000, seed=5, seasons=2), out)
    return out


@pytest.fixture(scope="module")
def world_graph(world: Path) -> AchievementsGraph:
    return AchievementsGraph.from_aif(world / "aif")


@pytest.fixture(scope="module")
def world_model(world_graph: AchievementsGraph) -> CompetenceRatings:
    return CompetenceRatings().fit(world_graph)


def test_recovers_true_skills_better_than_points(world: Path, world_graph: AchievementsGraph,
                                                 world_model: CompetenceRatings) -> None:
    truth = load_truth(world)
    end = truth.config.end_date
    order = world_graph.competence_index.get_indexer(truth.competences)
    rows = world_graph.participant_index.get_indexer(truth.participant_ids.astype(str))
    mu, sd = world_model.skill(np.arange(world_graph.n_participants),
                               on_day=int(np.datetime64(end, "D").astype(np.int64)))
    result = skill_recovery(
        mu[rows][:, order], sd[rows][:, order], truth.skills_at(end),
        results_per_competence(world_graph)[rows][:, order], points_sum(world_graph)[rows][:, order],
        min_results=2,
    )
    assert result["cells"] >= 300
    assert result["spearman"] >= 0.75
    assert result["spearman"] >= result["spearman_points"] + 0.12
    assert 0.85 <= result["coverage"] <= 0.95


def test_fit_is_deterministic(world_graph: AchievementsGraph, world_model: CompetenceRatings) -> None:
    again = CompetenceRatings().fit(world_graph)
    np.testing.assert_array_equal(again.state_.mu, world_model.state_.mu)


def test_profile_has_the_served_fields(world: Path, world_graph: AchievementsGraph,
                                      world_model: CompetenceRatings) -> None:
    table = skill_table(world_model, world_graph)
    assert table["percentile"].between(0, 100).all()
    pid = str(table.sort_values("evidence").iloc[-1]["participant_id"])
    profile = competence_profile(world_model, world_graph, pid, table=table)
    assert profile["participant_id"] == pid
    first = profile["competences"][0]
    assert {"competence_id", "skill", "skill_sd", "interval_90", "percentile", "level", "top_achievements",
            "history"} <= set(first)
    assert first["interval_90"][0] < first["skill"] < first["interval_90"][1]
    assert all(a["contribution"] > 0 for a in first["top_achievements"])
    dates = [h["date"] for h in first["history"]]
    assert dates == sorted(dates) and dates
    identities = pd.read_csv(world / "aif" / "participants.csv", dtype=str)
    person = identities[identities["participant_id"] == pid].iloc[0]
    text = str(profile)
    assert person["last_name"] not in text and person["email"] not in text and person["birth_date"] not in text


def test_replay_command_writes_the_contract_columns(world: Path, tmp_path: Path) -> None:
    from recommender.cli import cli

    out = tmp_path / "replay.csv"
    result = CliRunner().invoke(cli, ["profiles", "replay", str(world / "aif"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["participant_id", "event_id", "competence_id", "skill", "skill_sd"]
    achievements = pd.read_csv(world / "aif" / "achievements.csv")
    assert len(frame) == len(achievements)
    assert (frame["participant_id"].to_numpy() == achievements["participant_id"].to_numpy()).all()
    assert (frame["skill_sd"] > 0).all()
