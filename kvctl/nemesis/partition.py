"""The partition fault: a grudge of a randomly chosen shape, enforced by the firewall.

Besides the shapes `partition` draws from (`KINDS`), three are asked for by name only
(`NAMED`): the Omni-Paxos paper's partial-connectivity scenarios, built around the current
leader of a group drawn at random (its `group`, `leader` and roles are recorded):

- `quorum-loss`: only the links of a hub, another member of that group, survive; the leader
  is a leaf, and only the hub reaches a majority of the cluster.
- `constrained`: the hub first falls behind (cut off alone for `BEHIND_SECONDS` while the
  workload writes), then only its links survive, and the leader loses even the hub: the one
  node that can gather a majority has the oldest log.
- `chained`: a line through the nodes that starts leader, member, member: the middle member
  reaches both, the leader and the last member not each other.

A node that cannot run commands when the grudge changes (killed, frozen) is remembered, and
every node that came back since it was last brought in line is too: `refresh` enforces the
grudge on them, since a restarted container comes up with an empty firewall, and a resumed
one still carries the rules of a partition that has since healed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from kvctl.nemesis import grudge as g
from kvctl.nemesis.fault import Context, NemesisError, Value, require_own_network
from kvctl.nemesis.firewall import Firewall
from kvctl.node.placement import Placement


def _leader(ctx: Context, rng: random.Random) -> tuple[g.Grudge, Value]:
    leaders = ctx.leaders()
    if not leaders:
        node = rng.choice(ctx.nodes)
        return g.isolate(node, ctx.nodes), {"leader": None, "isolated": node}
    group = rng.choice(sorted(leaders))
    return g.isolate(leaders[group], ctx.nodes), {"group": group, "leader": leaders[group]}


def _one(ctx: Context, rng: random.Random) -> tuple[g.Grudge, Value]:
    node = rng.choice(ctx.nodes)
    return g.isolate(node, ctx.nodes), {"isolated": node}


KINDS: dict[str, Callable[[Context, random.Random], tuple[g.Grudge, Value]]] = {
    "halves": lambda ctx, rng: (g.halves(ctx.nodes, rng), {}),
    "one": _one,
    "leader": _leader,
    "ring": lambda ctx, rng: (g.majorities_ring(ctx.nodes, rng), {}),
    "bridge": lambda ctx, rng: (g.bridge(ctx.nodes, rng), {}),
}


BEHIND_SECONDS = 3.0  # a node a scenario needs behind is cut off alone this long first


def _roles(ctx: Context, rng: random.Random) -> tuple[str, list[str], Value]:
    """A group with a known leader (drawn at random), its leader and its other members, and
    what to record of them; without a reported leader, a group's preferred one."""
    topo = ctx.topology()
    leaders = {int(k): n for k, n in (topo.get("leaders") or {}).items() if n}
    configs = {int(k): list(c[1]) for k, c in (topo.get("configs") or {}).items()}
    known = sorted(k for k, n in leaders.items() if n in configs.get(k, []))
    if known:
        group = rng.choice(known)
        leader, members = leaders[group], configs[group]
    else:
        groups = ctx.spec.groups or len(ctx.nodes)
        group = rng.randrange(groups)
        members = Placement(tuple(ctx.nodes), groups, ctx.spec.replication).members(group)
        leader = members[0]
    others = [m for m in members if m != leader]
    if not others:
        raise NemesisError(f"group {group} has one member: no scenario of several roles")
    return leader, others, {"group": group, "leader": leader, "leader_known": bool(known)}


def _quorum_loss(ctx: Context, rng: random.Random) -> tuple[g.Grudge, Value]:
    _, others, roles = _roles(ctx, rng)
    hub = rng.choice(others)
    return g.star(ctx.nodes, hub), {**roles, "hub": hub}


def _constrained(ctx: Context, rng: random.Random) -> tuple[g.Grudge, Value]:
    leader, others, roles = _roles(ctx, rng)
    hub = rng.choice(others)
    return g.star(ctx.nodes, hub, [leader]), {**roles, "hub": hub, "behind": hub}


def _chained(ctx: Context, rng: random.Random) -> tuple[g.Grudge, Value]:
    leader, others, roles = _roles(ctx, rng)
    middle = rng.choice(others)
    group = [leader, middle, *(m for m in others if m != middle)]
    rest = [n for n in ctx.nodes if n not in group]
    order = [*group, *rng.sample(rest, len(rest))]
    return g.chain(order), {**roles, "chain": order}


NAMED: dict[str, Callable[[Context, random.Random], tuple[g.Grudge, Value]]] = {
    "quorum-loss": _quorum_loss,
    "constrained": _constrained,
    "chained": _chained,
}
SHAPES = {**KINDS, **NAMED}


def _roles_shown(detail: Value) -> str:
    """The roles of a named scenario, for its summary."""
    parts = [f"group {detail['group']} led by {detail['leader']}"]
    if "hub" in detail:
        parts.append(f"hub {detail['hub']}")
    if "behind" in detail:
        parts.append(f"{detail['behind']} behind first")
    if "chain" in detail:
        parts.append("chain " + "-".join(detail["chain"]))
    return ", ".join(parts)


def components(grudge: g.Grudge) -> list[list[str]] | None:
    """The groups of nodes that see each other, if the grudge is a clean split; else None."""
    nodes = sorted(grudge)
    groups: list[list[str]] = []
    for node in nodes:
        seen = sorted(m for m in nodes if m not in grudge[node])
        if seen not in groups:
            groups.append(seen)
    flat = [n for group in groups for n in group]
    return groups if sorted(flat) == nodes else None


def show(grudge: g.Grudge) -> str:
    split = components(grudge)
    if split is not None:
        return " | ".join(",".join(group) for group in split)
    return f"{g.cut_links(grudge)} links cut"


class Partition:
    """Cut the network into a shape drawn from `kinds` on start; heal it on stop."""

    name: ClassVar[str] = "partition"
    stage: ClassVar[int] = 1

    def __init__(self, ctx: Context, kinds: Sequence[str] = tuple(KINDS)) -> None:
        unknown = [k for k in kinds if k not in SHAPES]
        if unknown:
            raise NemesisError(
                f"unknown partition kind {unknown[0]!r}: choose from {', '.join(SHAPES)}"
            )
        self.ctx = ctx
        self.rng = ctx.rng_for(self.name)
        self.kinds = list(kinds)
        self.firewall = Firewall(ctx)
        self.grudge: g.Grudge = {}
        self.behind: set[str] = set()  # nodes whose rules do not match self.grudge yet
        self.seen: dict[str, int] = {}  # node -> ctx.returns[node] when last brought in line

    def check(self) -> None:
        if len(self.ctx.nodes) < 2:
            raise NemesisError("a partition needs at least two nodes")
        require_own_network(self.ctx, self.name)

    def start(self) -> Value:
        kinds = self.rng.sample(self.kinds, len(self.kinds))
        for kind in kinds:
            grudge, detail = SHAPES[kind](self.ctx, self.rng)
            if g.cut_links(grudge):
                break
        else:
            raise NemesisError(f"no partition of kind {', '.join(kinds)} cuts {self.ctx.nodes}")
        if "behind" in detail:
            self._fall_behind(detail["behind"])
        self.grudge = grudge
        missed = self._enforce(self.ctx.nodes)
        shown = f"{show(grudge)}; {_roles_shown(detail)}" if kind in NAMED else show(grudge)
        return {
            "kind": kind,
            **detail,
            "drops": g.describe(grudge),
            "missed": missed,
            "summary": f"{kind}: {shown}",
        }

    def _fall_behind(self, node: str) -> None:
        """Cut `node` off alone while the workload goes on, so that its log is behind when
        the scenario's shape is cut (the wait is the stage itself, not a condition)."""
        self.grudge = g.isolate(node, self.ctx.nodes)
        self._enforce(self.ctx.nodes)
        time.sleep(BEHIND_SECONDS)

    def stop(self) -> Value:
        self.grudge = {}
        missed = self._enforce(self.ctx.nodes)
        return {"missed": missed, "summary": "network healed"}

    def heal(self) -> Value:
        self.grudge = {}
        missed = self._enforce(self.ctx.nodes)
        if missed:
            raise NemesisError(f"could not heal the network on {', '.join(missed)}")
        return {"summary": "network healed on every node"}

    def refresh(self) -> None:
        back = {n for n, times in self.ctx.returns.items() if self.seen.get(n, 0) != times}
        self._enforce(sorted(self.behind | back))

    def apply(self, grudge: g.Grudge) -> list[str]:
        """Enforce a given grudge (the manual `kvctl partition`); the nodes it could not reach."""
        self.grudge = grudge
        return self._enforce(self.ctx.nodes)

    def _enforce(self, nodes: Sequence[str]) -> list[str]:
        """Bring each node's rules in line with the grudge, on every node at once (one after
        another, a loaded machine took seconds to cut one partition); the nodes that could
        not be."""
        if not nodes:
            return []
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            problems = list(pool.map(self._enforce_on, nodes))
        missed = []
        for node, problem in zip(nodes, problems, strict=True):
            if problem is not None:
                missed.append(problem)
                self.behind.add(node)
                continue
            self.behind.discard(node)
            self.seen[node] = self.ctx.returns.get(node, 0)
        return missed

    def _enforce_on(self, node: str) -> str | None:
        """Bring one node's rules in line with the grudge; why it could not be, if so."""
        try:
            drops = self.grudge.get(node, frozenset())
            if drops:
                self.firewall.drop_from(node, drops)
            else:
                self.firewall.heal(node)
        except NemesisError as exc:
            return str(exc)
        return None
