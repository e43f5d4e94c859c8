"""Read index: a follower confirms a leader's ballot only once its promise of that ballot is
durable, so the confirmation vouches for nothing a pending fsync holds and the host sends it
at once, not behind the follower's next fsync (issue 16)."""

from __future__ import annotations

from kvctl.node.ballot import Ballot
from kvctl.node.durable import DurableState
from kvctl.node.messages import AFTER_FSYNC, Prepare, ReadConfirm, ReadConfirmed
from kvctl.node.paxos import SequencePaxos

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
