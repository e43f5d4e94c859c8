"""A store's cluster as processes on this machine, each node through `kvctl.db.launch`.

For the store clients' tests and for benchmarks side by side: the plan a container runs is
run here on 127.0.0.1 with ports of its own per node, so what is measured or tested is the
configuration each store's `plan` generates. Every node is a process group of its own, so a
kill or a pause takes the whole node (a store and its Sentinel alike).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import DB

LOOPBACK = "127.0.0.1"
PORTS_PER_NODE = 3  # the most any store takes (NATS: clients, routes, monitoring)


def free_base_port(count: int = PORTS_PER_NODE) -> int:
    """A port p with p .. p+count-1 all free now (the OS picks p, the rest are checked)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            base = probe.getsockname()[1]
        if base + count < 65535 and all(_free(base + i) for i in range(count)):
            return base
    raise OSError("no run of free ports found on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


class LocalCluster:
    """The nodes of one store's cluster as process groups under `root`."""

    def __init__(self, db: DB, name: str, nodes: int, root: Path,
                 read_mode: str | None = None) -> None:
        read_mode = read_mode or db.read_modes[0]
        db.check_read_mode(read_mode)
        self.db, self.root = db, root
        self.spec = ClusterSpec(
            name=name,
            backend="local",
            nodes=[NodeSpec(f"n{i}", LOOPBACK, free_base_port()) for i in range(1, nodes + 1)],
            read_mode=read_mode,
            extra={"db": db.name},
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def data_dir(self, node: str) -> Path:
        return self.root / node

    def log(self, node: str) -> str:
        return (self.root / f"{node}.log").read_text(errors="replace")

    def start(self, node: str) -> None:
        """Start (or restart, from its data) one node."""
        data = self.data_dir(node)
        data.mkdir(parents=True, exist_ok=True)
        command = self.db.local_command(self.spec, self.spec.node(node), str(data))
        with open(self.root / f"{node}.log", "ab") as out:
            self.processes[node] = subprocess.Popen(
                command,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start_all(self) -> None:
        for node in self.spec.nodes:
            self.start(node.name)

    def signal(self, node: str, signum: int) -> None:
        """Send `signum` to every process of the node (SIGSTOP pauses it whole)."""
        os.killpg(self.processes[node].pid, signum)

    def kill(self, node: str) -> None:
        self.signal(node, signal.SIGKILL)
        self.processes[node].wait()

    def stop_all(self) -> None:
        """Kill every node still running, paused ones included."""
        for node, process in self.processes.items():
            if process.poll() is None:
                self.signal(node, signal.SIGCONT)
                self.kill(node)
