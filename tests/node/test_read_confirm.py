"""Read index: a follower confirms a leader's ballot only once its promise of that ballot is
durable, so the confirmation vouches for nothing a pending fsync holds and the host sends it
at once, not behind the follower's next fsync (issue 16)."""

from __future__ import annotations

from kvctl.node.ballot import Ballot
from kvctl.node.durable import DurableState
from kvctl.node.messages import AFTER_FSYNC, Prepare, ReadConfirm, ReadConfirmed
from kvctl.node.paxos import READ_FALLBACK_TICKS, SequencePaxos

from .harness import PaxosNet

ABC = ["a", "b", "c"]
B1, B2 = Ballot(1, 0, "a"), Ballot(2, 0, "a")


def _confirms(ready_messages: list[tuple[str, object]]) -> list[ReadConfirmed]:
    return [m for _, m in ready_messages if isinstance(m, ReadConfirmed)]


def test_a_durable_promise_is_confirmed_before_the_fsync_of_its_batch():
    follower = SequencePaxos("b", ABC, DurableState(promise=B1))
    follower.handle("a", ReadConfirm(B1, 1))
    ready = follower.take_ready()
    early = [m for m in _confirms(ready.messages) if not isinstance(m, AFTER_FSYNC)]
    assert early == [ReadConfirmed(B1, 1)]


def test_a_promise_is_confirmed_only_once_it_is_durable():
    follower = SequencePaxos("b", ABC, DurableState(promise=B1))
    follower.handle("a", Prepare(B2, 0, B1, 0))
    promised = follower.take_ready()
    assert promised.token is not None  # the new promise waits for its fsync
    follower.handle("a", ReadConfirm(B2, 1))
    assert _confirms(follower.take_ready().messages) == []
    follower.persisted(promised.token)
    assert _confirms(follower.take_ready().messages) == [ReadConfirmed(B2, 1)]


def test_a_confirmation_waiting_for_a_promise_that_was_overtaken_is_dropped():
    follower = SequencePaxos("b", ABC, DurableState(promise=B1))
    follower.handle("a", Prepare(B2, 0, B1, 0))
    first = follower.take_ready()
    follower.handle("a", ReadConfirm(B2, 1))
    follower.handle("c", Prepare(Ballot(3, 0, "c"), 0, B1, 0))
    second = follower.take_ready()
    assert first.token is not None and second.token is not None
    follower.persisted(second.token)
    assert _confirms(second.messages + follower.take_ready().messages) == []


def _asked(net: PaxosNet) -> list[str]:
    return sorted(dst for _, dst, m in net.queue if isinstance(m, ReadConfirm))


def test_a_read_round_asks_a_majority_then_everyone_when_it_stalls():
    """Issue 16: asking every follower cost a follower's wakeup per read that the majority
    never waited for. The leader asks the followers that answered first last time; one that
    does not answer within READ_FALLBACK_TICKS makes it ask all, until a round is confirmed."""
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    assert net.nodes["a"].read("r1")
    net.flush("a")
    assert _asked(net) == ["b"]  # with a, a majority of three
    net.queue.clear()  # b never answers
    net.tick(READ_FALLBACK_TICKS - 1)
    net.flush("a")
    assert _asked(net) == []
    net.tick()
    net.flush("a")
    assert _asked(net) == ["b", "c"]
    net.deliver(drop=lambda src, dst, msg: "b" in (src, dst))
    assert net.served["a"] == ["r1"]
    assert net.nodes["a"].read("r2")
    net.flush("a")
    assert _asked(net) == ["c"]  # the one that answered
    net.deliver()
    assert net.served["a"] == ["r1", "r2"]


def test_every_follower_is_asked_again_at_the_resend_tick():
    net = PaxosNet(ABC)
    net.elect("a", 1)
    net.deliver()
    assert net.nodes["a"].read("r1")
    net.flush("a")
    net.queue.clear()
    net.tick(net.nodes["a"].resend_ticks)
    net.flush("a")
    assert _asked(net).count("b") >= 1 and "c" in _asked(net)
