"""Where a node sends a request it cannot serve itself, and what it does when no answer comes.

A forward goes to the node believed to lead the key's group, unless that node is out of
reach: then to another member we can reach, which forwards it on (a request passes through
at most two hops). A peer is reachable while it answers our pings: every node pings every
other every `PING_TICKS`, and a Pong proves the round trip. A peer that leaves our pings
unanswered for `STALL_TICKS` may sit behind a stalled connection: a link cut by a partition
looks open to TCP, which backs off exponentially and, seconds after the heal, has still not
retransmitted. So the host resets that connection, and again every `STALL_TICKS` while the
pings go unanswered: each new connection sends its first SYN at once, and the first one after
the heal gets through.

A forward that gets no answer within `RETRY_TICKS` goes to the next candidate, up to
`MAX_TRIES` nodes, so a request is never held until the client's timeout because one link is
cut. The retry keeps the forward's id, so the first answer settles it; since several nodes
may then have proposed it, a definite refusal from one of them no longer proves that it did
not happen. When no candidate is left that might answer, the request is answered at once:
refused (definitely) if it was never sent on, unknown if it was; either way the client can try
another node instead of waiting out its timeout on one that cannot help it.

Sans-IO like the rest of the core: time is the core's tick count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PING_TICKS = 10
REACH_TICKS = 35  # more than three pings missed: out of reach
STALL_TICKS = 60
RETRY_TICKS = 40
MAX_TRIES = 3


@dataclass(frozen=True)
class ClientSink:
    conn: int
    req_id: int


@dataclass(frozen=True)
class PeerSink:
    node: str
    forward_id: int


Sink = ClientSink | PeerSink


@dataclass
class Forward:
    """A request this node passed on, waiting for its answer."""

    sink: Sink
    group: int
    request: tuple[Any, ...]
    hops: int  # hops the forward has taken when it arrives
    first_sent: int
    last_sent: int
    tried: list[str] = field(default_factory=list)


class Reachability:
    """Which peers answer our pings, and since when the others have not."""

    def __init__(self) -> None:
        self._answered: dict[str, int] = {}
        self._asked_since: dict[str, int] = {}  # the oldest ping not answered yet
        self._reset_at: dict[str, int] = {}  # when the host was last told to reconnect

    def pinged(self, peer: str, now: int) -> None:
        self._asked_since.setdefault(peer, now)

    def answered(self, peer: str, now: int) -> None:
        self._answered[peer] = now
        self._asked_since.pop(peer, None)

    def reachable(self, peer: str, now: int) -> bool:
        last = self._answered.get(peer)
        return last is not None and now - last <= REACH_TICKS

    def unreachable(self, peer: str, now: int) -> bool:
        """Known to be out of reach: pinged more than REACH_TICKS ago, and silent since. A peer
        we have not asked long enough (just after a start) is neither."""
        since = self._asked_since.get(peer)
        return since is not None and now - since > REACH_TICKS

    def stalled(self, now: int) -> list[str]:
        """Peers whose connection to reset: no ping answered for STALL_TICKS, and none reset
        for as long (each new connection gets its own chance)."""
        stalled = [
            peer
            for peer, since in self._asked_since.items()
            if now - since >= STALL_TICKS
            and now - self._reset_at.get(peer, now - STALL_TICKS) >= STALL_TICKS
        ]
        for peer in stalled:
            self._reset_at[peer] = now
        return stalled

    def pick(
        self, candidates: Iterable[str], exclude: Iterable[str | None], now: int
    ) -> str | None:
        """The first candidate not excluded that we can reach; failing that, the first one
        not known to be out of reach (none is known until it has had time to answer a ping);
        None if every candidate is excluded or out of reach."""
        excluded = set(exclude)
        allowed = [c for c in dict.fromkeys(candidates) if c not in excluded]
        reachable = [c for c in allowed if self.reachable(c, now)]
        choices = reachable or [c for c in allowed if not self.unreachable(c, now)]
        return choices[0] if choices else None
