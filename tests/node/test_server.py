"""The asyncio host's ordering of output around its fsync (issue 16): what vouches for a
write waits for the fsync covering it; a response, which vouches only for what is decided
(durable at a majority by the core's own count), does not wait for an unrelated fsync. A fast
disk's fsync runs on the loop; after a slow one, the next run in the thread beside it."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from kvctl.node.server import INLINE_FSYNC_S, NodeConfig, NodeServer
from kvctl.node.wire import CLIENT_FRAME_LIMIT, FrameDecoder

DEADLINE_S = 10.0


class FakeTransport:
    """A client connection that keeps the responses written to it."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder(CLIENT_FRAME_LIMIT)
        self.responses: dict[int, tuple[Any, ...]] = {}

    def write(self, data: bytes) -> None:
        for batch in self.decoder.feed(data):
            for response in batch:
                self.responses[response[0]] = response

    def is_closing(self) -> bool:
        return False


async def _until(condition: Any, what: str) -> None:
    """Poll the loop (the fsync thread's callbacks run on it) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def _key_in(node: NodeServer, group: int) -> str:
    keys = (f"k{i}" for i in range(1000))
    return next(k for k in keys if node.core.placement.group_of(k) == group)


def _one_node_two_groups(tmp_path: Any) -> NodeServer:
    config = NodeConfig("n1", "127.0.0.1", 0, {"n1": ("127.0.0.1", 1)}, {}, tmp_path, 2, 1)
    return NodeServer(config)


async def _elected(node: NodeServer) -> None:
    """Tick until this one-node cluster leads both groups (its promises fsynced)."""

    def leads() -> bool:
        node.core.tick()
        node.flush()
        return all(r.accepting for r in node.core.replicas.values())

    await _until(leads, "the node to lead both groups")


def test_after_a_slow_fsync_a_response_does_not_wait_for_another_groups_fsync(tmp_path):
    node = _one_node_two_groups(tmp_path)
    release = threading.Event()
    sync = node.storage.sync
    calls = 0

    def slow_then_stuck_sync() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(2 * INLINE_FSYNC_S)  # slow: the next fsync goes to the thread
        else:
            release.wait(DEADLINE_S)
        sync()

    async def scenario() -> None:
        await _elected(node)
        client = FakeTransport()
        conn = node.new_client(client)  # type: ignore[arg-type]
        node.storage.sync = slow_then_stuck_sync  # type: ignore[method-assign]
        node.core.client_request(conn, (1, "w", _key_in(node, 0), "v", None, 7, 1))
        node.flush()  # a slow fsync, on the loop
        await _until(lambda: 1 in client.responses, "the first write")
        node.core.client_request(conn, (2, "w", _key_in(node, 0), "v", None, 7, 2))
        node.flush()  # group 0's write: its fsync starts in the thread and hangs
        node.core.client_request(conn, (3, "r", _key_in(node, 1), None, None, 8, 1))
        node.flush()
        await _until(lambda: 3 in client.responses, "the read in group 1")
        assert client.responses[3][1] == "ok"
        # The write is accepted by this node alone: it is decided only once durable.
        assert 2 not in client.responses
        release.set()
        await _until(lambda: 2 in client.responses, "the write, after its fsync")
        assert client.responses[2][1] == "ok"

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        node.fsyncer.stop()
        node.storage.close()


def test_a_fast_disks_fsync_runs_on_the_loop_and_a_slow_ones_successor_in_the_thread(tmp_path):
    node = _one_node_two_groups(tmp_path)
    threaded: list[object] = []
    thread_sync = node.fsyncer.sync

    def record(done: Any) -> None:
        threaded.append(done)
        thread_sync(done)

    node.fsyncer.sync = record  # type: ignore[method-assign]
    slow = False

    def fake_sync() -> None:
        """A disk whose speed the test sets (this machine's own is not steady enough)."""
        if slow:
            time.sleep(2 * INLINE_FSYNC_S)

    node.storage.sync = fake_sync  # type: ignore[method-assign]

    async def write(client: FakeTransport, conn: int, seq: int) -> None:
        node.core.client_request(conn, (seq, "w", _key_in(node, 0), "v", None, 7, seq))
        node.flush()
        await _until(lambda: seq in client.responses, f"write {seq}")

    async def scenario() -> None:
        nonlocal slow
        await _elected(node)  # its promises, on a fast disk
        client = FakeTransport()
        conn = node.new_client(client)  # type: ignore[arg-type]
        await write(client, conn, 1)
        assert threaded == []
        slow = True
        await write(client, conn, 2)  # slow, on the loop
        assert threaded == []
        await write(client, conn, 3)  # in the thread, slow again
        assert len(threaded) == 1
        slow = False
        await write(client, conn, 4)  # in the thread, fast: the next one is on the loop
        await write(client, conn, 5)
        assert len(threaded) == 2

    try:
        asyncio.run(scenario())
    finally:
        node.fsyncer.stop()
        node.storage.close()


def test_a_decided_index_alone_is_written_with_the_next_batch_or_at_the_tick(tmp_path):
    """Issue 16: each decided index cost its own write(2) right after the batch it decided;
    nothing vouches for it, so it waits for the next batch's write, or for the next tick."""
    node = _one_node_two_groups(tmp_path)
    write = node.storage.write
    writes: list[int] = []

    def counted(*batches: Any) -> None:
        writes.append(len(batches))
        write(*batches)

    async def scenario() -> None:
        await _elected(node)
        client = FakeTransport()
        conn = node.new_client(client)  # type: ignore[arg-type]
        node.storage.write = counted  # type: ignore[method-assign]
        for seq in range(1, 6):
            node.core.client_request(conn, (seq, "w", _key_in(node, 0), seq, None, 7, seq))
            node.flush()
            await _until(lambda seq=seq: seq in client.responses, f"write {seq}")
        assert len(writes) == 5  # one write(2) per operation, not two
        assert writes[1:] == [2, 2, 2, 2]  # the last decided index, then the next entry
        size = node.storage.size
        node.tick()
        assert len(writes) == 6 and node.storage.size > size  # the last decided index

    try:
        asyncio.run(scenario())
    finally:
        node.fsyncer.stop()
        node.storage.close()
    restarted = _one_node_two_groups(tmp_path)  # from the log the tick completed
    try:
        assert restarted.core.replicas[(0, 0)].paxos.decided_idx == 5
    finally:
        restarted.fsyncer.stop()
        restarted.storage.close()
