"""An in-memory network of Sequence Paxos replicas, delivered by hand (h11's ConnectionPair
idea): no sockets, no clock, no sleeps. Tests read like a script of messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kvctl.node.ballot import Ballot
from kvctl.node.durable import DurableState
from kvctl.node.paxos import SequencePaxos

Drop = Callable[[str, str, Any], bool]


class PaxosNet:
    def __init__(self, members: list[str], **options: Any) -> None:
        """`options` go to every SequencePaxos made here (eager_decide, say)."""
        self.members = members
        self.options = options
        self.disk = {m: DurableState() for m in members}
        self.decided: dict[str, list[Any]] = {m: [] for m in members}
        self.served: dict[str, list[Any]] = {m: [] for m in members}  # read tokens
        self.nodes = {m: SequencePaxos(m, members, **options) for m in members}
        self.queue: list[tuple[str, str, Any]] = []
        self.down: set[str] = set()

    def flush(self, name: str) -> None:
        ready = self.nodes[name].take_ready()
        for op in ready.persist:
            self.disk[name].apply(op)
        if ready.token is not None:
            self.nodes[name].persisted(ready.token)
        if ready.install is not None:
            self.decided[name] = [("snapshot", ready.install.index)]
        self.decided[name].extend(ready.decided)
        self.served[name].extend(ready.reads)
        self.queue.extend((name, dst, msg) for dst, msg in ready.messages)

    def flush_all(self) -> None:
        for name in self.members:
            if name not in self.down:
                self.flush(name)

    def deliver(self, drop: Drop = lambda *_: False, limit: int = 10_000) -> int:
        """Deliver queued messages (and what they cause) until none are left."""
        self.flush_all()
        count = 0
        while self.queue and count < limit:
            src, dst, msg = self.queue.pop(0)
            if dst in self.down or drop(src, dst, msg):
                continue
            self.nodes[dst].handle(src, msg)
            self.flush(dst)
            count += 1
        return count

    def settle(self, drop: Drop = lambda *_: False) -> int:
        """Deliver, let one tick pass, deliver again: a decided index that no new entries
        carry reaches the followers at the next tick (paxos.py)."""
        count = self.deliver(drop)
        self.tick()
        return count + self.deliver(drop)

    def elect(self, name: str, n: int) -> Ballot:
        ballot = Ballot(n, 0, name)
        assert self.nodes[name].become_leader(ballot)
        return ballot

    def propose(self, name: str, *values: Any) -> None:
        for value in values:
            assert self.nodes[name].propose(value)

    def crash(self, name: str) -> None:
        self.down.add(name)
        self.queue = [m for m in self.queue if name not in (m[0], m[1])]

    def restart(self, name: str) -> None:
        """Come back from what reached the disk only."""
        self.down.discard(name)
        self.nodes[name] = SequencePaxos(name, self.members, self.disk[name], **self.options)
        self.decided[name] = []

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for name in self.members:
                if name not in self.down:
                    self.nodes[name].tick()
