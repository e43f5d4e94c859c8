"""`kvctl test` turns SIGTERM into Ctrl-C for itself, and only for itself: the processes it
forks meanwhile (the checker's pool, which pool.terminate() ends with SIGTERM) still die of
it quietly."""

from __future__ import annotations

import multiprocessing
import signal
import threading
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


def test_a_worker_forked_from_another_thread_still_dies_of_sigterm():
    """A pool forks its replacement workers from a thread of its own."""
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    workers = []
    with _sigterm_as_interrupt():
        spawner = threading.Thread(
            target=lambda: workers.append(fork.Process(target=_wait_forever, args=(started,)))
        )
        spawner.start()
        spawner.join()
        thread = threading.Thread(target=workers[0].start)
        thread.start()
        thread.join()
        assert started.wait(timeout=30)
        workers[0].terminate()
        workers[0].join(timeout=30)
    assert workers[0].exitcode == -signal.SIGTERM


def _report_sigterm_disposition(conn) -> None:
    conn.send(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)


def test_a_forked_process_starts_with_the_kernels_default_for_sigterm():
    """No Python-level handler in a child: one blocked in C (a pool worker waiting on its
    queue's lock) would only run it once the call returns, and pool.terminate() would hang."""
    fork = multiprocessing.get_context("fork")
    ours, theirs = fork.Pipe()
    with _sigterm_as_interrupt():
        child = fork.Process(target=_report_sigterm_disposition, args=(theirs,))
        child.start()
        assert ours.poll(30)
        assert ours.recv() is True
        child.join(timeout=30)
