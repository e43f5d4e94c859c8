"""Liveness under partial connectivity (issue #13): where a group keeps a majority that can
reach each other, every node that reaches a member of that majority gets writes on the
group's keys done within a stated bound of the cut, in each partition shape: clean halves,
a bridge, a ring, a node cut from the leader only, and the Omni-Paxos paper's quorum-loss,
constrained-election and chained cases. Timing is the real node's (100 ms heartbeats)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import pytest

from kvctl.node.ballot import majority
from kvctl.node.core import OK
from kvctl.node.replica import Timing
from kvctl.sim.faults import _only_links, chain, split, star
from kvctl.sim.world import World

NODES = [f"n{i}" for i in range(1, 6)]
BOUND_MS = 1000
WARM_UP_MS = 3000
Links = set[tuple[str, str]]


def _ring(world: World) -> Links:
    return _only_links(NODES, [(a, NODES[(i + 1) % 5]) for i, a in enumerate(NODES)])


def _bridge(world: World) -> Links:
    """n1, n2 | n3 | n4, n5: n3 alone hears both sides."""
    keep = [("n1", "n2"), ("n1", "n3"), ("n2", "n3"), ("n3", "n4"), ("n3", "n5"), ("n4", "n5")]
    return _only_links(NODES, keep)


def _cut_from_leader(world: World) -> Links:
    """One member of group 0 loses its link to the group's leader, and nothing else."""
    core = world.nodes["n1"].core
    assert core is not None
    leader = core.current(0).leader_hint() if core.current(0) else None
    members = core.configs[0].members
    leader = leader or members[0]
    other = next(m for m in members if m != leader)
    return {(leader, other), (other, leader)}


SHAPES: dict[str, Callable[[World], Links]] = {
    "halves": lambda w: split(NODES, ["n2", "n5"]),
    "bridge": _bridge,
    "ring": _ring,
    "cut-from-leader": _cut_from_leader,
    "quorum-loss": lambda w: star(NODES, "n3", []),
    "constrained": lambda w: star(NODES, "n3", ["n5"]),
    "chained": lambda w: chain(NODES),
}


def _linked(a: str, b: str, cut: Links) -> bool:
    return a == b or (a, b) not in cut


def _serving(members: list[str], cut: Links) -> list[str]:
    """Members that, with the members they reach directly, are a majority: a leader there
    can decide, so the group must stay available."""
    need = majority(len(members))
    return [m for m in members if sum(_linked(m, o, cut) for o in members) >= need]


def _time_to_first_ok(shape: str, seed: int) -> dict[tuple[int, str], int | None]:
    timing = Timing(heartbeat_ticks=10, resend_ticks=20, compact_entries=300)
    world = World(seed, NODES, groups=5, replication=3, timing=timing)
    first: dict[tuple[int, str], int] = {}
    pending: dict[int, tuple[int, str]] = {}

    def inbox(node: str, client: int, response: tuple) -> None:
        target = pending.pop(response[0], None)
        if target is not None and response[1] == OK:
            first.setdefault(target, world.now)

    world.client_inbox = inbox
    world.run_until(WARM_UP_MS)
    cut = world.net.blocked = SHAPES[shape](world)
    placement = world.placement
    key_of = {}
    for i in count():
        key_of.setdefault(placement.group_of(f"k{i}"), f"k{i}")
        if len(key_of) == placement.groups:
            break
    targets = []
    for group in range(placement.groups):
        serving = _serving(placement.members(group), cut)
        targets += [(group, n) for n in NODES if any(_linked(n, m, cut) for m in serving)]
    ids = count(1)
    for elapsed in range(0, BOUND_MS, 50):
        for target in targets:
            if target not in first:
                req = next(ids)
                pending[req] = target
                group, node = target
                client = 1000 + group * 10 + NODES.index(node)
                world.request(client, node, (req, "w", key_of[group], req, None, client, req))
        world.run_until(WARM_UP_MS + elapsed + 50)
    return {t: (first[t] - WARM_UP_MS if t in first else None) for t in targets}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_side_that_can_serve_keeps_serving(shape, seed):
    waited = _time_to_first_ok(shape, seed)
    late = {t: ms for t, ms in waited.items() if ms is None}
    assert waited and not late, f"no write done within {BOUND_MS} ms for {sorted(late)}"
