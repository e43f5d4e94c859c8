"""One simulation run from one seed, and the properties it checks.

Safety, checked as the run goes: uniform agreement (no two replicas of a group decide
different entries at one index), validity (every decided command was sent by a client) and
integrity (a replica's decided index never moves back while it runs). Liveness, checked
after the faults heal: every client operation completes and a final read of every key
succeeds. Then the history goes through the linearizability checker, which also proves that
every acknowledged write survived the crashes.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass, field
from typing import Any

from kvctl.checker import check
from kvctl.history import History
from kvctl.node.core import NodeReady
from kvctl.node.durable import Instance
from kvctl.node.messages import Snapshot, as_command
from kvctl.node.replica import Timing
from kvctl.node.wire import pack
from kvctl.sim.clients import SimClients
from kvctl.sim.faults import Nemesis
from kvctl.sim.world import World

CHECK_BUDGET_S = 20.0
FAULT_MS = 3000
HEAL_MS = 4000
# The compaction threshold is drawn log-uniformly between these, so that most seeds compact
# and send snapshots, some many times a second.
COMPACT_MIN, COMPACT_MAX = 4, 400


@dataclass
class SimResult:
    seed: int
    config: str
    violations: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    ops_ok: int = 0
    ops_info: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # the paths taken: see world.Counts

    @property
    def ok(self) -> bool:
        return not self.violations


class _SafetyMonitor:
    """Watches every replica's stream of applied entries, installs and compactions, as each
    ready batch is taken, so nothing escapes it by being compacted between two looks.

    Agreement: no two replicas apply different entries at one index of one instance, and every
    snapshot of an instance at one index holds the same state (installs are checked against
    the compactions that produced them). Validity: every applied command was sent by a client.
    Integrity: within one run of a process, a replica applies indices in order, each once."""

    def __init__(self, world: World, clients: SimClients) -> None:
        self.world = world
        self.clients = clients
        self.chosen: dict[tuple[Instance, int], Any] = {}
        self.snapshots: dict[tuple[Instance, int], Any] = {}
        self.next_index: dict[tuple[str, int, Instance], int] = {}  # (node, run, inst) -> idx
        self.leading: set[tuple[Any, str, Any]] = set()  # (instance, node, ballot) seen lead
        self.violations: list[str] = []
        world.on_ready = self.observe

    def observe(self, name: str, incarnation: int, ready: NodeReady) -> None:
        for instance, snapshot in ready.installed:
            self._same_snapshot(name, instance, snapshot)
            self.next_index[(name, incarnation, instance)] = snapshot.index
        for instance, idx, entry in ready.applied:
            expected = self.next_index.get((name, incarnation, instance))
            if expected is not None and idx != expected:
                self._violation(f"integrity: {name} {instance} applied {idx}, expected {expected}")
            self.next_index[(name, incarnation, instance)] = idx + 1
            self._agree(name, instance, idx, entry)
        for instance, snapshot in ready.compacted:
            self._same_snapshot(name, instance, snapshot)

    def check(self) -> None:
        """Note new leaders in the trace."""
        for name, node in self.world.nodes.items():
            if node.core is None:
                continue
            for instance, replica in node.core.replicas.items():
                ballot = replica.paxos.promise
                if replica.accepting and (instance, name, ballot) not in self.leading:
                    self.leading.add((instance, name, ballot))
                    self.world.log(f"g{instance[0]}.{instance[1]} leader {name} ballot {ballot.n}")

    def _agree(self, name: str, instance: Instance, idx: int, entry: Any) -> None:
        first = self.chosen.setdefault((instance, idx), entry)
        if first != entry:
            self._violation(f"agreement: {name} {instance}[{idx}] = {entry}, others {first}")
        cmd = as_command(entry)
        if (cmd.client_id, cmd.seq) not in self.clients.proposed:
            self._violation(f"validity: {name} {instance}[{idx}] = {entry} was never proposed")

    def _same_snapshot(self, name: str, instance: Instance, snapshot: Snapshot) -> None:
        state = _canonical(snapshot.state)
        first = self.snapshots.setdefault((instance, snapshot.index), state)
        if first != state:
            self._violation(f"agreement: {name} {instance} snapshot at {snapshot.index} differs")

    def _violation(self, text: str) -> None:
        if text not in self.violations:
            self.violations.append(text)
            self.world.log("VIOLATION " + text)


def _canonical(state: Any) -> list[list[bytes]]:
    """A state machine's exported state, as sorted encoded rows: the same state compares
    equal whether it was exported in memory (lists) or read back from disk (tuples)."""
    return [sorted(pack(row) for row in part) for part in state]


def run_seed(
    seed: int,
    *,
    size: int | None = None,
    replication: int | None = None,
    groups: int | None = None,
    compact_entries: int | None = None,
    leaders: str = "spread",
) -> SimResult:
    """Run one seed; the cluster's shape and compaction threshold are drawn from the seed
    unless given. `leaders` is the nodes' leader policy (placement.py)."""
    rng = random.Random(seed)
    size = size or rng.choice([3, 3, 4, 5])
    replication = replication or rng.choice([3, size])
    groups = groups or rng.choice([1, 2, size])
    drawn = round(COMPACT_MIN * (COMPACT_MAX / COMPACT_MIN) ** rng.random())
    compact_entries = compact_entries or drawn
    timing = Timing(heartbeat_ticks=5, resend_ticks=10, compact_entries=compact_entries)
    nodes = [f"n{i}" for i in range(1, size + 1)]
    spares = (f"n{size + 1}",)
    world = World(
        rng.getrandbits(32),
        nodes,
        spares=spares,
        groups=groups,
        replication=replication,
        leaders=leaders,
        timing=timing,
    )
    config = (
        f"{size} nodes and a spare, {groups} groups, replication {replication}, "
        f"compaction every {compact_entries} entries, leaders {leaders}"
    )
    clients = SimClients(world, count=rng.randint(2, 6), keys=[f"k{i}" for i in range(3)])
    nemesis = Nemesis(world, clients.proposed)
    monitor = _SafetyMonitor(world, clients)
    world.log(f"seed {seed}: {config}")
    result = SimResult(seed, config, monitor.violations, history=clients.history)
    try:
        _run_phases(world, clients, nemesis, monitor)
    except Exception as exc:  # a core that raises is a finding, reported with its seed
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.violations.append(
            f"crash: {type(exc).__name__}: {exc} at {where.filename}:{where.lineno}"
        )
    else:
        final = [e for e in clients.history[-2 * len(clients.keys) :] if e["type"] != "invoke"]
        if clients.busy:
            result.violations.append("liveness: operations pending after the faults healed")
        elif any(e["type"] != "ok" for e in final):
            result.violations.append(f"liveness: a final read did not succeed: {final}")
        verdict = check(History.from_events(clients.history), budget=CHECK_BUDGET_S, workers=1)
        if verdict.valid is not True:
            result.violations.append(f"linearizability ({verdict.valid}): {verdict.explanation}")
    result.ops_ok = sum(1 for e in clients.history if e["type"] == "ok")
    result.ops_info = sum(1 for e in clients.history if e["type"] == "info")
    result.counts = world.counts.as_dict()
    result.trace = list(world.trace)
    return result


def _run_phases(
    world: World, clients: SimClients, nemesis: Nemesis, monitor: _SafetyMonitor
) -> None:
    """Faults, then healing until the clients are done, then a final read of every key."""

    def run(until: int) -> None:
        while world.now < until and (clients.running or clients.busy):
            world.run_until(world.now + 50)
            monitor.check()

    nemesis.start()
    run(FAULT_MS)
    nemesis.heal()
    clients.running = False
    run(FAULT_MS + HEAL_MS)
    clients.final_reads()
    run(world.now + HEAL_MS)
