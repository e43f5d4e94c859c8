"""A whole node, sans-IO: its replicas, client routing, forwarding and waiting requests.

The asyncio server and the simulator both drive this class, so everything but sockets, the
clock and the disk lives here. Inputs: `client_request`, `peer_message`, `tick`. Output:
`take_ready()`: WAL records to fsync, then peer messages to send, then client responses.

Routing: a request for key k goes to k's group. If this node leads the group, it proposes the
command and answers when the command is applied here. Otherwise it forwards the request to
the node it believes leads and relays the answer. A forward carries its hop count: a request
passes through at most two hops and never goes back to the node it came from, so two nodes
whose hints point at each other refuse it ("unavailable", definite) instead of bouncing it.
Every response carries the leader's name so that clients can go straight there next time.

Outcomes: "ok" (applied, with its result), "fail" (it did not and will not happen: nobody
proposed it) and "unknown" (it was proposed but this node can no longer tell: the leader
stepped down or the request waited too long). A fail or unknown carries (code, text) as its
value: the code is one of `errors.py`, and the status is the code's `definite` flag, so a
client decides from the code. Retrying an unknown request with the same (client id, seq) is
safe: the state machine applies it at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node import errors
from kvctl.node.durable import (
    DurableState,
    InstallSnapshot,
    PersistOp,
    SetDecided,
    SetMembers,
)
from kvctl.node.errors import ErrorCode
from kvctl.node.messages import (
    STOPSIGN,
    ClientForward,
    ClientForwardReply,
    Command,
    ConfigAnnounce,
    Ping,
    Pong,
    Snapshot,
    StateReply,
    StateRequest,
    StopSign,
)
from kvctl.node.placement import Placement, leader_priority
from kvctl.node.replica import (
    DEFAULT_TIMING,
    Election,
    Replica,
    ReplicaReady,
    StopSignApplied,
    Timing,
)
from kvctl.node.routing import (
    MAX_TRIES,
    PING_TICKS,
    RETRY_TICKS,
    ClientSink,
    Forward,
    PeerSink,
    Reachability,
    Sink,
)
from kvctl.node.statemachine import OPS, READ

NODE_LEVEL = -1  # instead of an instance: messages between nodes rather than replicas
RECONFIGURE = "reconfigure"  # request (id, op, group, members, addresses, client, seq)
ANNOUNCE_TICKS = 100
RETIRE_TICKS = 3000
Instance = tuple[int, int]  # (group, configuration id): one Paxos instance
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 1 << 20
MAX_HOPS = 2
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"

# A client request: (req_id, op, key, a, b, client_id, seq); op "topology" takes no key.
# A result: (status, value, leader); a response: (req_id, status, value, leader). For a
# status other than OK, value is (error code, text): see `error`.
Result = tuple[str, Any, str | None]
Refusal = tuple[ErrorCode, str]  # why a request cannot be served


def error(code: ErrorCode, text: str, leader: str | None = None) -> Result:
    """The result for an error: "fail" if it is definite (nobody proposed it), else "unknown"."""
    return (FAIL if code.definite else UNKNOWN, (code.code, text), leader)


@dataclass(frozen=True)
class Config:
    """One configuration of a group: its id (0 = founding) and its members."""

    id: int
    members: tuple[str, ...]


@dataclass
class NodeReady:
    persist: list[tuple[Instance, PersistOp]] = field(default_factory=list)
    messages: list[tuple[str, Any, Any]] = field(default_factory=list)  # (dst, instance, msg)
    responses: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)  # (conn, resp)
    new_peers: dict[str, str] = field(default_factory=dict)  # learned name -> host:port
    written: dict[Instance, int] = field(default_factory=dict)  # tokens: persisted(), after fsync
    # For monitors (the simulator), when the core was made with monitor=True: what each
    # replica installed and applied, in order.
    installed: list[tuple[Instance, Snapshot]] = field(default_factory=list)
    applied: list[tuple[Instance, int, Any]] = field(default_factory=list)  # (inst, idx, entry)
    compacted: list[tuple[Instance, Snapshot]] = field(default_factory=list)
    # For the host's log: each replica's election, when it changed.
    elections: list[tuple[Instance, Election]] = field(default_factory=list)
    # Peers whose connection from us seems stuck (routing.py): the host reconnects to them.
    stalled_links: list[str] = field(default_factory=list)


class NodeCore:
    def __init__(
        self,
        name: str,
        placement: Placement,
        durable: dict[Instance, DurableState] | None = None,
        *,
        read_mode: str = "linearizable",
        leaders: str = "spread",
        timing: Timing = DEFAULT_TIMING,
        request_timeout_ticks: int = 500,
        addresses: dict[str, str] | None = None,
        monitor: bool = True,
        boot: int = 0,
    ) -> None:
        """`monitor`: fill each ready's installed/applied/compacted, which only a monitor
        reads (the server passes False: a tuple per applied entry is a cost per op).

        `boot` (below 2**31) differs from every earlier run of this node: random bits in the
        server, the incarnation in the simulator. Forward ids start from it, so that a reply
        to a forward of an earlier run, which a peer may still send after a restart, never
        settles a forward of this one with another request's result."""
        if read_mode not in ("linearizable", "stale"):
            raise ValueError(f"unknown read mode {read_mode!r}")
        self.name = name
        self.placement = placement  # the founding configuration of every group
        self.read_mode = read_mode
        self.leaders = leaders  # which member each group prefers to lead: placement.py
        self.timing = timing
        self.request_timeout_ticks = request_timeout_ticks
        self.monitor = monitor
        self.addresses: dict[str, str] = dict(addresses or {})
        self.configs = {g: Config(0, tuple(placement.members(g))) for g in range(placement.groups)}
        self.replicas: dict[Instance, Replica] = {}
        self.leader_cache: dict[int, str] = {}  # for groups we are not a member of
        self._waiters: dict[tuple[Instance, int, int], list[tuple[Sink, int]]] = {}
        self._forwards: dict[int, Forward] = {}
        self.reach = Reachability()
        self._next_forward = boot << 32  # forward ids: see `boot`
        self._now = 0
        self._was_accepting: dict[Instance, bool] = {}
        self._sealed_at: dict[Instance, int] = {}
        self._dirty: dict[Instance, None] = {}  # replicas with input since the last ready
        self._ready = NodeReady()
        self._awaiting: dict[Instance, Config] = {}  # member, without the starting state yet
        durable = dict(durable or {})
        for g in range(placement.groups):
            if name in self.configs[g].members:
                durable.setdefault((g, 0), DurableState())
        for (g, cid), state in sorted(durable.items()):
            config = Config(cid, tuple(state.members or self.configs[g].members))
            if cid > 0 and state.snapshot is None:
                self._awaiting[(g, cid)] = config
            else:
                self._start_replica((g, cid), config.members, state)
            if cid >= self.configs[g].id:
                self.configs[g] = config

    # -- inputs -----------------------------------------------------------------------------

    def client_request(self, conn: int, request: tuple[Any, ...]) -> None:
        req_id = request[0] if request else None
        if not isinstance(req_id, int):
            status, value, leader = error(errors.MALFORMED_REQUEST, "malformed request")
            self._ready.responses.append((conn, (None, status, value, leader)))
            return
        self._route(ClientSink(conn, req_id), request, hops=0)

    def peer_message(self, src: str, group: Any, msg: Any) -> None:
        if group == NODE_LEVEL:
            if isinstance(msg, Ping):
                self._ready.messages.append((src, NODE_LEVEL, Pong()))
            elif isinstance(msg, Pong):
                self.reach.answered(src, self._now)
            elif isinstance(msg, ClientForward):
                self._route(PeerSink(src, msg.forward_id), msg.request, hops=msg.hops)
            elif isinstance(msg, ClientForwardReply):
                self._forward_answered(msg)
            elif isinstance(msg, ConfigAnnounce):
                config = Config(msg.config_id, tuple(msg.members))
                self._learn(msg.group, config, msg.addresses)
            elif isinstance(msg, StateRequest):
                self._share_state(src, msg)
            elif isinstance(msg, StateReply):
                awaited = self._awaiting.get((msg.group, msg.config_id))
                if awaited is not None:
                    self._learn(msg.group, awaited, (), msg.snapshot)
            return
        instance = tuple(group)
        replica = self.replicas.get(instance)
        if replica is not None:
            replica.handle(src, msg)
            self._dirty[instance] = None

    def persisted(self, written: dict[Instance, int]) -> None:
        """The fsync covering a ready batch returned (its `written`)."""
        for instance, token in written.items():
            replica = self.replicas.get(instance)
            if replica is not None:
                replica.persisted(token)
                self._dirty[instance] = None

    def durable_state(self) -> dict[Instance, DurableState]:
        """Everything this node keeps on disk, complete: what a log rewrite writes. Every
        configuration's members, and the configurations still awaiting their start state."""
        states = {}
        for instance, replica in self.replicas.items():
            state = replica.durable_state()
            state.members = replica.members
            states[instance] = state
        for instance, config in self._awaiting.items():
            states[instance] = DurableState(members=config.members)
        return states

    def tick(self) -> None:
        self._now += 1
        for instance, replica in self.replicas.items():
            replica.tick()
            self._dirty[instance] = None
        if self._now % PING_TICKS == 0:
            self._ping()
            self._retry_forwards()
        if self._now % 50 == 0:
            self._expire_requests()
        if self._now % ANNOUNCE_TICKS == 0:
            self._announce_configs()
            self._retire_sealed()
            for instance in self._awaiting:
                self._ask_for_state(instance, self._ready)

    # -- output -----------------------------------------------------------------------------

    def take_ready(self) -> NodeReady:
        ready = self._ready
        dirty, self._dirty = self._dirty, {}
        for instance in dirty:
            replica = self.replicas.get(instance)
            if replica is None:
                continue
            out = replica.take_ready()
            if out.persist:
                ready.persist += [(instance, op) for op in out.persist]
            if out.messages:
                ready.messages += [(dst, instance, msg) for dst, msg in out.messages]
            if out.token is not None:
                ready.written[instance] = out.token
            if self.monitor:
                self._record(instance, out, ready)
            if out.results:
                self._answer(instance, out.results, replica.leader_hint(), ready)
            if out.election is not None:
                ready.elections.append((instance, out.election))
            if out.stopped is not None:
                self._on_stopsign(instance, out.stopped, ready)
            accepting = replica.accepting
            if self._was_accepting.get(instance) and not accepting:
                self._abandon(instance, ready)
            self._was_accepting[instance] = accepting
        self._ready = NodeReady()
        return ready

    def _record(self, instance: Instance, out: ReplicaReady, ready: NodeReady) -> None:
        """What a monitor reads: installed, then applied, then compacted."""
        if out.installed is not None:
            ready.installed.append((instance, out.installed))
        ready.applied += [
            (instance, idx, entry) for idx, entry in enumerate(out.applied, out.applied_from)
        ]
        if out.compacted is not None:
            ready.compacted.append((instance, out.compacted))

    def _answer(
        self,
        instance: Instance,
        results: list[tuple[int, int, Any]],
        leader: str | None,
        ready: NodeReady,
    ) -> None:
        """Deliver each (client, seq) result to whoever waits for it here."""
        waiters = self._waiters
        for client_id, seq, value in results:
            for sink, _ in waiters.pop((instance, client_id, seq), ()):
                self._deliver(sink, (OK, value, leader), ready)

    # -- configurations ---------------------------------------------------------------------

    def current(self, group: int) -> Replica | None:
        """This node's replica of the group's newest configuration, if it is a member."""
        return self.replicas.get((group, self.configs[group].id))

    def _start_replica(
        self, instance: Instance, members: tuple[str, ...], state: DurableState
    ) -> Replica:
        replica = Replica(
            self.name,
            list(members),
            state,
            priority=leader_priority(members, self.name, self.placement.nodes, self.leaders),
            timing=self.timing,
            serves_reads=self.read_mode == "stale",
        )
        self.replicas[instance] = replica
        self._dirty[instance] = None
        return replica

    def _on_stopsign(self, instance: Instance, stop: StopSignApplied, ready: NodeReady) -> None:
        group, cid = instance
        self._sealed_at.setdefault(instance, self._now)
        self._learn(group, Config(cid + 1, stop.members), stop.addresses, stop.snapshot, ready)

    def _learn(
        self,
        group: int,
        config: Config,
        addresses: tuple[tuple[str, str], ...],
        base: Snapshot | None = None,
        ready: NodeReady | None = None,
    ) -> None:
        """A newer configuration of `group`: route to it, and join it if we are a member."""
        ready = ready or self._ready
        for name, address in addresses:
            if self.addresses.get(name) != address:
                self.addresses[name] = address
                ready.new_peers[name] = address
        if config.id < self.configs[group].id:
            return
        self.configs[group] = config
        for stale in [i for i in self._awaiting if i[0] == group and i[1] < config.id]:
            del self._awaiting[stale]  # that configuration has ended: no state is needed
        instance = (group, config.id)
        if self.name not in config.members or instance in self.replicas:
            return
        if base is None:
            # Without the state the configuration starts from, a member must not take part:
            # two empty members would be a majority that forgot everything. It asks for it.
            if instance not in self._awaiting:
                self._awaiting[instance] = config
                ready.persist.append((instance, SetMembers(config.members)))
                self._ask_for_state(instance, ready)
            return
        self._awaiting.pop(instance, None)
        state = DurableState(members=config.members)
        ops: list[PersistOp] = [
            SetMembers(config.members),
            InstallSnapshot(base),
            SetDecided(base.index),
        ]
        for op in ops:
            state.apply(op)
        self._start_replica(instance, config.members, state)
        ready.persist.extend((instance, op) for op in ops)
        self._announce(group, ready)

    def _ask_for_state(self, instance: Instance, ready: NodeReady) -> None:
        request = StateRequest(*instance)
        ready.messages.extend(
            (peer, NODE_LEVEL, request) for peer in self.addresses if peer != self.name
        )

    def _share_state(self, src: str, msg: StateRequest) -> None:
        """Any decided state of that configuration will do: its start, or a later one."""
        current = self.replicas.get((msg.group, msg.config_id))
        previous = self.replicas.get((msg.group, msg.config_id - 1))
        if current is not None and current.snapshot is not None:
            snapshot = current.snapshot
        elif previous is not None and previous.stopped is not None:
            snapshot = previous.stopped.snapshot
        else:
            return
        reply = StateReply(msg.group, msg.config_id, snapshot)
        self._ready.messages.append((src, NODE_LEVEL, reply))

    def _announce(self, group: int, ready: NodeReady) -> None:
        config = self.configs[group]
        known = tuple((n, a) for n, a in self.addresses.items() if n in config.members)
        announce = ConfigAnnounce(group, config.id, config.members, known)
        ready.messages.extend(
            (peer, NODE_LEVEL, announce) for peer in self.addresses if peer != self.name
        )

    def _announce_configs(self) -> None:
        """Gossip the configurations we belong to, so late joiners and routers catch up."""
        for group, config in self.configs.items():
            if config.id > 0 and self.name in config.members:
                self._announce(group, self._ready)

    def _retire_sealed(self) -> None:
        """Old configurations keep running a while, so lagging members learn how they ended."""
        for instance, since in list(self._sealed_at.items()):
            if self._now - since >= RETIRE_TICKS:
                del self._sealed_at[instance]
                self.replicas.pop(instance, None)
                self._was_accepting.pop(instance, None)

    # -- routing ----------------------------------------------------------------------------

    def _route(self, sink: Sink, request: tuple[Any, ...], hops: int) -> None:
        refusal = _validate(request, self.placement.groups)
        if refusal is not None:
            self._deliver(sink, error(*refusal))
            return
        op = request[1]
        if op == "topology":
            self._deliver(sink, (OK, self.topology(), None))
            return
        _, op, key, a, b, client_id, seq = request
        group = key if op == RECONFIGURE else self.placement.group_of(key)
        replica = self.current(group)
        if replica is not None:
            if op == READ and self.read_mode == "stale":
                self._deliver(sink, (OK, replica.machine.read(key), replica.leader_hint()))
                return
            if op == READ and replica.read(key, client_id, seq):
                self._wait(group, client_id, seq, sink)
                return
            if op == RECONFIGURE and replica.accepting and replica.sealed:
                text = f"group {group} is already being reconfigured"
                self._deliver(sink, error(errors.RECONFIGURATION_IN_PROGRESS, text))
                return
            entry = (
                StopSign(STOPSIGN, key, tuple(a), tuple(map(tuple, b)), client_id, seq)
                if op == RECONFIGURE
                else Command(op, key, a, b, client_id, seq)
            )
            if replica.propose(entry):
                self._wait(group, client_id, seq, sink)
                return
        came_from = sink.node if isinstance(sink, PeerSink) else None
        hint = self._leader_hint(group)
        target = None
        if hint != self.name and hops < MAX_HOPS:
            candidates = [hint] if hint else []
            target = self.reach.pick(
                [*candidates, *self.configs[group].members], (self.name, came_from), self._now
            )
        if target is None:
            text = f"unavailable: group {group} has no leader here"
            self._deliver(sink, error(errors.TEMPORARILY_UNAVAILABLE, text, hint))
            return
        self._next_forward += 1
        forward = Forward(sink, group, tuple(request), hops + 1, self._now, self._now)
        self._forwards[self._next_forward] = forward
        self._send_forward(self._next_forward, forward, target)

    def _ping(self) -> None:
        ping = Ping()
        for peer in self.addresses:
            if peer != self.name:
                self.reach.pinged(peer, self._now)
                self._ready.messages.append((peer, NODE_LEVEL, ping))
        self._ready.stalled_links = self.reach.stalled(self._now)

    def _send_forward(self, forward_id: int, forward: Forward, target: str) -> None:
        forward.tried.append(target)
        forward.last_sent = self._now
        message = ClientForward(forward_id, forward.request, forward.hops)
        self._ready.messages.append((target, NODE_LEVEL, message))

    def _forward_answered(self, msg: ClientForwardReply) -> None:
        forward = self._forwards.get(msg.forward_id)
        if forward is None:
            return  # answered already, by another try
        status, value, leader = msg.response
        if leader and self.current(forward.group) is None:
            self.leader_cache[forward.group] = leader  # next time, straight there
        if status == FAIL and _is_unavailable(value):
            target = self._next_try(forward)
            if target is not None:  # that member cannot reach a leader: another may
                self._send_forward(msg.forward_id, forward, target)
                return
        del self._forwards[msg.forward_id]
        if status == FAIL and len(forward.tried) > 1:
            # Another try may have been proposed: this refusal does not settle it.
            text = f"a retried forward was refused ({value}); an earlier try may still apply"
            self._deliver(forward.sink, error(errors.TIMEOUT, text, leader))
            return
        self._deliver(forward.sink, (status, value, leader))

    def _retry_forwards(self) -> None:
        """Forwards unanswered for RETRY_TICKS go to the next candidate we can reach; with no
        such candidate left, the request is answered as unknown (a try may yet apply), so
        the client can go to another node rather than wait out its timeout here."""
        given_up = []
        for forward_id, forward in self._forwards.items():
            if self._now - forward.last_sent < RETRY_TICKS:
                continue
            self.leader_cache.pop(forward.group, None)
            target = self._next_try(forward)
            if target is not None:
                self._send_forward(forward_id, forward, target)
            else:
                given_up.append(forward_id)
        for forward_id in given_up:
            forward = self._forwards.pop(forward_id)
            text = f"no answer from {', '.join(forward.tried)}, and no other member in reach"
            self._deliver(forward.sink, error(errors.TIMEOUT, text))

    def _next_try(self, forward: Forward) -> str | None:
        """The member `forward` goes to next: one in reach it has not tried, none if it has
        had its MAX_TRIES (or the member it came from is all that is left)."""
        if len(forward.tried) >= MAX_TRIES:
            return None
        came_from = forward.sink.node if isinstance(forward.sink, PeerSink) else None
        target = self.reach.pick(
            self.configs[forward.group].members,
            (self.name, came_from, *forward.tried),
            self._now,
        )
        return target if target is not None and self.reach.reachable(target, self._now) else None

    def _wait(self, group: int, client_id: int, seq: int, sink: Sink) -> None:
        """Answer `sink` when the current replica of `group` yields (client_id, seq)."""
        instance = (group, self.configs[group].id)
        self._dirty[instance] = None
        self._waiters.setdefault((instance, client_id, seq), []).append((sink, self._now))

    def _leader_hint(self, group: int) -> str | None:
        """Who leads the group as far as we know; None when we are a member cut off from a
        majority (another member may still reach the leader)."""
        replica = self.current(group)
        if replica is not None:
            return replica.leader_hint()
        members = self.configs[group].members
        cached = self.leader_cache.get(group)
        return cached if cached in members else members[0]

    def _deliver(self, sink: Sink, result: Result, ready: NodeReady | None = None) -> None:
        ready = ready or self._ready
        status, value, leader = result
        if isinstance(sink, ClientSink):
            ready.responses.append((sink.conn, (sink.req_id, status, value, leader)))
        else:
            reply = ClientForwardReply(sink.forward_id, (status, value, leader))
            ready.messages.append((sink.node, NODE_LEVEL, reply))

    def _abandon(self, instance: Instance, ready: NodeReady) -> None:
        """We stopped leading: what we proposed may or may not be chosen, so say unknown."""
        for key in [k for k in self._waiters if k[0] == instance]:
            for sink, _ in self._waiters.pop(key):
                self._deliver(sink, error(errors.LEADER_CHANGED, "leader changed"), ready)

    def _expire_requests(self) -> None:
        deadline = self._now - self.request_timeout_ticks
        for key in [k for k, w in self._waiters.items() if w[0][1] < deadline]:
            for sink, _ in self._waiters.pop(key):
                self._deliver(sink, error(errors.TIMEOUT, "timed out waiting for a decision"))
        for fid in [f for f, fw in self._forwards.items() if fw.first_sent < deadline]:
            forward = self._forwards.pop(fid)
            self.leader_cache.pop(forward.group, None)
            self._deliver(forward.sink, error(errors.TIMEOUT, "timed out waiting for the leader"))

    def topology(self) -> dict[str, Any]:
        """What clients and `kvctl status` need: nodes, groups, configurations, leaders."""
        leaders = {}
        for g in range(self.placement.groups):
            replica = self.current(g)
            leaders[g] = replica.leader_hint() if replica is not None else None
        return {
            "node": self.name,
            "nodes": list(self.placement.nodes),
            "groups": self.placement.groups,
            "replication": self.placement.replication,
            "read_mode": self.read_mode,
            "leaders": leaders,
            "configs": {g: [c.id, list(c.members)] for g, c in self.configs.items()},
            "addresses": dict(self.addresses),
        }


def _is_unavailable(value: Any) -> bool:
    """Whether a refusal says its node could reach no leader (so another member may)."""
    code = value[0] if isinstance(value, (list, tuple)) and value else None
    return code == errors.TEMPORARILY_UNAVAILABLE.code


# Tuples, not `str | bytes`: a union in an isinstance call is a new object on every call.
_SIZED_TYPES = (str, bytes)
_KEY_TYPES = (str, bytes, int)
_VALUE_TYPES = (str, bytes, int, float, type(None))


def _validate(request: tuple[Any, ...], groups: int) -> Refusal | None:
    """Why a request cannot be served, or None. Client bytes never crash a node."""
    if len(request) >= 2 and request[1] == "topology":
        return None
    malformed = errors.MALFORMED_REQUEST
    if len(request) != 7:
        return malformed, "malformed request: expected (id, op, key, a, b, client, seq)"
    _, op, key, a, b, client_id, seq = request
    if op == RECONFIGURE:
        return _validate_reconfigure(key, a, b, groups)
    if op not in OPS:
        return errors.NOT_SUPPORTED, f"unknown operation {op!r}: expected one of r, w, c"
    if not isinstance(key, _KEY_TYPES) or isinstance(key, bool):
        return malformed, "a key must be a string, bytes or an integer"
    if isinstance(key, _SIZED_TYPES) and len(key) > MAX_KEY_BYTES:
        return errors.TOO_LARGE, f"key too large: {len(key)} bytes, limit {MAX_KEY_BYTES}"
    for value in (a, b):
        if isinstance(value, _SIZED_TYPES) and len(value) > MAX_VALUE_BYTES:
            text = f"value too large: {len(value)} bytes, limit {MAX_VALUE_BYTES}"
            return errors.TOO_LARGE, text
        if not isinstance(value, _VALUE_TYPES):
            return malformed, "a value must be a string, bytes, a number or null"
    if not isinstance(client_id, int) or not isinstance(seq, int):
        return malformed, "client id and seq must be integers"
    return None


def _validate_reconfigure(group: Any, members: Any, addresses: Any, groups: int) -> Refusal | None:
    malformed = errors.MALFORMED_REQUEST
    if not isinstance(group, int) or not 0 <= group < groups:
        return malformed, f"no group {group!r}: groups are 0..{groups - 1}"
    if not members or not all(isinstance(m, str) for m in members):
        return malformed, "a configuration needs a list of member names"
    if len(set(members)) != len(members):
        return malformed, "members must be distinct"
    try:
        named = {name for name, address in addresses if isinstance(address, str)}
    except (TypeError, ValueError):
        return malformed, "addresses must be (name, host:port) pairs"
    if not set(members) <= named:
        return malformed, "every member needs an address"
    return None
