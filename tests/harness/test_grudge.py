"""Partition shapes: who drops whom, for every cluster size we offer."""

from __future__ import annotations

import random

import pytest

from kvctl.nemesis import grudge as g
from kvctl.nemesis.partition import components


def nodes(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def seen(grudge: g.Grudge, node: str) -> frozenset[str]:
    return frozenset(m for m in grudge if m not in grudge[node])


def test_complete_puts_unlisted_nodes_together():
    grudge = g.complete([["n1", "n2"]], nodes(5))
    assert grudge["n1"] == {"n3", "n4", "n5"}
    assert grudge["n3"] == {"n1", "n2"}
    assert components(grudge) == [["n1", "n2"], ["n3", "n4", "n5"]]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 9])
def test_halves_cut_a_minority_from_a_majority(n):
    grudge = g.halves(nodes(n), random.Random(n))
    groups = components(grudge)
    assert groups is not None and len(groups) == 2
    assert sorted(len(c) for c in groups) == [n // 2, n - n // 2]


@pytest.mark.parametrize("n", [4, 5, 6, 7, 9])
def test_majorities_ring(n):
    grudge = g.majorities_ring(nodes(n), random.Random(n))
    views = [seen(grudge, node) for node in grudge]
    assert all(len(v) > n // 2 for v in views), "every node sees a majority"
    assert len(set(views)) == n, "no two nodes see the same majority"
    assert all(b not in grudge[a] or a in grudge[b] for a in grudge for b in grudge), "symmetric"
    assert g.cut_links(grudge) > 0


def test_ring_of_three_cuts_nothing_so_partition_picks_another_shape():
    assert g.cut_links(g.majorities_ring(nodes(3), random.Random(1))) == 0


@pytest.mark.parametrize("n", [3, 5, 6])
def test_bridge(n):
    grudge = g.bridge(nodes(n), random.Random(n))
    hubs = [node for node, drops in grudge.items() if not drops]
    assert len(hubs) == 1, "one node talks to everyone"
    others = [node for node in grudge if node not in hubs]
    assert all(grudge[a] == {b for b in others if b not in seen(grudge, a)} for a in others)
    assert components(grudge) is None  # not a clean split: the bridge is in both halves


def test_isolate_and_describe():
    grudge = g.isolate("n3", nodes(3))
    assert g.describe(grudge) == {"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]}
