"""The Omni-Paxos paper's partial-connectivity scenarios as partitions a person can name:
their shapes, the roles they give the current leader, and the stage that lets a node fall
behind first."""

from __future__ import annotations

from typing import Any

import pytest

from kvctl import nemesis
from kvctl.nemesis import grudge, partition
from kvctl.nemesis.partition import Partition
from kvctl.report.connectivity import Network, has_majority, viable_leaders

from .fakes import FakeBackend, spec_of

NODES = ["n1", "n2", "n3", "n4", "n5"]
TOPOLOGY = {"leaders": {"0": "n2", "1": None},
            "configs": {"0": [0, ["n1", "n2", "n3"]], "1": [0, ["n2", "n3", "n4"]]}}


def context(topology: dict[str, Any] = TOPOLOGY, seed: int = 1) -> nemesis.Context:
    ctx = nemesis.Context(spec_of(5), FakeBackend(), seed)  # type: ignore[arg-type]
    ctx.topology = lambda: topology  # type: ignore[method-assign]
    return ctx


def linked(drops: grudge.Grudge) -> set[frozenset[str]]:
    net = Network(drops)
    return {frozenset((a, b)) for a in drops for b in drops if a < b and net.linked(a, b)}


def test_a_star_keeps_only_the_hubs_links_and_a_chain_only_neighbours() -> None:
    assert linked(grudge.star(NODES, "n3")) == {frozenset(("n3", n)) for n in NODES if n != "n3"}
    assert linked(grudge.star(NODES, "n3", ["n5"])) == {
        frozenset(("n3", n)) for n in ("n1", "n2", "n4")}
    assert linked(grudge.chain(["n2", "n5", "n1", "n4", "n3"])) == {
        frozenset(p) for p in (("n2", "n5"), ("n5", "n1"), ("n1", "n4"), ("n4", "n3"))}


def test_only_named_the_scenarios_are_never_drawn_by_partition() -> None:
    assert nemesis.parse("partition-quorum-loss", "docker").shapes == ["quorum-loss"]
    assert not {"quorum-loss", "constrained", "chained"} & set(
        nemesis.parse("partition", "docker").shapes)


def test_quorum_loss_leaves_the_leader_a_leaf_of_a_hub_in_its_group() -> None:
    value = Partition(context(), ["quorum-loss"]).start()
    assert (value["group"], value["leader"], value["leader_known"]) == (0, "n2", True)
    assert value["hub"] in ("n1", "n3")
    drops = {n: frozenset(value["drops"].get(n, ())) for n in NODES}
    assert drops == grudge.star(NODES, value["hub"])
    assert f"group 0 led by n2, hub {value['hub']}" in value["summary"]


def test_constrained_lets_the_hub_fall_behind_then_cuts_the_leader_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partition, "BEHIND_SECONDS", 0.0)
    ctx = context()
    backend: FakeBackend = ctx.backend  # type: ignore[assignment]
    value = Partition(ctx, ["constrained"]).start()
    hub = value["hub"]
    assert value["behind"] == hub
    drops = {n: frozenset(value["drops"].get(n, ())) for n in NODES}
    assert drops == grudge.star(NODES, hub, ["n2"])
    leaders = viable_leaders(Network(drops), ["n1", "n2", "n3"])
    assert hub in leaders and "n2" not in leaders  # the one behind may lead, the leader not
    hub_ip = ctx.spec.node(hub).host
    first = [s for node, s in backend.scripts if node == "n4" and "-j DROP" in s]
    assert len(first) == 2 and f"-s {hub_ip} -j DROP" in first[0]  # n4 dropped the hub first


def test_chained_puts_a_member_between_the_leader_and_the_last_member() -> None:
    value = Partition(context(seed=3), ["chained"]).start()
    order = value["chain"]
    assert order[0] == "n2" and set(order[:3]) == {"n1", "n2", "n3"}
    drops = {n: frozenset(value["drops"].get(n, ())) for n in NODES}
    net = Network(drops)
    assert net.linked("n2", order[1]) and net.linked(order[1], order[2])
    assert not net.linked("n2", order[2])
    assert viable_leaders(net, ["n1", "n2", "n3"]) == sorted(["n1", "n2", "n3"])


def test_without_a_reported_leader_the_preferred_one_takes_the_role() -> None:
    value = Partition(context({}, seed=2), ["quorum-loss"]).start()
    members = [f"n{(value['group'] + i) % 5 + 1}" for i in range(3)]
    assert value["leader"] == members[0] and value["hub"] in members[1:]
    assert not value["leader_known"]
    net = Network({n: frozenset(value["drops"].get(n, ())) for n in NODES})
    assert has_majority(net, members)
