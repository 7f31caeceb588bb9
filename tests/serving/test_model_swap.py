"""Hot swap against a real MLflow registry: promotion, rollback and a broken version while requests keep coming."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.graph import AchievementsGraph
from serving.app import create_app
from serving.settings import Settings
from tests.registry import register, register_broken, use_tmp_registry
from tests.serving.conftest import Headers, scope_keys
from tests.tiny import tiny_tables
from training import tracking
from training.baselines import GlobalPopularityRecommender
from training.popularity import PopularityRecommender
from training.side_training import train_side_models

TODAY = date(2025, 1, 10)
REGION_GRADE = "next-steps:popularity_region_grade"  # the kind of version 1
GLOBAL = "next-steps:popularity"  # the kind of version 2


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One registry for the module: a good version 1 and 2 of different kinds, a broken version 3."""
    with pytest.MonkeyPatch.context() as mp:
        use_tmp_registry(tmp_path_factory.mktemp("registry"), mp)
        graph = AchievementsGraph.from_tables(tiny_tables()).as_of(TODAY)
        versions = {
            "region_grade": register(PopularityRecommender().fit(graph)),
            "global": register(GlobalPopularityRecommender().fit(graph)),
            "broken": register_broken(),
        }
        # The profile, mentor and team models of the served graph: start-up finds them, nothing is degraded.
        train_side_models(AchievementsGraph.from_tables(tiny_tables()), data_label="tiny")
        yield versions


@pytest.fixture
def no_champion(registry: dict[str, str]) -> dict[str, str]:
    """Every test starts with no champion and no history."""
    import mlflow

    client = mlflow.MlflowClient()
    aliases = client.get_registered_model(tracking.NEXT_STEPS_MODEL).aliases
    for alias in aliases:
        client.delete_registered_model_alias(tracking.NEXT_STEPS_MODEL, alias)
    client.delete_registered_model_tag(tracking.NEXT_STEPS_MODEL, tracking.CHAMPION_HISTORY_TAG)
    return registry


def serve(tmp_path: Path, poll_seconds: float) -> TestClient:
    """The app as `trajectory serve` builds it: state loaded from the store and the registry at start-up."""
    settings = Settings(store=f"sqlite:///{tmp_path / 'service.db'}", as_of=TODAY, model_poll_seconds=poll_seconds)
    return TestClient(create_app(settings, graph=AchievementsGraph.from_tables(tiny_tables())))


class Hammer:
    """Requests next steps without pause from a thread; records every status and answering model."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers
        self.statuses: list[int] = []
        self.models: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            r = self.client.get("/v1/participants/p1/next-steps", params={"k": 3}, headers=self.headers)
            self.statuses.append(r.status_code)
            if r.status_code == 200:
                self.models.append(r.json()["model"])

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_for(self, model: str, timeout: float = 15.0) -> None:
        seen = len(self.models)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if model in self.models[seen:]:
                return
            time.sleep(0.02)
        raise AssertionError(f"{model} never answered; last answers {self.models[-3:]}")


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_promote_rollback_and_a_broken_version_without_a_failed_request(
    no_champion: dict[str, str], tmp_path: Path
) -> None:
    v = no_champion
    tracking.set_champion(v["region_grade"])
    with serve(tmp_path, poll_seconds=0.1) as client:
        headers: Headers = scope_keys(client.app.state.serving.store)  # type: ignore[attr-defined]
        with Hammer(client, headers["frontend"]) as hammer:
            hammer.wait_for(f"{REGION_GRADE}@{v['region_grade']}")
            first = client.app.state.serving.next_steps.model  # type: ignore[attr-defined]

            tracking.set_champion(v["global"])  # promotion = moving the alias
            hammer.wait_for(f"{GLOBAL}@{v['global']}")
            assert tracking.rollback_champion() == v["region_grade"]
            hammer.wait_for(f"{REGION_GRADE}@{v['region_grade']}")
            # The rollback takes back the model object it served before: nothing loaded or rebuilt again.
            assert client.app.state.serving.next_steps.model is first  # type: ignore[attr-defined]

            tracking.set_champion(v["broken"])

            def says_broken() -> bool:
                body = client.get("/v1/health").json()
                return body["degraded"] and any(f"version {v['broken']} is broken" in r for r in body["reasons"])

            wait_until(says_broken)
            served_after_broken = len(hammer.models)
            time.sleep(0.3)  # several polls: the broken version is never swapped in
        assert hammer.statuses and set(hammer.statuses) == {200}, "a request failed during a swap"
        assert set(hammer.models[served_after_broken:]) == {f"{REGION_GRADE}@{v['region_grade']}"}
        health = client.get("/v1/health").json()
        assert health["status"] == "degraded"
        assert health["models"][0]["version"] == v["region_grade"]

        listed = client.get("/v1/models", headers=headers["analyst"])
        assert listed.status_code == 200
        (next_steps,) = [m for m in listed.json()["models"] if m["name"] == "next-steps"]
        assert next_steps["version"] == v["region_grade"] and next_steps["alias"] == "champion"
        assert next_steps["run_id"] and next_steps["fallback"] is False

        tracking.set_champion(v["global"])  # a good version again clears the degradation
        wait_until(lambda: client.get("/v1/health").json()["status"] == "ok")


def test_without_a_champion_the_fallback_serves_until_reload_finds_one(
    no_champion: dict[str, str], tmp_path: Path
) -> None:
    v = no_champion
    with serve(tmp_path, poll_seconds=0) as client:  # polling off: only a forced reload looks
        headers: Headers = scope_keys(client.app.state.serving.store)  # type: ignore[attr-defined]
        health = client.get("/v1/health").json()
        assert health["status"] == "degraded" and "serving popularity" in " ".join(health["reasons"])
        answer = client.get("/v1/participants/p1/next-steps", headers=headers["frontend"]).json()
        assert answer["model"].startswith("fallback:")
        listed = client.get("/v1/models", headers=headers["analyst"]).json()["models"]
        assert listed[0]["fallback"] is True and listed[0]["version"] is None

        assert client.post("/v1/models/reload", headers=headers["analyst"]).status_code == 403
        assert client.get("/v1/models", headers=headers["frontend"]).status_code == 403
        assert client.get("/v1/models").status_code == 401

        empty = client.post("/v1/models/reload", headers=headers["admin"]).json()
        assert empty["outcome"] == "no_champion" and empty["degraded"] is True

        tracking.set_champion(v["broken"])
        broken = client.post("/v1/models/reload", headers=headers["admin"]).json()
        assert broken["outcome"] == "broken" and broken["serving"]["fallback"] is True
        assert any("broken" in r for r in broken["reasons"])

        tracking.set_champion(v["global"])
        swapped = client.post("/v1/models/reload", headers=headers["admin"]).json()
        assert swapped["outcome"] == "swapped" and swapped["serving"]["version"] == v["global"]
        assert swapped["degraded"] is False and swapped["reasons"] == []
        answer = client.get("/v1/participants/p1/next-steps", headers=headers["frontend"]).json()
        assert answer["model"] == f"{GLOBAL}@{v['global']}"
        assert client.get("/v1/health").json()["status"] == "ok"
        again = client.post("/v1/models/reload", headers=headers["admin"]).json()
        assert again["outcome"] == "unchanged"
