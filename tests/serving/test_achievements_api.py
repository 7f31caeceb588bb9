"""POST /v1/achievements: AIF validation per item, exactly-once storage, quarantine, and fold-in in every worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from recommender.columns import IDENTITY_FIELDS
from recommender.store.store import Store
from recommender.store.tables import achievements
from serving.state import ServingState
from tests.serving.conftest import ApiClientFactory
from tests.serving.write_world import NEXT_STEPS, achievement, seeded_store, worker_states

URL = "/v1/achievements"
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with seeded_store(request.param, tmp_path, crowd=300) as s:
        yield s


@pytest.fixture
def workers(store: Store) -> Iterator[Callable[[], ServingState]]:
    with worker_states(store) as make:
        yield make


def next_events(client: TestClient, headers: dict[str, str], participant: str) -> list[str]:
    r = client.get(NEXT_STEPS.format(participant), params={"k": 10}, headers=headers)
    assert r.status_code == 200, r.text
    return [item["event_id"] for item in r.json()["items"]]


def stored(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(achievements)).scalar_one())


def test_a_registration_and_a_qualifying_result_change_next_steps_at_once_in_every_worker(
    workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    first, keys = api_client(workers())
    second, keys2 = api_client(workers())  # another worker: its own graph, the same database
    assert "e_online" in next_events(first, keys["frontend"], "p1")
    assert "e_online" in next_events(second, keys2["frontend"], "p1")
    assert "e_reg_final" not in next_events(second, keys2["frontend"], "p3")

    r = first.post(URL, json=[achievement("p1", "e_online"),
                              achievement("p3", "e_school_24", "winner", "2024-10-01")], headers=keys["frontend"])
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "rejected_items": []}

    # The taken event disappears and the next stage opens, in the worker that stored them and in the other.
    for client, headers in ((first, keys["frontend"]), (second, keys2["frontend"])):
        assert "e_online" not in next_events(client, headers, "p1")
        assert "e_reg_final" in next_events(client, headers, "p3")
    health = second.get("/v1/health").json()
    assert not any("database" in reason for reason in health["reasons"])


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_worker_started_after_a_post_serves_it_too(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    first, keys = api_client(workers())
    assert first.post(URL, json=[achievement("p1", "e_online")], headers=keys["frontend"]).json()["accepted"] == 1
    # The snapshot predates the post: a worker starting now loads a graph without it and must catch up.
    late, keys2 = api_client(workers())
    assert "e_online" not in next_events(late, keys2["frontend"], "p1")
    assert stored(store) == 8


def test_posting_again_stores_nothing_new(store: Store, workers: Callable[[], ServingState],
                                          api_client: ApiClientFactory) -> None:
    client, keys = api_client(workers())
    batch = [achievement("p1", "e_online", achievement_id="A-1"), achievement("p2", "e_region77")]
    assert client.post(URL, json=batch, headers=keys["frontend"]).json()["accepted"] == 2
    again = client.post(URL, json=batch, headers=keys["frontend"]).json()
    assert again == {"accepted": 0, "duplicates": 2, "rejected": 0, "rejected_items": []}
    # The same achievement_id under another natural key, and a repeat inside one batch, are duplicates too.
    r = client.post(URL, json=[achievement("p4", "e_online", achievement_id="A-1"),
                               achievement("p3", "e_online"), achievement("p3", "e_online")],
                    headers=keys["frontend"]).json()
    assert (r["accepted"], r["duplicates"], r["rejected"]) == (1, 2, 0)
    assert stored(store) == 7 + 3
    state = client.app.state.serving  # type: ignore[attr-defined]
    assert len(state.graph.achievements) == 7 + 3  # folded in once each


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_invalid_items_are_rejected_with_reasons_quarantined_and_the_rest_stored(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    client, keys = api_client(workers())
    secret = {"email": "kid@example.ru", "last_name": "Ivanova", "birth_date": "2010-02-19"}
    items = [
        achievement("p1", "e_online", note="from the mobile app", **secret),  # valid; identity fields dropped
        {"participant_id": "p2", "event_id": "e_online", "result": "registered", "date": "2025-01-10"},
        achievement("p2", "e_online", "champion"),
        achievement("p2", "e_online", day="10.01.2025"),
        achievement("p2", "e_online", day="2025-03-01"),
        achievement("ghost", "e_online", **secret),
        achievement("p2", "e_nowhere"),
        achievement("p2", "e_online", rank=0),
    ]
    r = client.post(URL, json=items, headers=keys["frontend"])
    assert r.status_code == 202
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 7)
    reasons = {item["index"]: (item["field"], item["reason"]) for item in body["rejected_items"]}
    assert reasons[1] == ("role", "missing required field 'role'")
    assert reasons[2][0] == "result" and "champion" in reasons[2][1]
    assert reasons[3][0] == "date" and "YYYY-MM-DD" in reasons[3][1]
    assert reasons[4] == ("date", "date 2025-03-01 is after today (2025-01-10)")
    assert reasons[5] == ("participant_id", "unknown participant_id 'ghost'")
    assert reasons[6] == ("event_id", "unknown event_id 'e_nowhere'")
    assert reasons[7][0] == "rank"

    files = list(store.quarantine_dir.glob("api-achievements-*.csv"))
    assert len(files) == 1
    quarantined = pd.read_csv(files[0], dtype=str)
    assert sorted(quarantined["line"].astype(int)) == [1, 2, 3, 4, 5, 6, 7]
    assert set(quarantined["table"]) == {"achievements"}
    text = files[0].read_text(encoding="utf-8") + r.text
    for value in secret.values():
        assert value not in text  # personal data never reaches a response or a quarantine file
    with store.engine.connect() as conn:
        extra = conn.execute(sa.select(achievements.c.extra).where(achievements.c.source.like("api:%"))).scalar_one()
    assert json.loads(extra) == {"note": "from the mobile app"}
    assert not set(json.loads(extra)) & set(IDENTITY_FIELDS)


def test_concurrent_clients_store_each_achievement_exactly_once(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    events = ["e_online", "e_region77", "e_reg_final", "e_school_24", "e_closed", "e_past"]
    roles = ["participant", "volunteer"]
    unique = [dict(achievement(f"c{i % 300:04d}", events[(i // 300) % 6], "participant", "2024-12-01"),
                   role=roles[i // 1800]) for i in range(2000)]
    # 16 clients over two workers; each posts an overlapping window of 250 items in batches of 50.
    apps = [api_client(workers()) for _ in range(2)]
    totals: list[dict[str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_run(n: int) -> None:
        client, keys = apps[n % 2]
        window = [unique[(n * 125 + j) % len(unique)] for j in range(250)]
        for start in range(0, len(window), 50):
            r = client.post(URL, json=window[start:start + 50], headers=keys["frontend"])
            with lock:
                if r.status_code != 202:
                    errors.append(r.text)
                else:
                    totals.append(r.json())

    threads = [threading.Thread(target=client_run, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(t["accepted"] for t in totals) == 2000
    assert sum(t["accepted"] + t["duplicates"] for t in totals) == 16 * 250
    assert stored(store) == 7 + 2000
    with store.engine.connect() as conn:
        keys_stored = conn.execute(sa.select(achievements.c.participant_pk, achievements.c.event_pk,
                                             achievements.c.role)).all()
    assert len(set(keys_stored)) == len(keys_stored)
    for client, keys in apps:  # every worker's graph holds each row once, after its next read
        next_events(client, keys["frontend"], "c0000")
        assert len(client.app.state.serving.graph.achievements) == 7 + 2000  # type: ignore[attr-defined]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_writes_need_the_frontend_scope(workers: Callable[[], ServingState], api_client: ApiClientFactory) -> None:
    client, keys = api_client(workers())
    assert client.post(URL, json=[achievement("p1", "e_online")]).status_code == 401
    r = client.post(URL, json=[achievement("p1", "e_online")], headers=keys["partner"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post(URL, json={"participant_id": "p1"}, headers=keys["frontend"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
