"""Roadmap indicators: on a synthetic world they equal the same indicators computed from the ground truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.aif.reader import read_dataset
from recommender.cli import cli
from recommender.columns import RESULTS_ALL
from recommender.indicators.roadmap import roadmap_indicators
from recommender.synth.config import SynthConfig
from recommender.synth.dates import to_day
from recommender.synth.generate import generate_world
from recommender.synth.simulate import simulate
from recommender.synth.truth import Truth, load_truth


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("indicators") / "world"
    generate_world(SynthConfig(participants=1500, seed=5), out)
    return out


@pytest.fixture(scope="module")
def tables(world: Path) -> dict[str, pd.DataFrame]:
    return read_dataset(world / "aif").tables


@pytest.fixture(scope="module")
def truth(world: Path) -> tuple[Truth, np.ndarray]:
    """The ground truth and the mentors' tech-leader flags (the world re-simulated from its config)."""
    t = load_truth(world)
    return t, simulate(t.config).mentors.tech_leader


def truth_indicators(truth: tuple[Truth, np.ndarray], year: int) -> dict[str, object]:
    """The indicators straight from the simulation's own arrays (no AIF file is read)."""
    t, tech_leader = truth
    h, ev = t.history, t.events
    end_day = to_day(t.config.end_date)
    pending = ev.end[h.reg_event] >= end_day
    person = np.concatenate([h.res_participant, h.reg_participant[pending]])
    event = np.concatenate([h.res_event, h.reg_event[pending]])
    day = np.concatenate([h.res_day, h.reg_day[pending]])
    result = np.concatenate([h.res_result, np.zeros(int(pending.sum()), np.int8)])
    team = np.concatenate([h.res_team, np.full(int(pending.sum()), -1)])
    lo, hi = to_day(date(year, 1, 1)), to_day(date(year + 1, 1, 1))
    in_year = (day >= lo) & (day < hi)
    names = np.array(RESULTS_ALL)
    took = in_year & ~np.isin(names[result], ["registered", "dropped"])

    dates_per_person: dict[int, set[int]] = {}
    for p, d in zip(person[in_year], day[in_year], strict=True):
        dates_per_person.setdefault(int(p), set()).add(int(d))
    teams_took = set(team[took & (team >= 0)].tolist())
    done = took & (team >= 0) & np.isin(names[result], ["completed", "finalist", "prize_winner", "winner"])

    starts = (ev.start >= lo) & (ev.start < hi)
    took_any = ~np.isin(names[result], ["registered", "dropped"])
    sizes = {}
    for e in np.flatnonzero(starts):
        sizes[int(e)] = len(set(person[took_any & (event == e)].tolist()))
    prize = took & np.isin(names[result], ["winner", "prize_winner"]) & (ev.benefit_level[event] >= 0)

    teams = t.teams
    mentored = teams[(teams["mentor_idx"] >= 0) & starts[teams["event_idx"].to_numpy()]]
    per_mentor = mentored.groupby("mentor_idx")["event_idx"].nunique()
    active = per_mentor[per_mentor >= 2].index.to_numpy()
    leaders = int(tech_leader[active].sum())
    return {
        "participants_in_data_environment": len(set(person[in_year].tolist())),
        "permanent_participants": sum(1 for s in dates_per_person.values() if len(s) >= 2),
        "teams_participated": len(teams_took),
        "teams_delivered_project": len(set(team[done].tolist())),  # every synthetic team has a project
        "teams_participated_or_delivered": len(teams_took),
        "events_100_plus": sum(1 for s in sizes.values() if s >= 100),
        "events_1000_plus": sum(1 for s in sizes.values() if s >= 1000),
        "prize_winners_with_benefits": len(set(person[prize].tolist())),
        "mentors_active_2plus_events": len(active),
        "tech_leaders_among_active_mentors": leaders,
        "tech_leader_share": round(leaders / len(active), 4) if len(active) else None,
    }


@pytest.mark.parametrize("year", [2023, 2024])
def test_indicators_agree_with_ground_truth(
    tables: dict[str, pd.DataFrame], truth: tuple[Truth, np.ndarray], year: int
) -> None:
    got = roadmap_indicators(tables, year)["indicators"]
    expected = truth_indicators(truth, year)
    assert got == expected
    # The world is big enough for every indicator to say something.
    assert got["permanent_participants"] > 0 and got["events_100_plus"] > 0
    assert got["mentors_active_2plus_events"] > 0 and got["prize_winners_with_benefits"] > 0


def test_cli_writes_json_and_report_without_personal_data(
    world: Path, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["indicators", "--year", "2024", "--data", str(world / "aif"),
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["year"] == 2024 and payload["indicators"]["participants_in_data_environment"] > 0
    for name in ("indicators.json", "indicators.png", "indicators.html"):
        assert (tmp_path / name).stat().st_size > 0
    people = tables["participants"]
    page = (tmp_path / "indicators.html").read_text(encoding="utf-8") + (tmp_path / "indicators.json").read_text(
        encoding="utf-8")
    for value in people["last_name"].head(50).tolist() + people["email"].head(50).tolist():
        assert str(value) not in page


def test_year_without_data_gives_zeros(tables: dict[str, pd.DataFrame]) -> None:
    got = roadmap_indicators(tables, 1990)["indicators"]
    assert got["participants_in_data_environment"] == 0 and got["tech_leader_share"] is None


def test_store_and_dataset_give_the_same_indicators(
    world: Path, tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAJECTORY_STORE", raising=False)
    monkeypatch.delenv("TRAJECTORY_SNAPSHOT_DIR", raising=False)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(world / "aif"), "--store", store]).exit_code == 0
    from_store = runner.invoke(cli, ["indicators", "--year", "2024", "--store", store])
    assert from_store.exit_code == 0, from_store.output
    expected = roadmap_indicators(tables, 2024)["indicators"]
    assert json.loads(from_store.stdout)["indicators"] == expected
