"""Partitions as grudges: for each node, the nodes whose packets it drops.

A grudge is what the firewall enforces on each *receiving* node (Jepsen's model). The shapes
below are pure functions of the node list and a random generator, so they are tested without
a cluster; `complete` turns components (who can talk to whom) into a grudge.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from itertools import pairwise

Grudge = dict[str, frozenset[str]]


def complete(components: Iterable[Iterable[str]], nodes: Sequence[str]) -> Grudge:
    """Each node drops every node outside its component; unlisted nodes form one more."""
    groups = [set(c) for c in components]
    listed = set().union(*groups) if groups else set()
    rest = [n for n in nodes if n not in listed]
    if rest:
        groups.append(set(rest))
    home = {n: g for g in groups for n in g}
    return {n: frozenset(m for m in nodes if m not in home[n]) for n in nodes}


def halves(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """A random minority against the majority."""
    shuffled = rng.sample(list(nodes), len(nodes))
    return complete([shuffled[: len(nodes) // 2]], nodes)


def isolate(node: str, nodes: Sequence[str]) -> Grudge:
    """One node alone; the rest together."""
    return complete([[node]], nodes)


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Every node sees a majority, and no two nodes see the same one.

    The nodes sit on a shuffled ring and each sees the d nearest on either side, with 2d + 1
    at least a majority; seeing is symmetric, so every link is cut both ways or not at all.
    """
    n = len(nodes)
    ring = rng.sample(list(nodes), n)
    d = (n // 2 + 1) // 2
    grudge: Grudge = {}
    for i, node in enumerate(ring):
        seen = {ring[(i + k) % n] for k in range(-d, d + 1)}
        grudge[node] = frozenset(m for m in nodes if m not in seen)
    return grudge


def bridge(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Two halves that cannot talk, and one node in the middle that talks to both."""
    shuffled = rng.sample(list(nodes), len(nodes))
    middle = len(shuffled) // 2
    left, hub, right = set(shuffled[:middle]), shuffled[middle], set(shuffled[middle + 1 :])
    grudge = {n: frozenset(right if n in left else left) for n in nodes}
    grudge[hub] = frozenset()
    return grudge


def only_links(nodes: Sequence[str], links: Iterable[tuple[str, str]]) -> Grudge:
    """Every link cut, both ways, except `links` (each kept both ways)."""
    kept = {frozenset(link) for link in links}
    return {n: frozenset(m for m in nodes if m != n and frozenset((n, m)) not in kept)
            for n in nodes}


def star(nodes: Sequence[str], hub: str, isolated: Iterable[str] = ()) -> Grudge:
    """Only the hub's links survive: the hub alone reaches a majority (the Omni-Paxos
    paper's quorum loss); `isolated` nodes lose the hub too (its constrained election)."""
    alone = set(isolated)
    return only_links(nodes, [(hub, n) for n in nodes if n != hub and n not in alone])


def chain(order: Sequence[str]) -> Grudge:
    """A line through the nodes in `order`: each reaches only its neighbours (the paper's
    chained case: the middle of three reaches both ends, the ends not each other)."""
    return only_links(order, pairwise(order))


def cut_links(grudge: Grudge) -> int:
    """How many directed links the grudge cuts (0: no partition at all)."""
    return sum(len(sources) for sources in grudge.values())


def describe(grudge: Grudge) -> dict[str, list[str]]:
    """The JSON form for the history: each node and the nodes it drops (if any)."""
    return {n: sorted(s) for n, s in sorted(grudge.items()) if s}
