"""Long jobs: mentor assignment and team formation run in the background; status from any worker; dead jobs fail."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from features.team_features import TEAM_FEATURES
from recommender.store import online
from recommender.store.store import Store
from recommender.store.tables import jobs
from serving.loaded_model import LoadedModel
from serving.services.jobs import DEAD_WORKER, start_up, worker_id
from serving.side_models import build_side_models
from tests.serving.conftest import ApiClientFactory, Headers
from tests.serving.write_world import TODAY, seeded_store, worker_states, world_tables
from training import teams as teams_module
from training.teams import CONFIDENT_SEARCH, TEAM_MODEL, TeamSuccessModel


def jobs_tables() -> dict[str, pd.DataFrame]:
    """The tiny world plus an online AI hackathon for teams of 2-3: ten registrants, two of them teams
    without a mentor (T1, T2), and two mentors with one place each: M1 online, M2 only in region 16."""
    t = world_tables(crowd=10)
    t["participants"]["settlement_type"] = pd.array([None] * 4 + ["city"] * 10, dtype="string")
    hack = pd.DataFrame({
        "event_id": pd.array(["e_hack"], dtype="string"), "title": pd.array(["AI hackathon"], dtype="string"),
        "format": pd.array(["hackathon"], dtype="string"), "level": pd.array(["regional"], dtype="string"),
        "competences": pd.array(["ai:1;teamwork:0.5"], dtype="string"), "start_date": pd.to_datetime(["2025-02-20"]),
        "end_date": pd.to_datetime(["2025-02-22"]), "online": pd.array([True], dtype="boolean"),
        "team_min": pd.array([2], dtype="Int64"), "team_max": pd.array([3], dtype="Int64"),
    })
    t["events"] = pd.concat([t["events"], hack], ignore_index=True)
    t["teams"] = pd.DataFrame({"team_id": pd.array(["T1", "T2"], dtype="string"),
                               "event_id": pd.array(["e_hack"] * 2, dtype="string")})
    t["mentors"] = pd.DataFrame({
        "mentor_id": pd.array(["M1", "M2"], dtype="string"), "competences": pd.array(["ai:1"] * 2, dtype="string"),
        "region_code": pd.array(["50", "16"], dtype="string"), "capacity": pd.array([1, 1], dtype="Int64"),
        "online": pd.array([True, False], dtype="boolean"),
    })
    ids = [f"c{i:04d}" for i in range(10)]
    registered = pd.DataFrame({
        "participant_id": pd.array(ids, dtype="string"), "event_id": pd.array(["e_hack"] * 10, dtype="string"),
        "role": pd.array(["participant"] * 10, dtype="string"), "result": pd.array(["registered"] * 10, dtype="string"),
        "date": pd.to_datetime(["2025-01-05"] * 10),
        "team_id": pd.array([None] * 6 + ["T1", "T1", "T2", "T2"], dtype="string"),
    })
    t["achievements"] = pd.concat([t["achievements"], registered], ignore_index=True)
    return t


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with seeded_store(request.param, tmp_path, tables=jobs_tables()) as s:
        yield s


@pytest.fixture
def apps(store: Store, api_client: ApiClientFactory) -> Iterator[list[tuple[TestClient, Headers]]]:
    """Two workers over the store."""
    with worker_states(store) as make:
        yield [api_client(make()), api_client(make())]


def finished(client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_mentor_assignment_runs_in_the_background_and_any_worker_reports_it(
    apps: list[tuple[TestClient, Headers]],
) -> None:
    (first, keys), (second, keys2) = apps
    r = first.post("/v1/events/e_hack/mentor-assignment", headers=keys["admin"])
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "queued" and accepted["status_url"] == f"/v1/jobs/{accepted['job_id']}"
    done = finished(second, keys2["admin"], accepted["job_id"])  # asked of the other worker
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["kind"] == "mentor_assignment" and done["event_id"] == "e_hack"
    result = done["result"]
    # M2 works only in region 16; M1 (online) has one place: one team gets it, the other waits.
    assert [(a["team_id"][:1], a["mentor_id"]) for a in result["assigned"]] == [("T", "M1")]
    assert len(result["unassigned"]) == 1
    assert {result["assigned"][0]["team_id"], *result["unassigned"]} == {"T1", "T2"}
    assert done["started_at"] <= done["finished_at"]


def test_team_formation_covers_every_registrant_within_size_limits(apps: list[tuple[TestClient, Headers]]) -> None:
    client, keys = apps[0]
    r = client.post("/v1/events/e_hack/team-formation", headers=keys["admin"])
    assert r.status_code == 202, r.text
    done = finished(client, keys["admin"], r.json()["job_id"])
    assert done["status"] == "succeeded", done
    teams = done["result"]["teams"]
    members = [p for team in teams for p in team["participant_ids"]]
    assert sorted(members) == [f"c{i:04d}" for i in range(10)]
    assert all(2 <= len(team["participant_ids"]) <= 3 for team in teams)
    # These workers hold no side models: the draft ran, and the result says so.
    assert done["result"]["method"] == "draft" and done["result"]["team_success_model"] is None
    assert "no team-success model" in done["result"]["note"]

    groups = client.post("/v1/events/e_hack/team-formation", headers=keys["admin"],
                         json={"participant_ids": ["c0000", "c0001", "c0002", "c0003"],
                               "groups": ["a", "a", None, None]})
    grouped = finished(client, keys["admin"], groups.json()["job_id"])["result"]["teams"]
    assert any({"c0000", "c0001"} <= set(team["participant_ids"]) for team in grouped)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_team_formation_uses_the_loaded_team_success_model(store: Store, api_client: ApiClientFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A model (with four resampled refits) that learned teams do well with schoolmates. By default the job drafts
    # and the model predicts each team's success; with a search as the default formation the job searches with
    # it. Either way it says which method ran with which model, and keeps size limits and the requested group.
    rng = np.random.default_rng(0)
    history = pd.DataFrame(rng.random((600, len(TEAM_FEATURES))), columns=list(TEAM_FEATURES))
    history["event_idx"] = np.repeat(np.arange(150), 4)
    score = 2.0 * history["same_school"].to_numpy() + rng.normal(0.0, 0.1, 600)
    model = TeamSuccessModel(CONFIDENT_SEARCH.model_copy(update={"min_child_samples": 5, "monotone": False})
                             ).fit(history, score)
    ids = [f"c{i:04d}" for i in range(10)]
    results = {}
    with worker_states(store) as make:
        state = make()
        team = LoadedModel(TEAM_MODEL, "lightgbm", f"{TEAM_MODEL}:lightgbm", model, "3")
        state.side = build_side_models(state.graph, pd.Timestamp(TODAY), None, None, team)
        client, keys = api_client(state)
        for name, formation in (("default", teams_module.DEFAULT_FORMATION), ("search", CONFIDENT_SEARCH)):
            monkeypatch.setattr(teams_module, "DEFAULT_FORMATION", formation)
            r = client.post("/v1/events/e_hack/team-formation", headers=keys["admin"],
                            json={"participant_ids": ids, "groups": ["a", "a", *[None] * 8]})
            results[name] = finished(client, keys["admin"], r.json()["job_id"])
    for name, method in (("default", "draft"), ("search", "confident_search")):
        done = results[name]
        assert done["status"] == "succeeded", done
        result = done["result"]
        assert result["method"] == method and result["team_success_model"] == "team-success:lightgbm@3"
        assert "note" not in result
        teams = result["teams"]
        assert sorted(p for t in teams for p in t["participant_ids"]) == ids
        assert all(2 <= len(t["participant_ids"]) <= 3 for t in teams)
        assert any({"c0000", "c0001"} <= set(t["participant_ids"]) for t in teams)
        assert all(0.0 <= t["predicted_success"] <= 1.0 for t in teams)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_failures_are_recorded_with_a_clear_error(apps: list[tuple[TestClient, Headers]]) -> None:
    client, keys = apps[0]
    r = client.post("/v1/events/e_hack/team-formation", headers=keys["admin"],
                    json={"participant_ids": ["c0000", "ghost"]})
    done = finished(client, keys["admin"], r.json()["job_id"])
    assert done["status"] == "failed" and done["result"] is None
    assert done["error"] == "1 registrants are not in the data"
    r = client.post("/v1/events/e_region77/team-formation", headers=keys["admin"])  # nobody registered
    assert finished(client, keys["admin"], r.json()["job_id"])["error"] == \
        "event 'e_region77' has no registrants to form teams from"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_requests_are_checked_before_a_job_starts(apps: list[tuple[TestClient, Headers]]) -> None:
    client, keys = apps[0]
    r = client.post("/v1/events/e_nowhere/mentor-assignment", headers=keys["admin"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "event_not_found"
    r = client.post("/v1/events/e_hack/team-formation", headers=keys["admin"], json={"groups": ["a"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert client.post("/v1/events/e_hack/mentor-assignment", headers=keys["frontend"]).status_code == 403
    assert client.get("/v1/jobs/job_nope", headers=keys["admin"]).status_code == 404
    assert client.get("/v1/jobs/job_nope", headers=keys["frontend"]).status_code == 403


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_jobs_left_by_stopped_workers_are_reported_failed(store: Store, api_client: ApiClientFactory) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    workers = {
        "dead_here": f"{host}:{gone.pid}:0badf00d",  # a process of this host that exited
        "silent_elsewhere": "other-host:4242:cafe",  # another host, no heartbeat for ten minutes
        "alive_elsewhere": "other-host:4343:beef",  # another host, heartbeat just now
        "mine": worker_id(),  # this very process: alive
    }
    for name, worker in workers.items():
        online.create_job(store.engine, f"job_{name}", "team_formation", "e_hack", {}, None, worker)
        online.start_job(store.engine, f"job_{name}")
    with store.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == "job_silent_elsewhere")
                     .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=10)))
    with worker_states(store) as make:
        state = make()
        start_up(state)  # what a worker does when it starts
        client, keys = api_client(state)
        status = {name: client.get(f"/v1/jobs/job_{name}", headers=keys["admin"]).json() for name in workers}
    assert status["dead_here"]["status"] == "failed" and status["dead_here"]["error"] == DEAD_WORKER
    assert status["silent_elsewhere"]["status"] == "failed"
    assert status["alive_elsewhere"]["status"] == "running"
    assert status["mine"]["status"] == "running"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "failed")
                            ).scalar_one() == 2
