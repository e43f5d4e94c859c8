"""What one replica keeps on disk, and how a batch of writes changes it.

Paxos expresses its writes as `PersistOp` tuples; the server turns them into WAL records and
fsyncs them before it sends the messages that depend on them, the simulator keeps them in a
simulated disk. Both rebuild a replica after a crash with `DurableState.apply`, so recovery
is one piece of code whatever holds the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.ballot import ZERO, Ballot
from kvctl.node.messages import Entry, Snapshot

# ("promise", Ballot) | ("accepted", Ballot) | ("snapshot", Snapshot)
# | ("log", from_idx, entries) | ("decided", idx) | ("config", members)
PersistOp = tuple[Any, ...]


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
            snap: Snapshot = op[1]
            keep_from = snap.index - self.log_start
            self.entries = self.entries[keep_from:] if keep_from <= len(self.entries) else []
            self.snapshot = snap
        elif kind == "log":
            start = op[1] - self.log_start
            del self.entries[start:]
            self.entries.extend(op[2])
        else:
            raise ValueError(f"unknown persist op {kind!r}")
