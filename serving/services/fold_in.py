"""Keeps each worker's in-memory graph current with the store: new achievement rows are folded in, no retraining."""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Annotated, Final

import anyio.to_thread
import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Request
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.models import GraphFollower
from recommender.store import online
from recommender.store.store import Store
from recommender.store.tables import PK
from serving.deps import per_state
from serving.state import ServingState
from serving.store_changes import StoreChanges

log = logging.getLogger("trajectory.serving")

# Requests that read the graph fold in newer rows first (one indexed query when the shared write counter moved
# or the poll interval passed), so an achievement stored by any worker shows in the next answer of every worker.
SYNCED_PATHS: Final = ("/v1/participants/", "/v1/teams/", "/v1/programs/", "/v1/health")
HEALTH_PATH: Final = "/v1/health"
PAGE_ROWS: Final = 50_000
# After a failed look-up the store is not asked again for this long: requests answer from memory at once.
RETRY_SECONDS: Final = 2.0
STORE_DOWN: Final = ("the database is unreachable: answering from the graph in memory; achievements stored "
                     "since may be missing")


class GraphSync:
    """One worker's view of the store's achievements: a pk watermark and the rows folded in past it.

    Achievement writes commit in pk order (`online.lock_writes`), so "every stored row with a pk above
    the watermark" is exactly what this worker's graph lacks. The first sync finds the watermark of the
    loaded graph: the pk of its newest row (the snapshot is written in pk order); when that row cannot be
    found, it folds in every row the API stored (the only rows a snapshot can lack) and starts from the
    newest pk. Rows the API changed after storing them (a result upgrade) are found the same way, by a
    second watermark over their revisions (in commit order too); a worker starts it at 0, so it folds in
    every change since the snapshot, and a fold-in replaces the graph's row of that key.

    The database is asked only when the service's shared write counter moved since the last look (a worker
    stored something) or `poll_seconds` passed (writers outside the service); see serving/store_changes.py.
    """

    def __init__(self, state: ServingState, changes: StoreChanges, poll_seconds: float) -> None:
        self.state = state
        self.changes = changes
        self.poll_seconds = poll_seconds
        self._seen_changes = -1  # the counter's value at the last successful look at the database
        self._poll_at = 0.0
        self.watermark: int | None = None
        self.revision = 0  # the newest achievement revision folded in
        self.folded = 0  # rows folded in since start-up
        self.skipped = 0  # rows of events the loaded graph does not hold (they need a graph reload)
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._down = False

    # ---- the per-request check ---------------------------------------------------------------------------
    def current(self) -> bool:
        """True when the graph holds everything the store had at the last look and nothing was written since:
        a request may answer without asking the database (cheap; called on the event loop)."""
        return (not self._down and self.watermark is not None and self.changes.value() == self._seen_changes
                and time.monotonic() < self._poll_at)

    def sync(self, *, look: bool = False) -> int:
        """Fold in what other workers (or this one) stored since the last call; the rows folded.

        Never raises on a database outage: the graph in memory keeps answering and /health says why.
        After a failure the store is asked again only RETRY_SECONDS later (or after a successful write,
        `stored`). Else it is asked only when the graph may lack something (see `current`), or with `look`
        (/health reports the database as it is).
        """
        store = self.state.store
        if store is None:
            return 0
        if self._down and time.monotonic() < self._retry_at:
            return 0
        if not look and self.current():
            return 0
        changes = self.changes.value()  # read before the look: a write committed meanwhile moves it again
        looked = time.monotonic()
        try:
            if self.watermark is not None:
                with store.engine.connect() as conn:
                    newest, revision = online.achievement_marks(conn)
                    if newest <= self.watermark and revision <= self.revision:
                        self._set_down(False)
                        self._looked(changes, looked)
                        return 0
            with self._lock:
                folded = self._catch_up(store)
        except SQLAlchemyError as exc:
            self._set_down(True, exc)
            return 0
        except Exception:  # a bug here must not fail the request: it answers from the graph in memory
            log.exception("fold-in failed; answering from the graph in memory")
            return 0
        self._set_down(False)
        self._looked(changes, looked)
        return folded

    def stored(self) -> None:
        """This worker just stored or changed achievements: every worker of the service folds them in before its
        next answer that reads the graph. The database answered, so a pause after an outage ends here."""
        self.changes.bump()
        self._retry_at = 0.0

    def _looked(self, changes: int, at: float) -> None:
        self._seen_changes = changes
        self._poll_at = at + self.poll_seconds

    def _catch_up(self, store: Store) -> int:
        folded = 0
        with store.engine.connect() as conn:
            if self.watermark is None:
                self.watermark, folded = self._start(conn)
            while True:
                rows = online.achievements_after(conn, self.watermark, PAGE_ROWS)
                if len(rows):
                    folded += self._fold(conn, rows)
                    self.watermark = int(rows[PK].iloc[-1])
                if len(rows) < PAGE_ROWS:
                    break
            while True:
                rows = online.achievements_revised_after(conn, self.revision, PAGE_ROWS)
                if len(rows):
                    folded += self._fold(conn, rows.drop(columns=[online.REVISION]))
                    self.revision = int(rows[online.REVISION].iloc[-1])
                if len(rows) < PAGE_ROWS:
                    return folded

    def _start(self, conn: Connection) -> tuple[int, int]:
        """The watermark of the graph as loaded, and the rows folded to reach it."""
        a = self.state.graph.achievements
        base = len(a) - self.state.graph.live_rows
        if base == 0:
            return 0, 0
        last = a.iloc[base - 1]
        anchor = online.achievement_pk(conn, str(last[Columns.Participant]), str(last[Columns.Event]),
                                       str(last[Columns.Role]))
        if anchor is not None:
            return anchor, 0
        newest = online.max_achievement_pk(conn)
        posted = online.posted_achievements(conn, newest)
        return newest, self._fold(conn, posted) if len(posted) else 0

    def _fold(self, conn: Connection, rows: pd.DataFrame) -> int:
        graph = self.state.graph
        known_event = np.asarray(graph.event_index.get_indexer(rows[Columns.Event].astype(str))) >= 0
        if not known_event.all():
            missing = int((~known_event).sum())
            self.skipped += missing
            log.warning("fold-in: %d stored achievements name events the loaded graph lacks; a reload serves them",
                        missing)
        rows = rows[known_event].drop(columns=[PK])
        ids = rows[Columns.Participant].astype(str)
        unseen = ids[graph.participant_positions(ids.to_numpy()) < 0].unique().tolist()
        participants = online.participant_rows(conn, unseen) if unseen else None
        if participants is not None and len(participants) < len(unseen):
            # Cannot happen while the foreign keys hold; never let it fail the fold-in of the other rows.
            found = set(participants[Columns.Participant].astype(str))
            lost = ids.isin(set(unseen) - found).to_numpy()
            self.skipped += int(lost.sum())
            rows = rows[~lost]
        started = time.perf_counter()
        folded, added, replaced = graph.fold_achievements(rows, participants=participants)
        if added or replaced:
            self._carry_model_state(graph, folded, ids)
        self.state.graph = folded  # one reference swap: requests under way keep the graph they read
        self.folded += added + replaced
        if added or replaced:
            log.info("fold-in: %d achievements added, %d updated in %.1f ms", added, replaced,
                     1000 * (time.perf_counter() - started))
        return added + replaced

    def _carry_model_state(self, before: AchievementsGraph, after: AchievementsGraph, ids: pd.Series) -> None:
        """Let the next-steps model patch its per-graph state for the participants folded in, so that the first
        request on the new graph does not rebuild it (the re-ranker's context: ~40 s at 1,000,000)."""
        model = self.state.next_steps.model
        if not isinstance(model, GraphFollower):
            return
        try:
            positions = after.participant_positions(ids.to_numpy())
            model.graph_folded(before, after, positions[positions >= 0])
        except Exception:  # never fails the fold-in: the model then rebuilds its state on the next request
            log.exception("fold-in: the next-steps model could not carry its state over")

    def _set_down(self, down: bool, exc: Exception | None = None) -> None:
        reasons = self.state.degraded_reasons
        with _REASONS_LOCK:
            if down:
                if not self._down:
                    # The driver's text may hold the URL: the log gets the class name only.
                    log.warning("store unreachable (%s): answering from memory", type(exc).__name__)
                self._retry_at = time.monotonic() + RETRY_SECONDS
                if STORE_DOWN not in reasons:
                    reasons.append(STORE_DOWN)
            elif self._down and STORE_DOWN in reasons:
                log.info("store reachable again")
                reasons.remove(STORE_DOWN)
            self._down = down


_REASONS_LOCK = threading.Lock()
def graph_sync_for(app: FastAPI) -> GraphSync:
    """The app's GraphSync for its current serving state (made on first use)."""
    return per_state(app, "graph_sync", lambda state: GraphSync(
        state, app.state.store_changes, float(app.state.settings.store_poll_seconds)))


def get_graph_sync(request: Request) -> GraphSync:
    return graph_sync_for(request.app)


GraphSyncDep = Annotated[GraphSync, Depends(get_graph_sync)]


class FreshGraphMiddleware:
    """Before a request that reads the graph, fold in what the store gained since (see SYNCED_PATHS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        if path.startswith(SYNCED_PATHS):
            app = scope.get("app")
            if isinstance(app, FastAPI) and getattr(app.state, "serving", None) is not None:
                sync = graph_sync_for(app)
                health = path.startswith(HEALTH_PATH)
                if health or not sync.current():  # else nothing was stored since the last look: no query, no hop
                    await anyio.to_thread.run_sync(functools.partial(sync.sync, look=health))
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Keep the app's graph current with the store on every request that reads it."""
    app.add_middleware(FreshGraphMiddleware)
