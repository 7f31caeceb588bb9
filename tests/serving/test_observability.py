"""Request ids, JSON log lines without personal data, and Prometheus metrics."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from recommender.graph import AchievementsGraph
from serving.logs import JsonFormatter
from serving.state import ServingState
from tests.serving.conftest import ApiClientFactory
from tests.tiny import tiny_tables
from training.popularity import PopularityRecommender


def test_request_ids_json_logs_and_metrics(api_client: ApiClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    tables = tiny_tables()
    people = tables["participants"]
    people["first_name"], people["last_name"] = "Анастасия", "Веснушкина"
    people["email"], people["birth_date"] = "nastya@example.org", "2009-03-17"
    graph = AchievementsGraph.from_tables(tables)
    state = ServingState(graph, PopularityRecommender().fit(graph), "next-steps:popularity", "1", [],
                         date(2025, 1, 10))
    client, headers = api_client(state)
    with caplog.at_level(logging.INFO, logger="trajectory.access"):
        assert client.get("/v1/participants/ghost/next-steps", headers=headers["frontend"]).status_code == 404
        r = client.get("/v1/participants/p1/next-steps", headers={**headers["frontend"], "X-Request-ID": "abc-123"})
        generated = client.get("/v1/participants/p1/next-steps", headers=headers["frontend"])
    assert r.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    record = [rec for rec in caplog.records if rec.name == "trajectory.access"][-2]
    line = json.loads(JsonFormatter().format(record))
    assert line["status"] == 200 and line["route"] == "/v1/participants/{participant_id}/next-steps"
    assert line["request_id"] == "abc-123" and line["key_id"] and line["duration_ms"] >= 0
    # names and birth dates of the tiny world appear nowhere in what the service logs
    logged = "\n".join(JsonFormatter().format(rec) for rec in caplog.records) + r.text
    assert not any(s in logged for s in ("Анастасия", "Веснушкина", "nastya@", "2009-03-17"))

    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'trajectory_http_requests_total{method="GET",route="/v1/participants/{participant_id}/next-steps",' \
           'status="200"}' in text
    assert "trajectory_http_request_duration_seconds_bucket" in text
    assert "trajectory_degraded 0.0" in text
