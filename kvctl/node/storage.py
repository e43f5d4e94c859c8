"""The write-ahead log of one node: every instance's persist ops, one record per ready batch.

A record is [4-byte length][4-byte crc32][msgpack list of (instance, op tag, *fields)][the
crc32 again]: a whole ready batch, so recovery keeps all of a batch or none of it (a promise or
accepted ballot never survives without the log it describes). One fsync covers every batch
written before it (group commit).

The file is preallocated: its size is always a whole number of `CHUNK`s, grown (and the growth
synced) before a record could come within a header's length of its end, so the records are
always followed by at least that many zeros. A file cut short anywhere, even at a record
boundary, therefore shows: its size is not a whole number of chunks, or its records (or
fewer zeros than a header has) run to its end. Without this a truncated log would read as a
shorter, valid one and the node would forget promises and entries it had acknowledged.

Recovery (`decode_log`) tells a torn tail from corruption. A torn tail is the last batch,
written but never synced when the node stopped, of which only a prefix reached the disk: in a
preallocated file, a record that does not check out and has nothing but zeros from its trailer
on (the trailer is written last); in an append-only file (the simulator's disk), a record the
file ends inside. Nothing that depended on a torn batch was sent, and it is cut. Anything else
that does not check out (a bad checksum with its trailer present, data after zeros, a file cut
short) is damage to data that may have been acknowledged: the node refuses to start and names
the file and offset, rather than serve from a silently shortened log.

The simulator keeps its disks as bytes in this same record format, so recovery is one piece of
code.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from kvctl.node.durable import (
    CorruptState,
    DurableState,
    Instance,
    PersistOp,
    decode_op,
    encode_op,
    ops_of,
)
from kvctl.node.wire import pack, unpack

log = logging.getLogger("kvctl.storage")
WAL_NAME = "wal.log"
_HEADER = 8
_TRAILER = 4
CHUNK = 1 << 20  # the file grows by whole chunks, each synced before a record is written to it
MIN_REWRITE_BYTES = 64 << 20

Record = tuple[Instance, PersistOp]


class CorruptLog(Exception):
    """The log holds damaged data that may have been acknowledged: do not start from it."""

    def __init__(self, path: str, offset: int, problem: str) -> None:
        super().__init__(
            f"{path}: corrupt record at byte offset {offset}: {problem}. This node's data "
            "cannot be trusted, and it must not rejoin under its name with an empty "
            "directory either (a member that forgets its promises can break safety): "
            "replace it (kvctl replace-node NODE), which moves its replicas to a new node "
            "through reconfiguration, then delete its data."
        )
        self.path, self.offset, self.problem = path, offset, problem


def encode_batch(records: Iterable[Record]) -> bytes:
    """One ready batch as one record."""
    payload = pack([(list(instance), *encode_op(op)) for instance, op in records])
    crc = zlib.crc32(payload).to_bytes(4, "big")
    return len(payload).to_bytes(4, "big") + crc + payload + crc


def decode_log(
    data: bytes, path: str = WAL_NAME, chunk: int | None = None
) -> tuple[dict[Instance, DurableState], int]:
    """Replay a log, preallocated in `chunk`s or (None) append-only: the state of every
    instance, and the length of the intact part (where a torn tail or the zeros after the
    records start). Raises CorruptLog for damage that is not a torn tail."""
    states: dict[Instance, DurableState] = {}
    pos = 0
    view = memoryview(data)
    preallocated = chunk is not None
    if chunk is not None and (not data or len(data) % chunk):
        raise CorruptLog(path, len(data), f"the file was cut short: {len(data)} bytes is not "
                         f"a whole number (at least one) of {chunk}-byte chunks")
    while pos < len(data):
        if not any(view[pos : pos + _HEADER]):
            if any(view[pos:]):
                raise CorruptLog(path, pos, "a zeroed record header followed by data")
            if preallocated and len(data) - pos < _HEADER:  # a record header's leading zeros
                raise CorruptLog(path, pos, "the file was cut short inside a record header")
            return states, pos  # the zeros past the last record
        size = int.from_bytes(data[pos : pos + 4], "big")
        crc = data[pos + 4 : pos + 8]
        end = pos + _HEADER + size + _TRAILER
        payload = data[pos + _HEADER : end - _TRAILER]
        if end > len(data) or zlib.crc32(payload).to_bytes(4, "big") != crc:
            if _torn(view, end, preallocated):
                return states, pos
            problem = "the file was cut short inside it" if end > len(data) else "checksum mismatch"
            raise CorruptLog(path, pos, problem)
        trailer = data[end - _TRAILER : end]
        if trailer != crc:
            kept = len(trailer.rstrip(b"\0"))
            if preallocated and trailer[:kept] == crc[:kept] and not any(view[end:]):
                return states, pos  # cut off inside its trailer, the last bytes written
            raise CorruptLog(path, pos, "its trailer does not match its header")
        try:
            for instance, *op in unpack(payload):
                states.setdefault(tuple(instance), DurableState()).apply(decode_op(op))
        except (CorruptState, ValueError, TypeError) as exc:
            raise CorruptLog(path, pos, f"undecodable batch: {exc}") from exc
        pos = end
    if preallocated:
        raise CorruptLog(path, pos, "the records run to the end of the file: it was cut short")
    return states, pos


def _torn(view: memoryview, end: int, preallocated: bool) -> bool:
    """Whether a record ending at `end` that does not check out is a prefix of a write that
    was cut off. Append-only: the file ends inside it. Preallocated: it and the rest of the
    file are zeros from its trailer on; it cannot reach the file's end, since the file always
    has room past a whole record (a cut header reads as a size no larger than the real one)."""
    if not preallocated:
        return end > len(view)
    return end <= len(view) and not any(view[end - _TRAILER :])


class Storage:
    """The log file. Any failure to write it is fatal to the node (the caller stops it):
    after a failed write the file's tail is unknown, and later batches must not follow it."""

    def __init__(
        self, data_dir: Path, min_rewrite_bytes: int = MIN_REWRITE_BYTES, chunk: int = CHUNK
    ) -> None:
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / WAL_NAME
        self.min_rewrite_bytes = min_rewrite_bytes
        self.chunk = chunk
        fresh = not self.path.exists()
        if fresh:
            self._install(b"")
        self._file = _open(self.path)
        self._allocated = os.fstat(self._file.fileno()).st_size
        self._size = self._size_after_rewrite = 0  # where the next record goes
        self._loaded = fresh  # an existing log is written to only after `load` found its end

    def load(self) -> dict[Instance, DurableState]:
        """Replay the log; zero a torn tail; CorruptLog for anything worse."""
        data = self.path.read_bytes()
        states, intact = decode_log(data, str(self.path), self.chunk)
        torn = len(data.rstrip(b"\0")) - intact
        if torn > 0:
            log.warning("zeroing %d bytes of torn log tail at offset %d", torn, intact)
            _write_at(self._file.fileno(), bytes(torn), intact)
            os.fdatasync(self._file.fileno())
        self._size = self._size_after_rewrite = intact
        self._loaded = True
        return states

    @property
    def size(self) -> int:
        return self._size

    def write(self, *batches: list[Record]) -> None:
        """Hand batches to the OS, each as one record, all in one write(2); they are durable
        once a later `sync` returns. The file grows first if they would reach its end."""
        if not self._loaded:
            raise RuntimeError("load() the log before writing to it: records go after its end")
        data = b"".join(map(encode_batch, batches))
        needed = self._size_for(self._size + len(data))
        if needed > self._allocated:
            self._grow(needed)
        _write_at(self._file.fileno(), data, self._size)
        self._size += len(data)

    def _grow(self, size: int) -> None:
        """Extend the file to `size` bytes, and sync that before any record goes there: a
        power cut then leaves the new size or the old, never records running to the end of a
        file that merely looks cut short."""
        self._allocated = size
        os.ftruncate(self._file.fileno(), size)
        os.fdatasync(self._file.fileno())

    def sync(self) -> None:
        """fdatasync: every batch written before this call is on disk when it returns."""
        os.fdatasync(self._file.fileno())

    @property
    def wants_rewrite(self) -> bool:
        """Rewrite once the log doubles past its size after the last rewrite: the cost of
        rewriting stays proportional to what was appended, however large the state is."""
        return self.size > max(self.min_rewrite_bytes, 2 * self._size_after_rewrite)

    def rewrite(self, states: dict[Instance, DurableState]) -> None:
        """Replace the log by the complete current state of every instance, atomically."""
        data = b"".join(
            encode_batch((instance, op) for op in ops_of(state))
            for instance, state in states.items()
        )
        self._install(data)
        self._file.close()
        self._file = _open(self.path)
        self._allocated = os.fstat(self._file.fileno()).st_size
        self._size = self._size_after_rewrite = len(data)
        self._loaded = True

    def _install(self, data: bytes) -> None:
        """Make `data`, padded to whole chunks, the log, atomically and durably: written to a
        new file, synced, renamed over the log, and the directory synced (the name is a
        directory entry; until it is synced a power cut can take the file away). So a log
        that exists always has its chunks, and an empty or short one was cut."""
        tmp = self.dir / (WAL_NAME + ".tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            out.truncate(self._size_for(len(data)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.dir)

    def _size_for(self, used: int) -> int:
        """The file size for `used` bytes of records: whole chunks, with at least a header's
        length of zeros after them."""
        return -(-(used + _HEADER) // self.chunk) * self.chunk

    def close(self) -> None:
        self._file.close()


def _open(path: Path) -> BinaryIO:
    """The log for positional reads and writes, unbuffered (each batch one pwrite(2), with no
    copy into a buffer first); a file object, so that a Storage dropped unclosed closes it."""
    return open(path, "r+b", buffering=0)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    """pwrite(2) all of `data` at `offset`."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if not written:
            raise OSError("pwrite(2) wrote nothing")
        view, offset = view[written:], offset + written


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
