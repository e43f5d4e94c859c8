"""Which replication groups can serve, and from which nodes, while a fault is in effect.

The definitions the availability table is judged by (all pure functions of what the run
recorded: the grudge applied, the nodes taken out, each group's members):

- *linked*: nodes a and b are linked if both are up (not killed, paused or powered off) and
  neither drops the other's packets. A link must work both ways, since every exchange is a
  request and its reply; a node is linked to itself while it is up.
- *viable leader*: a member L of a group is viable if L and the members it is linked to
  directly make a majority of the group's members. This is the OmniPaxos view of a leader:
  it needs a majority it can reach directly (Prepare/Promise, Accept/Accepted); members it
  reaches only through a third node do not count, and neither do members that see each other
  but not L.
- *connected majority*: a group keeps one while it has a viable leader.
- *serves*: a node can serve a group (its processes can complete operations on the group's
  keys) if a viable leader is the node itself, is linked to it, or is linked to a member
  that is linked to it: the store forwards a request at most two hops, through members.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Network:
    """Who can exchange messages with whom: the grudge in effect and the nodes that are out."""

    drops: Mapping[str, Collection[str]] = field(default_factory=dict)  # node -> sources it drops
    down: frozenset[str] = frozenset()

    def linked(self, a: str, b: str) -> bool:
        """Whether a and b can exchange a request and its reply."""
        if a in self.down or b in self.down:
            return False
        return a == b or (b not in self.drops.get(a, ()) and a not in self.drops.get(b, ()))


def majority(members: Sequence[str]) -> int:
    """The smallest majority of a group of this size (2 of 3, 3 of 4, 3 of 5)."""
    return len(members) // 2 + 1


def viable_leaders(net: Network, members: Sequence[str]) -> list[str]:
    """The members that reach a majority of the group directly, themselves included."""
    need = majority(members)
    return [m for m in members if sum(net.linked(m, other) for other in members) >= need]


def has_majority(net: Network, members: Sequence[str]) -> bool:
    """Whether the group keeps a connected majority: a viable leader exists."""
    return bool(viable_leaders(net, members))


def serves(net: Network, members: Sequence[str], node: str | None) -> bool:
    """Whether `node` can serve the group: it reaches a viable leader in at most two hops,
    the middle one a member. An unknown node (None) serves if the group can serve at all."""
    leaders = viable_leaders(net, members)
    if node is None:
        return bool(leaders)
    return any(
        net.linked(node, leader)
        or any(net.linked(node, m) and net.linked(m, leader) for m in members)
        for leader in leaders
    )
