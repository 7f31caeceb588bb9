"""Side models at start-up: registry first, fitted fallbacks declared in /v1/health, capabilities off but never 500."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.columns import Columns
from serving.settings import Settings
from serving.side_models import load_side_models
from serving.state import load_state
from tests.registry import use_tmp_registry
from tests.serving.conftest import ApiClientFactory
from tests.serving.people_world import default_side, graph_of, state_over, world
from training.mentors import MentorModel, rank_mentors
from training.side_training import train_side_models


def test_fallbacks_are_fitted_and_declared(api_client: ApiClientFactory) -> None:
    w = world()
    side = load_side_models(graph_of(w.tables), w.as_of, fit_max_achievements=10**9, registry=False)
    assert side.competence is not None and side.mentors is not None and side.team_success is not None
    assert all(m.fallback for m in side.loaded())
    assert set(side.problems) == {"competence", "mentors", "team-success"}
    assert all("fitted on the served graph" in why for why in side.problems.values())
    client, headers = api_client(state_over(side))
    health = client.get("/v1/health").json()
    assert health["status"] == "degraded"
    assert {"competence-profiles", "mentors", "team-success"} <= {m["name"] for m in health["models"]}
    assert any(r.startswith("competence: ") for r in health["reasons"])
    pid = str(side.graph.participant_index[0])
    assert client.get(f"/v1/participants/{pid}/profile", headers=headers["frontend"]).status_code == 200


def test_too_much_data_to_fit_switches_capabilities_off_without_errors(api_client: ApiClientFactory) -> None:
    w = world()
    side = load_side_models(graph_of(w.tables), w.as_of, fit_max_achievements=0, registry=False)
    assert side.competence is None and side.team_success is None and side.mentors is not None
    assert "too much data" in side.problems["competence"]
    client, headers = api_client(state_over(side))
    pid = str(side.graph.participant_index[0])
    event = str(side.graph.event_index[int(np.flatnonzero(side.team_events)[0])])
    for r in (client.get(f"/v1/participants/{pid}/profile", headers=headers["frontend"]),
              client.get(f"/v1/participants/{pid}/teammates", params={"event_id": event}, headers=headers["frontend"]),
              client.post("/v1/programs/PRG000/scores", json={"participant_ids": [pid]}, headers=headers["partner"])):
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
        assert "too much data" in r.json()["error"]["message"]
    assert client.get(f"/v1/participants/{pid}/mentors", headers=headers["frontend"]).status_code == 200


def test_registered_models_are_loaded_and_stale_ones_refitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_tmp_registry(tmp_path, monkeypatch)
    w = world()
    graph = graph_of(w.tables)
    empty = load_side_models(graph, w.as_of, fit_max_achievements=10**9)
    assert "no competence model in the registry" in empty.problems["competence"]

    summary = train_side_models(graph, data_label="test")  # what `trajectory train` logs beside next steps
    assert summary["team_success_version"] == "1"
    side = load_side_models(graph, w.as_of, fit_max_achievements=10**9)
    assert dict(side.problems) == {}
    assert side.competence is not None and side.mentors is not None and side.team_success is not None
    assert side.competence.run_id == summary["competence_run_id"] and side.mentors.run_id == summary["run_id"]
    assert side.competence.version == f"run-{summary['competence_run_id'][:8]}"
    assert side.team_success.version == "1"
    fitted = default_side()
    assert side.profiles is not None and fitted.profiles is not None
    np.testing.assert_allclose(side.profiles.skill, fitted.profiles.skill)
    mentor_model = MentorModel().fit(graph)
    np.testing.assert_allclose(side.mentors.model.effect_, mentor_model.effect_, atol=1e-6)
    pid = str(graph.participant_index[0])
    assert list(rank_mentors(side.mentors.model, graph, participant_id=pid)[Columns.Mentor]) == list(
        rank_mentors(mentor_model, graph, participant_id=pid)[Columns.Mentor])

    # A graph that has grown since training: the logged rating no longer fits it and is refitted.
    tables = dict(w.tables)
    extra = tables["participants"].iloc[:1].copy()
    extra[Columns.Participant] = pd.array(["P-new"], dtype="string")
    tables["participants"] = pd.concat([tables["participants"], extra], ignore_index=True)
    grown = load_side_models(graph_of(tables), w.as_of, fit_max_achievements=10**9)
    assert "fitted on other data" in grown.problems["competence"]
    assert grown.competence is not None and grown.competence.fallback

    # The service's start-up attaches them, lists them and reports degradation, whatever else failed.
    settings = Settings(store=f"sqlite:///{tmp_path / 'service.db'}", as_of=w.as_of.date())
    state = load_state(settings, graph_of(tables))
    try:
        assert state.side is not None and state.side.competence is not None
        assert {"competence-profiles", "mentors", "team-success"} <= {m.name for m in state.loaded_models()}
        assert any(r.startswith("competence: ") for r in state.degraded_reasons)
    finally:
        assert state.store is not None
        state.store.close()
