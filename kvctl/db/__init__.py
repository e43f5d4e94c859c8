"""Stores under test: what runs on a node, and how a client talks to it (Jepsen's db + client).

A `DB` knows what its nodes need and do, never where they run: the Debian packages its node
image adds, the files and processes one node runs (a `NodePlan`, which the container's command
or a local process carries out through `kvctl.db.launch`), how to fault one node's process
(through the Backend, by default), where its logs are, and who leads where that is knowable.
Its clients map read/write/cas onto the store and end every operation as the workload expects:
a result, `Failed` (definitely did not happen) or `Indeterminate` (may have happened). Which
of the two an error is comes from its entry in kvctl.node.errors (`fail`), never from a text.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn, Protocol

from kvctl.client import Failed, Indeterminate
from kvctl.control.backend import Backend, ClusterSpec, NodeSpec
from kvctl.node.errors import ErrorCode

DEFAULT_DB = "kvctl"
DATABASES = ("kvctl", "etcd", "redis", "nats")
# Every store keeps its data under the node's data directory, which `power` puts on the lazy
# filesystem; `corrupt` names the files it damages, and it knows only kvctl's (its WAL). A
# store not yet run under power (Redis) refuses both.
KVCTL_FILES_ONLY = {"corrupt": "the corrupt fault knows only kvctl's own data files"}
LAZYFS_UNTRIED = {
    "power": "the lazy filesystem has not been tried under it yet",
    **KVCTL_FILES_ONLY,
}
# Every store's read modes, for a command-line choice (each store checks its own).
READ_MODES = ("linearizable", "stale", "direct", "leader", "primary")
TIMEOUT_S = 5.0  # a client gives up on an operation after this long, by default


class DBError(Exception):
    """A store cannot be had or asked for as given (unknown name, a fault it cannot take)."""


# -- errors as data ------------------------------------------------------------------------


def fail(op: str, error: ErrorCode, detail: str) -> NoReturn:
    """End an operation with `error` (an entry of kvctl.node.errors, the one registry): Failed
    if it is definite or the operation is a read (a read changes nothing, so one that may have
    run is as good as one that did not), Indeterminate otherwise."""
    message = f"{error.name}: {detail}"
    if op == "read" or error.definite:
        raise Failed(message)
    raise Indeterminate(message)


def describe(exc: Exception) -> str:
    """An exception as a line of a client error: its type, and its text when it has one."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- values ----------------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """A value as the bytes a store keeps: canonical JSON, so equal values are equal bytes
    (which a store's compare-and-swap on bytes relies on)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def decode(data: bytes | str | None) -> Any:
    return None if data is None else json.loads(data)


# -- what runs on a node ----------------------------------------------------------------------


@dataclass(frozen=True)
class NodePlan:
    """What one node runs: files to write, then processes that live and die together.

    Files are written only when missing: a store may rewrite its own (Sentinel does), and a
    restarted node must come back with what it had.
    """

    files: dict[str, str] = field(default_factory=dict)
    processes: list[list[str]] = field(default_factory=list)

    def to_arg(self) -> str:
        """The plan as one word of a command line (base64 of JSON)."""
        text = json.dumps({"files": self.files, "processes": self.processes})
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def from_arg(cls, arg: str) -> NodePlan:
        raw = json.loads(base64.urlsafe_b64decode(arg.encode()))
        return cls(files=dict(raw["files"]), processes=[list(p) for p in raw["processes"]])


class KVClient(Protocol):
    """What the workload and the benchmark need of a store's client."""

    async def read(self, key: Any) -> Any: ...

    async def write(self, key: Any, value: Any) -> None: ...

    async def cas(self, key: Any, old: Any, new: Any) -> bool: ...

    async def close(self) -> None: ...


class DB:
    """One store: its packages, one node's plan, faults, logs, leaders, and clients.

    Ports: a node's `port` is the store's client port; a store that needs more takes the
    next ones (port + 1, ...), so nodes on one host (local processes) never collide.
    """

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]] = ()  # Debian packages its node image adds
    read_modes: ClassVar[tuple[str, ...]] = ("linearizable",)  # the first is the default
    refused: ClassVar[Mapping[str, str]] = {}  # fault -> why this store cannot take it

    def plan(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> NodePlan:
        """The files and processes of `node`, whose data lives in `data_dir`."""
        raise NotImplementedError

    def command(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> list[str]:
        """The node's command in a container of the node image (`kvctl-run` logs it)."""
        plan = self.plan(spec, node, data_dir)
        return ["kvctl-run", "python3", "-m", "kvctl.db.launch", plan.to_arg()]

    def local_command(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> list[str]:
        """The node's command as a process of this machine (its own session: signal the
        group, so that every process of the node gets it)."""
        plan = self.plan(spec, node, data_dir)
        return [sys.executable, "-m", "kvctl.db.launch", plan.to_arg()]

    def log_files(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> list[str]:
        """Files on the node worth keeping with a run, beside the command's own output."""
        return []

    async def setup(self, spec: ClusterSpec, timeout: float) -> None:
        """Once every node runs: make the cluster serve (a bucket, ...) and wait until it
        does; TimeoutError if it does not in time."""
        raise NotImplementedError

    async def primaries(self, spec: ClusterSpec) -> list[str]:
        """The nodes that lead now, as far as the store says; [] where it is not knowable."""
        return []

    def client(self, spec: ClusterSpec, node: str, timeout: float = TIMEOUT_S) -> KVClient:
        """A client bound to `node` (as Jepsen binds workers to nodes), giving up on an
        operation after `timeout` seconds."""
        raise NotImplementedError

    def check_faults(self, faults: list[str]) -> None:
        """Refuse, before the run, a fault this store cannot take, saying why."""
        for fault in faults:
            if fault in self.refused:
                raise DBError(f"{self.name} cannot take the {fault} fault: {self.refused[fault]}")

    def check_read_mode(self, read_mode: str) -> None:
        if read_mode not in self.read_modes:
            raise DBError(
                f"{self.name} has no read mode {read_mode!r}: choose one of "
                f"{', '.join(self.read_modes)}"
            )

    # The nemesis asks the store how to fault its process. Every store here runs as the one
    # process tree of its node, so the Backend's own verbs are exactly that.

    def kill(self, backend: Backend, spec: ClusterSpec, node: str) -> None:
        backend.kill(spec, node)

    def start(self, backend: Backend, spec: ClusterSpec, node: str) -> None:
        backend.start(spec, node)

    def pause(self, backend: Backend, spec: ClusterSpec, node: str) -> None:
        backend.pause(spec, node)

    def resume(self, backend: Backend, spec: ClusterSpec, node: str) -> None:
        backend.resume(spec, node)


def db_of(spec: ClusterSpec) -> DB:
    """The store a cluster runs: `spec.extra["db"]`, kvctl's own when unset (every cluster
    saved before there were other stores)."""
    return get_db(spec.extra.get("db", DEFAULT_DB))


def get_db(name: str) -> DB:
    """The store called `name`, imported on demand so each needs only its own client library."""
    if name not in DATABASES:
        raise DBError(f"unknown store {name!r}: choose one of {', '.join(DATABASES)}")
    module = importlib.import_module(f"kvctl.db.{name}")
    db: DB = module.STORE
    return db
