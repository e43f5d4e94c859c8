"""Throughput and latency of a cluster under a closed-loop read/write/cas mix.

Each of C logical clients keeps one operation outstanding: 50% reads, 40% writes, 10% cas
over 1,000 keys. All share one `Client` (one connection per node, requests batched per
event-loop turn), which is how a real application would use it. Latency is measured from
the call to its result; the first second is a warm-up and is not counted.

Another store (kvctl/db) is measured the same way with its own client, one per node, client
i on node i mod n (as the test workload binds its processes to nodes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from kvctl.client import Client, ClientError
from kvctl.control.backend import ClusterSpec
from kvctl.db import DB
from kvctl.node.server import event_loop
from kvctl.workload import KV

WARMUP_S = 1.0


@dataclass
class BenchResult:
    clients: int
    seconds: float
    ops: int
    errors: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def measure(addresses: dict[str, str], clients: int, duration: float) -> BenchResult:
    async with Client(addresses, timeout=10) as client:
        await client.read("bench-warm")  # learn the placement before the clock starts
        return await _closed_loop(lambda worker: client, clients, duration)


async def measure_store(db: DB, spec: ClusterSpec, clients: int, duration: float) -> BenchResult:
    """The same mix on another store, through its own clients (one per node)."""
    per_node = [db.client(spec, node.name, timeout=10) for node in spec.nodes]
    try:
        for client in per_node:
            await client.read("bench-warm")  # connected before the clock starts
        return await _closed_loop(lambda worker: per_node[worker % len(per_node)], clients,
                                  duration)
    finally:
        for client in per_node:
            await client.close()


async def _closed_loop(client_of: Callable[[int], KV], clients: int,
                       duration: float) -> BenchResult:
    """C workers, each with one operation outstanding on client_of(worker), for `duration`
    seconds after the warm-up."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    start = loop.time()
    counted_from = start + WARMUP_S
    stop = counted_from + duration

    async def worker(seed: int) -> None:
        nonlocal errors
        client = client_of(seed)
        rng = random.Random(seed)
        perf = time.perf_counter
        while True:
            now = loop.time()
            if now >= stop:
                return
            key = f"bench-{rng.randrange(1000)}"
            pick = rng.random()
            began = perf()
            try:
                if pick < 0.5:
                    await client.read(key)
                elif pick < 0.9:
                    await client.write(key, rng.getrandbits(30))
                else:
                    await client.cas(key, None, rng.getrandbits(30))
            except ClientError:
                errors += now >= counted_from
                continue
            if now >= counted_from:
                latencies.append(perf() - began)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    latencies.sort()
    return BenchResult(
        clients=clients,
        seconds=duration,
        ops=len(latencies),
        errors=errors,
        ops_per_s=len(latencies) / duration,
        p50_ms=_quantile(latencies, 0.50) * 1000,
        p99_ms=_quantile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
    )


def run_bench(addresses: dict[str, str], clients: int, duration: float) -> BenchResult:
    """On the nodes' event loop (uvloop when installed): the client costs less per op."""
    with event_loop() as runner:
        return runner.run(measure(addresses, clients, duration))
