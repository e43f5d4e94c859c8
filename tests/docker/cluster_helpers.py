"""Helpers of the container tests: naming, cleanup, specs, client calls, polling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from docker.client import DockerClient

from kvctl.client import ClientError, run_sync
from kvctl.control.backend import BackendError, ClusterSpec, NodeSpec
from kvctl.control.docker import CLUSTER_LABEL

TEST_PREFIX = "kvtest-"
TEST_LABEL = "kvctl.test"
T = TypeVar("T")


def _ours(labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return TEST_LABEL in labels or labels.get(CLUSTER_LABEL, "").startswith(TEST_PREFIX)


def remove_test_objects(client: DockerClient) -> None:
    """Containers, then networks, then volumes that the tests made (never anyone else's)."""
    for container in client.containers.list(all=True):
        if _ours(container.labels):
            container.remove(force=True)
    for network in client.networks.list():
        if _ours(network.attrs.get("Labels")):
            network.remove()
    for volume in client.volumes.list():
        if _ours(volume.attrs.get("Labels")):
            volume.remove(force=True)


def cluster_name() -> str:
    return f"{TEST_PREFIX}{uuid.uuid4().hex[:6]}"


def new_spec(name: str, nodes: int, backend: str = "docker", **extra: str) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        backend=backend,
        nodes=[NodeSpec(f"n{i}", "", 0) for i in range(1, nodes + 1)],
        extra=dict(extra),
    )


def addresses(spec: ClusterSpec) -> dict[str, str]:
    return {node.name: node.address for node in spec.nodes}


def eventually(action: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
    """Retry `action` until it returns without an error, or fail with the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (ClientError, BackendError, AssertionError, OSError) as err:
            if time.monotonic() > deadline:
                pytest.fail(f"{what or 'condition'} not met within {timeout} s: {err!r}")
        time.sleep(0.2)


def op(spec: ClusterSpec, name: str, *args: Any) -> Any:
    """One client operation (read, write, cas) against the cluster, from the host."""
    return run_sync(addresses(spec), lambda client: getattr(client, name)(*args))


class Kvctl:
    """Runs `kvctl` as a user would, in its own $KVCTL_HOME."""

    def __init__(self, home: Path) -> None:
        self.env = {**os.environ, "KVCTL_HOME": str(home)}

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "kvctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if ok:
            assert result.returncode == 0, f"kvctl {' '.join(args)}: {result.stderr}"
        return result

    def until_ok(self, *args: str, timeout: float = 30.0) -> str:
        """The command's output once it succeeds (a group may be electing a new leader)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self(*args, ok=False)
            if result.returncode == 0:
                return result.stdout.strip()
            assert time.monotonic() < deadline, f"kvctl {' '.join(args)}: {result.stderr}"
