"""API v1 next steps and health over a hand-made graph with known eligible answers."""

from datetime import date

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recommender.graph import AchievementsGraph
from serving.app import create_app
from serving.settings import Settings
from serving.state import ServingState
from tests.serving.conftest import ApiClientFactory
from tests.tiny import tiny_tables
from training.popularity import PopularityRecommender


@pytest.fixture
def client(api_client: ApiClientFactory) -> TestClient:
    """A client that presents a frontend key on every request."""
    graph = AchievementsGraph.from_tables(tiny_tables())
    model = PopularityRecommender().fit(graph.as_of("2025-01-10"))
    state = ServingState(graph, model, "next-steps:popularity", "3", [], date(2025, 1, 10))
    client, headers = api_client(state)
    client.headers.update(headers["frontend"])
    return client


def test_next_steps_are_eligible_with_reasons(client: TestClient) -> None:
    r = client.get("/v1/participants/p1/next-steps", params={"k": 5})
    assert r.status_code == 200
    body = r.json()
    ids = [item["event_id"] for item in body["items"]]
    assert set(ids) == {"e_reg_final", "e_online", "e_region77"}
    assert [item["rank"] for item in body["items"]] == [1, 2, 3]
    final = next(item for item in body["items"] if item["event_id"] == "e_reg_final")
    assert any("next stage" in reason for reason in final["reasons"])
    assert all(1 <= len(item["reasons"]) <= 2 for item in body["items"])
    assert body["model"] == "next-steps:popularity@3"


def test_filters(client: TestClient) -> None:
    r = client.get("/v1/participants/p1/next-steps", params={"online_only": "true"})
    assert {i["event_id"] for i in r.json()["items"]} == {"e_reg_final", "e_online"}
    r = client.get("/v1/participants/p1/next-steps", params={"format": "hackathon"})
    assert [i["event_id"] for i in r.json()["items"]] == ["e_region77"]


def test_errors_have_one_shape(client: TestClient) -> None:
    r = client.get("/v1/participants/ghost/next-steps")
    assert r.status_code == 404 and r.json()["error"]["code"] == "participant_not_found"
    r = client.get("/v1/participants/p1/next-steps", params={"k": 0})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.get("/v1/participants/p1/next-steps", params={"format": "party"})
    assert r.status_code == 422 and "party" in r.json()["error"]["message"]


def test_health_reports_model_and_degradation(client: TestClient) -> None:
    body = client.get("/v1/health").json()
    assert body["status"] == "ok" and body["models"][0]["version"] == "3"
    graph = AchievementsGraph.from_tables(tiny_tables())
    fallback = ServingState(graph, PopularityRecommender().fit(graph), "fallback:popularity", None,
                            ["champion model 'next-steps' unavailable"], date(2025, 1, 10))
    body = TestClient(create_app(Settings(), state=fallback)).get("/v1/health").json()
    assert body["degraded"] is True and body["status"] == "degraded" and body["reasons"]


def test_trajectory_plans_the_next_stage_in_order(client: TestClient) -> None:
    r = client.get("/v1/participants/p1/trajectory", params={"goal": "level:regional"})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [s["event_id"] for s in body["steps"]]
    assert "e_reg_final" in ids  # p1 qualified at the 2024 school stage
    dates = [s["start_date"] for s in body["steps"]]
    assert dates == sorted(dates)
    assert 0.0 < body["probability"] <= 1.0
    # p3 lives in region 16: the Moscow hackathon is never planned for them.
    r = client.get("/v1/participants/p3/trajectory", params={"goal": "competence:ai"})
    assert "e_region77" not in [s["event_id"] for s in r.json()["steps"]]


def test_trajectory_rejects_unknown_goals(client: TestClient) -> None:
    r = client.get("/v1/participants/p1/trajectory", params={"goal": "fame:lots"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_goal"


class _FeatureMismatch(PopularityRecommender):
    """A model whose scoring breaks on live data, as a model trained on other features does."""

    def _score(self, *args: object, **kwargs: object) -> np.ndarray:
        raise ValueError("The number of features in data (28) is not the same as it was in training data (29)")


def test_a_model_failing_on_requests_degrades_to_popularity_never_500(api_client: ApiClientFactory) -> None:
    graph = AchievementsGraph.from_tables(tiny_tables())
    state = ServingState(graph, _FeatureMismatch().fit(graph), "next-steps:broken", "7", [], date(2025, 1, 10))
    client, headers = api_client(state)
    for _ in range(2):
        r = client.get("/v1/participants/p1/next-steps", headers=headers["frontend"])
        assert r.status_code == 200 and r.json()["model"] == "fallback:popularity_region_grade"
        assert {i["event_id"] for i in r.json()["items"]} == {"e_reg_final", "e_online", "e_region77"}
    health = client.get("/v1/health").json()
    assert health["degraded"] and "next-steps:broken@7 failed on a request (ValueError)" in health["reasons"][0]
