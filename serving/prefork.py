"""`trajectory serve --workers N`: load the graph and models once, then fork N workers that share them.

A 1,000,000-participant world's graph, ranking context and side models take gigabytes; loading them in
every worker (uvicorn's own multi-worker mode spawns fresh interpreters) multiplies that by N and the
start-up time with it. Here the parent loads once, freezes the loaded objects out of the garbage
collector's reach (so that collections in a worker do not write to, and so copy, the shared pages) and
forks. Each worker then serves from the same physical memory until it changes something (a fold-in, a
swapped model), which it copies for itself alone.

The parent supervises: SIGTERM or SIGINT is passed to every worker, which finishes its requests in flight
(up to the graceful time-out) and exits; a worker that dies otherwise is replaced by a new fork of the
loaded state, which catches up with the store's newer rows on its first request (fold-in).

Nothing in the parent may have started OpenMP threads before forking (LightGBM's pool would hang in a
child): loading predicts on one thread, and workers predict requests on one thread.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("trajectory.serving")

# Workers are replaced when they die, but not in a crash loop: this many deaths within the window stop the service.
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_SECONDS = 60.0


class Supervisor:
    """Forks `workers` children that each run `serve(listening_socket)`, and keeps them running."""

    def __init__(self, serve: Callable[[socket.socket], None], sock: socket.socket, workers: int) -> None:
        self.serve = serve
        self.sock = sock
        self.workers = workers
        self.children: dict[int, float] = {}  # pid -> start time
        self.deaths: deque[float] = deque(maxlen=CRASH_LOOP_DEATHS)
        self.stopping = False

    def _fork_one(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                self.serve(self.sock)
            except BaseException:
                log.exception("worker %d stopped with an error", os.getpid())
                code = 1
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()
        log.info("worker %d started", pid)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    def run(self) -> int:
        """Fork the workers and wait: 0 after a requested stop, 1 when workers kept dying."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self) -> int:
        for _ in range(self.workers):
            self._fork_one()
        status = 0
        while self.children:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            _forget_metrics_of(pid)
            if started is None or self.stopping:
                continue
            now = time.monotonic()
            log.warning("worker %d exited (status %d) after %.0f s; starting another", pid, code, now - started)
            self.deaths.append(now)
            if len(self.deaths) == CRASH_LOOP_DEATHS and now - self.deaths[0] < CRASH_LOOP_SECONDS:
                log.error("%d workers died within %.0f s; stopping the service", CRASH_LOOP_DEATHS, CRASH_LOOP_SECONDS)
                status = 1
                self._stop(signal.SIGTERM, None)
                continue
            self._fork_one()
        return status


def _forget_metrics_of(pid: int) -> None:
    """A dead worker's live gauges (degraded, model served) leave /metrics with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def share_loaded_objects() -> None:
    """Collect once, then move every object alive now out of the collector's generations: a collection in a
    worker no longer touches them, so their pages stay shared with the parent and the other workers."""
    gc.collect()
    gc.freeze()
