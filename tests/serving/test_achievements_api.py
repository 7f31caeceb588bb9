"""POST /v1/achievements: AIF validation per item, exactly-once storage, quarantine, and fold-in in every worker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from recommender.columns import IDENTITY_FIELDS
from recommender.store.store import Store
from recommender.store.tables import AIF_TABLES, achievement_revisions, achievements
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
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "rejected_items": [], "stored": 2,
                        "updated": 0}

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
    assert again == {"accepted": 0, "duplicates": 2, "rejected": 0, "rejected_items": [], "stored": 0, "updated": 0}
    # The same achievement_id under another natural key, and a repeat inside one batch, are duplicates too.
    r = client.post(URL, json=[achievement("p4", "e_online", achievement_id="A-1"),
                               achievement("p3", "e_online"), achievement("p3", "e_online")],
                    headers=keys["frontend"]).json()
    assert (r["accepted"], r["duplicates"], r["rejected"]) == (1, 2, 0)
    assert stored(store) == 7 + 3
    state = client.app.state.serving  # type: ignore[attr-defined]
    assert len(state.graph.achievements) == 7  # posts fold nothing in themselves: the next read does
    next_events(client, keys["frontend"], "p1")
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


def stored_row(store: Store, participant: str, event: str) -> list[tuple[str, str, str]]:
    """(result, date, source) of every stored row of the participant at the event (participant role)."""
    p, e, a = AIF_TABLES["participants"], AIF_TABLES["events"], achievements
    query = (sa.select(a.c.result, a.c.date, a.c.source).select_from(a.join(p, p.c.pk == a.c.participant_pk)
                                                                        .join(e, e.c.pk == a.c.event_pk))
             .where(p.c.participant_id == participant, e.c.event_id == event, a.c.role == "participant"))
    with store.engine.connect() as conn:
        return [(str(r), str(d), str(s)) for r, d, s in conn.execute(query)]


def graph_rows(client: TestClient, participant: str, event: str) -> list[str]:
    """Results of the worker's graph rows of the participant at the event, after a read (which folds in)."""
    assert client.get("/v1/health").status_code == 200
    a = client.app.state.serving.graph.achievements  # type: ignore[attr-defined]
    mine = a[(a["participant_id"] == participant) & (a["event_id"] == event)]
    return [str(r) for r in mine["result"]]


def revisions(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(achievement_revisions)).scalar_one())


def test_a_result_upgrade_updates_the_stored_row_and_every_worker_graph(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    first, keys = api_client(workers())
    second, keys2 = api_client(workers())
    # p2 completed the 2024 school stage (the snapshot's row): not a qualifying result.
    assert "e_reg_final" not in next_events(second, keys2["frontend"], "p2")
    upgrade = achievement("p2", "e_school_24", "winner", "2024-10-02", score=97.5)
    r = first.post(URL, json=[upgrade], headers=keys["frontend"])
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "rejected_items": [], "stored": 0,
                        "updated": 1}
    # One row, upgraded in place (the source stays the ingest that brought it); one revision recorded.
    assert stored_row(store, "p2", "e_school_24") == [("winner", "2024-10-02", "tiny")]
    assert stored(store) == 7 and revisions(store) == 1
    # Both workers: the qualifying result opens the regional final; the graph replaced the row, not added one.
    for client, headers in ((first, keys["frontend"]), (second, keys2["frontend"])):
        assert "e_reg_final" in next_events(client, headers, "p2")
        assert graph_rows(client, "p2", "e_school_24") == ["winner"]
        assert len(client.app.state.serving.graph.achievements) == 7  # type: ignore[attr-defined]

    # Idempotent: the same upgrade again, or the old registration posted late, changes nothing.
    again = first.post(URL, json=[upgrade], headers=keys["frontend"]).json()
    late = second.post(URL, json=[achievement("p2", "e_school_24", "registered", "2024-09-01")],
                       headers=keys2["frontend"]).json()
    for body in (again, late):
        assert (body["accepted"], body["stored"], body["updated"], body["duplicates"]) == (0, 0, 0, 1)
    assert stored_row(store, "p2", "e_school_24") == [("winner", "2024-10-02", "tiny")]
    assert revisions(store) == 1

    # A posted registration, then its result: stored, then updated; a worker started afterwards serves it.
    assert first.post(URL, json=[achievement("p1", "e_online")], headers=keys["frontend"]).json()["stored"] == 1
    body = second.post(URL, json=[achievement("p1", "e_online", "participant", "2025-01-10", rank=3)],
                       headers=keys2["frontend"]).json()
    assert (body["stored"], body["updated"]) == (0, 1)
    late_worker, keys3 = api_client(workers())
    for client, headers in ((first, keys["frontend"]), (second, keys2["frontend"]), (late_worker, keys3["frontend"])):
        next_events(client, headers, "p1")  # a read: the worker folds in what it lacks
        assert graph_rows(client, "p1", "e_online") == ["participant"]
        assert graph_rows(client, "p2", "e_school_24") == ["winner"]
        assert len(client.app.state.serving.graph.achievements) == 8  # type: ignore[attr-defined]


def test_concurrent_upgrades_of_one_key_end_with_one_row(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    apps = [api_client(workers()) for _ in range(2)]
    results = ["registered", "participant", "completed", "finalist", "prize_winner", "winner"]
    answers: list[dict[str, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_run(n: int) -> None:
        client, keys = apps[n % 2]
        for j in range(6):  # each client walks the results in its own order
            item = achievement("c0007", "e_online", results[(n + j) % len(results)], "2025-01-09", rank=n + 1)
            r = client.post(URL, json=[item], headers=keys["frontend"])
            with lock:
                if r.status_code != 202:
                    errors.append(r.text)
                else:
                    answers.append(r.json())

    threads = [threading.Thread(target=client_run, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(answers) == 72
    rows = stored_row(store, "c0007", "e_online")
    assert len(rows) == 1 and stored(store) == 8
    assert sum(a["stored"] for a in answers) == 1
    assert sum(a["updated"] for a in answers) == revisions(store) >= 1
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == 72
    # Every worker's graph ends with the one row, holding what the store holds.
    for client, keys in apps:
        next_events(client, keys["frontend"], "c0007")
        assert graph_rows(client, "c0007", "e_online") == [rows[0][0]]
        assert len(client.app.state.serving.graph.achievements) == 8  # type: ignore[attr-defined]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_registration_and_its_result_in_one_batch_act_as_posted_one_after_the_other(
    store: Store, workers: Callable[[], ServingState], api_client: ApiClientFactory
) -> None:
    client, keys = api_client(workers())
    batch = [achievement("p1", "e_online"), achievement("p1", "e_online"),  # a repeat: a duplicate
             achievement("p1", "e_online", "participant", "2025-01-10", rank=4),
             achievement("p4", "e_online", "winner", "2025-01-10"), achievement("p4", "e_online")]
    body = client.post(URL, json=batch, headers=keys["frontend"]).json()
    assert (body["accepted"], body["stored"], body["updated"], body["duplicates"]) == (3, 2, 1, 2)
    [(result, day, source)] = stored_row(store, "p1", "e_online")
    assert (result, day) == ("participant", "2025-01-10") and source.startswith("api:")
    assert stored_row(store, "p4", "e_online")[0][0] == "winner"  # the late registration did not undo the win
    assert graph_rows(client, "p1", "e_online") == ["participant"]
    assert stored(store) == 9



@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_database_is_asked_only_when_a_write_may_be_missing(
    store: Store, workers: Callable[[], ServingState]
) -> None:
    from sqlalchemy import event

    from serving.app import create_app
    from serving.settings import Settings
    from serving.store_changes import StoreChanges
    from tests.serving.conftest import scope_keys

    poll = 0.5
    host_a, host_b = StoreChanges(), StoreChanges()  # two services on one database: no shared counter
    writer = TestClient(create_app(Settings(store_poll_seconds=600), state=workers(), store_changes=host_a))
    sibling = TestClient(create_app(Settings(store_poll_seconds=600), state=workers(), store_changes=host_a))
    reader = TestClient(create_app(Settings(store_poll_seconds=poll), state=workers(), store_changes=host_b))
    headers = scope_keys(store)["frontend"]
    for client in (writer, sibling, reader):
        assert "e_online" in next_events(client, headers, "p1")  # each looks once (and caches the key)

    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(str(args[2])))
    for _ in range(5):
        next_events(sibling, headers, "p1")
    assert statements == []  # nothing written since the last look: answered from memory, no query

    r = writer.post(URL, json=[achievement("p1", "e_online")], headers=headers)
    assert r.status_code == 202 and r.json()["stored"] == 1
    # A worker of the same service sees the write at once (the shared counter moved) ...
    assert "e_online" not in next_events(sibling, headers, "p1")
    # ... another service's worker by its next look at the database, within store_poll_seconds.
    deadline = time.monotonic() + poll + 2.0
    while "e_online" in next_events(reader, headers, "p1"):
        assert time.monotonic() < deadline, "not folded in within store_poll_seconds"
        time.sleep(0.05)


def test_the_write_counter_is_shared_by_forked_workers() -> None:
    import multiprocessing

    from serving.store_changes import StoreChanges

    changes = StoreChanges()

    def bump_often() -> None:
        for _ in range(500):
            changes.bump()

    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=bump_often) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert changes.value() == 1500  # every bump of every worker, none lost to a race
