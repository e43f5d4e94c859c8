"""Waiting until a cluster serves: every group answers a linearizable read."""

from __future__ import annotations

import asyncio
import time

from kvctl.client import Client, ClientError
from kvctl.node.placement import Placement


def probe_keys(placement: Placement) -> dict[int, str]:
    """One key per group, found by trying names in order (stable across runs)."""
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < placement.groups:
        key = f"kvctl-probe-{i}"
        keys.setdefault(placement.group_of(key), key)
        i += 1
    return keys


async def _serving(addresses: dict[str, str], deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        async with Client(addresses, timeout=2.0, attempt_timeout=0.5) as client:
            try:
                topo = await client.topology()
                placement = Placement(tuple(topo["nodes"]), topo["groups"], topo["replication"])
                for key in probe_keys(placement).values():
                    await client.read(key)
                return
            except ClientError as exc:
                last = exc
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the cluster did not serve every group in time (last error: {last})")


def wait_until_serving(addresses: dict[str, str], timeout: float) -> None:
    """Return once every replication group has a leader that commits; TimeoutError if not."""
    asyncio.run(_serving(addresses, time.monotonic() + timeout))
