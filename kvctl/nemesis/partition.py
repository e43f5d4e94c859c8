"""The partition fault: a grudge of a randomly chosen shape, enforced by the firewall.

A node that cannot run commands when the grudge changes (killed, frozen) is remembered, and
every node that came back since it was last brought in line is too: `refresh` enforces the
grudge on them, since a restarted container comes up with an empty firewall, and a resumed
one still carries the rules of a partition that has since healed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import ClassVar

from kvctl.nemesis import grudge as g
from kvctl.nemesis.fault import Context, NemesisError, Value, require_own_network
from kvctl.nemesis.firewall import Firewall


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
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise NemesisError(
                f"unknown partition kind {unknown[0]!r}: choose from {', '.join(KINDS)}"
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
            grudge, detail = KINDS[kind](self.ctx, self.rng)
            if g.cut_links(grudge):
                break
        else:
            raise NemesisError(f"no partition of kind {', '.join(kinds)} cuts {self.ctx.nodes}")
        self.grudge = grudge
        missed = self._enforce(self.ctx.nodes)
        return {
            "kind": kind,
            **detail,
            "drops": g.describe(grudge),
            "missed": missed,
            "summary": f"{kind}: {show(grudge)}",
        }

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
        """Bring each node's rules in line with the grudge; the nodes that could not be."""
        missed = []
        for node in nodes:
            try:
                drops = self.grudge.get(node, frozenset())
                if drops:
                    self.firewall.drop_from(node, drops)
                else:
                    self.firewall.heal(node)
            except NemesisError as exc:
                missed.append(str(exc))
                self.behind.add(node)
                continue
            self.behind.discard(node)
            self.seen[node] = self.ctx.returns.get(node, 0)
        return missed
