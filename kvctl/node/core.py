"""A whole node, sans-IO: its replicas, client routing, forwarding and waiting requests.

The asyncio server and the simulator both drive this class, so everything but sockets, the
clock and the disk lives here. Inputs: `client_request`, `peer_message`, `tick`. Output:
`take_ready()`: WAL records to fsync, then peer messages to send, then client responses.

Routing: a request for key k goes to k's group. If this node leads the group, it proposes the
command and answers when the command is applied here. Otherwise it forwards the request to
the node it believes leads (at most two hops) and relays the answer. Every response carries
the leader's name so that clients can go straight there next time.

Outcomes: "ok" (applied, with its result), "fail" (it did not and will not happen: nobody
proposed it) and "unknown" (it was proposed but this node can no longer tell: the leader
stepped down or the request waited too long). Retrying an unknown request with the same
(client id, seq) is safe: the state machine applies it at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.durable import DurableState, PersistOp
from kvctl.node.messages import ClientForward, ClientForwardReply
from kvctl.node.placement import Placement
from kvctl.node.replica import DEFAULT_TIMING, Replica, Timing
from kvctl.node.statemachine import OPS, READ

NODE_LEVEL = -1  # group id of messages between nodes rather than replicas
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1 << 20
MAX_HOPS = 2
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"

# A client request: (req_id, op, key, a, b, client_id, seq); op "topology" takes no key.
# A result: (status, value, leader); a response: (req_id, status, value, leader).
Result = tuple[str, Any, str | None]


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
class NodeReady:
    persist: list[tuple[int, PersistOp]] = field(default_factory=list)
    messages: list[tuple[str, int, Any]] = field(default_factory=list)  # (dst, group, msg)
    responses: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)  # (conn, resp)


class NodeCore:
    def __init__(
        self,
        name: str,
        placement: Placement,
        durable: dict[int, DurableState] | None = None,
        *,
        read_mode: str = "linearizable",
        timing: Timing = DEFAULT_TIMING,
        request_timeout_ticks: int = 500,
    ) -> None:
        if read_mode not in ("linearizable", "stale"):
            raise ValueError(f"unknown read mode {read_mode!r}")
        durable = durable or {}
        self.name = name
        self.placement = placement
        self.read_mode = read_mode
        self.request_timeout_ticks = request_timeout_ticks
        self.replicas = {
            g: Replica(
                name,
                placement.members(g),
                durable.get(g),
                priority=placement.priority(g, name),
                timing=timing,
            )
            for g in placement.groups_of(name)
        }
        self.leader_cache: dict[int, str] = {}  # for groups we are not a member of
        self._waiters: dict[tuple[int, int, int], list[tuple[Sink, int]]] = {}
        self._forwards: dict[int, tuple[Sink, int]] = {}
        self._next_forward = 0
        self._now = 0
        self._was_accepting = {g: False for g in self.replicas}
        self._ready = NodeReady()

    # -- inputs -----------------------------------------------------------------------------

    def client_request(self, conn: int, request: tuple[Any, ...]) -> None:
        req_id = request[0] if request else None
        if not isinstance(req_id, int):
            self._ready.responses.append((conn, (None, FAIL, "malformed request", None)))
            return
        self._route(ClientSink(conn, req_id), request, hops=0)

    def peer_message(self, src: str, group: int, msg: Any) -> None:
        if group == NODE_LEVEL:
            if isinstance(msg, ClientForward):
                self._route(PeerSink(src, msg.forward_id), msg.request, hops=1)
            elif isinstance(msg, ClientForwardReply):
                pending = self._forwards.pop(msg.forward_id, None)
                if pending is not None:
                    self._deliver(pending[0], tuple(msg.response))
            return
        replica = self.replicas.get(group)
        if replica is not None:
            replica.handle(src, msg)

    def tick(self) -> None:
        self._now += 1
        for replica in self.replicas.values():
            replica.tick()
        if self._now % 50 == 0:
            self._expire_requests()

    # -- output -----------------------------------------------------------------------------

    def take_ready(self) -> NodeReady:
        ready = self._ready
        for group, replica in self.replicas.items():
            out = replica.take_ready()
            ready.persist.extend((group, op) for op in out.persist)
            ready.messages.extend((dst, group, msg) for dst, msg in out.messages)
            leader = replica.leader_hint()
            for client_id, seq, value in out.results:
                for sink, _ in self._waiters.pop((group, client_id, seq), ()):
                    self._deliver(sink, (OK, value, leader), ready)
            accepting = replica.accepting
            if self._was_accepting[group] and not accepting:
                self._abandon_group(group, ready)
            self._was_accepting[group] = accepting
        self._ready = NodeReady()
        return ready

    # -- routing ----------------------------------------------------------------------------

    def _route(self, sink: Sink, request: tuple[Any, ...], hops: int) -> None:
        error = _validate(request)
        if error is not None:
            self._deliver(sink, (FAIL, error, None))
            return
        op = request[1]
        if op == "topology":
            self._deliver(sink, (OK, self.topology(), None))
            return
        _, op, key, a, b, client_id, seq = request
        group = self.placement.group_of(key)
        replica = self.replicas.get(group)
        if replica is not None:
            if op == READ and self.read_mode == "stale":
                self._deliver(sink, (OK, replica.machine.read(key), replica.leader_hint()))
                return
            if replica.propose((op, key, a, b, client_id, seq)):
                self._waiters.setdefault((group, client_id, seq), []).append((sink, self._now))
                return
        target = self._leader_of(group)
        if target is None or target == self.name or hops >= MAX_HOPS:
            self._deliver(sink, (FAIL, f"unavailable: group {group} has no leader here", target))
            return
        self._next_forward += 1
        self._forwards[self._next_forward] = (sink, self._now)
        forward = ClientForward(self._next_forward, tuple(request))
        self._ready.messages.append((target, NODE_LEVEL, forward))

    def _leader_of(self, group: int) -> str | None:
        replica = self.replicas.get(group)
        if replica is not None:
            return replica.leader_hint()
        return self.leader_cache.get(group) or self.placement.members(group)[0]

    def _deliver(self, sink: Sink, result: Result, ready: NodeReady | None = None) -> None:
        ready = ready or self._ready
        status, value, leader = result
        if isinstance(sink, ClientSink):
            ready.responses.append((sink.conn, (sink.req_id, status, value, leader)))
        else:
            reply = ClientForwardReply(sink.forward_id, (status, value, leader))
            ready.messages.append((sink.node, NODE_LEVEL, reply))

    def _abandon_group(self, group: int, ready: NodeReady) -> None:
        """We stopped leading: what we proposed may or may not be chosen, so say unknown."""
        for key in [k for k in self._waiters if k[0] == group]:
            for sink, _ in self._waiters.pop(key):
                self._deliver(sink, (UNKNOWN, "leader changed", None), ready)

    def _expire_requests(self) -> None:
        deadline = self._now - self.request_timeout_ticks
        for key in [k for k, w in self._waiters.items() if w[0][1] < deadline]:
            for sink, _ in self._waiters.pop(key):
                self._deliver(sink, (UNKNOWN, "timed out waiting for a decision", None))
        for fid in [f for f, (_, t) in self._forwards.items() if t < deadline]:
            sink, _ = self._forwards.pop(fid)
            self._deliver(sink, (UNKNOWN, "timed out waiting for the leader", None))

    def topology(self) -> dict[str, Any]:
        """What clients and `kvctl status` need: nodes, groups and the leaders we know."""
        return {
            "node": self.name,
            "nodes": list(self.placement.nodes),
            "groups": self.placement.groups,
            "replication": self.placement.replication,
            "read_mode": self.read_mode,
            "leaders": {g: replica.leader_hint() for g, replica in sorted(self.replicas.items())},
        }


def _validate(request: tuple[Any, ...]) -> str | None:
    """Why a request cannot be served, or None. Client bytes never crash a node."""
    if len(request) >= 2 and request[1] == "topology":
        return None
    if len(request) != 7:
        return "malformed request: expected (id, op, key, a, b, client, seq)"
    _, op, key, a, b, client_id, seq = request
    if op not in OPS:
        return f"unknown operation {op!r}: expected one of r, w, c"
    if not isinstance(key, str | bytes | int) or isinstance(key, bool):
        return "a key must be a string, bytes or an integer"
    if isinstance(key, str | bytes) and len(key) > MAX_KEY_BYTES:
        return f"key too large: {len(key)} bytes, limit {MAX_KEY_BYTES}"
    for value in (a, b):
        if isinstance(value, str | bytes) and len(value) > MAX_VALUE_BYTES:
            return f"value too large: {len(value)} bytes, limit {MAX_VALUE_BYTES}"
        if not isinstance(value, str | bytes | int | float | None):
            return "a value must be a string, bytes, a number or null"
    if not isinstance(client_id, int) or not isinstance(seq, int):
        return "client id and seq must be integers"
    return None
