"""Sequence Paxos for one replication group, sans-IO (no sockets, clock, asyncio or random).

Inputs: `handle(src, msg)`, `tick()`, `propose(entry)`, `become_leader(ballot)` (from BLE),
`compact(snapshot)`. Output: `take_ready()`, which returns what to persist, what to send and
what was decided, in the order the host must act on it: persist and fsync first, then send,
then apply. Outputs accumulate between calls to `take_ready`, which is what batches: every
entry proposed and every message handled since the last call share one fsync and one
AcceptDecide per follower.

Two messages are spared per operation at low load (issue 16), neither touching safety, which
rests on what a leader counts, not on whom it tells:
- A decided index alone does not make an AcceptDecide: it rides on the next one that carries
  entries, or leaves at the next tick. Followers need it only to apply (reads go to the
  leader, and a new leader learns the decided index from its promises), unless they serve
  reads from their own copy (`eager_decide`, the stale read mode): then it leaves at once, so
  that a follower's copy lags by a message, not by a tick.
- A read round asks only as many followers as complete a majority: those that answered the
  last round first. After READ_FALLBACK_TICKS without a majority it asks every follower, until
  a round is confirmed again.

The log is one sequence with one accepted ballot (`n_accepted`), as in the ID2203 course
and OmniPaxos: a new leader adopts the most up-to-date log of a majority (Prepare/Promise),
rewrites each follower's log from a point where it is known to agree (AcceptSync), then
streams entries (AcceptDecide). Indices are absolute: entries before `log_start` are
compacted into `snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from kvctl.node.ballot import ZERO, Ballot, majority
from kvctl.node.durable import (
    DurableState,
    InstallSnapshot,
    PersistOp,
    SetAccepted,
    SetDecided,
    SetPromise,
    WriteLog,
)
from kvctl.node.messages import (
    AcceptDecide,
    Accepted,
    AcceptSync,
    Entry,
    NotAccepted,
    Prepare,
    PrepareReq,
    Promise,
    ReadConfirm,
    ReadConfirmed,
    Snapshot,
    is_stopsign,
)

PaxosMessage = (
    Prepare
    | Promise
    | AcceptSync
    | AcceptDecide
    | Accepted
    | NotAccepted
    | PrepareReq
    | ReadConfirm
    | ReadConfirmed
)


READ_FALLBACK_TICKS = 2  # a read round's chosen followers get this long before all are asked


class Phase(Enum):
    NONE = "none"  # a fresh follower that has promised nothing yet
    RECOVER = "recover"  # restarted from disk: asks for a resync before accepting anything
    PREPARE = "prepare"  # a leader collecting promises, or a follower that promised
    ACCEPT = "accept"  # in the accept stream of the current ballot


@dataclass
class _Progress:
    """The leader's view of one synced follower's stream."""

    session: int
    seq: int = 0
    sent_idx: int = 0
    sent_decided: int = 0
    acked_idx: int = 0


@dataclass
class Ready:
    """Do these in order: persist (fsync), send, install the snapshot, apply the decided.

    `token` names the batch when it has something to persist: once the host's fsync covering
    it returns, the host calls `persisted(token)`. Until then the leader counts neither its own
    promise nor its own acceptance toward a majority (etcd counts its self-vote the same way),
    so the core is safe whether or not the host blocks while it fsyncs.
    """

    persist: list[PersistOp] = field(default_factory=list)
    messages: list[tuple[str, PaxosMessage]] = field(default_factory=list)
    install: Snapshot | None = None
    decided: list[Entry] = field(default_factory=list)
    decided_from: int = 0  # the log index of decided[0]
    reads: list[Any] = field(default_factory=list)  # tokens to serve now, after `decided`
    token: int | None = None


@dataclass(frozen=True)
class _Batch:
    """What a persisted batch makes durable: the log up to `log_len`, and these ballots."""

    token: int
    log_len: int
    promise: Ballot
    n_accepted: Ballot


class SequencePaxos:
    def __init__(
        self,
        pid: str,
        members: list[str],
        state: DurableState | None = None,
        *,
        resend_ticks: int = 20,
        eager_decide: bool = False,
    ) -> None:
        state = state or DurableState()
        self.pid = pid
        self.peers = [m for m in members if m != pid]
        self.quorum = majority(len(members))
        self.resend_ticks = resend_ticks
        self.eager_decide = eager_decide
        # Durable state, mirrored in memory.
        self.promise: Ballot = state.promise
        self.n_accepted: Ballot = state.n_accepted
        self.decided_idx = state.decided_idx
        self.snapshot: Snapshot | None = state.snapshot
        self.log_start = state.log_start
        self.log: list[Entry] = list(state.entries)
        # Volatile state.
        self.is_leader = False
        self.phase = Phase.RECOVER if state.promise > ZERO else Phase.NONE
        self.leader_hint: str | None = None
        self.outbid: Ballot = ZERO  # the highest ballot a NotAccepted told us of
        self._stream: tuple[Ballot, int, int] = (ZERO, 0, 0)  # follower: (ballot, session, seq)
        self._promises: dict[str, Promise] = {}
        self._adopted: tuple[Ballot, int] = (ZERO, 0)  # (n_accepted, length) of adopted log
        self._followers: dict[str, _Progress] = {}
        self._sessions: dict[str, int] = {}
        self._pending: list[Entry] = []
        # Read index: reads wait for a majority to confirm our ballot after they arrived,
        # then for the log to be decided up to where it ended when they arrived.
        self._new_reads: list[tuple[Any, int]] = []  # (token, read index), no round yet
        self._reads: list[tuple[Any, int, int]] = []  # (token, read index, round)
        self._read_round = 0
        self._confirmed_round = 0
        self._confirms: dict[int, set[str]] = {}
        self._read_peers = self.peers[: self.quorum - 1]  # asked first: the last round's first
        self._round_ticks = 0  # ticks since the oldest unconfirmed round was asked of them
        self._unconfirmed: list[tuple[str, ReadConfirm]] = []  # until our promise is durable
        self._ticks = 0
        self._applied_idx = self.log_start
        # What is known to be on disk; a leader counts itself toward a majority only from here.
        self._durable = _Batch(0, self.log_len, self.promise, self.n_accepted)
        self._unpersisted: list[_Batch] = []
        self._own_promise_counted = False
        # Outputs not yet taken.
        self._outbox: list[tuple[str, PaxosMessage]] = []
        self._next_token = 0
        self._dirty_promise = False
        self._dirty_accepted = False
        self._dirty_decided = False
        self._dirty_log_from: int | None = None
        self._new_snapshot: Snapshot | None = None
        self._install: Snapshot | None = None
        self._reply_accepted = False
        self._decide_due = eager_decide  # a decided index alone leaves now (eager) or at a tick
        if self.phase is Phase.RECOVER:
            self._ask_for_resync(self.peers)

    # -- queries ----------------------------------------------------------------------------

    @property
    def log_len(self) -> int:
        return self.log_start + len(self.log)

    @property
    def accepting(self) -> bool:
        """True when proposals are appended now (a leader in its accept phase)."""
        return self.is_leader and self.phase is Phase.ACCEPT

    def durable_state(self) -> DurableState:
        """What is on disk once the last ready batch was persisted."""
        return DurableState(
            self.promise, self.n_accepted, self.decided_idx, self.snapshot, list(self.log)
        )

    # -- inputs -----------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """A StopSign ends the log: nothing may follow it in this configuration."""
        last = self._pending[-1] if self._pending else (self.log[-1] if self.log else None)
        return last is not None and is_stopsign(last)

    def propose(self, entry: Entry) -> bool:
        """Append `entry` if this replica leads; False tells the caller to route elsewhere."""
        if not self.is_leader or self.sealed:
            return False
        if self.phase is Phase.ACCEPT:
            self._append([entry])
        else:
            self._pending.append(entry)
        return True

    def read(self, token: Any) -> bool:
        """Serve a linearizable read without a log entry (read index); the token comes back
        in a later ready's `reads`. False if this replica cannot lead it."""
        if not self.accepting or self.sealed:
            return False
        self._new_reads.append((token, self.log_len))
        return True

    def become_leader(self, ballot: Ballot) -> bool:
        """BLE elected us with `ballot`; False when Paxos already promised a higher one."""
        if ballot.pid != self.pid:
            raise ValueError("become_leader takes one of our own ballots")
        if self.is_leader and ballot == self.promise:
            return True
        if ballot <= self.promise:
            return False
        self.is_leader = True
        self.leader_hint = self.pid
        self.phase = Phase.PREPARE
        self._set_promise(ballot)
        self._promises = {}
        self._followers = {}
        self._sessions = {}
        self._own_promise_counted = False
        self._send_prepare(self.peers)
        self._count_own_promise()  # once the promise is on disk
        return True

    def follow(self, leader: str) -> None:
        """BLE elected another node: stop leading; its Prepare will follow."""
        if self.is_leader:
            self._step_down()
        self.leader_hint = leader

    def tick(self) -> None:
        self._ticks += 1
        self._decide_due = True
        if self._read_round > self._confirmed_round:
            self._round_ticks += 1
            if self._round_ticks == READ_FALLBACK_TICKS:
                self._read_peers = list(self.peers)  # until a round is confirmed again
                self._send_read_confirm(self._read_peers)
        if self._ticks < self.resend_ticks:
            return
        self._ticks = 0
        if self.is_leader:
            self._resend()
        elif self.phase is Phase.RECOVER:
            self._ask_for_resync(self.peers)

    def persisted(self, token: int) -> None:
        """The host's fsync covering the ready batch `token` (and all before it) returned."""
        done = [b for b in self._unpersisted if b.token <= token]
        if not done:
            return
        self._unpersisted = self._unpersisted[len(done) :]
        self._durable = done[-1]
        self._count_own_promise()
        self._confirm_reads()

    def compact(self, snapshot: Snapshot) -> None:
        """Replace the applied prefix [0, snapshot.index) by `snapshot`."""
        if not self.log_start < snapshot.index <= self._applied_idx:
            raise ValueError(
                f"can compact only applied entries: {snapshot.index} not in "
                f"({self.log_start}, {self._applied_idx}]"
            )
        del self.log[: snapshot.index - self.log_start]
        self.log_start = snapshot.index
        self.snapshot = snapshot
        self._new_snapshot = snapshot

    def handle(self, src: str, msg: PaxosMessage) -> None:
        if isinstance(msg, AcceptDecide):
            self._on_accept_decide(src, msg)
        elif isinstance(msg, Accepted):
            self._on_accepted(src, msg)
        elif isinstance(msg, Prepare):
            self._on_prepare(src, msg)
        elif isinstance(msg, Promise):
            self._on_promise(src, msg)
        elif isinstance(msg, AcceptSync):
            self._on_accept_sync(src, msg)
        elif isinstance(msg, NotAccepted):
            self._on_not_accepted(msg)
        elif isinstance(msg, ReadConfirm):
            if msg.ballot == self.promise:
                self._unconfirmed.append((src, msg))
                self._confirm_reads()
            elif msg.ballot < self.promise:
                self._outbox.append((src, NotAccepted(self.promise)))
        elif isinstance(msg, ReadConfirmed):
            self._on_read_confirmed(src, msg)
        elif isinstance(msg, PrepareReq):
            if self.is_leader:
                self._followers.pop(src, None)
                self._send_prepare([src])
        else:
            raise TypeError(f"not a Sequence Paxos message: {msg!r}")

    # -- output -----------------------------------------------------------------------------

    def take_ready(self) -> Ready:
        if self.is_leader and self.phase is Phase.ACCEPT:
            self._advance_decided()
            self._stream_to_followers()
            self._start_read_round()
        ready = Ready(messages=self._outbox, persist=self._take_persist())
        self._outbox = []
        if ready.persist:
            self._next_token += 1
            ready.token = self._next_token
            self._unpersisted.append(
                _Batch(ready.token, self.log_len, self.promise, self.n_accepted)
            )
        if self._reply_accepted and self.leader_hint is not None:
            # The ballot the entries were accepted in, which the leader checks (OmniPaxos).
            ready.messages.append((self.leader_hint, Accepted(self.n_accepted, self.log_len)))
        self._reply_accepted = False
        self._take_applicable(ready)
        return ready

    def _take_persist(self) -> list[PersistOp]:
        persist: list[PersistOp] = []
        if self._dirty_promise:
            persist.append(SetPromise(self.promise))
        if self._dirty_accepted:
            persist.append(SetAccepted(self.n_accepted))
        if self._new_snapshot is not None:
            persist.append(InstallSnapshot(self._new_snapshot))
        if self._dirty_log_from is not None:
            start = max(self._dirty_log_from, self.log_start)
            persist.append(WriteLog(start, self.log[start - self.log_start :]))
        if self._dirty_decided:
            persist.append(SetDecided(self.decided_idx))
        self._dirty_promise = self._dirty_accepted = self._dirty_decided = False
        self._dirty_log_from = None
        self._new_snapshot = None
        return persist

    def _take_applicable(self, ready: Ready) -> None:
        """The snapshot to install, the decided entries to apply, the reads to serve."""
        if self._install is not None:
            ready.install = self._install
            self._applied_idx = self._install.index
            self._install = None
        ready.decided_from = self._applied_idx
        if self.decided_idx > self._applied_idx:
            start = self._applied_idx - self.log_start
            ready.decided = self.log[start : self.decided_idx - self.log_start]
            self._applied_idx = self.decided_idx
        if self._reads:
            ready.reads = [t for t, idx, r in self._reads if self._servable(idx, r)]
            if ready.reads:
                self._reads = [x for x in self._reads if not self._servable(x[1], x[2])]

    # -- read index -------------------------------------------------------------------------

    def _servable(self, read_idx: int, round: int) -> bool:
        return round <= self._confirmed_round and read_idx <= self.decided_idx

    def _start_read_round(self) -> None:
        if not self._new_reads:
            return
        self._read_round += 1
        self._reads.extend((token, idx, self._read_round) for token, idx in self._new_reads)
        self._new_reads = []
        self._confirms[self._read_round] = {self.pid}
        if self._read_round == self._confirmed_round + 1:
            self._round_ticks = 0
        self._send_read_confirm(self._read_peers)
        if self.quorum == 1:
            self._confirmed_round = self._read_round

    def _send_read_confirm(self, peers: list[str]) -> None:
        confirm = ReadConfirm(self.promise, self._read_round)
        self._outbox.extend((peer, confirm) for peer in peers)

    def _confirm_reads(self) -> None:
        """Confirm a ballot only once our promise of it is on disk: the confirmation then
        vouches for nothing a pending fsync holds, and leaves at once. A confirmation asked
        for a ballot we have since promised past is dropped (the leader asks again)."""
        if not self._unconfirmed or self._durable.promise != self.promise:
            return
        for src, ask in self._unconfirmed:
            if ask.ballot == self.promise:
                self._outbox.append((src, ReadConfirmed(ask.ballot, ask.round)))
        self._unconfirmed = []

    def _on_read_confirmed(self, src: str, msg: ReadConfirmed) -> None:
        if not self.is_leader or msg.ballot != self.promise or msg.round <= self._confirmed_round:
            return
        confirms = self._confirms.setdefault(msg.round, {self.pid})
        confirms.add(src)
        if len(confirms) >= self.quorum:
            self._read_peers = [p for p in self.peers if p in confirms]  # not set order
            self._confirmed_round = msg.round
            self._round_ticks = 0
            for done in [r for r in self._confirms if r <= msg.round]:
                del self._confirms[done]

    # -- leader -----------------------------------------------------------------------------

    def _count_own_promise(self) -> None:
        """A leader's own promise counts once it is on disk, claiming only the durable log."""
        if (
            not self.is_leader
            or self._own_promise_counted
            or self._durable.promise != self.promise
        ):
            return
        self._own_promise_counted = True
        accepted_idx = min(self._durable.log_len, self.log_len)
        own = Promise(self.promise, self.n_accepted, self.decided_idx, accepted_idx, 0, (), None)
        self._on_promise(self.pid, own)

    def _send_prepare(self, targets: list[str]) -> None:
        prepare = Prepare(self.promise, self.decided_idx, self.n_accepted, self.log_len)
        self._outbox.extend((peer, prepare) for peer in targets)

    def _on_promise(self, src: str, msg: Promise) -> None:
        if not self.is_leader or msg.ballot != self.promise:
            return
        if self.phase is Phase.PREPARE:
            self._promises[src] = msg
            if len(self._promises) >= self.quorum:
                self._adopt_and_sync()
        elif src != self.pid:
            self._sync_follower(src, msg)

    def _adopt_and_sync(self) -> None:
        best = max(self._promises.values(), key=lambda p: (p.n_accepted, p.accepted_idx))
        if (best.n_accepted, best.accepted_idx) > (self.n_accepted, self.log_len):
            same = best.n_accepted == self.n_accepted
            self._adopt_suffix(best.suffix_start, best.suffix, best.snapshot, extends_ours=same)
            self._adopted = (best.n_accepted, best.accepted_idx)
        else:
            # Our own log wins, even over promises that made the majority without ours (not
            # on disk yet): followers agree with it by ballot only if they accepted in ours.
            self._adopted = (self.n_accepted, self.log_len)
        self.n_accepted = self.promise
        self._dirty_accepted = True
        self._learn_decided(max(p.decided_idx for p in self._promises.values()))
        self.phase = Phase.ACCEPT
        pending, self._pending = self._pending, []
        if pending and not self.sealed:  # an adopted StopSign drops what waited behind it
            self._append(pending)
        for src, promise in self._promises.items():
            if src != self.pid:
                self._sync_follower(src, promise)
        self._promises = {}

    def _sync_follower(self, follower: str, promise: Promise) -> None:
        """Rewrite the follower's log from the last point where it surely agrees with ours."""
        if promise.n_accepted == self.promise:
            sync_idx = promise.accepted_idx  # accepted in our ballot: a prefix of our log
        elif promise.n_accepted == self._adopted[0]:
            # Both are prefixes of that ballot's leader's log: they agree up to the shorter.
            sync_idx = min(promise.accepted_idx, self._adopted[1])
        else:
            sync_idx = promise.decided_idx
        sync_idx = min(sync_idx, self.log_len)
        snapshot = None
        if sync_idx < self.log_start:
            snapshot, sync_idx = self.snapshot, self.log_start
        session = self._sessions.get(follower, 0) + 1
        self._sessions[follower] = session
        suffix = tuple(self.log[sync_idx - self.log_start :])
        self._outbox.append(
            (
                follower,
                AcceptSync(self.promise, session, sync_idx, suffix, snapshot, self.decided_idx),
            )
        )
        self._followers[follower] = _Progress(
            session=session, sent_idx=self.log_len, sent_decided=self.decided_idx
        )

    def _on_accepted(self, src: str, msg: Accepted) -> None:
        progress = self._followers.get(src)
        if progress is None or not self.is_leader or msg.ballot != self.promise:
            return
        if msg.accepted_idx > progress.acked_idx:
            progress.acked_idx = msg.accepted_idx

    def _advance_decided(self) -> None:
        # Our own acceptance counts only once it is on disk, in this ballot.
        durable = self._durable
        own = min(durable.log_len, self.log_len) if durable.n_accepted == self.promise else 0
        acked = sorted([own] + [p.acked_idx for p in self._followers.values()])
        if len(acked) >= self.quorum:
            chosen = acked[-self.quorum]
            if chosen > self.decided_idx:
                self._set_decided(chosen)

    def _stream_to_followers(self) -> None:
        """New entries, with the decided index; a decided index alone once a tick passed."""
        for follower, progress in self._followers.items():
            if progress.sent_idx < self.log_len or (
                self._decide_due and progress.sent_decided < self.decided_idx
            ):
                self._send_accept_decide(follower, progress)
        self._decide_due = self.eager_decide

    def _send_accept_decide(self, follower: str, progress: _Progress) -> None:
        entries = tuple(self.log[progress.sent_idx - self.log_start :])
        progress.seq += 1
        msg = AcceptDecide(
            self.promise,
            progress.session,
            progress.seq,
            progress.sent_idx,
            entries,
            self.decided_idx,
        )
        self._outbox.append((follower, msg))
        progress.sent_idx = self.log_len
        progress.sent_decided = self.decided_idx

    def _resend(self) -> None:
        """Repair lost messages: re-Prepare the silent, probe the lagging, re-ask for reads.
        A sealed log is probed every time: no entry will follow its StopSign to carry the
        decided index, and a follower that missed it (lost, or in a sync it ignored) would
        never learn that its configuration ended."""
        if self._read_round > self._confirmed_round:
            self._send_read_confirm(self.peers)
        if self.phase is Phase.PREPARE:
            self._send_prepare([p for p in self.peers if p not in self._promises])
            return
        self._send_prepare([p for p in self.peers if p not in self._followers])
        sealed = self.sealed
        for follower, progress in self._followers.items():
            if (
                sealed
                or progress.acked_idx < self.log_len
                or progress.sent_decided < self.decided_idx
            ):
                self._send_accept_decide(follower, progress)  # a gap makes it ask for a resync

    def _on_not_accepted(self, msg: NotAccepted) -> None:
        """Someone promised a higher ballot. It may be our own from before a power cut that
        took our promise with it: then nobody leads it, and BLE must outbid it."""
        if msg.ballot <= self.promise:
            return
        self.outbid = max(self.outbid, msg.ballot)
        if self.is_leader:
            self._step_down()
            self.leader_hint = msg.ballot.pid if msg.ballot.pid != self.pid else None

    def _step_down(self) -> None:
        self.is_leader = False
        self.phase = Phase.PREPARE
        self._promises = {}
        self._followers = {}
        self._pending = []
        self._new_reads, self._reads, self._confirms = [], [], {}

    # -- follower ---------------------------------------------------------------------------

    def _on_prepare(self, src: str, msg: Prepare) -> None:
        if msg.ballot < self.promise:
            self._outbox.append((src, NotAccepted(self.promise)))
            return
        if self.is_leader and msg.ballot != self.promise:
            self._step_down()
        if msg.ballot > self.promise:
            self._set_promise(msg.ballot)
        self.leader_hint = src
        self.phase = Phase.PREPARE
        snapshot, start = None, self.log_len
        suffix: tuple[Entry, ...] = ()
        if (self.n_accepted, self.log_len) > (msg.n_accepted, msg.accepted_idx):
            start = msg.decided_idx
            if start < self.log_start:
                snapshot, start = self.snapshot, self.log_start
            suffix = tuple(self.log[start - self.log_start :])
        self._outbox.append(
            (
                src,
                Promise(
                    self.promise,
                    self.n_accepted,
                    self.decided_idx,
                    self.log_len,
                    start,
                    suffix,
                    snapshot,
                ),
            )
        )

    def _on_accept_sync(self, src: str, msg: AcceptSync) -> None:
        if not self._same_ballot(src, msg.ballot) or self.is_leader:
            return
        ballot, session, _ = self._stream
        if self.phase is not Phase.PREPARE or (msg.ballot, msg.session) <= (ballot, session):
            # Only right after promising (OmniPaxos: Follower, Prepare); never an older sync,
            # which a delayed or duplicated message could otherwise replay (B8, B15).
            return
        start = msg.snapshot.index if msg.snapshot is not None else msg.sync_idx
        if start > self.log_len and msg.snapshot is None:
            self._ask_for_resync([src])
            return
        extends_ours = self.n_accepted == msg.ballot
        self._adopt_suffix(start, msg.suffix, msg.snapshot, extends_ours=extends_ours)
        if not extends_ours:
            self.n_accepted = msg.ballot
            self._dirty_accepted = True
        self._stream = (msg.ballot, msg.session, 0)
        self.phase = Phase.ACCEPT
        self.leader_hint = src
        self._learn_decided(msg.decided_idx)
        self._reply_accepted = True

    def _on_accept_decide(self, src: str, msg: AcceptDecide) -> None:
        if not self._same_ballot(src, msg.ballot) or self.is_leader:
            return
        ballot, session, seq = self._stream
        if (msg.ballot, msg.session) < (ballot, session):
            return  # from a session that a resync already replaced
        if self.phase is not Phase.ACCEPT or (msg.ballot, msg.session) != (ballot, session):
            self._ask_for_resync([src])  # out of the stream, or we missed its AcceptSync
            return
        if msg.seq <= seq:
            return  # a duplicate or an old message
        if msg.seq > seq + 1 or msg.start_idx != self.log_len:
            # Out of the stream until the leader resyncs us; the session stays what it was,
            # so no older sync of this ballot can pass for the resync.
            self.phase = Phase.PREPARE
            self._ask_for_resync([src])
            return
        self._stream = (ballot, session, msg.seq)
        if msg.entries:
            self._append(msg.entries)
            self._reply_accepted = True
        elif msg.decided_idx <= self.decided_idx:
            self._reply_accepted = True  # a probe from the resend timer: say where we are
        self._learn_decided(msg.decided_idx)

    def _same_ballot(self, src: str, ballot: Ballot) -> bool:
        """Accept-phase messages count only in the ballot we promised."""
        if ballot < self.promise:
            self._outbox.append((src, NotAccepted(self.promise)))
            return False
        if ballot > self.promise:
            self._ask_for_resync([src])  # we never saw its Prepare
            return False
        return True

    def _ask_for_resync(self, targets: list[str]) -> None:
        self._outbox.extend((peer, PrepareReq()) for peer in targets)

    def _learn_decided(self, leader_decided: int) -> None:
        decided = min(leader_decided, self.log_len)
        if decided > self.decided_idx:
            self._set_decided(decided)

    # -- shared state changes ---------------------------------------------------------------

    def _set_promise(self, ballot: Ballot) -> None:
        self.promise = ballot
        self._dirty_promise = True

    def _set_decided(self, idx: int) -> None:
        self.decided_idx = idx
        self._dirty_decided = True

    def _append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        if self._dirty_log_from is None:
            self._dirty_log_from = self.log_len
        self.log.extend(entries)

    def _adopt_suffix(
        self,
        start: int,
        suffix: tuple[Entry, ...],
        snapshot: Snapshot | None,
        *,
        extends_ours: bool,
    ) -> None:
        """Make our log agree with another's: `suffix` from `start`, after `snapshot` if any.

        `extends_ours`: both logs were accepted in one ballot, so both are prefixes of that
        ballot's leader log; ours then only grows and nothing we acknowledged is cut (B15).
        A snapshot past our decided index is installed whatever our log holds, since our
        undecided entries below it may never have been chosen (B1; etcd and OmniPaxos do
        the same)."""
        covered = extends_ours and snapshot is not None and snapshot.index <= self.log_len
        if snapshot is not None and snapshot.index > self.decided_idx and not covered:
            self._install_snapshot(snapshot)
        if extends_ours:
            have = self.log_len - start
            if 0 <= have < len(suffix):
                self._append(suffix[have:])
            return
        if start < self.log_start:
            suffix = suffix[self.log_start - start :]  # we compacted those: they are decided
            start = self.log_start
        self._truncate(start)
        self.log.extend(suffix)
        if self.decided_idx > self.log_len:
            raise AssertionError("a resync would drop decided entries")

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        self._truncate(self.log_start)
        self.log_start = snapshot.index
        self.snapshot = self._new_snapshot = self._install = snapshot
        self._set_decided(snapshot.index)

    def _truncate(self, start: int) -> None:
        """Drop our log from `start`; the host rewrites it from there in the next batch."""
        del self.log[start - self.log_start :]
        self._dirty_log_from = (
            start if self._dirty_log_from is None else min(self._dirty_log_from, start)
        )
        if self._durable.log_len > start:
            self._durable = replace(self._durable, log_len=start)
        self._unpersisted = [replace(b, log_len=min(b.log_len, start)) for b in self._unpersisted]
