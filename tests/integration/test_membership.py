"""Membership changes on a real cluster of processes: join, leave, every key intact."""

from __future__ import annotations

import asyncio

import pytest

from kvctl.client import Client
from kvctl.control.backend import NodeSpec
from kvctl.control.membership import (
    apply_plan,
    current_configs,
    plan_add,
    plan_remove,
    views,
)

from .conftest import addresses, run

pytestmark = pytest.mark.slow


def test_add_a_node_then_remove_n1_keeps_every_key(local_cluster):
    spec, backend = local_cluster

    async def write(client: Client) -> None:
        await asyncio.gather(*(client.write(f"key-{i}", i) for i in range(60)))

    async def configs(client: Client):
        return current_configs(await views(client, [n.name for n in spec.nodes]))

    async def scenario() -> list:
        async with Client(addresses(spec), timeout=20) as client:
            await write(client)
            before = await configs(client)
            spec.add_node(NodeSpec("n4", "", 0))
            backend.up(spec)
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
