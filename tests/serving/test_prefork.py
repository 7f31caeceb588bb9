"""The pre-fork supervisor: workers that keep dying stop the service instead of restarting forever."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from serving.prefork import CRASH_LOOP_DEATHS, Supervisor


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_workers_that_keep_dying_stop_the_service_and_restore_signal_handlers() -> None:
    started: list[int] = []

    def broken(_listening: socket.socket) -> None:
        raise RuntimeError("a worker that cannot start")

    before = signal.getsignal(signal.SIGTERM)
    with socket.socket() as sock:
        supervisor = Supervisor(broken, sock, workers=2)
        original_fork = supervisor._fork_one

        def counting_fork() -> None:
            started.append(1)
            original_fork()

        supervisor._fork_one = counting_fork  # type: ignore[method-assign]
        assert supervisor.run() == 1
    # Two first workers, then a replacement for each death until the fifth death stops the loop.
    assert len(started) == CRASH_LOOP_DEATHS + 1
    assert not supervisor.children
    assert signal.getsignal(signal.SIGTERM) is before
