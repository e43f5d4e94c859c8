"""Every message a node sends another node, as frozen, slotted dataclasses.

Sequence Paxos (after OmniPaxos): Prepare/Promise adopt the most up-to-date log, AcceptSync
brings a follower in line, AcceptDecide streams entries and the decided index. Accept-phase
messages carry (session, seq) so a follower applies them in order, ignores stale ones and asks
to be resynced (PrepareReq) on a gap: it never truncates its log because of a late message.

An entry is an opaque tuple to Paxos; a `Snapshot` replaces a compacted log prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from kvctl.node.ballot import Ballot

Entry = tuple[Any, ...]  # opaque to Paxos; to the state machine a Command or a StopSign

STOPSIGN = "ss"


class Command(NamedTuple):
    """A client's read, write or compare-and-swap, as decided in a log.

    A NamedTuple rather than a dataclass: it travels in every AcceptDecide and WAL record,
    and msgpack encodes a tuple natively (a dataclass would cost an extension type per entry).
    """

    op: str  # READ, WRITE or CAS (statemachine.py)
    key: Any
    value: Any  # what a write writes; what a cas expects to find
    new_value: Any  # what a cas writes
    client_id: int
    seq: int


class StopSign(NamedTuple):
    """Decided, it ends its configuration's log; the next configuration has `members` and
    starts from the state after it."""

    op: str  # STOPSIGN
    group: int
    members: tuple[str, ...]
    addresses: tuple[tuple[str, str], ...]
    client_id: int
    seq: int


def is_stopsign(entry: Entry) -> bool:
    return entry[0] == STOPSIGN


def as_command(entry: Entry) -> Command | StopSign:
    """The typed form of a decided entry, which the wire and the disk carry as a tuple."""
    if type(entry) is Command or type(entry) is StopSign:
        return entry
    return StopSign(*entry) if is_stopsign(entry) else Command(*entry)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine's state after applying entries [0, index)."""

    index: int
    state: Any


# Ballot leader election ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    round: int


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    round: int
    ballot: Ballot
    quorum_connected: bool


# Sequence Paxos ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    ballot: Ballot
    decided_idx: int
    n_accepted: Ballot
    accepted_idx: int


@dataclass(frozen=True, slots=True)
class Promise:
    """A promise; `suffix` (from `suffix_start`, after `snapshot` if any) is sent only when
    the follower's log is more up to date than the leader's."""

    ballot: Ballot
    n_accepted: Ballot
    decided_idx: int
    accepted_idx: int
    suffix_start: int
    suffix: tuple[Entry, ...]
    snapshot: Snapshot | None


@dataclass(frozen=True, slots=True)
class AcceptSync:
    """Replace the follower's log from `sync_idx` on; starts a new (session, seq) stream."""

    ballot: Ballot
    session: int
    sync_idx: int
    suffix: tuple[Entry, ...]
    snapshot: Snapshot | None
    decided_idx: int


@dataclass(frozen=True, slots=True)
class AcceptDecide:
    """Append `entries` at `start_idx` and learn `decided_idx`; entries may be empty."""

    ballot: Ballot
    session: int
    seq: int
    start_idx: int
    entries: tuple[Entry, ...]
    decided_idx: int


@dataclass(frozen=True, slots=True)
class Accepted:
    ballot: Ballot
    accepted_idx: int


@dataclass(frozen=True, slots=True)
class NotAccepted:
    """The receiver has promised `ballot`, higher than the sender's: step down."""

    ballot: Ballot


@dataclass(frozen=True, slots=True)
class ReadConfirm:
    """Read index: is `ballot` still the one you promised? (round `round` of reads)"""

    ballot: Ballot
    round: int


@dataclass(frozen=True, slots=True)
class ReadConfirmed:
    ballot: Ballot
    round: int


@dataclass(frozen=True, slots=True)
class PrepareReq:
    """A follower that fell out of the stream (gap, restart) asks the leader to resync it."""


# Node level (not per group) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientForward:
    """A client request received by a node that does not lead the key's group; `hops` is
    how many nodes it passed through, which bounds forwarding (at most two hops)."""

    forward_id: int
    request: tuple[Any, ...]
    hops: int


@dataclass(frozen=True, slots=True)
class ClientForwardReply:
    forward_id: int
    response: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ConfigAnnounce:
    """A group's newest configuration, gossiped so that joiners start their replica and
    every node routes to current members: the versioned, replicated placement table."""

    group: int
    config_id: int
    members: tuple[str, ...]
    addresses: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StateRequest:
    """A member of a new configuration without its starting state asks for it."""

    group: int
    config_id: int


@dataclass(frozen=True, slots=True)
class StateReply:
    """A decided state of that configuration (at or after its start)."""

    group: int
    config_id: int
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class Ping:
    """Node-level: are you there? Answered by a Pong over the answerer's own link, so a
    Pong proves the round trip (routing.py)."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to a Ping."""


PEER_MESSAGES: tuple[type, ...] = (
    HeartbeatRequest,
    HeartbeatReply,
    Prepare,
    Promise,
    AcceptSync,
    AcceptDecide,
    Accepted,
    NotAccepted,
    PrepareReq,
    ClientForward,
    ClientForwardReply,
    ConfigAnnounce,
    StateRequest,
    StateReply,
    ReadConfirm,
    ReadConfirmed,
    Ping,
    Pong,
)


# Messages that vouch for state on disk: a host sends them only after its fsync completes.
# A Prepare is one: a ballot must be promised on its leader's disk before anyone is asked to
# promise it, or a leader that loses power could lead the same ballot twice (after a restart
# whose log lost the promise) with two different streams. Everything else may leave before:
# a leader's Accept goes out while its own fsync runs, and the leader counts itself only in a
# later step, after that fsync returned. A forwarded request's reply, like a client response,
# reports only what is decided (durable at a majority) or refused, so it waits for no fsync of
# the relaying node; Paxos emits a ReadConfirmed only once the promise it confirms is durable
# (paxos.py), so it waits for none.
AFTER_FSYNC: tuple[type, ...] = (Prepare, Promise, Accepted)
