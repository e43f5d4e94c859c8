"""The simulated world: a virtual clock, a lossy network and disks that lose unsynced writes.

A node writes each ready batch at once and fsyncs it as a group commit: one fsync at a time,
covering every batch written before it started; batches that arrive meanwhile wait for the
next one. Messages that vouch for a batch (AFTER_FSYNC) leave only when its fsync returns, as
in the real server; a crash before then loses them. Everything else, client responses
included (they report what is decided, durable at a majority by the core's own count),
leaves at once, so a crash can land after a node told others about a write it never made
durable.

`counts` records how often each path was taken (crashes, power cuts, torn writes, slow
fsyncs, long delays, messages that outlived a restart), so a range of seeds shows what it
exercised.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from kvctl.node.core import NodeCore, NodeReady
from kvctl.node.durable import Instance, needs_fsync
from kvctl.node.messages import AFTER_FSYNC, ClientForward, ClientForwardReply, is_stopsign
from kvctl.node.placement import Placement
from kvctl.node.replica import Timing
from kvctl.node.storage import decode_log, encode_batch

TICK_MS = 10
SLOW_FSYNC_MS = 10
LONG_DELAY_MS = (100, 1500)  # a message held back (a retransmission, a slow path)
STALL_MS = (100, 500)  # an fsync stuck behind a busy device


@dataclass
class Counts:
    """How often each fault path was taken in one run (or, summed, in many)."""

    compactions: int = 0
    snapshot_installs: int = 0
    reconfigurations: int = 0  # configurations ended by a decided StopSign
    process_crashes: int = 0  # the page cache survives
    node_power_cuts: int = 0  # unsynced bytes lost, every node of a cluster cut counted
    cluster_power_cuts: int = 0  # every node at once
    torn_writes: int = 0  # a power cut kept a strict, non-empty prefix of the unsynced bytes
    crashes_in_fsync: int = 0  # while an fsync was pending, after messages that did not wait
    restarts: int = 0
    slow_fsyncs: int = 0  # at least SLOW_FSYNC_MS
    stalled_fsyncs: int = 0  # at least STALL_MS[0]
    long_delays: int = 0  # messages held at least LONG_DELAY_MS[0]
    stale_deliveries: int = 0  # delivered after its sender or receiver restarted

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def total(counts: list[dict[str, int]]) -> dict[str, int]:
    """The sum of several runs' counts, key by key, in the order of `Counts`."""
    return {name: sum(c.get(name, 0) for c in counts) for name in Counts().as_dict()}


@dataclass
class NetworkConditions:
    loss: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 8
    long_tail: float = 0.0  # the chance that a message is held LONG_DELAY_MS
    blocked: set[tuple[str, str]] = field(default_factory=set)  # (src, dst) links cut

    def cut(self, src: str, dst: str) -> bool:
        return (src, dst) in self.blocked


@dataclass
class DiskConditions:
    """How long one fsync takes on a node: a few ms when healthy, tens when slow, and with
    chance `stall` hundreds (an fsync stuck behind a busy device)."""

    min_ms: int = 0
    max_ms: int = 2
    stall: float = 0.0

    def fsync_ms(self, rng: random.Random) -> int:
        if rng.random() < self.stall:
            return rng.randint(*STALL_MS)
        return rng.randint(self.min_ms, self.max_ms)


# A batch waiting for its fsync: the ready batch and its messages that wait for the fsync.
_Waiting = tuple[NodeReady, list[tuple[str, Any, Any]]]


class SimNode:
    """One node: its core while it runs, and its disk, which survives crashes.

    The disk holds the node's write-ahead log as bytes in the real format (`storage.py`), and
    a restart recovers through the real `decode_log`. `durable` is what an fsync made safe;
    `cache` is what was written after it (the page cache): a process crash keeps it, a power
    cut loses it, or keeps a prefix of it (a torn write). `unwritten` is what the node has
    taken but not yet written, as the server holds it: batches that wait for the next fsync
    to start, and decided indices alone until a batch that needs an fsync or the next tick
    takes them; any stop loses it."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.durable = bytearray()
        self.cache = bytearray()
        self.unwritten = bytearray()
        self.disk = DiskConditions()
        self.core: NodeCore | None = None
        self.incarnation = 0
        self.cut_in_next_fsync: bool | None = None  # armed by the nemesis: torn or not
        self._syncing = False  # an fsync is in flight
        self._next_group: list[_Waiting] = []  # batches for the fsync after it
        self._sent_early = False  # messages left while an fsync was pending
        self._cut_due = False  # the armed cut lands within the next fsync
        self.start()

    @property
    def up(self) -> bool:
        return self.core is not None

    @property
    def leads_a_group(self) -> bool:
        return self.core is not None and any(r.accepting for r in self.core.replicas.values())

    @property
    def fsync_pending(self) -> bool:
        return self._syncing or bool(self._next_group)

    def start(self) -> None:
        """Recover from the disk as the real node does; a torn tail is cut. What the page
        cache held after a process crash is taken as written through by then."""
        data = bytes(self.durable + self.cache)
        states, intact = decode_log(data, f"{self.name}/wal.log")
        self.durable, self.cache = bytearray(data[:intact]), bytearray()
        if self.incarnation:
            self.world.counts.restarts += 1
        self.incarnation += 1
        self.core = NodeCore(
            self.name,
            self.world.placement,
            states,
            timing=self.world.timing,
            addresses={name: name for name in self.world.nodes_all},
            read_mode=self.world.read_mode,
            leaders=self.world.leaders,
            boot=self.incarnation,
        )
        self.world.after(self.world.rng.randint(1, TICK_MS), self._tick, self.incarnation)

    def crash(self) -> None:
        """The process dies: what it wrote stays in the page cache; replies not yet sent
        (they wait for an fsync) are lost."""
        self.world.counts.process_crashes += 1
        self._stop()

    def power_cut(self, torn: bool = False) -> None:
        """The machine loses power: unsynced bytes are gone, or a prefix of them survives."""
        self.world.counts.node_power_cuts += 1
        self._stop()
        keep = self.world.rng.randint(0, len(self.cache)) if torn else 0
        if 0 < keep < len(self.cache):
            self.world.counts.torn_writes += 1
        self.durable += self.cache[:keep]
        self.cache = bytearray()

    def _stop(self) -> None:
        if self.core is None:
            return
        if self.fsync_pending and self._sent_early:
            self.world.counts.crashes_in_fsync += 1
            self.world.log(f"{self.name} stops with an fsync pending")
        self.core = None
        self.unwritten = bytearray()
        self.incarnation += 1
        self._syncing, self._next_group, self._sent_early, self._cut_due = False, [], False, False

    def _tick(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.core is None:
            return
        self.core.tick()
        self.flush()
        if self.unwritten and not self._syncing:
            self._write_unwritten()
        self.world.after(TICK_MS, self._tick, incarnation)

    def _write_unwritten(self) -> None:
        self.cache += self.unwritten
        self.unwritten = bytearray()

    def flush(self) -> None:
        """Take the core's ready batch, to be written when its fsync starts. Messages that
        vouch for nothing leave now; the rest leave when the fsync covering the batch
        returns."""
        if self.core is None:
            return
        ready = self.core.take_ready()
        self.world.on_ready(self.name, self.incarnation, ready)
        self.world.count_ready(ready)
        later = [m for m in ready.messages if isinstance(m[2], AFTER_FSYNC)]
        early = [m for m in ready.messages if not isinstance(m[2], AFTER_FSYNC)]
        for dst, instance, msg in early:
            self.world.send(self.name, dst, (instance, msg))
        for conn, response in ready.responses:  # they report what is decided, as the server
            self.world.respond(self.name, conn, response)  # sends them: at once
        if ready.persist:
            self.unwritten += encode_batch(ready.persist)
        if not (ready.persist or later):
            return
        sync = any(needs_fsync(op) for _, op in ready.persist)
        went_early = bool(early or ready.responses)
        self._cut_due |= sync and went_early and self.cut_in_next_fsync is not None
        self._sent_early |= went_early and (sync or self._syncing)
        self._next_group.append((ready, later))
        if not self._syncing:
            self._start_fsync()

    def _armed_cut(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.cut_in_next_fsync is None:
            return
        torn, self.cut_in_next_fsync = self.cut_in_next_fsync, None
        self.world.log(f"{self.name} loses power while its fsync is pending (torn {torn})")
        self.power_cut(torn)

    def _start_fsync(self) -> None:
        """One fsync for every batch written so far that waits for one; batches that need
        none (a decided index alone) complete at once, after those before them."""
        group, self._next_group = self._next_group, []
        sync = any(needs_fsync(op) for ready, _ in group for _, op in ready.persist)
        if sync:
            self._write_unwritten()
        delay = self.disk.fsync_ms(self.world.rng) if sync else 0
        if delay >= SLOW_FSYNC_MS:
            self.world.counts.slow_fsyncs += 1
        if delay >= STALL_MS[0]:
            self.world.counts.stalled_fsyncs += 1
        upto = len(self.durable) + len(self.cache) if sync else 0
        self._syncing = True
        if self._cut_due:  # at any moment before the fsync returns (first at a tie)
            self._cut_due = False
            self.world.after(self.world.rng.randint(0, delay), self._armed_cut, self.incarnation)
        self.world.after(delay, self._synced, self.incarnation, group, upto)

    def _synced(self, incarnation: int, group: list[_Waiting], upto: int) -> None:
        """The fsync returned: the log is durable up to byte `upto`, and what waited for it
        leaves. Then the next fsync starts, if batches wait for one."""
        if incarnation != self.incarnation or self.core is None:
            return  # crashed before the fsync completed: its replies are lost
        moved = max(0, upto - len(self.durable))
        self.durable += self.cache[:moved]
        del self.cache[:moved]
        self._syncing = False
        for ready, later in group:
            for dst, instance, msg in later:
                self.world.send(self.name, dst, (instance, msg))
            if ready.written:
                self.core.persisted(ready.written)
        if self._next_group:
            self._start_fsync()
        else:
            self._sent_early = False
        self.flush()  # a leader may now count itself toward a majority


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
        leaders: str = "spread",
        timing: Timing | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self.placement = Placement(tuple(nodes), groups, replication)
        self.timing = timing or Timing(heartbeat_ticks=5, resend_ticks=10, compact_entries=300)
        self.read_mode = read_mode
        self.leaders = leaders
        self.net = NetworkConditions()
        self.counts = Counts()
        self._reconfigured: set[Instance] = set()
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

    def count_ready(self, ready: NodeReady) -> None:
        """Count the paths a ready batch shows: compactions, installs, ended configurations."""
        self.counts.compactions += len(ready.compacted)
        self.counts.snapshot_installs += len(ready.installed)
        for instance, _, entry in ready.applied:
            if is_stopsign(entry) and instance not in self._reconfigured:
                self._reconfigured.add(instance)
                self.counts.reconfigurations += 1

    # -- the network ------------------------------------------------------------------------

    def _delay(self) -> int:
        if self.rng.random() < self.net.long_tail:
            self.counts.long_delays += 1
            return self.rng.randint(*LONG_DELAY_MS)
        return self.rng.randint(self.net.min_delay_ms, self.net.max_delay_ms)

    def send(self, src: str, dst: str, payload: tuple[Any, Any]) -> None:
        if self.net.cut(src, dst) or self.rng.random() < self.net.loss:
            return
        copies = 2 if self.rng.random() < self.net.duplicate else 1
        if isinstance(payload[1], ClientForward | ClientForwardReply):
            # Relaying a client's request rides on TCP, which never duplicates: a copy could
            # be refused ("fail") after the original was proposed. Loss stays possible.
            copies = 1
        lives = (self.nodes[src].incarnation, self.nodes[dst].incarnation)
        for _ in range(copies):
            self.after(self._delay(), self._deliver, src, dst, payload, lives)

    def _deliver(
        self, src: str, dst: str, payload: tuple[Any, Any], lives: tuple[int, int]
    ) -> None:
        node = self.nodes[dst]
        if node.core is None:
            return
        if lives != (self.nodes[src].incarnation, node.incarnation):
            self.counts.stale_deliveries += 1
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
