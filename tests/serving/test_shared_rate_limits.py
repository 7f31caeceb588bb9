"""One key's rate holds across the worker processes forked from one parent."""

from __future__ import annotations

import os

import pytest

from serving.auth import RateLimiter
from serving.shared_rate_limits import SharedRateLimiter

PER_MINUTE = 60  # 1 a second, bursts of 10


def _burst_in_children(limiter: SharedRateLimiter | RateLimiter, key: str, children: int, tries: int) -> int:
    """Requests of `key` passed by `children` forked processes trying `tries` times each, right away."""
    pids = []
    read_end, write_end = os.pipe()
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            passed = sum(limiter.retry_after(key, PER_MINUTE) == 0.0 for _ in range(tries))
            os.write(write_end, bytes([passed]))
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(write_end)
    counts = os.read(read_end, children)
    os.close(read_end)
    return sum(counts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_a_key_gets_its_burst_once_across_workers_not_once_per_worker() -> None:
    shared = _burst_in_children(SharedRateLimiter(), "k1", children=3, tries=30)
    assert 10 <= shared <= 11  # one bucket of 10 (a token may refill while the children run)
    separate = _burst_in_children(RateLimiter(), "k1", children=3, tries=30)
    assert separate == 30  # the per-process limiter: each worker grants the whole burst


def test_keys_have_their_own_buckets_and_a_refused_request_says_when_to_retry() -> None:
    limiter = SharedRateLimiter(slots=64)
    assert all(limiter.retry_after("a", PER_MINUTE) == 0.0 for _ in range(10))
    wait = limiter.retry_after("a", PER_MINUTE)
    assert 0.0 < wait <= 1.0
    assert limiter.retry_after("b", PER_MINUTE) == 0.0


def test_a_full_table_takes_over_the_slot_used_longest_ago() -> None:
    limiter = SharedRateLimiter(slots=16)  # one probe window: the 17th key must evict
    for i in range(16):
        assert limiter.retry_after(f"key{i}", PER_MINUTE) == 0.0
    assert limiter.retry_after("newcomer", PER_MINUTE) == 0.0
    keys = set(limiter._table["key"].tolist())
    assert len(keys) == 16 and 0 not in keys
