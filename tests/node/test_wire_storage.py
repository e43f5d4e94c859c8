"""Frames and the write-ahead log: round trips, limits, and bytes that are not ours."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvctl.node.ballot import Ballot
from kvctl.node.durable import DurableState
from kvctl.node.messages import (
    AcceptDecide,
    Accepted,
    AcceptSync,
    ClientForward,
    HeartbeatReply,
    NotAccepted,
    Prepare,
    PrepareReq,
    Promise,
    Snapshot,
)
from kvctl.node.storage import Storage
from kvctl.node.wire import (
    FrameDecoder,
    FrameError,
    decode_peer_message,
    encode_peer_message,
    frame,
    pack,
    unpack,
)

B = Ballot(3, 1, "n2")
MESSAGES = [
    HeartbeatReply(4, B, True),
    Prepare(B, 1, B, 2),
    Promise(B, B, 1, 3, 1, (("w", "k", 1, None, 5, 6),), Snapshot(1, ((("k", 0),), ()))),
    AcceptSync(B, 2, 1, (("r", "k", None, None, 5, 7),), None, 1),
    AcceptDecide(B, 2, 3, 4, (("c", b"k", 1, 2, 5, 8),), 4),
    Accepted(B, 9),
    NotAccepted(B),
    PrepareReq(),
    ClientForward(3, (1, "w", "k", "v", None, 2, 3)),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_peer_message_round_trips(msg):
    raw = unpack(pack([encode_peer_message(2, msg)]))[0]
    assert decode_peer_message(raw) == (2, msg)


def test_frames_split_anywhere_decode_the_same():
    data = frame(["a", 1]) + frame(("b", None))
    decoder = FrameDecoder(1024)
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    assert out == [("a", 1), ("b", None)]


def test_an_oversized_frame_is_refused_before_it_is_buffered():
    decoder = FrameDecoder(100)
    with pytest.raises(FrameError, match="exceeds the limit"):
        decoder.feed((10**6).to_bytes(4, "big") + b"x")


@given(st.binary(max_size=200))
def test_garbage_raises_frame_error_or_waits_for_more(data):
    decoder = FrameDecoder(1 << 16)
    with contextlib.suppress(FrameError):
        decoder.feed(data)


def test_a_malformed_peer_message_is_a_frame_error():
    with pytest.raises(FrameError):
        decode_peer_message((0, 99, "x"))
    with pytest.raises(FrameError):
        decode_peer_message((0, 6))  # NotAccepted without its ballot


def test_the_log_replays_and_cuts_a_torn_tail(tmp_path):
    storage = Storage(tmp_path)
    storage.write([(0, ("promise", B)), (0, ("log", 0, [("w", "k", 1, None, 1, 1)]))])
    storage.write([(1, ("accepted", B)), (0, ("decided", 1))])
    storage.sync()
    storage.close()
    with open(tmp_path / "wal.log", "ab") as wal:
        wal.write(b"\x00\x00\x00\x40torn")
    states = Storage(tmp_path).load()
    assert states[0].promise == B and states[0].decided_idx == 1
    assert states[0].entries == [("w", "k", 1, None, 1, 1)]
    assert states[1].n_accepted == B
    assert (tmp_path / "wal.log").stat().st_size < 200  # the torn record is gone


def test_rewrite_keeps_the_state_and_drops_history(tmp_path):
    storage = Storage(tmp_path)
    for i in range(50):
        storage.write([(0, ("log", i, [("w", "k", i, None, 1, i)]))])
    state = DurableState(
        B, B, 50, Snapshot(40, "snap"), [("w", "k", i, None, 1, i) for i in range(40, 50)]
    )
    storage.rewrite({0: state})
    storage.write([(0, ("decided", 50))])
    storage.close()
    again = Storage(tmp_path).load()[0]
    assert again.snapshot == Snapshot(40, "snap")
    assert again.entries == state.entries and again.log_start == 40
