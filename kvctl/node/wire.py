"""Framing and codecs, shared by the server and the client.

A frame is a 4-byte big-endian length and a msgpack payload. The decoder refuses a frame
longer than its limit before buffering it, so a client's bytes can cost a node at most one
closed connection. Peer frames hold lists of [group, tag, *fields] messages; client frames hold
lists of request tuples. Ballots and snapshots travel as msgpack extension types.
"""

from __future__ import annotations

import functools
from typing import Any

import msgpack

from kvctl.node.ballot import Ballot
from kvctl.node.messages import PEER_MESSAGES, Snapshot

CLIENT_FRAME_LIMIT = 4 << 20
PEER_FRAME_LIMIT = 256 << 20
_HEADER = 4

_BALLOT, _SNAPSHOT = 1, 2
_TAG = {cls: tag for tag, cls in enumerate(PEER_MESSAGES)}


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame: close its connection."""


@functools.lru_cache(maxsize=256)
def _ballot(ballot: Ballot) -> msgpack.ExtType:
    """A leader sends the same ballot in every message: encode it once."""
    return msgpack.ExtType(_BALLOT, msgpack.packb((ballot.n, ballot.priority, ballot.pid)))


def _default(obj: Any) -> Any:
    if isinstance(obj, Ballot):
        return _ballot(obj)
    if isinstance(obj, Snapshot):
        return msgpack.ExtType(_SNAPSHOT, msgpack.packb((obj.index, obj.state), default=_default))
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _BALLOT:
        n, priority, pid = msgpack.unpackb(data)
        return Ballot(n, priority, pid)
    if code == _SNAPSHOT:
        index, state = msgpack.unpackb(data, use_list=False, ext_hook=_ext_hook)
        return Snapshot(index, state)
    raise FrameError(f"unknown extension type {code}")


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default)


def unpack(payload: bytes | memoryview) -> Any:
    return msgpack.unpackb(
        payload, use_list=False, ext_hook=_ext_hook, strict_map_key=False, raw=False
    )


def frame(obj: Any) -> bytes:
    payload = pack(obj)
    return len(payload).to_bytes(_HEADER, "big") + payload


def frame_of_packed(items: list[bytes]) -> bytes:
    """The frame of a list whose items are already packed: a message sent to several peers
    is encoded once, and each peer's frame only joins bytes."""
    n = len(items)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 1 << 16:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    size = len(head) + sum(map(len, items))
    return b"".join((size.to_bytes(_HEADER, "big"), head, *items))


class FrameDecoder:
    """Feed bytes as they arrive; get back every complete frame's object. Frames are decoded
    where they lie (no copy per frame); only an incomplete tail is kept, and a frame that
    arrives in many pieces is joined once, when its last piece comes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._need = _HEADER  # bytes the buffer must hold before anything can be decoded

    def feed(self, data: bytes) -> list[Any]:
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            data, self._buffer = bytes(self._buffer), bytearray()
        out = []
        pos = 0
        end = len(data)
        with memoryview(data) as view:
            while end - pos >= _HEADER:
                size = int.from_bytes(view[pos : pos + _HEADER], "big")
                if size > self.limit:
                    raise FrameError(f"frame of {size} bytes exceeds the limit of {self.limit}")
                stop = pos + _HEADER + size
                if end < stop:
                    break
                try:
                    out.append(unpack(view[pos + _HEADER : stop]))
                except FrameError:
                    raise
                except Exception as exc:  # msgpack raises several types for bad bytes
                    raise FrameError(f"undecodable frame: {exc}") from exc
                pos = stop
            if pos < end:
                self._buffer = bytearray(view[pos:])
                have_header = end - pos >= _HEADER
                self._need = (stop - pos) if have_header else _HEADER
        return out


def encode_peer_message(group: Any, msg: Any) -> tuple[Any, ...]:
    return (group, _TAG[type(msg)], *(getattr(msg, f) for f in msg.__slots__))


def pack_peer_message(group: Any, msg: Any) -> bytes:
    """One message, packed, to join into peer frames with `frame_of_packed`."""
    return pack(encode_peer_message(group, msg))


def decode_peer_message(raw: Any) -> tuple[int, Any]:
    """(group, message) from [group, tag, *fields]; FrameError if it is not one."""
    try:
        group, tag, *fields = raw
        cls = PEER_MESSAGES[tag]
        return group, cls(*fields)
    except (TypeError, ValueError, IndexError) as exc:
        raise FrameError(f"malformed peer message: {exc}") from exc
