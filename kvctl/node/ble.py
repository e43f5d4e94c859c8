"""Ballot leader election with quorum-connectivity (Omni-Paxos BLE), sans-IO.

Every `heartbeat_ticks` ticks a round ends. A node that heard from a majority (itself
included) is quorum-connected; it elects the highest ballot among the quorum-connected
candidates it heard from. If the leader it had is no longer among them, it raises its own
ballot past the leader's, so the next round elects a new leader. Only a quorum-connected node
can win, and the leader's identity is never gossiped: that is what lets Omni-Paxos recover
from the quorum-loss, constrained-election and chained partial partitions.
"""

from __future__ import annotations

from kvctl.node.ballot import Ballot, majority
from kvctl.node.messages import HeartbeatReply, HeartbeatRequest

BleMessage = HeartbeatRequest | HeartbeatReply


class BallotLeaderElection:
    """One member's view of one group's election. Inputs: tick, handle. Outputs:
    `take_messages()`, and `take_new_leader()` once per change of leader."""

    def __init__(
        self,
        pid: str,
        members: list[str],
        *,
        priority: int = 0,
        initial_round: int = 0,
        heartbeat_ticks: int = 10,
    ) -> None:
        if pid not in members:
            raise ValueError(f"{pid} is not a member of {members}")
        self.pid = pid
        self.peers = [m for m in members if m != pid]
        self.quorum = majority(len(members))
        self.ballot = Ballot(initial_round, priority, pid)
        self.leader: Ballot | None = None
        self.quorum_connected = True
        self.heartbeat_ticks = heartbeat_ticks
        self.round = 0
        self._ticks = 0
        # One reply per peer: a duplicated reply must not make a cut-off node look connected.
        self._replies: dict[str, HeartbeatReply] = {}
        self._outbox: list[tuple[str, BleMessage]] = []
        self._leader_changed = False
        self._start_round()

    def take_messages(self) -> list[tuple[str, BleMessage]]:
        out, self._outbox = self._outbox, []
        return out

    def take_new_leader(self) -> Ballot | None:
        """The leader elected since the last call, if it changed."""
        if not self._leader_changed:
            return None
        self._leader_changed = False
        return self.leader

    def tick(self) -> bool:
        """True when this tick ended a round: the leader was decided again, with every
        ballot heard in the round."""
        self._ticks += 1
        if self._ticks < self.heartbeat_ticks:
            return False
        self._ticks = 0
        self._end_round()
        self._start_round()
        return True

    def handle(self, src: str, msg: BleMessage) -> None:
        if isinstance(msg, HeartbeatRequest):
            reply = HeartbeatReply(msg.round, self.ballot, self.quorum_connected)
            self._outbox.append((src, reply))
        elif msg.round == self.round and src in self.peers:
            self._replies[src] = msg

    def raise_ballot_above(self, n: int) -> None:
        """Called when Paxos has promised a ballot at least ours: outbid it next round."""
        if self.ballot.n <= n:
            self.ballot = Ballot(n + 1, self.ballot.priority, self.pid)
            if self.leader is not None and self.leader.pid == self.pid:
                self.leader = None

    def _start_round(self) -> None:
        self.round += 1
        self._replies = {}
        request = HeartbeatRequest(self.round)
        self._outbox.extend((peer, request) for peer in self.peers)

    def _end_round(self) -> None:
        if len(self._replies) + 1 < self.quorum:
            self.quorum_connected = False
            return
        self.quorum_connected = True
        top = self.ballot
        for reply in self._replies.values():
            if reply.quorum_connected and reply.ballot > top:
                top = reply.ballot
        if self.leader is not None and top < self.leader:
            # The leader we had did not answer, or answered that it lost its quorum.
            self.ballot = Ballot(self.leader.n + 1, self.ballot.priority, self.pid)
            self.leader = None
        elif top != self.leader:
            self.leader = top
            self._leader_changed = True
