"""The simulated world: a virtual clock, a lossy network and disks that lose unsynced writes.

A node's ready batch becomes durable only when its simulated fsync completes; its messages
and responses leave at that moment, as in the real server. A crash before then loses both.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kvctl.node.core import NodeCore, NodeReady
from kvctl.node.durable import needs_fsync
from kvctl.node.messages import AFTER_FSYNC, ClientForward, ClientForwardReply
from kvctl.node.placement import Placement
from kvctl.node.replica import Timing
from kvctl.node.storage import decode_log, encode_batch

TICK_MS = 10


@dataclass
class NetworkConditions:
    loss: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 8
    blocked: set[tuple[str, str]] = field(default_factory=set)  # (src, dst) links cut

    def cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self.blocked


class SimNode:
    """One node: its core while it runs, and its disk, which survives crashes.

    The disk holds the node's write-ahead log as bytes in the real format (`storage.py`), and
    a restart recovers through the real `decode_log`. `durable` is what an fsync made safe;
    `cache` is what was written after it (the page cache): a process crash keeps it, a power
    cut loses it, or keeps a prefix of it (a torn write)."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.durable = bytearray()
        self.cache = bytearray()
        self.core: NodeCore | None = None
        self.incarnation = 0
        self.fsync_done_at = 0
        self.start()

    @property
    def up(self) -> bool:
        return self.core is not None

    def start(self) -> None:
        data = bytes(self.durable + self.cache)
        states, intact = decode_log(data, f"{self.name}/wal.log")
        self.durable, self.cache = bytearray(data[:intact]), bytearray()
        self.incarnation += 1
        self.core = NodeCore(
            self.name,
            self.world.placement,
            states,
            timing=self.world.timing,
            addresses={name: name for name in self.world.nodes_all},
            read_mode=self.world.read_mode,
        )
        self.world.after(self.world.rng.randint(1, TICK_MS), self._tick, self.incarnation)

    def crash(self) -> None:
        """The process dies: what it wrote stays in the page cache; replies not yet sent
        (they wait for an fsync) are lost."""
        self.core = None
        self.incarnation += 1

    def power_cut(self, torn: bool = False) -> None:
        """The machine loses power: unsynced bytes are gone, or a prefix of them survives."""
        self.crash()
        keep = self.world.rng.randint(0, len(self.cache)) if torn else 0
        self.durable += self.cache[:keep]
        self.cache = bytearray()

    def _tick(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.core is None:
            return
        self.core.tick()
        self.flush()
        self.world.after(TICK_MS, self._tick, incarnation)

    def flush(self) -> None:
        """Take the core's ready batch and write it at once. Messages that vouch for
        nothing leave now; the rest leave when the simulated fsync completes."""
        if self.core is None:
            return
        ready = self.core.take_ready()
        self.world.on_ready(self.name, self.incarnation, ready)
        later = []
        for dst, group, msg in ready.messages:
            if isinstance(msg, AFTER_FSYNC):
                later.append((dst, group, msg))
            else:
                self.world.send(self.name, dst, (group, msg))
        if ready.persist:
            self.cache += encode_batch(ready.persist)
        if not (ready.persist or later or ready.responses):
            return
        sync = any(needs_fsync(op) for _, op in ready.persist)
        start = max(self.world.now, self.fsync_done_at)
        self.fsync_done_at = start + (self.world.rng.randint(0, 2) if sync else 0)
        upto = len(self.durable) + len(self.cache) if sync else 0
        self.world.at(self.fsync_done_at, self._synced, self.incarnation, ready, later, upto)

    def _synced(self, incarnation: int, ready: NodeReady, later: list[Any], upto: int) -> None:
        """The fsync returned: the log is durable up to byte `upto`."""
        if incarnation != self.incarnation:
            return  # crashed before the fsync completed: its replies are lost
        moved = max(0, upto - len(self.durable))
        self.durable += self.cache[:moved]
        del self.cache[:moved]
        if self.core is not None and ready.written:
            self.core.persisted(ready.written)
            self.flush()
        for dst, group, msg in later:
            self.world.send(self.name, dst, (group, msg))
        for conn, response in ready.responses:
            self.world.respond(self.name, conn, response)


class World:
    def __init__(
        self,
        seed: int,
        nodes: list[str],
        *,
        spares: tuple[str, ...] = (),
        groups: int,
        replication: int,
        read_mode: str = "linearizable",
        timing: Timing | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self.placement = Placement(tuple(nodes), groups, replication)
        self.timing = timing or Timing(heartbeat_ticks=5, resend_ticks=10, compact_entries=300)
        self.read_mode = read_mode
        self.net = NetworkConditions()
        self.trace: deque[str] = deque(maxlen=60)
        self._events: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.client_inbox: Callable[[str, int, tuple[Any, ...]], None] = lambda *_: None
        # Every ready batch a node takes, as it is taken: what a safety monitor watches.
        self.on_ready: Callable[[str, int, NodeReady], None] = lambda *_: None
        self.nodes_all = [*nodes, *spares]  # spares found no group; they may join one
        self.nodes = {name: SimNode(self, name) for name in self.nodes_all}

    # -- the clock --------------------------------------------------------------------------

    def at(self, time: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (time, self._seq, fn, args))

    def after(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, fn, *args)

    def run_until(self, time: int) -> None:
        while self._events and self._events[0][0] <= time:
            when, _, fn, args = heapq.heappop(self._events)
            self.now = when
            fn(*args)
        self.now = time

    def log(self, line: str) -> None:
        self.trace.append(f"{self.now:>7} ms  {line}")

    # -- the network ------------------------------------------------------------------------

    def _delay(self) -> int:
        return self.rng.randint(self.net.min_delay_ms, self.net.max_delay_ms)

    def send(self, src: str, dst: str, payload: tuple[int, Any]) -> None:
        if self.net.cut(src, dst) or self.rng.random() < self.net.loss:
            return
        copies = 2 if self.rng.random() < self.net.duplicate else 1
        if isinstance(payload[1], ClientForward | ClientForwardReply):
            # Relaying a client's request rides on TCP, which never duplicates: a copy could
            # be refused ("fail") after the original was proposed. Loss stays possible.
            copies = 1
        for _ in range(copies):
            self.after(self._delay(), self._deliver, src, dst, payload)

    def _deliver(self, src: str, dst: str, payload: tuple[int, Any]) -> None:
        node = self.nodes[dst]
        if node.core is None:
            return
        group, msg = payload
        node.core.peer_message(src, group, msg)
        node.flush()

    def request(self, client: int, node_name: str, request: tuple[Any, ...]) -> None:
        """A client's request, over a link that loses and delays like any other."""
        if self.rng.random() < self.net.loss:
            return
        self.after(self._delay(), self._deliver_request, client, node_name, request)

    def _deliver_request(self, client: int, node_name: str, request: tuple[Any, ...]) -> None:
        node = self.nodes[node_name]
        if node.core is None:
            return
        node.core.client_request(client, request)
        node.flush()

    def respond(self, node_name: str, client: int, response: tuple[Any, ...]) -> None:
        if self.rng.random() < self.net.loss:
            return
        self.after(self._delay(), self.client_inbox, node_name, client, response)
