"""A count of the achievement writes of one service, shared by its workers.

Every request that reads the graph must see what any worker stored before it (fold-in). Asking the database
on every request costs a query and a hop to the thread pool (about a millisecond, a tenth of a request at
1,000,000 participants). A worker that stores achievements bumps this counter after the commit; a worker
whose last look at the counter and at the database is recent answers from memory while the counter stands
still. Writers outside the service (an ingest, another host on the same PostgreSQL) do not bump it: they are
seen by the database look-up every `TRAJECTORY_STORE_POLL_SECONDS`.

`trajectory serve --workers N` makes one counter in anonymous shared memory before it forks, so all its
workers see each other's bumps; apps made in one process (a single worker, tests) share `PROCESS_CHANGES`.
"""

from __future__ import annotations

import mmap
import multiprocessing

import numpy as np


class StoreChanges:
    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared: one counter across a fork
        self._count = np.frombuffer(self._memory, dtype=np.int64, count=1)
        self._lock = multiprocessing.get_context("fork").Lock()

    def bump(self) -> None:
        """After a commit that stored or changed achievements."""
        with self._lock:
            self._count[0] += 1

    def value(self) -> int:
        """An aligned 8-byte read: never torn, no lock needed."""
        return int(self._count[0])


PROCESS_CHANGES = StoreChanges()
