"""Database outage: store routes answer 503 store_unavailable, reads answer from memory, and all recovers by itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender.graph import AchievementsGraph
from recommender.store.store import Store
from serving.errors import STORE_UNAVAILABLE
from serving.services.fold_in import RETRY_SECONDS, STORE_DOWN
from serving.settings import Settings
from serving.state import ServingState
from tests.pg import postgres_url
from tests.serving.conftest import ApiClientFactory
from tests.serving.write_world import NEXT_STEPS, TODAY, achievement, seed, world_tables
from training.popularity import PopularityRecommender


class TcpProxy:
    """127.0.0.1:<port> forwarded to a server; `down()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


Outage = tuple[Callable[[], None], Callable[[], None]]  # (make unreachable, restore)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Outage]]:
    """A seeded store as a worker sees it, and how to take its database away and bring it back."""
    files = {"snapshot_dir": tmp_path / "snapshot", "quarantine_dir": tmp_path / "quarantine"}
    if request.param == "sqlite":
        home, away = tmp_path / "db", tmp_path / "db-away"
        home.mkdir()
        with Store(f"sqlite:///{home / 'service.db'}", **files) as store:
            seed(store, world_tables())

            def unreachable() -> None:
                store.engine.dispose()  # the open file handles go with the volume
                shutil.move(home, away)

            def restore() -> None:
                shutil.move(away, home)

            yield store, (unreachable, restore)
        return
    with postgres_url("test_outage") as url:
        with Store(url, **files) as admin:
            seed(admin, world_tables())
        proxy = TcpProxy(("127.0.0.1", 5432))
        proxy.up()
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "&connect_timeout=2"
        try:
            with Store(proxied, **files) as store:
                yield store, (proxy.down, proxy.up)
        finally:
            proxy.down()


def worker(store: Store) -> ServingState:
    graph = AchievementsGraph.from_tables(store.tables())
    return ServingState(graph, PopularityRecommender().fit(graph.as_of(TODAY)), "next-steps:popularity", "1", [],
                        TODAY, store=store)


def assert_store_unavailable(response: Any, store: Store) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"error": {"code": "store_unavailable", "message": STORE_UNAVAILABLE}}
    for leak in ("Traceback", "sqlite", "postgres", "5432", str(store.url)):
        assert leak not in response.text


def test_outage_answers_503_reads_from_memory_and_recovers_without_restart(
    outage_store: tuple[Store, Outage], api_client: ApiClientFactory
) -> None:
    store, (unreachable, restore) = outage_store
    client, keys = api_client(worker(store), Settings(key_cache_seconds=600))
    front, admin = keys["frontend"], keys["admin"]
    # Keys seen before the outage keep working through it (the key cache).
    assert client.get(NEXT_STEPS.format("p1"), headers=front).status_code == 200
    assert client.get("/v1/jobs/job_none", headers=admin).status_code == 404
    assert client.get("/v1/health").json()["status"] == "ok"

    unreachable()
    assert_store_unavailable(client.post("/v1/achievements", json=[achievement("p1", "e_online")], headers=front),
                             store)
    assert_store_unavailable(client.post("/v1/feedback", json=[
        {"feedback_id": "f1", "participant_id": "p1", "kind": "click"}], headers=front), store)
    assert_store_unavailable(client.post("/v1/events/e_online/team-formation", headers=admin), store)
    assert_store_unavailable(client.get("/v1/jobs/job_none", headers=admin), store)
    # Reads answer from the graph in memory, and /health says why the service is degraded.
    r = client.get(NEXT_STEPS.format("p1"), headers=front)
    assert r.status_code == 200 and "e_online" in [i["event_id"] for i in r.json()["items"]]
    health = client.get("/v1/health").json()
    assert health["degraded"] is True and STORE_DOWN in health["reasons"]

    restore()
    r = client.post("/v1/achievements", json=[achievement("p1", "e_online")], headers=front)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    r = client.get(NEXT_STEPS.format("p1"), headers=front)
    assert "e_online" not in [i["event_id"] for i in r.json()["items"]]
    assert STORE_DOWN not in client.get("/v1/health").json()["reasons"]


@pytest.mark.parametrize("outage_store", ["sqlite"], indirect=True)
def test_reads_recover_by_themselves_after_the_retry_pause(
    outage_store: tuple[Store, Outage], api_client: ApiClientFactory
) -> None:
    store, (unreachable, restore) = outage_store
    client, keys = api_client(worker(store), Settings(key_cache_seconds=600))
    assert client.get(NEXT_STEPS.format("p1"), headers=keys["frontend"]).status_code == 200
    unreachable()
    assert STORE_DOWN in client.get("/v1/health").json()["reasons"]
    restore()
    # Within the pause requests do not wait on the database; after it, the next request finds it back.
    assert STORE_DOWN in client.get("/v1/health").json()["reasons"]
    time.sleep(RETRY_SECONDS + 0.1)
    health = client.get("/v1/health").json()
    assert STORE_DOWN not in health["reasons"] and health["status"] == "ok"
