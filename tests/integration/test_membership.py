"""Membership changes on a real cluster of processes: join, leave, every key intact."""

from __future__ import annotations

import asyncio
import time

import pytest

from kvctl.client import Client
from kvctl.control.backend import NodeSpec, load_spec
from kvctl.control.membership import (
    apply_plan,
    current_configs,
    plan_add,
    plan_remove,
    views,
)
from kvctl.control.supervisor import supervise

from .conftest import addresses, run

pytestmark = pytest.mark.slow


def test_add_a_node_then_remove_n1_keeps_every_key(local_cluster):
    spec, backend = local_cluster

    async def write(client: Client) -> None:
        await asyncio.gather(*(client.write(f"key-{i}", i) for i in range(60)))

    async def configs(client: Client):
        return current_configs((await views(client, [n.name for n in spec.nodes])).values())

    async def scenario() -> list:
        async with Client(addresses(spec), timeout=20) as client:
            await write(client)
            before = await configs(client)
            spec.add_node(NodeSpec("n4", "", 0))
            backend.add(spec, "n4")
            plan = plan_add(before, "n4", ["n1", "n2", "n3"])
            assert plan, "the new node should get replicas"
        async with Client(addresses(spec), timeout=20) as client:
            await apply_plan(client, plan, addresses(spec))
            plan = plan_remove(await configs(client), "n1", ["n2", "n3", "n4"])
            await apply_plan(client, plan, addresses(spec))
            backend.kill(spec, "n1")
            after = await configs(client)
            values = await asyncio.gather(*(client.read(f"key-{i}") for i in range(60)))
            return after, values

    after, values = run(scenario())
    assert values == list(range(60))
    assert all("n1" not in members and len(members) == 3 for _, members in after.values())
    assert any("n4" in members for _, members in after.values())
    assert all(cid >= 1 for cid, members in after.values() if "n4" in members)


def test_the_supervisor_replaces_a_member_that_stays_unreachable(local_cluster):
    spec, backend = local_cluster

    async def write_and_read(keys: range, write: bool) -> list:
        async with Client(addresses(load_spec()), timeout=20) as client:
            if write:
                await asyncio.gather(*(client.write(f"s-{i}", i) for i in keys))
            return await asyncio.gather(*(client.read(f"s-{i}") for i in keys))

    run(write_and_read(range(30), write=True))
    backend.kill(spec, "n2")
    said: list[str] = []
    deadline = time.monotonic() + 30

    def done() -> bool:
        return any("replaced" in line for line in said) or time.monotonic() > deadline

    supervise(1.0, said.append, done)
    assert any("replaced n2 by n4" in line for line in said), said
    assert run(write_and_read(range(30), write=False)) == list(range(30))

    async def configs():
        async with Client(addresses(load_spec())) as client:
            return current_configs((await views(client, ["n1", "n3", "n4"])).values())

    assert all("n2" not in members for _, members in run(configs()).values())
