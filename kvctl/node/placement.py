"""Which replication group owns a key, and which nodes replicate each group.

Keys hash to groups with blake2b of their msgpack encoding: stable across processes and
machines (never Python's salted `hash()`), and uniform (never a sign-dependent range like the
seed project's Java `hashCode`). Group g is replicated on R consecutive nodes of the ring of
node names starting at node g mod N.

Which member each group prefers as its leader is a policy (`leader_priority`): spread (its
first member, so that leadership spreads over the nodes) or pack (the first node of the
cluster's order that is a member, the same node for every group it belongs to).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack


def key_hash(key: Any) -> int:
    digest = hashlib.blake2b(msgpack.packb(key), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Placement:
    nodes: tuple[str, ...]
    groups: int
    replication: int

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("a cluster needs at least one node")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"node names must be unique: {self.nodes}")
        if self.groups < 1 or self.replication < 1:
            raise ValueError("groups and replication must be at least 1")

    @property
    def group_size(self) -> int:
        """R, or every node when there are fewer than R."""
        return min(self.replication, len(self.nodes))

    def group_of(self, key: Any) -> int:
        return key_hash(key) % self.groups

    def members(self, group: int) -> list[str]:
        n = len(self.nodes)
        return [self.nodes[(group + i) % n] for i in range(self.group_size)]


LEADER_POLICIES = ("spread", "pack")


def leader_priority(
    members: Sequence[str], name: str, founders: Sequence[str], policy: str
) -> int:
    """How strongly `name` is preferred as the leader of a group of `members`: its ballots'
    priority, which decides between equal round numbers (1 for the least preferred).

    - spread: the group's first member, so that each node leads the groups it comes first
      in. Where nodes have CPUs and disks of their own, that spreads the leaders' work.
    - pack: the first member in the cluster's order (the `founders`, then later nodes by
      name), the same node for every group it belongs to. Where the nodes share one machine,
      one node leading every group proposes for all of them in one event-loop turn (one WAL
      record, one fsync and one message per follower), work that spread leaders do apart:
      measured on 2 cores with 3 local nodes, 1.23-1.31x the ops/s at 16 clients and
      1.15-1.17x at 64 (bench/compare.py prints how the leaders fell).

    Either way the priority only breaks ties: a higher round number wins, so leadership moves
    on when its holder fails and does not come back by itself.
    """
    if policy == "spread":
        order = list(members)
    elif policy == "pack":
        order = sorted(
            members, key=lambda m: (founders.index(m), "") if m in founders else (len(founders), m)
        )
    else:
        raise ValueError(f"unknown leader policy {policy!r}: choose {' or '.join(LEADER_POLICIES)}")
    return len(order) - order.index(name)
