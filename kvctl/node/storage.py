"""The write-ahead log of one node: every group's persist ops, fsynced in batches.

Records are [4-byte length][4-byte crc32][msgpack (group, op)]. One fsync covers a whole
ready batch of every group (group commit). Recovery replays the records into one
`DurableState` per group and cuts the file at the first torn or corrupt record: that tail
was never fsynced, so nothing that depended on it was ever sent. When the file grows past a
limit it is rewritten from the replicas' current state (snapshots keep that small).
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Any

from kvctl.node.durable import DurableState, PersistOp
from kvctl.node.wire import pack, unpack

log = logging.getLogger("kvctl.storage")
WAL_NAME = "wal.log"


class Storage:
    def __init__(self, data_dir: Path, rewrite_bytes: int = 64 << 20) -> None:
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / WAL_NAME
        self.rewrite_bytes = rewrite_bytes
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the node's life

    def load(self) -> dict[int, DurableState]:
        """Replay the log; cut off a torn tail."""
        states: dict[int, DurableState] = {}
        data = self.path.read_bytes()
        pos = 0
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos : pos + 4], "big")
            crc = int.from_bytes(data[pos + 4 : pos + 8], "big")
            payload = data[pos + 8 : pos + 8 + size]
            if len(payload) < size or zlib.crc32(payload) != crc:
                break
            group, op = unpack(payload)
            states.setdefault(group, DurableState()).apply(op)
            pos += 8 + size
        if pos < len(data):
            log.warning("cutting %d bytes of torn log tail at offset %d", len(data) - pos, pos)
            self._file.truncate(pos)
        return states

    @property
    def size(self) -> int:
        return self._file.tell()

    def write(self, records: list[tuple[Any, PersistOp]]) -> None:
        """Hand records to the OS; they are durable once a later `sync` returns."""
        self._file.write(b"".join(_record(group, op) for group, op in records))
        self._file.flush()

    def sync(self) -> None:
        """fdatasync: every record written before this call is on disk when it returns.
        Safe to call from another thread while the event loop writes."""
        os.fdatasync(self._file.fileno())

    def rewrite(self, states: dict[int, DurableState]) -> None:
        """Replace the log by the current state of every group, atomically."""
        tmp = self.dir / (WAL_NAME + ".tmp")
        with open(tmp, "wb") as out:
            for group, state in states.items():
                out.write(b"".join(_record(group, op) for op in _ops_of(state)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._file.close()
        self._file = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        self._file.close()


def _ops_of(state: DurableState) -> list[PersistOp]:
    ops: list[PersistOp] = [("promise", state.promise), ("accepted", state.n_accepted)]
    if state.members is not None:
        ops.append(("config", state.members))
    if state.snapshot is not None:
        ops.append(("snapshot", state.snapshot))
    ops.append(("log", state.log_start, state.entries))
    ops.append(("decided", state.decided_idx))
    return ops


def _record(group: int, op: Any) -> bytes:
    payload = pack((group, op))
    return len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload
