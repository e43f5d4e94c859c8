"""Ballot leader election: only a quorum-connected node can win, and it recovers from the
partial partitions of the Omni-Paxos paper."""

from __future__ import annotations

from kvctl.node.ble import BallotLeaderElection

FIVE = ["a", "b", "c", "d", "e"]


def run_rounds(nodes, rounds, links=None):
    """Tick every node through `rounds` heartbeat rounds; `links(src, dst)` says who hears."""
    links = links or (lambda src, dst: True)
    for _ in range(rounds * nodes[0].heartbeat_ticks):
        for node in nodes:
            node.tick()
        pending = True
        while pending:
            pending = False
            for node in nodes:
                for dst, msg in node.take_messages():
                    if links(node.pid, dst):
                        by_pid[dst].handle(node.pid, msg)
                        pending = True


def make(members, priorities=None, down=()):
    global by_pid
    priorities = priorities or {}
    nodes = [
        BallotLeaderElection(m, members, priority=priorities.get(m, 0), heartbeat_ticks=2)
        for m in members
    ]
    by_pid = {n.pid: n for n in nodes}
    return nodes


def leaders(nodes, alive):
    return {n.pid: (n.leader.pid if n.leader else None) for n in nodes if n.pid in alive}


def test_all_connected_elect_the_highest_ballot():
    nodes = make(FIVE, {"c": 5})
    run_rounds(nodes, 3)
    assert set(leaders(nodes, FIVE).values()) == {"c"}


def test_a_dead_leader_is_replaced_within_a_few_rounds():
    nodes = make(FIVE, {"c": 5})
    run_rounds(nodes, 3)
    alive = [m for m in FIVE if m != "c"]
    run_rounds(nodes, 3, links=lambda s, d: "c" not in (s, d))
    elected = set(leaders(nodes, alive).values())
    assert len(elected) == 1 and elected != {"c"} and None not in elected


def test_quorum_loss_only_the_hub_can_win():
    # The leader c keeps only its link to a; a is the only node that reaches a majority.
    nodes = make(FIVE, {"c": 5})
    run_rounds(nodes, 3)
    hub = "a"
    run_rounds(nodes, 6, links=lambda s, d: hub in (s, d))
    assert leaders(nodes, [hub])[hub] == hub
    assert not any(n.quorum_connected for n in nodes if n.pid != hub)


def test_chained_partition_converges_without_livelock():
    # a-b-c in a line: b and c cannot hear each other, a hears both.
    nodes = make(["a", "b", "c"], {"c": 5})
    run_rounds(nodes, 3)
    cut = {("b", "c"), ("c", "b")}
    run_rounds(nodes, 5, links=lambda s, d: (s, d) not in cut)
    first = {n.pid: n.leader for n in nodes}
    run_rounds(nodes, 5, links=lambda s, d: (s, d) not in cut)
    assert {n.pid: n.leader for n in nodes} == first  # stable: nobody keeps overtaking
    assert first["a"] is not None


def test_a_minority_is_not_quorum_connected():
    nodes = make(FIVE)
    run_rounds(nodes, 2, links=lambda s, d: (s in "ab") == (d in "ab"))
    assert not by_pid["a"].quorum_connected and by_pid["c"].quorum_connected


def test_a_duplicated_reply_does_not_make_a_cut_off_node_quorum_connected():
    """B10: one peer heard twice is still one peer; 2 of 5 is no quorum."""
    node = BallotLeaderElection("a", FIVE, heartbeat_ticks=1)
    request = next(m for dst, m in node.take_messages() if dst == "b")
    reply = by_reply("b", request)
    node.handle("b", reply)
    node.handle("b", reply)  # the network duplicated it
    node.tick()  # the round ends
    assert not node.quorum_connected


def by_reply(pid, request):
    peer = BallotLeaderElection(pid, FIVE)
    peer.handle("a", request)
    return next(m for dst, m in peer.take_messages() if dst == "a" and m.round == request.round)
