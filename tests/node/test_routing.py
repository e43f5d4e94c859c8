"""Routing between nodes (store-review B5, issue #13): a request passes through at most two
hops, never returns to the node it came from, avoids peers it cannot reach, and a forward
that gets no answer goes to another member instead of waiting for the client's timeout."""

from __future__ import annotations

from kvctl.node import errors
from kvctl.node.core import FAIL, NODE_LEVEL, OK, UNKNOWN, NodeCore
from kvctl.node.messages import ClientForward, ClientForwardReply
from kvctl.node.placement import Placement
from kvctl.node.routing import (
    PING_TICKS,
    REACH_TICKS,
    RETRY_TICKS,
    STALL_TICKS,
    Reachability,
)

NODES = ("n1", "n2", "n3")
FOUR = (*NODES, "n4")
WRITE = (1, "w", "k", "v", None, 42, 1)


def _step(cores, forwards, responses, tick, lost=lambda src, dst, msg: False):
    """One round: each core ticks (if `tick`) and hands its ready batch over; node-level
    messages reach the other cores unless `lost`. Forwards sent (src, dst) and client
    responses are added to the lists; returns whether any message was delivered."""
    moved = False
    for name, core in cores.items():
        if tick:
            core.tick()
        ready = core.take_ready()
        responses += ready.responses
        for dst, group, msg in ready.messages:
            if isinstance(msg, ClientForward):
                forwards.append((name, dst))
            if dst in cores and group == NODE_LEVEL and not lost(name, dst, msg):
                cores[dst].peer_message(name, group, msg)
                moved = True
    return moved


def _run(cores, cut=frozenset(), rounds=50, ticks=0):
    """Deliver node-level messages between the cores (dropping `cut` links), ticking
    `ticks` times first; returns the forwards sent (src, dst) and the client responses."""
    forwards, responses = [], []
    for step in range(rounds + ticks):
        moved = _step(cores, forwards, responses, step < ticks, lambda a, b, m: (a, b) in cut)
        if not moved and step >= ticks:
            break
    return forwards, responses


def test_disagreeing_hints_go_at_most_two_hops_and_never_back():
    cores = {name: NodeCore(name, Placement(NODES, 1, 3)) for name in NODES}
    cores["n1"].current(0).paxos.leader_hint = "n2"
    cores["n2"].current(0).paxos.leader_hint = "n1"
    cores["n3"].current(0).paxos.leader_hint = "n1"
    cores["n1"].client_request(7, WRITE)
    forwards, responses = _run(cores)
    assert len(forwards) <= 2
    assert all(b != a for a, b in forwards) and ("n2", "n1") not in forwards
    assert [r[:2] for _, r in responses] == [(1, FAIL)]


def test_a_router_goes_around_a_leader_it_cannot_reach():
    """n4 routes group 0 (n1, n2, n3); it cannot reach n1, the leader it has cached."""
    cores = {name: NodeCore(name, Placement(FOUR, 1, 3)) for name in ("n2", "n4")}
    for core in cores.values():
        core.addresses.update({n: n for n in FOUR})
    cores["n4"].leader_cache[0] = "n1"
    cores["n2"].current(0).paxos.leader_hint = "n1"
    _run(cores, ticks=PING_TICKS)  # pings: n4 hears n2, never n1
    cores["n4"].client_request(7, WRITE)
    forwards, _ = _run(cores, rounds=1)
    assert forwards[0] == ("n4", "n2")


def test_an_unanswered_forward_goes_to_another_member_and_a_late_refusal_is_not_definite():
    cores = {name: NodeCore(name, Placement(FOUR, 1, 3)) for name in ("n2", "n3", "n4")}
    for core in cores.values():
        core.addresses.update({n: n for n in FOUR})
    _run(cores, ticks=PING_TICKS)
    cores["n4"].leader_cache[0] = "n2"
    cores["n4"].client_request(7, WRITE)
    black_hole = {("n4", "n2")}  # the first forward is lost
    forwards, responses = _run(cores, cut=black_hole, ticks=RETRY_TICKS + PING_TICKS)
    assert forwards[:2] == [("n4", "n2"), ("n4", "n3")]
    statuses = [r[1] for _, r in responses]
    assert statuses and set(statuses) <= {OK, UNKNOWN}  # never a definite fail after a retry


def test_a_peer_that_answers_no_ping_gets_its_connection_reset_every_stall_ticks():
    """A partition leaves TCP connections open but backing off; seconds after the heal they
    have still not retransmitted. Whether or not the peer's own messages reach us, a peer that
    answers no ping gets a new connection every STALL_TICKS, so the first after the heal
    gets through; one that answers is left alone, and so is reachability's own clock."""
    reach = Reachability()
    resets = {}
    for now in range(0, 4 * STALL_TICKS + 1, PING_TICKS):
        for peer in ("n2", "n3", "n4"):
            reach.pinged(peer, now)
        reach.answered("n4", now)
        for peer in reach.stalled(now):
            resets.setdefault(peer, []).append(now)
    assert resets == {p: [STALL_TICKS * k for k in (1, 2, 3, 4)] for p in ("n2", "n3")}
    now = 4 * STALL_TICKS
    assert reach.unreachable("n2", now) and not reach.reachable("n2", now)
    assert reach.reachable("n4", now)


def _cut_off(names, ticks):
    """Cores for `names` in a four-node, one-group cluster (group 0: n1, n2, n3); only
    these exist, so pings to the others go unanswered for `ticks` ticks."""
    cores = {name: NodeCore(name, Placement(FOUR, 1, 3)) for name in names}
    for core in cores.values():
        core.addresses.update({n: n for n in FOUR})
    _run(cores, ticks=ticks)
    return cores


def test_a_router_cut_from_every_member_refuses_at_once_and_definitely():
    """n4 has pinged n1, n2 and n3 for longer than REACH_TICKS without an answer: it sends
    nothing on and says so now, not at the client's timeout (issue #13)."""
    cores = _cut_off(("n4",), REACH_TICKS + 2 * PING_TICKS)
    cores["n4"].client_request(7, WRITE)
    forwards, responses = _run(cores, rounds=1)
    assert forwards == []
    [(conn, (req_id, status, value, _))] = responses
    assert (conn, req_id, status) == (7, 1, FAIL)
    assert value[0] == errors.TEMPORARILY_UNAVAILABLE.code


def test_the_second_hop_refuses_at_once_when_it_cannot_reach_the_group_either():
    """n4 reaches n2 only; n2, a member, reaches no other member: the refusal comes back
    through n4 at once, still definite (nothing was proposed)."""
    cores = _cut_off(("n2", "n4"), REACH_TICKS + 2 * PING_TICKS)
    cores["n4"].leader_cache[0] = "n1"
    cores["n4"].client_request(7, WRITE)
    forwards, responses = _run(cores)
    assert forwards == [("n4", "n2")]
    [(_, (_, status, value, _))] = responses
    assert status == FAIL and value[0] == errors.TEMPORARILY_UNAVAILABLE.code


def test_a_forward_with_no_candidate_left_is_answered_unknown_long_before_the_timeout():
    """Every forward is lost (n2 and n3 answer pings, never forwards): after trying both,
    n4 answers unknown within RETRY_TICKS of the last try, not after request_timeout_ticks."""
    cores = _cut_off(("n2", "n3", "n4"), PING_TICKS * 2)
    cores["n4"].leader_cache[0] = "n2"
    cores["n4"].client_request(7, WRITE)
    responses, forwards, ticks = [], [], 0
    while not responses and ticks < 3 * RETRY_TICKS:
        ticks += 1
        _step(cores, forwards, responses, True, lambda a, b, m: isinstance(m, ClientForward))
    assert forwards == [("n4", "n2"), ("n4", "n3")]
    assert ticks <= 2 * RETRY_TICKS + PING_TICKS < cores["n4"].request_timeout_ticks
    [(_, (_, status, value, _))] = responses
    assert status == UNKNOWN and value[0] == errors.TIMEOUT.code


def test_a_reply_to_a_forward_of_an_earlier_run_settles_nothing():
    # Found by `kvctl sim --seed 52394 --leaders pack`: a node restarted and numbered its
    # forwards from 1 again; a peer's late reply to the earlier run's forward 1 (a read) then
    # settled this run's forward 1 (a cas), and the client was told the cas returned 41.
    placement = Placement(FOUR, 1, 3)  # n4 is in no group: it forwards everything
    before = NodeCore("n4", placement, boot=1)
    before.client_request(1, (1, "r", "k", None, None, 42, 1))
    sent = before.take_ready().messages
    [(target, _, old)] = [m for m in sent if isinstance(m[2], ClientForward)]
    after = NodeCore("n4", placement, boot=2)
    after.client_request(1, (1, "c", "k", None, "x", 43, 1))
    assert any(isinstance(m[2], ClientForward) for m in after.take_ready().messages)
    after.peer_message(target, NODE_LEVEL, ClientForwardReply(old.forward_id, (OK, 41, target)))
    assert after.take_ready().responses == []
