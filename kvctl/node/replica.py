"""One member of one replication group: BLE, Sequence Paxos and the state machine, joined.

BLE decides who should lead; Paxos decides what is chosen; the state machine applies it.
The only feedback from Paxos to BLE is a ballot bump: when BLE elects this node with a ballot
lower than one Paxos knows (promised, after a restart or to a rival elected elsewhere, or
refused for), BLE outbids it next round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.ballot import Ballot
from kvctl.node.ble import BallotLeaderElection, BleMessage
from kvctl.node.durable import DurableState, PersistOp
from kvctl.node.messages import (
    Entry,
    HeartbeatReply,
    HeartbeatRequest,
    Snapshot,
    StopSign,
    as_command,
)
from kvctl.node.paxos import PaxosMessage, SequencePaxos
from kvctl.node.statemachine import StateMachine

_BLE_MESSAGES = (HeartbeatRequest, HeartbeatReply)  # a tuple: no union built per call


@dataclass(frozen=True)
class Timing:
    """Protocol timeouts, in ticks of the host's clock."""

    heartbeat_ticks: int = 10
    resend_ticks: int = 20
    compact_entries: int = 20_000


DEFAULT_TIMING = Timing()


@dataclass(frozen=True)
class StopSignApplied:
    """This configuration ended: the next one has `members` and starts from `snapshot`."""

    members: tuple[str, ...]
    addresses: tuple[tuple[str, str], ...]
    snapshot: Snapshot


@dataclass(frozen=True)
class Election:
    """What BLE last decided: the leader's ballot (None before any), and whether this
    replica hears from a majority."""

    leader: Ballot | None
    connected: bool


@dataclass
class ReplicaReady:
    persist: list[PersistOp] = field(default_factory=list)
    messages: list[tuple[str, Any]] = field(default_factory=list)
    results: list[tuple[int, int, Any]] = field(default_factory=list)  # (client, seq, result)
    stopped: StopSignApplied | None = None
    token: int | None = None  # see Ready.token: give it to persisted() after the fsync
    installed: Snapshot | None = None  # installed before `applied`
    applied: list[Entry] = field(default_factory=list)  # from log index `applied_from` on
    applied_from: int = 0
    compacted: Snapshot | None = None  # made after `applied`
    # For the host's log: who BLE elects and whether a majority answers this replica, when
    # either changed since the last ready.
    election: Election | None = None


class Replica:
    def __init__(
        self,
        pid: str,
        members: list[str],
        durable: DurableState | None = None,
        *,
        priority: int = 0,
        timing: Timing = DEFAULT_TIMING,
        serves_reads: bool = False,
    ) -> None:
        """`serves_reads`: this replica answers reads from its own copy (stale read mode)."""
        durable = durable or DurableState()
        self.pid = pid
        self.members = tuple(members)
        self.timing = timing
        self.ble = BallotLeaderElection(
            pid,
            members,
            priority=priority,
            initial_round=durable.promise.n,
            heartbeat_ticks=timing.heartbeat_ticks,
        )
        self.paxos = SequencePaxos(
            pid, members, durable, resend_ticks=timing.resend_ticks, eager_decide=serves_reads
        )
        self.machine = StateMachine()
        self.stopped: StopSignApplied | None = None
        self._election = Election(None, True)  # as last reported in a ready
        if durable.snapshot is not None:
            self.machine.restore(durable.snapshot.state)

    def handle(self, src: str, msg: PaxosMessage | BleMessage) -> None:
        if isinstance(msg, _BLE_MESSAGES):
            self.ble.handle(src, msg)
        else:
            self.paxos.handle(src, msg)

    def tick(self) -> None:
        decided = self.ble.tick()
        leader = self.ble.take_new_leader()
        if leader is not None:
            if leader.pid == self.pid:
                if not self.paxos.become_leader(leader):
                    self.ble.raise_ballot_above(self.paxos.promise.n)
            else:
                self.paxos.follow(leader.pid)
        elected = self.ble.leader
        if elected is not None and elected.pid == self.pid:
            # BLE elects us, but Paxos knows a higher ballot, so ours can never lead, and BLE
            # elects it again and again unless we outbid what Paxos knows. Our Prepare was
            # refused for it; or, at the end of a round (whose heartbeats would have shown a
            # member still holding it, and BLE would have elected that member), we find we
            # promised it: its holder won it where BLE did not elect it, and lost it since.
            known = max(self.paxos.outbid, self.paxos.promise) if decided else self.paxos.outbid
            if known > elected:
                self.ble.raise_ballot_above(known.n)
        self.paxos.tick()

    def propose(self, entry: Entry) -> bool:
        return self.accepting and self.paxos.propose(entry)

    def read(self, key: Any, client_id: int, seq: int) -> bool:
        """A linearizable read by read index: answered in a later ready's results."""
        return self.accepting and self.paxos.read((client_id, seq, key))

    def persisted(self, token: int) -> None:
        self.paxos.persisted(token)

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest decided state this replica holds as a snapshot."""
        return self.paxos.snapshot

    def durable_state(self) -> DurableState:
        return self.paxos.durable_state()

    @property
    def sealed(self) -> bool:
        """A StopSign is in the log (decided or not): this configuration takes no more."""
        return self.stopped is not None or self.paxos.sealed

    @property
    def accepting(self) -> bool:
        """Leads in its accept phase and still hears from a majority."""
        return self.paxos.accepting and self.ble.quorum_connected

    def leader_hint(self) -> str | None:
        """Where to send this group's requests, as far as this replica knows."""
        if self.accepting:
            return self.pid
        if not self.ble.quorum_connected:
            return None
        hint = self.paxos.leader_hint
        return hint if hint != self.pid else None

    def take_ready(self) -> ReplicaReady:
        ready = self.paxos.take_ready()
        out = ReplicaReady(
            persist=ready.persist,
            messages=ready.messages,  # Paxos hands the list over: it starts a new one
            token=ready.token,
            installed=ready.install,
            applied=ready.decided,
            applied_from=ready.decided_from,
        )
        ble = self.ble.take_messages()
        if ble:
            out.messages += ble
        election = self._election
        leader, connected = self.ble.leader, self.ble.quorum_connected
        if election.leader is not leader or election.connected != connected:
            self._election = out.election = Election(leader, connected)
        if ready.install is not None:
            self.machine.restore(ready.install.state)
        for index, entry in enumerate(ready.decided, ready.decided_from):
            cmd = as_command(entry)  # typed once; the state machine takes it as it is
            result = self.machine.apply(cmd, index)
            if result is not None:
                out.results.append(result)
            if isinstance(cmd, StopSign):
                # A StopSign is the last entry of its log: the next config starts after it.
                base = Snapshot(self.paxos.decided_idx, self.machine.export())
                self.stopped = out.stopped = StopSignApplied(
                    tuple(cmd.members), tuple(cmd.addresses), base
                )
        for client_id, seq, key in ready.reads:  # after the decided entries: their state
            out.results.append((client_id, seq, self.machine.read(key)))
        if (
            ready.decided
            and self.stopped is None
            and len(self.paxos.log) >= self.timing.compact_entries
        ):
            # Persisted with the next ready; until then the log on disk still holds it all.
            out.compacted = Snapshot(self.paxos.decided_idx, self.machine.export())
            self.paxos.compact(out.compacted)
        return out
