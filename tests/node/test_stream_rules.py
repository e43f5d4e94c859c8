"""Accept-phase rules that late, duplicated or replayed messages must not break
(store-review B4, B8, B9, B15): nothing a follower acknowledged is ever cut by an old sync,
and a leader counts itself only once its own state is on disk."""

from __future__ import annotations

from kvctl.node.ballot import Ballot
from kvctl.node.messages import AcceptDecide, Accepted, AcceptSync, NotAccepted, Prepare, Promise
from kvctl.node.paxos import Phase

from .harness import PaxosNet

ABC = ["a", "b", "c"]


def _synced_cluster() -> tuple[PaxosNet, AcceptSync]:
    """a leads ballot 1; returns the AcceptSync b got, and b then acknowledges x and y."""
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.flush_all()
    net.deliver(limit=2)  # a's Prepares
    net.deliver(limit=2)  # b's and c's Promises: a adopts and sends AcceptSyncs
    net.flush("a")
    sync = next(m for _, dst, m in net.queue if dst == "b" and isinstance(m, AcceptSync))
    net.deliver()
    net.propose("a", ("x",), ("y",))
    net.deliver()
    assert net.disk["b"].entries == [("x",), ("y",)]
    return net, sync


def test_an_old_sync_replayed_after_a_gap_cuts_nothing_acknowledged():
    net, old_sync = _synced_cluster()
    net.propose("a", ("z",))
    net.deliver(drop=lambda src, dst, msg: dst == "b" and isinstance(msg, AcceptDecide))
    net.propose("a", ("w",))
    net.flush("a")
    gap = next(m for _, dst, m in net.queue if dst == "b" and isinstance(m, AcceptDecide))
    net.queue.clear()
    net.nodes["b"].handle("a", gap)  # seq jumps: b is out of the stream and asks for a resync
    net.flush("b")
    net.queue.clear()
    net.nodes["b"].handle("a", old_sync)  # the first sync of this ballot, replayed
    net.flush("b")
    assert net.nodes["b"].log[:2] == [("x",), ("y",)]
    assert net.disk["b"].entries[:2] == [("x",), ("y",)]


def test_a_sync_from_before_a_restart_is_ignored_after_it():
    net, old_sync = _synced_cluster()
    net.crash("b")
    net.restart("b")
    assert net.nodes["b"].phase is Phase.RECOVER
    net.nodes["b"].handle("a", old_sync)
    net.flush("b")
    assert net.disk["b"].entries == [("x",), ("y",)]


def test_accepted_names_the_ballot_the_entries_were_accepted_in():
    net, _ = _synced_cluster()
    net.propose("a", ("z",))
    net.flush("a")
    append = next(m for _, dst, m in net.queue if dst == "b" and isinstance(m, AcceptDecide))
    net.queue.clear()
    b = net.nodes["b"]
    b.handle("a", append)
    b.handle("c", Prepare(Ballot(2, 0, "c"), 2, Ballot(1, 0, "a"), 2))  # same batch
    acks = [m for _, m in b.take_ready().messages if isinstance(m, Accepted)]
    assert acks and all(m.ballot == Ballot(1, 0, "a") for m in acks)


def test_a_leader_counts_its_own_promise_only_once_it_is_on_disk():
    net = PaxosNet(ABC)
    a = net.nodes["a"]
    ballot = net.elect("a", 1)
    ready = a.take_ready()  # holds the promise: not on disk yet
    assert ready.token is not None
    prepare = next(m for dst, m in ready.messages if dst == "b")
    net.nodes["b"].handle("a", prepare)
    promise = next(m for _, m in net.nodes["b"].take_ready().messages if isinstance(m, Promise))
    a.handle("b", promise)
    a.take_ready()
    assert a.phase is Phase.PREPARE  # one promise of three is no majority
    a.persisted(ready.token)
    a.take_ready()
    assert a.phase is Phase.ACCEPT and a.promise == ballot


def test_a_refusal_naming_our_own_forgotten_ballot_leaves_no_leader_hint():
    """A power cut took our promise of ballot 2 (we had sent its Prepare): another node
    refuses our lower ballot naming ballot 2, ours. Nobody leads it, so we must not point
    clients at ourselves, and BLE is told to outbid it (sim seed 78)."""
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    a = net.nodes["a"]
    a.handle("b", NotAccepted(Ballot(2, 0, "a")))
    assert not a.is_leader and a.leader_hint is None
    assert a.outbid == Ballot(2, 0, "a")
