"""POST /v1/feedback: stored once per feedback_id with its details; unknown participants and events rejected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from recommender.store.store import Store
from recommender.store.tables import AIF_TABLES, feedback
from tests.serving.conftest import ApiClientFactory
from tests.serving.write_world import seeded_store, worker_states

URL = "/v1/feedback"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with seeded_store(request.param, tmp_path) as s:
        yield s


def stored(store: Store) -> list[dict[str, object]]:
    p, e = AIF_TABLES["participants"], AIF_TABLES["events"]
    query = (sa.select(feedback.c.feedback_id, p.c.participant_id, e.c.event_id, feedback.c.kind, feedback.c.position,
                       feedback.c.model, feedback.c.request_id, feedback.c.occurred_at, feedback.c.key_id)
             .select_from(feedback.join(p, p.c.pk == feedback.c.participant_pk)
                          .outerjoin(e, e.c.pk == feedback.c.event_pk))
             .order_by(feedback.c.feedback_id))
    with store.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def test_feedback_is_stored_once_with_its_details(store: Store, api_client: ApiClientFactory) -> None:
    with worker_states(store) as make:
        client, keys = api_client(make())
        batch = [
            {"feedback_id": "f1", "participant_id": "p1", "event_id": "e_online", "kind": "impression", "position": 2,
             "model": "next-steps:popularity@1", "request_id": "req-7", "occurred_at": "2025-01-10T09:30:00+03:00"},
            {"feedback_id": "f2", "participant_id": "p1", "event_id": "e_online", "kind": "click"},
            {"feedback_id": "f3", "participant_id": "p2", "kind": "registration", "event_id": "e_region77"},
            {"feedback_id": "f2", "participant_id": "p1", "event_id": "e_online", "kind": "click"},  # a retry
        ]
        r = client.post(URL, json=batch, headers=keys["frontend"])
        assert r.status_code == 202, r.text
        assert r.json() == {"accepted": 3, "duplicates": 1, "rejected": 0, "rejected_items": []}
        again = client.post(URL, json=batch[:3], headers=keys["frontend"]).json()
        assert again == {"accepted": 0, "duplicates": 3, "rejected": 0, "rejected_items": []}
        rows = stored(store)
        assert [row["feedback_id"] for row in rows] == ["f1", "f2", "f3"]
        first = rows[0]
        assert (first["participant_id"], first["event_id"], first["kind"], first["position"], first["model"],
                first["request_id"]) == ("p1", "e_online", "impression", 2, "next-steps:popularity@1", "req-7")
        occurred = first["occurred_at"]
        assert isinstance(occurred, datetime)
        aware = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
        assert aware == datetime(2025, 1, 10, 6, 30, tzinfo=UTC)
        assert rows[1]["occurred_at"] is None and rows[1]["key_id"] == first["key_id"] is not None


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_unknown_references_are_rejected_and_bad_items_refused(store: Store, api_client: ApiClientFactory) -> None:
    with worker_states(store) as make:
        client, keys = api_client(make())
        r = client.post(URL, json=[
            {"feedback_id": "g1", "participant_id": "ghost", "kind": "click", "event_id": "e_online"},
            {"feedback_id": "g2", "participant_id": "p1", "kind": "click", "event_id": "e_nowhere"},
            {"feedback_id": "g3", "participant_id": "p1", "kind": "impression"},
        ], headers=keys["frontend"])
        assert r.status_code == 202
        body = r.json()
        assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 2)
        assert body["rejected_items"] == [
            {"index": 0, "field": "participant_id", "reason": "unknown participant_id 'ghost'"},
            {"index": 1, "field": "event_id", "reason": "unknown event_id 'e_nowhere'"},
        ]
        r = client.post(URL, json=[{"feedback_id": "g4", "participant_id": "p1", "kind": "like"}],
                        headers=keys["frontend"])
        assert r.status_code == 422 and "kind" in r.json()["error"]["message"]
        assert client.post(URL, json=[], headers=keys["analyst"]).status_code == 403
        assert [row["feedback_id"] for row in stored(store)] == ["g3"]
