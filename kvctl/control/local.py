"""The local backend: every node a process on this machine, listening on 127.0.0.1.

For development and for machines without Docker. Nodes are detached from the terminal
(their own session) so they outlive `kvctl up`; their pid, output and data live under
`$KVCTL_HOME/nodes/<name>/`. There are no per-node network faults here: `exec` runs on the
host itself, one place for every node, so the nemesis offers only kill and pause on this
backend.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from kvctl.control.backend import (
    IDEMPOTENT,
    BackendError,
    ClusterSpec,
    ExecResult,
    NodeStatus,
    kvctl_home,
)
from kvctl.db import DEFAULT_DB, db_of
from kvctl.db.local import free_base_port

LOOPBACK = "127.0.0.1"


class LocalBackend:
    """Nodes as processes of this machine (see the module docstring)."""

    name = "local"
    idempotent = IDEMPOTENT

    def exec_places(self, spec: ClusterSpec) -> dict[str, str]:
        return {node.name: "this machine" for node in spec.nodes}

    def up(self, spec: ClusterSpec) -> ClusterSpec:
        spec = self._place(spec)  # every address first: each node is started with them all
        for node in spec.nodes:
            self.start(spec, node.name)
        return spec

    def add(self, spec: ClusterSpec, node: str) -> ClusterSpec:
        spec = self._place(spec)
        self.start(spec, node)
        return spec

    def _place(self, spec: ClusterSpec) -> ClusterSpec:
        """The spec with a free port on 127.0.0.1 for every node that has none yet (another
        store takes the next ports too, kvctl.db.local)."""
        free = _free_port if db_of(spec).name == DEFAULT_DB else free_base_port
        nodes = [n if n.port else replace(n, host=LOOPBACK, port=free()) for n in spec.nodes]
        return replace(spec, backend=self.name, nodes=nodes)

    def down(self, spec: ClusterSpec, purge: bool = False) -> None:
        for node in spec.nodes:
            self._stop(node.name)
        if purge:
            shutil.rmtree(kvctl_home() / "nodes", ignore_errors=True)

    def status(self, spec: ClusterSpec) -> list[NodeStatus]:
        return [
            NodeStatus(
                node.name,
                node.address,
                running=self._running(node.name),
                paused=self._state(node.name) == "T",
                detail=self._describe(node.name),
            )
            for node in spec.nodes
        ]

    def kill(self, spec: ClusterSpec, node: str) -> None:
        """SIGKILL; a node that is not running is left as it is."""
        spec.node(node)
        pid = self._pid(node)
        if pid is not None and self._running(node):
            os.killpg(pid, signal.SIGKILL)

    def start(self, spec: ClusterSpec, node: str) -> None:
        target = spec.node(node)
        if self._running(node):
            self.resume(spec, node)  # running already; a paused node is resumed, as on docker
            return
        _check_port_free(target.port)
        home = _node_dir(node)
        (home / "data").mkdir(parents=True, exist_ok=True)
        argv = db_of(spec).local_command(spec, target, str(home / "data"))
        with open(home / "output.log", "ab") as output:
            process = subprocess.Popen(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (home / "pid").write_text(str(process.pid))

    def pause(self, spec: ClusterSpec, node: str) -> None:
        self._signal(spec, node, signal.SIGSTOP)

    def resume(self, spec: ClusterSpec, node: str) -> None:
        self._signal(spec, node, signal.SIGCONT)

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        spec.node(node)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return ExecResult(done.returncode, done.stdout + done.stderr)

    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]:
        spec.node(node)
        path = _node_dir(node) / "output.log"
        if not path.exists():
            raise BackendError(f"{node} has no log yet: was it ever started?")
        with open(path, errors="replace") as lines:
            while True:
                line = lines.readline()
                if line:
                    yield line.rstrip("\n")
                elif not follow:
                    return
                else:
                    time.sleep(0.2)

    # -- processes --------------------------------------------------------------------------

    def _pid(self, node: str) -> int | None:
        try:
            return int((_node_dir(node) / "pid").read_text())
        except (OSError, ValueError):
            return None

    def _state(self, node: str) -> str | None:
        """The process state letter from /proc (R, S, T, Z...), None if it is gone."""
        pid = self._pid(node)
        if pid is None:
            return None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if b"kvctl" not in cmdline:
            return None  # the pid was reused by another program
        return stat.rpartition(")")[2].split()[0]

    def _running(self, node: str) -> bool:
        return self._state(node) not in (None, "Z", "X")

    def _describe(self, node: str) -> str:
        if not self._running(node):
            return "stopped"
        return "paused" if self._state(node) == "T" else "running"

    def _signal(self, spec: ClusterSpec, node: str, sig: signal.Signals) -> None:
        """Send `sig` to a running node (SIGSTOP and SIGCONT repeat harmlessly)."""
        spec.node(node)
        pid = self._pid(node)
        if pid is None or not self._running(node):
            raise BackendError(f"{node} is not running")
        os.killpg(pid, sig)  # its own session: every process of the node (a store's launcher)

    def _stop(self, node: str) -> None:
        pid = self._pid(node)
        if pid is None or not self._running(node):
            return
        os.killpg(pid, signal.SIGCONT)
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self._running(node) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._running(node):
            os.killpg(pid, signal.SIGKILL)


def _node_dir(node: str) -> Path:
    return kvctl_home() / "nodes" / node


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _check_port_free(port: int, wait: float = 3.0) -> None:
    """Fail clearly if another program holds the port. A node just killed may hold it for
    a moment while its threads exit, so this polls briefly before it gives up."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise BackendError(
                        f"port {port} on {LOOPBACK} is in use by another program; "
                        "`kvctl down --purge` and `kvctl up` again to pick new ports"
                    ) from exc
        time.sleep(0.05)
