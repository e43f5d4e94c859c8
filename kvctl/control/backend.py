"""The one protocol every place that runs nodes implements (Jepsen's `control` in a few verbs).

A backend knows how to start, stop and fault *processes*; it knows nothing of Paxos. The
cluster it runs is described by a `ClusterSpec`, which is saved under `$KVCTL_HOME` so that
later commands (`kvctl get`, `kvctl kill n2`) find the cluster `kvctl up` started.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

DEFAULT_PORT = 7400


class BackendError(Exception):
    """A failure the user can act on (no engine, a name taken, a host key unknown, ...).

    Backends raise it with a message that says what to do; the CLI prints the message alone,
    never a traceback.
    """


@dataclass
class NodeSpec:
    """One node: its name and the address peers and clients reach it at."""

    name: str
    host: str
    port: int
    extra: dict[str, str] = field(default_factory=dict)  # backend-specific (container id, ...)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ClusterSpec:
    """Everything needed to (re)start every node of a cluster identically."""

    name: str
    backend: str
    nodes: list[NodeSpec]
    replication: int = 3
    groups: int = 0  # 0: as many groups as nodes
    read_mode: str = "linearizable"
    extra: dict[str, str] = field(default_factory=dict)
    founders: list[str] = field(default_factory=list)  # empty: every node founded it
    leaders: str = ""  # kvctl's leader policy (placement.py); empty: as `leader_policy` says

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no node named {name!r} in cluster {self.name!r} (nodes: {known})")

    @property
    def founder_names(self) -> list[str]:
        """The nodes the cluster started with: they fix the groups' first placement."""
        return self.founders or [n.name for n in self.nodes]

    def add_node(self, node: NodeSpec) -> None:
        self.founders = self.founder_names
        self.nodes.append(node)

    @property
    def leader_policy(self) -> str:
        """Which member each kvctl group prefers to lead, unless `leaders` says: spread over
        SSH hosts, each with CPUs and a disk of its own; packed on one node where the nodes
        share this machine (local processes, containers), which does more work per fsync."""
        return self.leaders or ("spread" if self.backend == "ssh" else "pack")

    @property
    def group_count(self) -> int:
        return self.groups or len(self.founder_names)

    def peers_arg(self, founders: bool = True) -> str:
        """`--cluster` (the founders) or `--peers` (the rest): name=host:port,..."""
        names = self.founder_names
        return ",".join(
            f"{n.name}={n.address}" for n in self.nodes if (n.name in names) == founders
        )

    def node_argv(self, node: NodeSpec, data_dir: str, listen_host: str = "0.0.0.0") -> list[str]:
        """The `kvctl node ...` arguments that start `node` (without the program name)."""
        return [
            "node",
            "--name",
            node.name,
            "--listen",
            f"{listen_host}:{node.port}",
            "--data-dir",
            data_dir,
            "--cluster",
            self.peers_arg(),
            "--groups",
            str(self.group_count),
            "--replication",
            str(self.replication),
            "--read-mode",
            self.read_mode,
            "--leaders",
            self.leader_policy,
        ]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        raw = json.loads(text)
        raw["nodes"] = [NodeSpec(**n) for n in raw["nodes"]]
        return cls(**raw)


@dataclass
class NodeStatus:
    name: str
    address: str
    running: bool
    paused: bool = False
    detail: str = ""


@dataclass
class ExecResult:
    exit_code: int
    output: str


IDEMPOTENT = frozenset({"down", "kill", "start", "pause", "resume"})
"""The verbs every backend makes idempotent: each names the state it leaves a node in, and
asking again for the state a node is already in does nothing and returns None. So killing a
stopped node, starting a running one, pausing a paused one and resuming a running one are
all quiet. A verb that cannot reach its state raises BackendError: pausing or resuming a
node that is not running says so. `exec` is not idempotent: it runs its command each time."""


class Backend(Protocol):
    """Start, stop and fault the nodes of one cluster.

    No verb changes the spec it is given: `up` and `add` return a new one.
    """

    @property
    def name(self) -> str:
        """What `--backend` calls it; also `ClusterSpec.backend` of the specs it returns."""

    @property
    def idempotent(self) -> frozenset[str]:
        """The verbs that are idempotent (see IDEMPOTENT: the same for every backend)."""

    def exec_places(self, spec: ClusterSpec) -> dict[str, str]:
        """node -> where its `exec` runs: its own container, or a host (machine) that other
        nodes may share. Nodes with one place share its network stack, its firewall and its
        links, so no network fault can tell them apart."""

    def up(self, spec: ClusterSpec) -> ClusterSpec:
        """Start every node (creating what is missing); return the spec with real addresses."""

    def add(self, spec: ClusterSpec, node: str) -> ClusterSpec:
        """Create and start the spec's node `node` alone (it joins a running cluster);
        return the spec with its real address. Stopped nodes stay stopped."""

    def down(self, spec: ClusterSpec, purge: bool = False) -> None:
        """Stop every node; keep the data unless `purge`."""

    def status(self, spec: ClusterSpec) -> list[NodeStatus]: ...

    def kill(self, spec: ClusterSpec, node: str) -> None:
        """SIGKILL the node's server; its data stays."""

    def start(self, spec: ClusterSpec, node: str) -> None:
        """(Re)start a stopped or killed node from its data; a paused node is resumed."""

    def pause(self, spec: ClusterSpec, node: str) -> None:
        """Freeze the node's processes (they stop answering); BackendError if it is not
        running."""

    def resume(self, spec: ClusterSpec, node: str) -> None:
        """Unfreeze a paused node; BackendError if it is not running."""

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        """Run a command at the node's place (see `exec_places`): iptables, tc, ..."""

    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]: ...


def kvctl_home() -> Path:
    """Where cluster state lives: $KVCTL_HOME, or .kvctl/ in the working directory."""
    return Path(os.environ.get("KVCTL_HOME", ".kvctl")).resolve()


def save_spec(spec: ClusterSpec) -> Path:
    home = kvctl_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "cluster.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(spec.to_json())
    tmp.replace(path)
    return path


def load_spec() -> ClusterSpec | None:
    path = kvctl_home() / "cluster.json"
    if not path.exists():
        return None
    return ClusterSpec.from_json(path.read_text())


def forget_spec() -> None:
    (kvctl_home() / "cluster.json").unlink(missing_ok=True)
