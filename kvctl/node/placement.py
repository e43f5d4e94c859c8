"""Which replication group owns a key, and which nodes replicate each group.

Keys hash to groups with blake2b of their msgpack encoding: stable across processes and
machines (never Python's salted `hash()`), and uniform (never a sign-dependent range like the
seed project's Java `hashCode`). Group g is replicated on R consecutive nodes of the ring of
node names starting at node g mod N, and its first replica is preferred as leader, so
leadership spreads over the nodes.
"""

from __future__ import annotations

import hashlib
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
