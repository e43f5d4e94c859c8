"""Real servers of each store as local processes, each node through `kvctl.db.launch`.

The same plan a container runs is run here on 127.0.0.1, so a test covers the configuration
each store's `plan` generates, not a hand-written one. Every process is in its own session
and is killed (the whole group) when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import DB, get_db

PORTS_PER_NODE = 3
LOOPBACK = "127.0.0.1"
SERVERS = {"kvctl": "python3", "etcd": "etcd", "redis": "redis-sentinel", "nats": "nats-server"}


def free_base_port(count: int) -> int:
    """A port p with p .. p+count-1 all free now (the OS picks p, we check the rest)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            base = probe.getsockname()[1]
        if base + count < 65535 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


class LocalNodes:
    """The nodes of one store's cluster as process groups on this machine."""

    def __init__(self, db: DB, spec: ClusterSpec, root: Path) -> None:
        self.db, self.spec, self.root = db, spec, root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def data_dir(self, node: str) -> str:
        return str(self.root / node)

    def log(self, node: str) -> str:
        return (self.root / f"{node}.log").read_text(errors="replace")

    def start(self, node: str) -> None:
        spec = self.spec.node(node)
        plan = self.db.plan(self.spec, spec, self.data_dir(node))
        Path(self.data_dir(node)).mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{node}.log", "ab") as out:
            self.processes[node] = subprocess.Popen(
                [sys.executable, "-m", "kvctl.db.launch", plan.to_arg()],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def signal(self, node: str, signum: int) -> None:
        os.killpg(self.processes[node].pid, signum)

    def kill(self, node: str) -> None:
        self.signal(node, signal.SIGKILL)
        self.processes[node].wait()

    def stop_all(self) -> None:
        for node, process in self.processes.items():
            if process.poll() is None:
                self.signal(node, signal.SIGCONT)
                self.kill(node)


def make_spec(db: str, nodes: int, read_mode: str) -> ClusterSpec:
    return ClusterSpec(
        name=f"kvtest-{db}",
        backend="local",
        nodes=[
            NodeSpec(f"n{i}", LOOPBACK, free_base_port(PORTS_PER_NODE))
            for i in range(1, nodes + 1)
        ],
        read_mode=read_mode,
    )


def start_cluster(db_name: str, root: Path, nodes: int = 3,
                  read_mode: str | None = None) -> LocalNodes:
    if shutil.which(SERVERS[db_name]) is None:
        pytest.fail(f"{SERVERS[db_name]} is not installed (scripts/test.sh installs it)")
    db = get_db(db_name)
    cluster = LocalNodes(db, make_spec(db_name, nodes, read_mode or db.read_modes[0]), root)
    for node in cluster.spec.nodes:
        cluster.start(node.name)
    try:
        asyncio.run(db.setup(cluster.spec, timeout=60))
    except BaseException:
        cluster.stop_all()
        raise
    return cluster


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalNodes]]:
    """start(db, nodes=3, read_mode=None) -> LocalNodes; every cluster stopped afterwards."""
    started: list[LocalNodes] = []

    def start(db: str, nodes: int = 3, read_mode: str | None = None) -> LocalNodes:
        cluster = start_cluster(db, tmp_path / f"{db}-{len(started)}", nodes, read_mode)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop_all()
