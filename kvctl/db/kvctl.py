"""kvctl's own store as one DB among the others, unchanged: the same node command, the same
client (kvctl.client.Client, which classifies its own outcomes), the same readiness check.

Its nodes run `kvctl node ...` as they always have (the container's command is still
`kvctl-node ARGS`), so a cluster of this DB is exactly the cluster `kvctl up` started before
there were other stores.
"""

from __future__ import annotations

import asyncio
import sys

from kvctl.client import Client, ClientError
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.control.ready import wait_until_serving
from kvctl.db import DB, TIMEOUT_S, NodePlan


class Kvctl(DB):
    """Sequence Paxos groups over the nodes; any node takes any key."""

    name = "kvctl"
    packages = ()  # the node image is made for it
    read_modes = ("linearizable", "stale")

    def plan(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> NodePlan:
        return NodePlan(processes=[["kvctl", *spec.node_argv(node, data_dir)]])

    def command(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> list[str]:
        return ["kvctl-node", *spec.node_argv(node, data_dir)]

    def local_command(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> list[str]:
        """As the local backend has always started a node: one process, no launcher."""
        argv = spec.node_argv(node, data_dir, listen_host=node.host)
        return [sys.executable, "-m", "kvctl", *argv]

    def client(self, spec: ClusterSpec, node: str, timeout: float = TIMEOUT_S) -> Client:
        """Bound to `node`: every operation goes there first. What `node` says it cannot
        serve (it reaches no leader of the key's group) goes on to the other nodes, as a
        user's client with every address would: the side that can serve keeps serving."""
        addresses = {n.name: n.address for n in spec.nodes}
        return Client(addresses, timeout=timeout, home=node)

    async def setup(self, spec: ClusterSpec, timeout: float) -> None:
        """Every replication group commits a linearizable read (as `kvctl up` waits)."""
        addresses = {n.name: n.address for n in spec.nodes}
        await asyncio.to_thread(wait_until_serving, addresses, timeout)

    async def primaries(self, spec: ClusterSpec) -> list[str]:
        """The leaders of the groups, as the first node that answers sees them."""
        async with Client({n.name: n.address for n in spec.nodes}, timeout=2.0) as client:
            try:
                topology = await client.topology()
            except ClientError:
                return []
        return sorted({leader for leader in topology["leaders"].values() if leader})


STORE = Kvctl()
