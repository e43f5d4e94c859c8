"""Frames: round trips, limits, and bytes that are not ours."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvctl.node.ballot import Ballot
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
from kvctl.node.wire import (
    FrameDecoder,
    FrameError,
    decode_peer_message,
    encode_peer_message,
    frame,
    frame_of_packed,
    pack,
    pack_peer_message,
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
    ClientForward(3, (1, "w", "k", "v", None, 2, 3), 1),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_peer_message_round_trips(msg):
    raw = unpack(pack([encode_peer_message(2, msg)]))[0]
    assert decode_peer_message(raw) == (2, msg)


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_a_frame_of_packed_messages_is_the_frame_of_their_list(count):
    msgs = [encode_peer_message(1, MESSAGES[i % len(MESSAGES)]) for i in range(count)]
    packed = [pack_peer_message(1, MESSAGES[i % len(MESSAGES)]) for i in range(count)]
    assert frame_of_packed(packed) == frame(msgs)


def test_frames_split_anywhere_decode_the_same():
    data = frame(["a", 1]) + frame(("b", None))
    decoder = FrameDecoder(1024)
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    assert out == [("a", 1), ("b", None)]


@given(st.lists(st.integers(1, 300), max_size=30), st.lists(st.integers(1, 5000), min_size=1))
def test_frames_fed_in_any_pieces_decode_in_order(sizes, cuts):
    data = b"".join(frame((i, "x" * size)) for i, size in enumerate(sizes))
    decoder = FrameDecoder(1 << 16)
    out = []
    pos = 0
    for cut in cuts * (len(data) // len(cuts) + 1):
        if pos >= len(data):
            break
        out += decoder.feed(data[pos : pos + cut])
        pos += cut
    out += decoder.feed(data[pos:])
    assert out == [(i, "x" * size) for i, size in enumerate(sizes)]


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
