"""Bugs planted in the node by monkeypatching, each one the simulator must catch.

Each `plant_*` takes a pytest MonkeyPatch and breaks one rule of the protocol or of the host,
the way a plausible mistake would. None of this is a product option: it lives here only.
"""

from __future__ import annotations

from typing import Any

import pytest

from kvctl.node import ble, paxos
from kvctl.node.paxos import SequencePaxos
from kvctl.sim import world


def plant_two_of_four_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    """The course project's majority, ceil((n + 1) / 2) with integer division first:
    2 of 4 is a 'majority', so two disjoint pairs of a 4-node group both decide."""
    wrong = lambda n: (n + 1) // 2  # noqa: E731
    monkeypatch.setattr(paxos, "majority", wrong)
    monkeypatch.setattr(ble, "majority", wrong)


def plant_snapshot_prefix_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """B1: a snapshot is ignored when the log already reaches its index, so the replica
    keeps its own entries below it, which may never have been chosen."""
    adopt = SequencePaxos._adopt_suffix

    def keeps_prefix(self: SequencePaxos, start: int, suffix: Any, snap: Any, **kw: Any) -> None:
        if snap is not None and snap.index <= self.log_len:
            snap = None
        adopt(self, start, suffix, snap, **kw)

    monkeypatch.setattr(SequencePaxos, "_adopt_suffix", keeps_prefix)


def plant_ack_before_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host sends Promise and Accepted (and the other messages that vouch for a write)
    as soon as it writes the batch, before the fsync returns."""
    monkeypatch.setattr(world, "AFTER_FSYNC", ())


def plant_leader_skips_adoption(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new leader keeps its own log instead of adopting the most up-to-date log among the
    promises (followers still adopt what their leader sends them)."""
    adopt = SequencePaxos._adopt_suffix

    def followers_only(self: SequencePaxos, *args: Any, **kw: Any) -> None:
        if not self.is_leader:
            adopt(self, *args, **kw)

    monkeypatch.setattr(SequencePaxos, "_adopt_suffix", followers_only)


def plant_durable_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """B4 whole: the core takes every batch as durable the moment the host takes it, so a
    leader counts its own promise and its own acceptance before the fsync."""
    take_ready = SequencePaxos.take_ready

    def durable_at_once(self: SequencePaxos) -> paxos.Ready:
        ready = take_ready(self)
        if ready.token is not None:
            self.persisted(ready.token)
        return ready

    monkeypatch.setattr(SequencePaxos, "take_ready", durable_at_once)


def plant_stale_sync_truncates(monkeypatch: pytest.MonkeyPatch) -> None:
    """B15: a follower takes any AcceptSync of the ballot it promised, whatever its session
    (as it did after a sequence gap), and replaces its log from there, so an old, delayed
    sync cuts off entries it acknowledged and the leader decided."""
    accept_sync = SequencePaxos._on_accept_sync
    adopt = SequencePaxos._adopt_suffix

    def any_session(self: SequencePaxos, src: str, msg: Any) -> None:
        if msg.ballot == self.promise and not self.is_leader:
            self.phase = paxos.Phase.PREPARE
            self._stream = (msg.ballot, -1, 0)
        accept_sync(self, src, msg)

    def replaces(self: SequencePaxos, start: int, suffix: Any, snapshot: Any, **kw: Any) -> None:
        adopt(self, start, suffix, snapshot, extends_ours=self.is_leader and kw["extends_ours"])

    monkeypatch.setattr(SequencePaxos, "_on_accept_sync", any_session)
    monkeypatch.setattr(SequencePaxos, "_adopt_suffix", replaces)


def plant_read_unconfirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader serves a read from its state once its log is decided up to the read index,
    and never asks a majority whether it still leads."""
    monkeypatch.setattr(
        SequencePaxos, "_servable", lambda self, read_idx, round: read_idx <= self.decided_idx
    )
    monkeypatch.setattr(SequencePaxos, "_send_read_confirm", lambda self, peers: None)
