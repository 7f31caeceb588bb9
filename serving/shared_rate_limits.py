"""Rate limits per key across every worker of one service: token buckets in memory the workers share.

`trajectory serve --workers N` forks its workers from one parent (serving/prefork.py); a table created in
the parent before the fork, in anonymous shared memory, is seen by all of them, so a key gets its rate once
per service, not once per worker. Keys are hashed into a fixed table (open addressing over a short probe
window; when the window is full, the slot used longest ago is taken over, which can only grant a burst,
never refuse a key wrongly). A worker that cannot take the lock quickly lets the request pass: a stuck
worker must not block the others.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import time

import numpy as np

SLOTS = 8192
PROBE = 16
LOCK_TIMEOUT_SECONDS = 0.05
_SLOT = np.dtype([("key", "<u8"), ("tokens", "<f8"), ("last", "<f8")])


def _key_hash(key_id: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key_id.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


class SharedRateLimiter:
    """The same contract as `serving.auth.RateLimiter`, shared by the processes forked after it was made."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._memory = mmap.mmap(-1, slots * _SLOT.itemsize)  # anonymous and shared: survives fork as one
        self._table = np.frombuffer(self._memory, dtype=_SLOT)
        self._lock = multiprocessing.get_context("fork").Lock()

    def _slot(self, key: int, now: float) -> tuple[int, bool]:
        """The key's slot and whether it was already there."""
        n = len(self._table)
        window = (key % n + np.arange(PROBE)) % n
        keys = self._table["key"][window]
        found = np.flatnonzero(keys == key)
        if len(found):
            return int(window[found[0]]), True
        empty = np.flatnonzero(keys == 0)
        if len(empty):
            return int(window[empty[0]]), False
        return int(window[np.argmin(self._table["last"][window])]), False

    def retry_after(self, key_id: str, per_minute: int) -> float:
        """0 when a request may pass now (and takes a token), else seconds until one may."""
        rate = per_minute / 60.0
        capacity = max(1.0, rate * 10.0)
        key = _key_hash(key_id)
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            return 0.0
        try:
            now = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
            slot, known = self._slot(key, now)
            row = self._table[slot]
            tokens = min(capacity, float(row["tokens"]) + (now - float(row["last"])) * rate) if known else capacity
            passed = tokens >= 1.0
            self._table[slot] = (key, tokens - 1.0 if passed else tokens, now)
            return 0.0 if passed else (1.0 - tokens) / rate
        finally:
            self._lock.release()
