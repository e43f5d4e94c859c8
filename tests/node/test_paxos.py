"""Scenario tests of the Sequence Paxos core, one rule each."""

from __future__ import annotations

from kvctl.node.ballot import Ballot
from kvctl.node.core import NodeCore
from kvctl.node.durable import DurableState, WriteLog
from kvctl.node.messages import (
    AFTER_FSYNC,
    STOPSIGN,
    AcceptDecide,
    Accepted,
    NotAccepted,
    PrepareReq,
    ReadConfirm,
    ReadConfirmed,
    Snapshot,
    StopSign,
)
from kvctl.node.paxos import Phase, SequencePaxos
from kvctl.node.placement import Placement

from .harness import PaxosNet

ABC = ["a", "b", "c"]


def test_a_leader_decides_on_every_replica():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",), ("y",))
    net.settle()
    assert all(net.decided[m] == [("x",), ("y",)] for m in ABC)
    assert all(net.disk[m].entries == [("x",), ("y",)] for m in ABC)


def test_nothing_is_decided_without_a_majority():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.crash("b")
    net.crash("c")
    net.propose("a", ("x",))
    net.deliver()
    assert net.decided["a"] == []


def test_proposals_during_prepare_wait_for_the_accept_phase():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.propose("a", ("early",))
    assert net.nodes["a"].phase is Phase.PREPARE
    net.settle()
    assert net.decided["c"] == [("early",)]


def test_new_leader_adopts_the_accepted_suffix_of_a_majority():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    # b accepts x, c never hears of it, and a dies before anyone learns it is decided.
    net.deliver(
        drop=lambda src, dst, msg: (
            dst == "c"
            or (dst == "b" and src == "a" and isinstance(msg, AcceptDecide) and msg.decided_idx > 0)
        )
    )
    net.crash("a")
    net.elect("c", 2)
    net.settle()
    assert net.decided["b"] == [("x",)]
    assert net.decided["c"] == [("x",)]


def test_a_stale_leader_is_rejected_and_steps_down():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.elect("b", 2)
    net.deliver(drop=lambda src, dst, msg: "a" in (src, dst))
    net.propose("a", ("stale",))
    sent = []
    net.deliver(drop=lambda src, dst, msg: sent.append((src, dst, msg)) is not None)
    replies = []
    for src, dst, msg in sent:
        if dst != "a":
            net.nodes[dst].handle(src, msg)
            replies.extend(net.nodes[dst].take_ready().messages)
    assert any(isinstance(m, NotAccepted) and m.ballot == Ballot(2, 0, "b") for _, m in replies)
    for _, msg in replies:
        net.nodes["a"].handle("b", msg)
    assert not net.nodes["a"].is_leader
    assert net.decided["b"] == [] and net.decided["c"] == []


def test_a_crashed_follower_recovers_from_disk_and_catches_up():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver()
    net.crash("c")
    net.propose("a", ("y",), ("z",))
    net.deliver()
    net.restart("c")
    assert net.nodes["c"].phase is Phase.RECOVER
    net.deliver()  # its PrepareReq makes the leader resync it
    assert net.disk["c"].entries == [("x",), ("y",), ("z",)]
    assert net.decided["c"] == [("x",), ("y",), ("z",)]


def test_a_gap_in_the_stream_asks_for_a_resync_instead_of_accepting():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver(drop=lambda src, dst, msg: dst == "c" and isinstance(msg, AcceptDecide))
    net.propose("a", ("y",))
    net.flush("a")
    to_c = [m for m in net.queue if m[1] == "c"]
    net.queue = [m for m in net.queue if m[1] != "c"]
    net.nodes["c"].handle("a", to_c[0][2])
    ready = net.nodes["c"].take_ready()
    assert [type(m) for _, m in ready.messages] == [PrepareReq]
    assert net.nodes["c"].log == []  # nothing appended out of order
    net.queue.extend(("c", dst, m) for dst, m in ready.messages)
    net.deliver()
    assert net.decided["c"] == [("x",), ("y",)]


def test_a_duplicate_or_late_message_never_truncates_the_log():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.flush("a")
    first = next(m for m in net.queue if m[1] == "b")[2]
    net.deliver()
    net.propose("a", ("y",))
    net.deliver()
    before = list(net.nodes["b"].log)
    net.nodes["b"].handle("a", first)  # replayed: an old seq
    ready = net.nodes["b"].take_ready()
    assert net.nodes["b"].log == before == [("x",), ("y",)]
    assert not [op for op in ready.persist if isinstance(op, WriteLog)]


def test_even_sized_groups_need_three_of_four():
    net = PaxosNet(["a", "b", "c", "d"])
    assert net.nodes["a"].quorum == 3
    net.elect("a", 1)
    net.deliver()
    net.crash("c")
    net.crash("d")
    net.propose("a", ("x",))
    net.deliver()
    assert net.decided["a"] == []
    net.restart("c")
    net.deliver()
    net.tick(25)  # the resend timer probes the lagging
    net.deliver()
    assert net.decided["a"] == [("x",)]


def test_accepted_from_an_older_ballot_does_not_count():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.crash("b")
    net.crash("c")
    net.propose("a", ("x",))
    net.flush("a")
    net.nodes["a"].handle("b", Accepted(Ballot(0, 0, "a"), 1))
    net.flush("a")
    assert net.decided["a"] == []


def test_a_lagging_replica_catches_up_from_a_snapshot():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.crash("c")
    net.propose("a", ("x",), ("y",), ("z",))
    net.deliver()
    net.nodes["a"].compact(Snapshot(3, {"state": "after z"}))
    net.flush("a")
    assert net.nodes["a"].log == [] and net.disk["a"].log_start == 3
    net.restart("c")
    net.deliver()
    assert net.decided["c"] == [("snapshot", 3)]
    assert net.disk["c"].snapshot == Snapshot(3, {"state": "after z"})
    net.propose("a", ("w",))
    net.settle()
    assert net.decided["c"] == [("snapshot", 3), ("w",)]


def test_a_read_waits_for_a_majority_to_confirm_the_ballot():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver()
    assert net.nodes["a"].read("token")
    net.flush("a")
    asked = [m for _, dst, m in net.queue if isinstance(m, ReadConfirm)]
    assert len(asked) == 1 and net.nodes["a"].take_ready().reads == []  # not yet confirmed
    net.queue.clear()
    net.nodes["a"].handle("b", ReadConfirmed(Ballot(0, 0, "a"), asked[0].round))  # old ballot
    assert net.nodes["a"].take_ready().reads == []
    net.nodes["a"].handle("b", ReadConfirmed(asked[0].ballot, asked[0].round))
    assert net.nodes["a"].take_ready().reads == ["token"]


def test_a_deposed_leader_serves_no_read():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.elect("b", 2)
    net.deliver(drop=lambda src, dst, msg: "a" in (src, dst))
    assert net.nodes["a"].read("stale?")
    replies = []
    net.deliver(drop=lambda src, dst, msg: replies.append((src, dst, msg)) is not None)
    for src, dst, msg in replies:
        if dst != "a":
            net.nodes[dst].handle(src, msg)
            for _, answer in net.nodes[dst].take_ready().messages:
                net.nodes["a"].handle(dst, answer)
    assert net.nodes["a"].take_ready().reads == []
    assert not net.nodes["a"].is_leader


def _accept_decides(net: PaxosNet) -> list[tuple[str, AcceptDecide]]:
    return [(dst, m) for _, dst, m in net.queue if isinstance(m, AcceptDecide)]


def test_a_decided_index_alone_waits_for_the_next_tick():
    """Issue 16: a decide-only AcceptDecide cost each follower a wakeup and a WAL write per
    operation; followers need the index only to apply, so it waits for a tick."""
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver()
    assert net.decided["a"] == [("x",)]
    assert net.decided["b"] == [] and net.decided["c"] == []  # nothing sent for it yet
    net.tick()
    net.flush("a")
    sent = _accept_decides(net)
    assert sorted(dst for dst, _ in sent) == ["b", "c"]
    assert all(m.entries == () and m.decided_idx == 1 for _, m in sent)
    net.deliver()
    assert net.decided["b"] == [("x",)] and net.decided["c"] == [("x",)]


def test_a_decided_index_rides_on_the_next_append():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver()
    net.propose("a", ("y",))
    net.flush("a")
    sent = _accept_decides(net)
    assert sorted(dst for dst, _ in sent) == ["b", "c"]  # one message each, not two
    assert all(m.entries == (("y",),) and m.decided_idx == 1 for _, m in sent)
    net.deliver()
    assert net.decided["b"] == [("x",)]


def test_a_decided_index_alone_leaves_at_once_where_followers_serve_reads():
    """The stale read mode answers from a follower's own copy: there the decided index must
    not wait a tick, or every read a follower serves would lag by one (issue 16)."""
    net = PaxosNet(ABC, eager_decide=True)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x",))
    net.deliver()  # no tick
    assert net.decided["b"] == [("x",)] and net.decided["c"] == [("x",)]


def test_the_stale_read_mode_makes_replicas_decide_eagerly():
    placement = Placement(("n1", "n2", "n3"), 1, 3)
    for mode, eager in (("stale", True), ("linearizable", False)):
        core = NodeCore("n1", placement, read_mode=mode)
        assert [r.paxos.eager_decide for r in core.replicas.values()] == [eager]


def test_a_sealed_log_keeps_telling_its_followers_what_was_decided():
    # Found by `kvctl sim --seed 30672`: after a StopSign no entry ever follows, so a follower
    # that missed the decided index (here: the message that carried it was lost) would never
    # learn that its configuration ended, and the next one would never start.
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    stop = StopSign(STOPSIGN, 0, ("a", "b", "d"), (), 7, 1)
    net.propose("a", stop)
    net.deliver()
    assert net.decided["a"][-1] == stop
    net.tick()  # the decided index leaves alone, and the copy to c is lost
    net.deliver(drop=lambda src, dst, msg: dst == "c" and isinstance(msg, AcceptDecide))
    assert net.decided["b"][-1] == stop and stop not in net.decided["c"]
    net.tick(net.nodes["a"].resend_ticks)
    net.deliver()
    assert net.decided["c"][-1] == stop


def test_a_leader_whose_own_log_wins_syncs_followers_to_it_not_to_a_longer_log_it_dropped():
    # Found by `kvctl sim --seed 43351`. b led ballot 1 and alone accepted x at index 0; a led
    # ballot 2 and alone accepted y there. a now leads ballot 3, and b's and c's promises
    # make its majority before its own promise is on disk (a slow disk). a's log wins (ballot
    # 2 beats 1), so b must be rewritten from index 0; it was told that it agreed with a up to
    # index 1, kept x, and decided x where a and c decided y.
    x, y = ("x",), ("y",)
    b1, b2, b3 = Ballot(1, 0, "b"), Ballot(2, 0, "a"), Ballot(3, 0, "a")
    nodes = {
        "a": SequencePaxos("a", ABC, DurableState(promise=b2, n_accepted=b2, entries=[y])),
        "b": SequencePaxos("b", ABC, DurableState(promise=b1, n_accepted=b1, entries=[x])),
        "c": SequencePaxos("c", ABC, DurableState(promise=b2)),
    }
    decided: dict[str, list] = {name: [] for name in ABC}
    held: list = []  # a's batches, not yet on its disk

    def exchange(durable_a: bool) -> None:
        moving = True
        while moving:
            moving = False
            for name, node in nodes.items():
                ready = node.take_ready()
                if ready.token is not None:
                    if name == "a" and not durable_a:
                        held.append(ready.token)
                    else:
                        node.persisted(ready.token)
                decided[name] += ready.decided
                for dst, msg in ready.messages:
                    if not isinstance(msg, PrepareReq):  # restarted nodes ask; a answers below
                        nodes[dst].handle(name, msg)
                        moving = True

    assert nodes["a"].become_leader(b3)
    exchange(durable_a=False)
    for token in held:
        nodes["a"].persisted(token)
    exchange(durable_a=True)
    for node in nodes.values():
        node.tick()  # the decided index leaves alone at the next tick
    exchange(durable_a=True)
    assert decided["a"] == [y]
    assert decided["b"] == decided["c"] == [y]


def test_a_new_leader_asks_for_promises_only_once_its_own_is_on_disk():
    # Found by `kvctl sim --seed 70715 --leaders pack`: a leader sent Prepare, lost power
    # before its own promise reached the disk, and after the restart led the same ballot
    # again, numbering its syncs from 1: its followers had taken the first run's, ignored
    # the second run's and stayed out of the stream. A ballot is used once only if the
    # promise of it is durable before anyone is asked to promise it.
    node = SequencePaxos("a", ABC)
    assert node.become_leader(Ballot(1, 0, "a"))
    ready = node.take_ready()
    assert ready.persist and ready.messages
    assert all(isinstance(msg, AFTER_FSYNC) for _, msg in ready.messages)
