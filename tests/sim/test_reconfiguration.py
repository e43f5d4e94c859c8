"""Reconfiguration in the simulated world, step by step, without faults."""

from __future__ import annotations

from kvctl.node.errors import RECONFIGURATION_IN_PROGRESS
from kvctl.sim.world import World

ADMIN = 1


def world_with_spare() -> World:
    world = World(5, ["n1", "n2", "n3"], spares=("n4",), groups=1, replication=3)
    world.run_until(1000)
    return world


def request(world: World, node: str, *request) -> list:
    """Send one request; return the responses that came back to `ADMIN`."""
    got = []
    world.client_inbox = lambda _node, _client, response: got.append(response)
    world.request(ADMIN, node, request)
    world.run_until(world.now + 500)
    return got


def test_a_joiner_serves_the_state_from_before_the_stopsign():
    world = world_with_spare()
    assert request(world, "n1", 1, "w", "k", "before", None, ADMIN, 1)[0][1] == "ok"
    members = ("n1", "n2", "n4")
    addresses = tuple((m, m) for m in members)
    done = request(world, "n2", 2, "reconfigure", 0, members, addresses, ADMIN, 2)
    assert done[0][1] == "ok"
    world.run_until(world.now + 2000)
    for name in ("n1", "n2", "n4"):
        core = world.nodes[name].core
        assert core.configs[0].id == 1 and core.configs[0].members == members
        assert core.current(0).machine.read("k") == "before"
    assert world.nodes["n3"].core.current(0) is None  # n3 left the group
    assert request(world, "n3", 3, "r", "k", None, None, ADMIN, 3)[0][1:3] == ("ok", "before")
    assert request(world, "n4", 4, "w", "k", "after", None, ADMIN, 4)[0][1] == "ok"
    assert world.nodes["n4"].core.current(0).machine.read("k") == "after"


def test_the_old_configuration_decides_nothing_after_its_stopsign():
    world = world_with_spare()
    members = ("n1", "n2", "n4")
    request(world, "n1", 1, "reconfigure", 0, members, tuple((m, m) for m in members), ADMIN, 1)
    old = next(
        n.core.replicas[(0, 0)]
        for n in world.nodes.values()
        if (0, 0) in n.core.replicas and n.core.replicas[(0, 0)].paxos.is_leader
    )
    assert old.sealed
    assert not old.propose(("w", "k", "late", None, ADMIN, 9))


def test_a_second_reconfiguration_waits_for_the_first():
    world = world_with_spare()
    members = ("n1", "n2", "n4")
    pairs = tuple((m, m) for m in members)
    world.client_inbox = lambda *_: None
    leader = next(
        n
        for n, node in world.nodes.items()
        if node.core.current(0) and node.core.current(0).accepting
    )
    core = world.nodes[leader].core
    core.client_request(ADMIN, (1, "reconfigure", 0, members, pairs, ADMIN, 1))
    core.client_request(ADMIN, (2, "reconfigure", 0, members, pairs, ADMIN, 2))
    responses = core.take_ready().responses
    assert responses and responses[0][1][2][0] == RECONFIGURATION_IN_PROGRESS.code
