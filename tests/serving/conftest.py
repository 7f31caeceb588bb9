"""Serving test helpers: an app over a given state with a real SQLite store and one API key per scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.store.api_keys import SCOPES, create_key
from recommender.store.store import Store
from serving.app import create_app
from serving.settings import Settings
from serving.state import ServingState

Headers = dict[str, dict[str, str]]
ApiClientFactory = Callable[..., tuple[TestClient, Headers]]


def scope_keys(store: Store) -> Headers:
    """Create one key per scope in a (migrated) store; the Authorization headers that present them."""
    store.migrate()
    headers = {}
    for scope in SCOPES:
        _, secret = create_key(store.engine, f"test-{scope}", [scope])
        headers[scope] = {"Authorization": f"Bearer {secret}"}
    return headers


def sqlite_store(path: Path) -> Store:
    path.mkdir(parents=True, exist_ok=True)
    return Store(f"sqlite:///{path / 'service.db'}", snapshot_dir=path / "snapshot",
                 quarantine_dir=path / "quarantine")


@pytest.fixture
def api_client(tmp_path: Path) -> Iterator[ApiClientFactory]:
    """`api_client(state, settings=None) -> (client, headers[scope])`.

    A state without a store gets a fresh SQLite one; the keys are created in the state's store.
    """
    opened: list[Store] = []

    def make(state: ServingState, settings: Settings | None = None) -> tuple[TestClient, Headers]:
        if state.store is None:
            state.store = sqlite_store(tmp_path / f"store{len(opened)}")
            opened.append(state.store)
        headers = scope_keys(state.store)
        return TestClient(create_app(settings or Settings(), state=state)), headers

    yield make
    for store in opened:
        store.close()
