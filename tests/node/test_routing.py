"""Routing between nodes (store-review B5): a request passes through at most two hops and
never returns to the node it came from, so disagreeing leader hints cannot bounce it."""

from __future__ import annotations

from kvctl.node.core import FAIL, NodeCore
from kvctl.node.messages import ClientForward, ClientForwardReply
from kvctl.node.placement import Placement

NODES = ("n1", "n2", "n3")


def test_two_nodes_pointing_at_each_other_refuse_instead_of_bouncing():
    placement = Placement(NODES, 1, 3)
    cores = {name: NodeCore(name, placement) for name in ("n1", "n2")}
    cores["n1"].current(0).paxos.leader_hint = "n2"
    cores["n2"].current(0).paxos.leader_hint = "n1"
    cores["n1"].client_request(7, (1, "w", "k", "v", None, 42, 1))
    forwards = 0
    responses = []
    for _ in range(50):
        moved = False
        for name, core in cores.items():
            ready = core.take_ready()
            responses += ready.responses
            for dst, group, msg in ready.messages:
                if dst in cores and isinstance(msg, ClientForward | ClientForwardReply):
                    forwards += isinstance(msg, ClientForward)
                    cores[dst].peer_message(name, group, msg)
                    moved = True
        if not moved:
            break
    assert forwards == 1
    assert [r[:2] for _, r in responses] == [(1, FAIL)]
