"""A real cluster of node processes on loopback: service, failover, crash recovery, bad bytes."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from kvctl.client import Client, Failed
from kvctl.node.placement import Placement

from .conftest import addresses, run

pytestmark = pytest.mark.slow


def test_read_write_cas_through_any_node(local_cluster):
    spec, _ = local_cluster

    async def scenario():
        for name, address in addresses(spec).items():
            async with Client({name: address}) as client:  # one node only: it routes
                await client.write(f"k-{name}", "v1")
                assert await client.read(f"k-{name}") == "v1"
                assert await client.cas(f"k-{name}", "v1", "v2") is True
                assert await client.cas(f"k-{name}", "v1", "v3") is False
                assert await client.read(f"k-{name}") == "v2"
                assert await client.read(f"absent-{name}") is None

    run(scenario())


def test_writes_continue_within_seconds_after_the_leader_is_killed(local_cluster):
    spec, backend = local_cluster

    async def scenario():
        async with Client(addresses(spec), timeout=10) as client:
            await client.write("k", "before")
            topo = await client.topology()
            placement = Placement(tuple(topo["nodes"]), topo["groups"], topo["replication"])
            group = placement.group_of("k")
            leader = next(
                v
                for v in [await client.topology(n) for n in topo["nodes"]]
                if v["leaders"].get(group)
            )["leaders"][group]
            backend.kill(spec, leader)
            killed_at = time.monotonic()
            await client.write("k", "after")
            took = time.monotonic() - killed_at
            assert await client.read("k") == "after"
            return took

    assert run(scenario()) < 5.0


def test_nothing_acknowledged_is_lost_when_every_node_is_killed(local_cluster):
    spec, backend = local_cluster

    async def write_many():
        async with Client(addresses(spec)) as client:
            await asyncio.gather(*(client.write(f"key-{i}", i) for i in range(200)))

    run(write_many())
    for node in spec.nodes:
        backend.kill(spec, node.name)
    deadline = time.monotonic() + 10
    while any(s.running for s in backend.status(spec)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for node in spec.nodes:
        backend.start(spec, node.name)

    async def read_all():
        async with Client(addresses(spec), timeout=20) as client:
            return await asyncio.gather(*(client.read(f"key-{i}") for i in range(200)))

    assert run(read_all()) == list(range(200))


def test_bad_bytes_cost_a_connection_never_the_node(local_cluster):
    spec, _ = local_cluster
    node = spec.nodes[0]
    for payload in [
        b"\xff\xff\xff\xff" + b"x" * 100,  # announces a 4 GiB frame
        b"\x00\x00\x00\x03\xc1\xc1\xc1",  # not msgpack
        b"\x00\x00\x00\x02\x92\x01",  # truncated msgpack inside a complete frame
    ]:
        with socket.create_connection((node.host, node.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(5)
            assert sock.recv(100) == b""  # the node closed this connection

    async def still_serving():
        async with Client({node.name: node.address}) as client:
            with pytest.raises(Failed, match="unknown operation"):
                await client._op("delete", "k", None, None)
            with pytest.raises(Failed, match="value too large"):
                await client.write("k", "x" * (2 << 20))
            await client.write("k", "fine")
            return await client.read("k")

    assert run(still_serving()) == "fine"
