"""The write-ahead log: atomic batches, torn tails cut, corruption refused, complete
rewrites (store-review B2, B3, B6, B7, B11)."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from kvctl.node import server as server_module
from kvctl.node.ballot import Ballot
from kvctl.node.core import NodeCore
from kvctl.node.durable import (
    DurableState,
    InstallSnapshot,
    SetAccepted,
    SetDecided,
    SetMembers,
    SetPromise,
    WriteLog,
)
from kvctl.node.messages import Snapshot
from kvctl.node.placement import Placement
from kvctl.node.server import NodeConfig, NodeServer
from kvctl.node.storage import CorruptLog, Storage

B1, B2 = Ballot(1, 0, "a"), Ballot(2, 0, "b")
G = (0, 0)  # an instance: group 0, founding configuration
ENTRY = ("w", "k", 1, None, 1, 1)


SMALL = 4096  # a chunk size that keeps the files of the tests small


def _wal(tmp_path) -> bytes:
    return (tmp_path / "wal.log").read_bytes()


def _preallocated(records: bytes, size: int) -> bytes:
    """A log file as the store leaves it: its records, then zeros to `size`."""
    return records + bytes(size - len(records))


def _two_batches(tmp_path) -> tuple[bytes, int]:
    """A log with two synced batches; (the file, where its records end)."""
    storage = Storage(tmp_path, chunk=SMALL)
    storage.write([(G, SetPromise(B1)), (G, WriteLog(0, [ENTRY]))])
    storage.write([((1, 0), SetAccepted(B1)), (G, SetDecided(1))])
    storage.sync()
    storage.close()
    return _wal(tmp_path), storage.size


def test_the_log_is_preallocated_and_its_records_are_followed_by_zeros(tmp_path):
    data, records = _two_batches(tmp_path)
    assert len(data) == SMALL and 0 < records < SMALL
    assert not any(data[records:])


def test_the_log_replays_and_zeroes_a_torn_tail(tmp_path):
    data, records = _two_batches(tmp_path)
    torn = b"\x00\x00\x00\x40torn"  # a header and the start of a batch, then nothing
    (tmp_path / "wal.log").write_bytes(_preallocated(data[:records] + torn, len(data)))
    storage = Storage(tmp_path, chunk=SMALL)
    states = storage.load()
    assert states[G].promise == B1 and states[G].decided_idx == 1
    assert states[G].entries == [ENTRY]
    assert states[(1, 0)].n_accepted == B1
    assert _wal(tmp_path) == data  # the torn bytes are zeros again, the size kept
    storage.write([(G, SetDecided(1))])  # and the next batch goes where the torn one was
    storage.close()
    assert Storage(tmp_path, chunk=SMALL).load()[G].decided_idx == 1


def test_a_batch_torn_at_any_byte_is_kept_whole_or_not_at_all(tmp_path):
    """A resync batch (new ballot, the log it describes, decided) cut at every offset: only
    a prefix of it reached the disk, the preallocated zeros follow."""
    storage = Storage(tmp_path, chunk=SMALL)
    storage.write([(G, SetPromise(B1)), (G, SetAccepted(B1)), (G, WriteLog(0, [("old",)] * 3))])
    synced = storage.size
    resync = [(G, SetPromise(B2)), (G, SetAccepted(B2)), (G, WriteLog(1, [("new",)]))]
    storage.write([*resync, (G, SetDecided(2))])
    storage.close()
    full, written = _wal(tmp_path), storage.size
    assert synced < written < len(full)
    for cut in range(synced, written + 1):
        (tmp_path / "wal.log").write_bytes(_preallocated(full[:cut], len(full)))
        state = Storage(tmp_path, chunk=SMALL).load()[G]
        if cut < written:
            assert (state.n_accepted, state.entries) == (B1, [("old",)] * 3), cut
        else:
            assert (state.n_accepted, state.entries) == (B2, [("old",), ("new",)])


def test_a_log_cut_short_anywhere_refuses_to_start(tmp_path):
    """#15: a truncated log, even cut at a record boundary, is never read as a shorter valid
    one (the node would forget promises and entries it acknowledged)."""
    storage = Storage(tmp_path, chunk=SMALL)
    boundaries = []
    for i in range(5):
        storage.write([(G, WriteLog(i, [ENTRY]))])
        boundaries.append(storage.size)
    storage.sync()
    storage.close()
    data = _wal(tmp_path)
    for cut in [0, 1, *boundaries, boundaries[-1] - 3, len(data) - 1]:
        (tmp_path / "wal.log").write_bytes(data[:cut])
        with pytest.raises(CorruptLog, match="cut short") as caught:
            Storage(tmp_path, chunk=SMALL).load()
        assert str(tmp_path / "wal.log") in str(caught.value), cut


def test_a_log_cut_to_a_whole_chunk_inside_its_records_refuses_to_start(tmp_path):
    storage = Storage(tmp_path, chunk=SMALL)
    while storage.size < 2 * SMALL:
        storage.write([(G, SetDecided(0))])
    storage.close()
    data = _wal(tmp_path)
    assert len(data) == 3 * SMALL  # grown twice, a chunk at a time
    for cut in (SMALL, 2 * SMALL):
        (tmp_path / "wal.log").write_bytes(data[:cut])
        with pytest.raises(CorruptLog, match="cut short"):
            Storage(tmp_path, chunk=SMALL).load()
    (tmp_path / "wal.log").write_bytes(data)
    assert Storage(tmp_path, chunk=SMALL).load()[G].decided_idx == 0


def test_a_bit_flip_in_the_last_record_is_corruption_not_a_torn_tail(tmp_path):
    data, records = _two_batches(tmp_path)
    flipped = bytearray(data)
    flipped[records - 6] ^= 0x01  # inside the last batch's payload; zeros follow it
    (tmp_path / "wal.log").write_bytes(bytes(flipped))
    with pytest.raises(CorruptLog, match="checksum mismatch"):
        Storage(tmp_path, chunk=SMALL).load()


def test_a_corrupt_middle_record_refuses_to_start_naming_file_and_offset(tmp_path):
    storage = Storage(tmp_path)
    storage.write([(G, SetPromise(B1))])
    first = storage.size
    storage.write([(G, WriteLog(0, [ENTRY]))])
    storage.write([(G, SetDecided(1))])
    storage.close()
    data = bytearray(_wal(tmp_path))
    data[first + 12] ^= 0x40  # a bit flip inside the second record's payload
    (tmp_path / "wal.log").write_bytes(bytes(data))
    with pytest.raises(CorruptLog) as caught:
        Storage(tmp_path).load()
    assert str(tmp_path / "wal.log") in str(caught.value)
    assert f"offset {first}" in str(caught.value)
    assert len(_wal(tmp_path)) == len(data)  # nothing was cut


def test_a_record_that_does_not_fit_its_state_is_corruption(tmp_path):
    storage = Storage(tmp_path)
    storage.write([(G, WriteLog(5, [ENTRY]))])  # a gap: the log is empty
    storage.close()
    with pytest.raises(CorruptLog, match="offset 0"):
        Storage(tmp_path).load()


def test_a_node_that_joined_restarts_after_a_rewrite(tmp_path):
    """B2: a rewrite keeps every configuration's members and the awaited configurations."""
    placement = Placement(("n1", "n2", "n3"), 2, 3)
    joined = (0, 1)
    awaited = (1, 1)
    storage = Storage(tmp_path)
    storage.write(
        [
            (joined, SetMembers(("n1", "n2", "n4"))),
            (joined, InstallSnapshot(Snapshot(5, [[], []]))),
            (joined, SetDecided(5)),
            (awaited, SetMembers(("n4", "n2", "n3"))),
        ]
    )
    core = NodeCore("n4", placement, storage.load())
    assert core.configs[0].members == ("n1", "n2", "n4")
    storage.rewrite(core.durable_state())
    storage.close()
    again = NodeCore("n4", placement, Storage(tmp_path).load())
    assert again.configs[0].members == ("n1", "n2", "n4")
    assert again.configs[1].members == ("n4", "n2", "n3")
    assert joined in again.replicas
    assert again.durable_state()[joined].snapshot == Snapshot(5, ((), ()))


def test_the_rewrite_threshold_follows_the_size_after_the_last_rewrite(tmp_path):
    storage = Storage(tmp_path, min_rewrite_bytes=1_000)
    big = DurableState(B1, B1, 0, None, [("x" * 100,)] * 30)  # about 3 kB once written
    storage.rewrite({G: big})
    after = storage.size
    assert after > 1_000 and not storage.wants_rewrite
    while storage.size <= 2 * after:
        assert not storage.wants_rewrite  # no rewrite on every flush once state is large
        storage.write([(G, SetDecided(0))])
    assert storage.wants_rewrite


def test_a_failed_write_stops_the_node(tmp_path, monkeypatch):
    """B6: after a failed write the tail of the file is unknown; the node must not go on."""
    config = NodeConfig("n1", "127.0.0.1", 0, {"n1": ("127.0.0.1", 1)}, {}, tmp_path, 1, 1)
    node = NodeServer(config)
    exits: list[int] = []

    def no_space(records):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def record_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(node.storage, "write", no_space)
    monkeypatch.setattr(server_module.os, "_exit", record_exit)
    with pytest.raises(SystemExit):
        for _ in range(200):  # a one-node group elects itself and persists its promise
            node.core.tick()
            node.flush()
    assert exits == [server_module.STORAGE_FAILED]
    node.storage.close()


def test_a_failed_fsync_stops_the_node(tmp_path, monkeypatch):
    """Whether the fsync runs on the event loop or beside it (after a slow one), its failure
    must stop the node, and nothing that waited for it (persisted()) may happen."""
    config = NodeConfig("n1", "127.0.0.1", 0, {"n1": ("127.0.0.1", 1)}, {}, tmp_path, 1, 1)
    node = NodeServer(config)
    exits: list[int] = []
    persisted: list[object] = []

    def io_error() -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    def record_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(node.storage, "sync", io_error)
    monkeypatch.setattr(node.core, "persisted", persisted.append)
    monkeypatch.setattr(server_module.os, "_exit", record_exit)

    async def tick_until_stopped() -> None:
        for _ in range(200):  # a one-node group elects itself and persists its promise
            node.core.tick()
            node.flush()
            await asyncio.sleep(0.001)

    with pytest.raises(SystemExit):
        asyncio.run(tick_until_stopped())
    assert exits == [server_module.STORAGE_FAILED]
    assert persisted == []
    node.storage.close()
