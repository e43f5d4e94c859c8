"""What every backend promises about its verbs, checked on a real one (local, docker, ssh).

See `kvctl.control.backend.IDEMPOTENT`: asking for the state a node is in does nothing and
returns None; pausing or resuming a node that is not running is a BackendError that says so.
"""

from __future__ import annotations

import time

import pytest

from kvctl.control.backend import IDEMPOTENT, Backend, BackendError, ClusterSpec

RUNNING, PAUSED, STOPPED = (True, False), (True, True), (False, False)


def settles(backend: Backend, spec: ClusterSpec, node: str, expected: tuple[bool, bool]) -> None:
    """The node's (running, paused) becomes `expected` within a few seconds (a killed process
    takes a moment to be gone)."""
    deadline = time.monotonic() + 10
    while True:
        status = next(s for s in backend.status(spec) if s.name == node)
        if (status.running, status.paused) == expected:
            return
        assert time.monotonic() < deadline, f"{node} is {status}, expected {expected}"
        time.sleep(0.05)


def twice(backend: Backend, verb: str, spec: ClusterSpec, node: str,
          expected: tuple[bool, bool]) -> None:
    """`verb` leaves the node in `expected`, and doing it again changes nothing."""
    for _ in range(2):
        assert getattr(backend, verb)(spec, node) is None
        settles(backend, spec, node, expected)


def check_verbs(backend: Backend, spec: ClusterSpec, node: str) -> None:
    """Every node verb on `node` (running when called), as every backend must do it."""
    assert backend.idempotent == IDEMPOTENT and spec.backend == backend.name
    settles(backend, spec, node, RUNNING)
    twice(backend, "resume", spec, node, RUNNING)
    twice(backend, "pause", spec, node, PAUSED)
    twice(backend, "resume", spec, node, RUNNING)
    twice(backend, "start", spec, node, RUNNING)
    twice(backend, "kill", spec, node, STOPPED)
    for verb in ("pause", "resume"):
        with pytest.raises(BackendError, match=f"{node} is not running"):
            getattr(backend, verb)(spec, node)
    twice(backend, "start", spec, node, RUNNING)
    backend.pause(spec, node)
    twice(backend, "start", spec, node, RUNNING)  # start resumes a paused node
    backend.pause(spec, node)
    twice(backend, "kill", spec, node, STOPPED)  # a paused node can be killed
    backend.start(spec, node)
    settles(backend, spec, node, RUNNING)
