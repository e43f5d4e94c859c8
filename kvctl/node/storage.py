"""The write-ahead log of one node: every instance's persist ops, one record per ready batch.

A record is [4-byte length][4-byte crc32][msgpack list of (instance, op tag, *fields)]: a
whole ready batch, so recovery keeps all of a batch or none of it (a promise or accepted
ballot never survives without the log it describes). One fsync covers every batch written before it
(group commit).

Recovery (`decode_log`) tells a torn tail from corruption. A last record that is incomplete
(the file ends inside it) or a tail of zero bytes was being written when the node stopped: it
was never fsynced, nothing that depended on it was sent, and it is cut. Anything else that
does not check out, a bad checksum or a record followed by more data, is corruption of data
that may have been acknowledged: the node refuses to start and names the file and offset,
rather than serve from a silently shortened log.

The simulator keeps its disks as bytes in this same format, so recovery is one piece of code.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

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
    return len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload


def decode_log(data: bytes, path: str = WAL_NAME) -> tuple[dict[Instance, DurableState], int]:
    """Replay a log: the state of every instance, and the length of the intact part (where
    a torn tail starts). Raises CorruptLog for damage that is not a torn tail."""
    states: dict[Instance, DurableState] = {}
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if len(data) - pos < _HEADER:
            break  # a header cut short: a torn tail
        if not any(view[pos : pos + _HEADER]):
            if any(view[pos:]):
                raise CorruptLog(path, pos, "a zeroed record header followed by data")
            break  # zeros the file system left past the last write: a torn tail
        size = int.from_bytes(data[pos : pos + 4], "big")
        crc = int.from_bytes(data[pos + 4 : pos + 8], "big")
        end = pos + _HEADER + size
        if end > len(data):
            break  # the last batch was being written: a torn tail
        payload = data[pos + _HEADER : end]
        if zlib.crc32(payload) != crc:
            raise CorruptLog(path, pos, "checksum mismatch")
        try:
            for instance, *op in unpack(payload):
                states.setdefault(tuple(instance), DurableState()).apply(decode_op(op))
        except (CorruptState, ValueError, TypeError) as exc:
            raise CorruptLog(path, pos, f"undecodable batch: {exc}") from exc
        pos = end
    return states, pos


class Storage:
    """The log file. Any failure to write it is fatal to the node (the caller stops it):
    after a failed write the file's tail is unknown, and later batches must not follow it."""

    def __init__(self, data_dir: Path, min_rewrite_bytes: int = MIN_REWRITE_BYTES) -> None:
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / WAL_NAME
        self.min_rewrite_bytes = min_rewrite_bytes
        created = not self.path.exists()
        # unbuffered: each batch is one write(2), with no copy into a buffer first
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held for life
        self._size = self._size_after_rewrite = self._file.tell()
        if created:
            # The file's name is a directory entry: until the directory is synced, a power
            # cut can take the file away with everything later fsynced into it.
            _fsync_dir(self.dir)

    def load(self) -> dict[Instance, DurableState]:
        """Replay the log; cut off a torn tail; CorruptLog for anything worse."""
        data = self.path.read_bytes()
        states, intact = decode_log(data, str(self.path))
        if intact < len(data):
            cut = len(data) - intact
            log.warning("cutting %d bytes of torn log tail at offset %d", cut, intact)
            self._file.truncate(intact)
            self._file.seek(intact)
        self._size = self._size_after_rewrite = intact
        return states

    @property
    def size(self) -> int:
        return self._size

    def write(self, *batches: list[Record]) -> None:
        """Hand batches to the OS, each as one record, all in one write(2); they are durable
        once a later `sync` returns."""
        data = memoryview(b"".join(map(encode_batch, batches)))
        while data:
            written = self._file.write(data)
            if not written:
                raise OSError("write(2) wrote nothing")
            data = data[written:]
            self._size += written

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
        tmp = self.dir / (WAL_NAME + ".tmp")
        with open(tmp, "wb") as out:
            for instance, state in states.items():
                out.write(encode_batch((instance, op) for op in ops_of(state)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.dir)
        self._file.close()
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = self._size_after_rewrite = self._file.tell()

    def close(self) -> None:
        self._file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
