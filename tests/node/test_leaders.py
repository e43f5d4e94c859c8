"""Which member leads each group (placement.leader_priority): spread puts each group's first
member first, pack puts the same node first in every group it belongs to."""

from __future__ import annotations

import pytest

from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.node.core import NodeCore
from kvctl.node.placement import Placement, leader_priority

NODES = ("n1", "n2", "n3")


def test_spread_prefers_each_groups_first_member() -> None:
    members = ["n2", "n3", "n1"]
    ranked = sorted(members, key=lambda m: -leader_priority(members, m, NODES, "spread"))
    assert ranked == members


def test_pack_prefers_the_clusters_order_then_later_nodes_by_name() -> None:
    members = ["n3", "n5", "n1", "n4"]  # n4 and n5 joined after the founders
    ranked = sorted(members, key=lambda m: -leader_priority(members, m, NODES, "pack"))
    assert ranked == ["n1", "n3", "n4", "n5"]
    assert leader_priority(members, "n1", NODES, "pack") == len(members)


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown leader policy 'first'"):
        leader_priority(NODES, "n1", NODES, "first")
    with pytest.raises(ValueError, match="unknown leader policy"):
        NodeCore("n1", Placement(NODES, 3, 3), leaders="first")


def _leaders(policy: str, nodes: tuple[str, ...], groups: int) -> dict[int, str]:
    """Who leads each group once the cores, all connected, have settled."""
    cores = {n: NodeCore(n, Placement(nodes, groups, 3), leaders=policy) for n in nodes}
    for _ in range(60):
        for core in cores.values():
            core.tick()
        moved = True
        while moved:
            moved = False
            for name, core in cores.items():
                for dst, group, msg in core.take_ready().messages:
                    cores[dst].peer_message(name, group, msg)
                    moved = True
    return {
        g: name
        for name, core in cores.items()
        for (g, _), replica in core.replicas.items()
        if replica.accepting
    }


def test_pack_elects_one_node_for_every_group_it_belongs_to() -> None:
    assert _leaders("pack", NODES, 3) == {0: "n1", 1: "n1", 2: "n1"}
    five = ("n1", "n2", "n3", "n4", "n5")  # group g on n(g+1) and the two after it
    assert _leaders("pack", five, 5) == {0: "n1", 1: "n2", 2: "n3", 3: "n1", 4: "n1"}


def test_spread_elects_each_groups_first_member() -> None:
    assert _leaders("spread", NODES, 3) == {0: "n1", 1: "n2", 2: "n3"}


@pytest.mark.parametrize(
    ("backend", "given", "policy"),
    [("local", "", "pack"), ("docker", "", "pack"), ("ssh", "", "spread"), ("ssh", "pack", "pack")],
)
def test_a_cluster_packs_its_leaders_where_its_nodes_share_a_machine(
    backend: str, given: str, policy: str
) -> None:
    spec = ClusterSpec("c", backend, [NodeSpec("n1", "h", 7400)], leaders=given)
    assert spec.leader_policy == policy
    argv = spec.node_argv(spec.nodes[0], "/data")
    assert argv[argv.index("--leaders") + 1] == policy
