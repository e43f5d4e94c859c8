"""What one replica keeps on disk, and how a batch of writes changes it.

Paxos expresses its writes as `PersistOp` tuples; `NodeCore` adds the membership of each
configuration; the server writes each ready batch as one WAL record and fsyncs it before it
sends the messages that depend on it; the simulator keeps the same records as bytes. Both
rebuild a node after a crash with `DurableState.apply`, so recovery is one piece of code
whatever holds the bytes. `apply` checks every index it is given: a record that does not fit
the state before it is corruption, never something to paper over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.ballot import ZERO, Ballot
from kvctl.node.messages import Entry, Snapshot

# One Paxos instance: (replication group, configuration id).
Instance = tuple[int, int]

# ("promise", Ballot) | ("accepted", Ballot) | ("snapshot", Snapshot)
# | ("log", from_idx, entries) | ("decided", idx) | ("config", members)
PersistOp = tuple[Any, ...]


class CorruptState(Exception):
    """A persist op that cannot follow the state it is applied to."""


def needs_fsync(op: PersistOp) -> bool:
    """A decided index can be learned again from the others after a crash: it is written
    but not fsynced on its own. Everything else is a promise to the others."""
    return op[0] != "decided"


@dataclass
class DurableState:
    promise: Ballot = ZERO
    n_accepted: Ballot = ZERO
    decided_idx: int = 0
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    members: tuple[str, ...] | None = None  # None: the founding configuration

    @property
    def log_start(self) -> int:
        return self.snapshot.index if self.snapshot else 0

    @property
    def log_len(self) -> int:
        return self.log_start + len(self.entries)

    def apply(self, op: PersistOp) -> None:
        kind = op[0]
        if kind == "promise":
            self.promise = op[1]
        elif kind == "accepted":
            self.n_accepted = op[1]
        elif kind == "decided":
            self.decided_idx = op[1]
        elif kind == "config":
            self.members = tuple(op[1])
        elif kind == "snapshot":
            self._install(op[1])
        elif kind == "log":
            self._write_log(op[1], op[2])
        else:
            raise CorruptState(f"unknown persist op {kind!r}")

    def _install(self, snap: Snapshot) -> None:
        if snap.index < self.log_start:
            raise CorruptState(f"snapshot at {snap.index} is older than ours at {self.log_start}")
        keep_from = snap.index - self.log_start
        self.entries = self.entries[keep_from:] if keep_from <= len(self.entries) else []
        self.snapshot = snap

    def _write_log(self, start: int, entries: Any) -> None:
        if not self.log_start <= start <= self.log_len:
            raise CorruptState(
                f"log write at {start} outside the log [{self.log_start}, {self.log_len}]"
            )
        del self.entries[start - self.log_start :]
        self.entries.extend(entries)


def ops_of(state: DurableState) -> list[PersistOp]:
    """The ops that rebuild `state` from nothing: what a log rewrite writes."""
    ops: list[PersistOp] = [("promise", state.promise), ("accepted", state.n_accepted)]
    if state.members is not None:
        ops.append(("config", state.members))
    if state.snapshot is not None:
        ops.append(("snapshot", state.snapshot))
    ops.append(("log", state.log_start, state.entries))
    ops.append(("decided", state.decided_idx))
    return ops
