"""What one replica keeps on disk, and how a batch of writes changes it.

Paxos expresses its writes as `PersistOp`s, one small frozen dataclass per kind of write;
`NodeCore` adds the membership of each configuration. The server writes each ready batch as
one WAL record and fsyncs it before it sends the messages that depend on it; the simulator
keeps the same records as bytes. Both rebuild a node after a crash with `DurableState.apply`,
so recovery is one piece of code whatever holds the bytes. `apply` checks every index it is
given: a record that does not fit the state before it is corruption, never papered over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.ballot import ZERO, Ballot
from kvctl.node.messages import Entry, Snapshot

# One Paxos instance: (replication group, configuration id).
Instance = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SetPromise:
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class SetAccepted:
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """The log prefix before `snapshot.index` is replaced by the snapshot."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class WriteLog:
    """The log from `start` on becomes `entries` (a truncation when it is shorter)."""

    start: int
    entries: tuple[Entry, ...] | list[Entry]


@dataclass(frozen=True, slots=True)
class SetDecided:
    index: int


@dataclass(frozen=True, slots=True)
class SetMembers:
    """The members of this instance's configuration (absent: the founding one)."""

    members: tuple[str, ...]


PersistOp = SetPromise | SetAccepted | InstallSnapshot | WriteLog | SetDecided | SetMembers
PERSIST_OPS: tuple[type, ...] = (
    SetPromise,
    SetAccepted,
    InstallSnapshot,
    WriteLog,
    SetDecided,
    SetMembers,
)
_TAG = {cls: tag for tag, cls in enumerate(PERSIST_OPS)}


class CorruptState(Exception):
    """A persist op that cannot follow the state it is applied to."""


def encode_op(op: PersistOp) -> tuple[Any, ...]:
    """[tag, *fields], as the WAL stores it."""
    return (_TAG[type(op)], *(getattr(op, f) for f in op.__slots__))


def decode_op(raw: Any) -> PersistOp:
    try:
        tag, *fields = raw
        op: PersistOp = PERSIST_OPS[tag](*fields)
    except (TypeError, ValueError, IndexError) as exc:
        raise CorruptState(f"not a persist op: {raw!r:.80}") from exc
    return op


def needs_fsync(op: PersistOp) -> bool:
    """A decided index can be learned again from the others after a crash: it is written
    but not fsynced on its own. Everything else is a promise to the others."""
    return not isinstance(op, SetDecided)


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
        if isinstance(op, SetPromise):
            self.promise = op.ballot
        elif isinstance(op, SetAccepted):
            self.n_accepted = op.ballot
        elif isinstance(op, SetDecided):
            self.decided_idx = op.index
        elif isinstance(op, SetMembers):
            self.members = tuple(op.members)
        elif isinstance(op, InstallSnapshot):
            self._install(op.snapshot)
        elif isinstance(op, WriteLog):
            self._write_log(op.start, op.entries)
        else:
            raise CorruptState(f"unknown persist op {op!r:.80}")

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
    ops: list[PersistOp] = [SetPromise(state.promise), SetAccepted(state.n_accepted)]
    if state.members is not None:
        ops.append(SetMembers(state.members))
    if state.snapshot is not None:
        ops.append(InstallSnapshot(state.snapshot))
    ops.append(WriteLog(state.log_start, state.entries))
    ops.append(SetDecided(state.decided_idx))
    return ops
