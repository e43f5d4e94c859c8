"""The final reads: after the faults heal, every key the run used is read once more, into the
history, so the checker sees whether its last acknowledged write survived; a key is read
through another node when its own stays down (an etcd member whose torn WAL it refuses)."""

from __future__ import annotations

import asyncio
import random

from kvctl.client import Failed
from kvctl.workload import Options, RegisterWorkload
from tests.harness.test_workload import FlakyStore


class DeadNode:
    """A node that never comes back: every call is refused after a round trip."""

    async def read(self, key):
        await asyncio.sleep(0.005)
        raise Failed("connection refused")

    async def write(self, key, value):
        await self.read(key)

    async def cas(self, key, old, new):
        await self.read(key)


def final_reads(concurrency: int, seed: int) -> tuple[RegisterWorkload, list[dict], int, list]:
    """A short run on n1, n2 and a dead n3, then the final reads; the workload, the history,
    where the final reads begin, and the keys left unread."""
    rng = random.Random(seed)
    events: list[dict] = []

    def record(**fields):
        events.append(fields)
        return fields

    store = FlakyStore(rng)
    clients = {"n1": store, "n2": store, "n3": DeadNode()}
    workload = RegisterWorkload(clients, record, Options(concurrency, ops_per_key=10), rng)

    async def main():
        loop = asyncio.get_running_loop()
        await workload.run(loop.time() + 0.3)
        begun = len(events)
        return begun, await workload.final_reads(loop.time() + 30)

    begun, unread = asyncio.run(main())
    return workload, events, begun, unread


def test_a_key_whose_readers_node_stays_down_is_read_through_another_node():
    workload, events, begun, unread = final_reads(concurrency=6, seed=7)
    assert len(workload.keys.used) > 6
    assert unread == []
    read = [e["key"] for e in events[begun:] if e["type"] == "ok" and e["f"] == "read"]
    assert sorted(read) == sorted(workload.keys.used), "each key read once, and no more"
    tried = {e["node"] for e in events[begun:] if e["type"] == "invoke"}
    assert "n3" in tried, "the dead node's readers did try"


def test_a_key_no_node_can_serve_is_left_unread_by_the_deadline():
    rng = random.Random(1)
    workload = RegisterWorkload({"n1": DeadNode()}, lambda **e: e, Options(2), rng)
    workload.keys.take(0)

    async def main():
        loop = asyncio.get_running_loop()
        return await workload.final_reads(loop.time() + 0.5)

    assert asyncio.run(main()) == workload.keys.used
