"""`kvctl test` turns SIGTERM into Ctrl-C for itself, and only for itself: the processes it
forks meanwhile (the checker's pool, which pool.terminate() ends with SIGTERM) still die of
it quietly."""

from __future__ import annotations

import multiprocessing
import signal
import time

import pytest

from kvctl.cli.test import _sigterm_as_interrupt


def _wait_forever(started) -> None:
    started.set()
    while True:
        time.sleep(1)


def test_sigterm_is_ctrl_c_in_the_test_itself():
    with _sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
        time.sleep(5)  # interrupted at once; never reached in full


def test_a_forked_worker_still_dies_of_sigterm():
    fork = multiprocessing.get_context("fork")
    with _sigterm_as_interrupt():
        started = fork.Event()
        worker = fork.Process(target=_wait_forever, args=(started,))
        worker.start()
        assert started.wait(timeout=30)  # (a signal in the instant of fork is lost anyway)
        worker.terminate()  # SIGTERM
        worker.join(timeout=30)
    assert worker.exitcode == -signal.SIGTERM
