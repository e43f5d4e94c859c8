"""A Backend that runs nothing: it records what it is asked and keeps node states in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from kvctl.control import backend
from kvctl.control.backend import BackendError, ClusterSpec, ExecResult, NodeSpec, NodeStatus


@dataclass
class FakeBackend:
    """A Backend that records what it is asked and keeps node states in memory."""

    name = "fake"
    idempotent = backend.IDEMPOTENT
    calls: list[tuple[str, str]] = field(default_factory=list)
    scripts: list[tuple[str, str]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    exec_fails: dict[str, str] = field(default_factory=dict)  # script start -> its error output
    unreachable: set[str] = field(default_factory=set)  # exec raises BackendError
    tc_output: str = "1: lo: <LOOPBACK>\n2: eth0@if9: <BROADCAST>\n"
    places: dict[str, str] = field(default_factory=dict)  # node -> a place it shares

    def exec_places(self, spec: ClusterSpec) -> dict[str, str]:
        return {n.name: self.places.get(n.name, f"container {n.name}") for n in spec.nodes}

    def status(self, spec: ClusterSpec) -> list[NodeStatus]:
        return [NodeStatus(n.name, n.address, n.name not in self.down, n.name in self.paused)
                for n in spec.nodes]

    def kill(self, spec: ClusterSpec, node: str) -> None:
        self.calls.append(("kill", node))
        self.down.add(node)

    def start(self, spec: ClusterSpec, node: str) -> None:
        self.calls.append(("start", node))
        self.down.discard(node)

    def pause(self, spec: ClusterSpec, node: str) -> None:
        self.calls.append(("pause", node))
        self.paused.add(node)

    def resume(self, spec: ClusterSpec, node: str) -> None:
        self.calls.append(("resume", node))
        self.paused.discard(node)

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        if node in self.unreachable or node in self.paused or node in self.down:
            raise BackendError(f"{node} cannot run commands now")
        script = argv[-1]
        self.scripts.append((node, script))
        for start, output in self.exec_fails.items():
            if script.startswith(start):
                return ExecResult(1, output)
        return ExecResult(0, self.tc_output if script.startswith("ip -o link") else "")


def spec_of(count: int, backend: str = "docker") -> ClusterSpec:
    return ClusterSpec("fake", backend,
                       [NodeSpec(f"n{i}", f"127.0.9.{10 + i}", 7400) for i in range(1, count + 1)])
