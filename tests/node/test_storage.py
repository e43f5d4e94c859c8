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


def _wal(tmp_path) -> bytes:
    return (tmp_path / "wal.log").read_bytes()


def test_the_log_replays_and_cuts_a_torn_tail(tmp_path):
    storage = Storage(tmp_path)
    storage.write([(G, SetPromise(B1)), (G, WriteLog(0, [ENTRY]))])
    storage.write([((1, 0), SetAccepted(B1)), (G, SetDecided(1))])
    storage.sync()
    storage.close()
    intact = len(_wal(tmp_path))
    with open(tmp_path / "wal.log", "ab") as wal:
        wal.write(b"\x00\x00\x00\x40torn")
    states = Storage(tmp_path).load()
    assert states[G].promise == B1 and states[G].decided_idx == 1
    assert states[G].entries == [ENTRY]
    assert states[(1, 0)].n_accepted == B1
    assert len(_wal(tmp_path)) == intact


def test_a_batch_torn_at_any_byte_is_kept_whole_or_not_at_all(tmp_path):
    """A resync batch (new ballot, the log it describes, decided) cut at every offset."""
    storage = Storage(tmp_path)
    storage.write([(G, SetPromise(B1)), (G, SetAccepted(B1)), (G, WriteLog(0, [("old",)] * 3))])
    storage.close()
    synced = _wal(tmp_path)
    storage = Storage(tmp_path)
    storage.load()
    resync = [(G, SetPromise(B2)), (G, SetAccepted(B2)), (G, WriteLog(1, [("new",)]))]
    storage.write([*resync, (G, SetDecided(2))])
    storage.close()
    full = _wal(tmp_path)
    for cut in range(len(synced), len(full) + 1):
        (tmp_path / "wal.log").write_bytes(full[:cut])
        state = Storage(tmp_path).load()[G]
        if cut < len(full):
            assert (state.n_accepted, state.entries) == (B1, [("old",)] * 3), cut
        else:
            assert (state.n_accepted, state.entries) == (B2, [("old",), ("new",)])


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


def test_a_failed_fsync_in_the_fsync_thread_stops_the_node(tmp_path, monkeypatch):
    """The fsync runs beside the event loop; its failure must stop the node all the same,
    and nothing that waited for it (a client response, persisted()) may go out."""
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
