"""The demo path end to end on a small world: synth -> ingest -> train (MLflow) -> API next steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recommender.eligibility import eligibility_mask, open_events
from recommender.graph import AchievementsGraph
from serving.app import create_app
from serving.settings import Settings


def _trajectory(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", "from recommender.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    env["TRAJECTORY_STORE"] = f"sqlite:///{root / 'store.db'}"
    report = _trajectory(["demo", "--no-serve", "--participants", "1500", "--seed", "3",
                          "--out", str(root / "world")], env, root)
    return {"root": root, "env": env, "report": report}


def test_demo_reports_every_step(demo: dict) -> None:
    report = demo["report"]
    totals = report["ingest"]["reports"][0]["total"]
    assert totals["read"] == totals["loaded"] + totals["merged"] + totals["quarantined"]
    assert totals["quarantined"] == 0 and totals["loaded"] > 0
    registered = report["train"]["registered"]
    assert registered["alias"] == "champion" and registered["version"] is not None
    metrics = report["train"]["metrics"]
    assert set(metrics) == {"popularity_region_grade", "implicit_als", "lightgbm_lambdarank"}
    assert all(0.0 < m["ndcg@10"] <= 1.0 for m in metrics.values())


def test_api_serves_the_champion_and_eligible_next_steps(demo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_URI", "TRAJECTORY_STORE"):
        monkeypatch.setenv(key, demo["env"][key])
    settings = Settings(store=demo["env"]["TRAJECTORY_STORE"], as_of=demo["report"]["as_of"], log_format="text")
    key = _trajectory(["keys", "create", "--scope", "frontend", "--name", "e2e"], demo["env"], demo["root"])["key"]
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        health = client.get("/v1/health").json()
        assert health["degraded"] is False, health["reasons"]
        state = client.app.state.serving  # type: ignore[attr-defined]
        graph: AchievementsGraph = state.graph
        active = graph.achievements["participant_id"].value_counts().index[:20]
        answered = 0
        for pid in active:
            body = client.get(f"/v1/participants/{pid}/next-steps", params={"k": 10}).json()
            items = [item["event_id"] for item in body["items"]]
            events = open_events(graph, settings.as_of)
            mask = eligibility_mask(graph, settings.as_of, graph.participant_positions([pid]), events)[0]
            assert set(items) <= set(graph.event_index[events][mask])
            assert all(item["reasons"] for item in body["items"])
            answered += bool(items)
        assert answered >= 15  # most active participants have open, eligible events
        assert np.isfinite([i["score"] for i in body["items"]]).all()
