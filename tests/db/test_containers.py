"""Each store in containers of its own image variant, run by the command its DB gives: the
image has the store's packages, the launcher and kvctl-run start it, the host's client talks
to it, and a partition cut with iptables in the containers does what the store promises.

The containers are labelled `kvctl.test` (so the container tests' cleanup finds them too) and
removed afterwards.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from docker.client import DockerClient
from docker.errors import APIError
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from kvctl.client import ClientError
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.control.image import BuildProgress, ensure_node_image
from kvctl.db import DB, get_db

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TEST_LABEL = "kvctl.test"
DATA_DIR = "/data/db"
PORT = 7400


@dataclass
class Cluster:
    db: DB
    spec: ClusterSpec
    containers: dict[str, Container]

    def exec(self, node: str, *argv: str) -> str:
        code, output = self.containers[node].exec_run(list(argv))
        assert code == 0, f"{argv} on {node}: {output.decode(errors='replace')}"
        return output.decode(errors="replace")

    def isolate(self, node: str) -> None:
        """Drop everything between `node` and the other nodes, on both sides."""
        for other in self.spec.nodes:
            if other.name != node:
                peer = self.spec.node(node).host
                self.exec(other.name, "iptables", "-A", "INPUT", "-s", peer, "-j", "DROP")
                self.exec(node, "iptables", "-A", "INPUT", "-s", other.host, "-j", "DROP")


def _network(client: DockerClient, name: str) -> Network:
    """A network on the first free /24 of 10.231.0.0/16 (fixed addresses need a subnet)."""
    for subnet in ipaddress.ip_network("10.231.0.0/16").subnets(new_prefix=24):
        try:
            return client.networks.create(
                name, driver="bridge", labels={TEST_LABEL: "db"},
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
            )
        except APIError as err:
            if "overlap" not in str(err.explanation):
                raise
    raise RuntimeError("no free subnet for the test network")


@pytest.fixture
def container_cluster(docker_client: DockerClient) -> Iterator:
    made: list[tuple[Network, list[Container]]] = []

    def start(db_name: str, nodes: int = 3) -> Cluster:
        db = get_db(db_name)
        image = ensure_node_image(docker_client, BuildProgress(quiet=True), db=db_name)
        name = f"kvtest-{db_name}-{uuid.uuid4().hex[:6]}"
        network = _network(docker_client, name)
        containers: list[Container] = []
        made.append((network, containers))
        subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
        spec = ClusterSpec(name, "docker", [
            NodeSpec(f"n{i}", str(subnet.network_address + 10 + i), PORT)
            for i in range(1, nodes + 1)
        ])
        for node in spec.nodes:
            container = docker_client.containers.create(
                image, db.command(spec, node, DATA_DIR), name=f"{name}-{node.name}",
                hostname=node.name, init=True, cap_add=["NET_ADMIN"], labels={TEST_LABEL: "db"},
                network=name,
                networking_config={
                    name: docker_client.api.create_endpoint_config(ipv4_address=node.host)
                },
            )
            containers.append(container)
            container.start()
        asyncio.run(db.setup(spec, timeout=90))
        return Cluster(db, spec, {n.name: c for n, c in zip(spec.nodes, containers, strict=True)})

    yield start
    for network, containers in made:
        for container in containers:
            container.remove(force=True)
        network.remove()


def test_etcd_in_containers_serves_and_logs_to_the_data_volume(container_cluster):
    cluster = container_cluster("etcd")

    async def scenario() -> list:
        first = cluster.db.client(cluster.spec, "n1")
        third = cluster.db.client(cluster.spec, "n3")
        try:
            await first.write("k", 1)
            return [await third.read("k"), await third.cas("k", 1, 2), await first.read("k")]
        finally:
            await first.close()
            await third.close()

    assert asyncio.run(scenario()) == [1, True, 2]
    assert "etcd" in cluster.exec("n2", "cat", "/data/node.log")
    assert asyncio.run(cluster.db.primaries(cluster.spec))[0] in {"n1", "n2", "n3"}


def test_etcd_an_isolated_member_refuses_linearizable_reads_but_serves_stale_ones(
    container_cluster,
):
    """The majority goes on; the cut-off member cannot confirm a read (its client is told
    so), while its serializable read returns the value it had: the stale read mode's flaw."""
    cluster = container_cluster("etcd")
    stale_spec = ClusterSpec(**{**cluster.spec.__dict__, "read_mode": "stale"})

    async def scenario() -> tuple:
        majority = cluster.db.client(cluster.spec, "n1", timeout=10)
        isolated = cluster.db.client(cluster.spec, "n3", timeout=3)
        isolated_stale = cluster.db.client(stale_spec, "n3", timeout=3)
        try:
            await majority.write("k", 1)
            async with asyncio.timeout(10):  # until n3 has applied it
                while await isolated_stale.read("k") != 1:
                    await asyncio.sleep(0.05)
            cluster.isolate("n3")
            await majority.write("k", 2)
            try:
                await isolated.read("k")
                linearizable: object = "answered"
            except ClientError as exc:
                linearizable = exc
            return await majority.read("k"), linearizable, await isolated_stale.read("k")
        finally:
            for client in (majority, isolated, isolated_stale):
                await client.close()

    majority_read, isolated_read, stale_read = asyncio.run(scenario())
    assert majority_read == 2
    assert isinstance(isolated_read, ClientError)
    assert stale_read == 1


def test_redis_loses_a_write_its_isolated_primary_acknowledged(container_cluster):
    """Jepsen's 2013 finding, on demand: the primary, cut off from the Sentinels' majority,
    still acknowledges a write; the majority fails over; once healed, the old primary comes
    back as a replica of the new one, and the acknowledged write is gone."""
    cluster = container_cluster("redis")

    async def scenario() -> tuple:
        old_side = cluster.db.client(cluster.spec, "n1")
        new_side = cluster.db.client(cluster.spec, "n2")
        try:
            await old_side.write("k", 1)
            cluster.isolate("n1")
            await old_side.write("k", 2)  # acknowledged by the isolated primary
            async with asyncio.timeout(60):
                while (await cluster.db.primaries(cluster.spec)) in ([], ["n1"]):
                    await asyncio.sleep(0.2)
            for node in cluster.spec.nodes:
                cluster.exec(node.name, "iptables", "-F", "INPUT")
            async with asyncio.timeout(60):  # n1 rejoins as a replica and resyncs
                while "slave" not in cluster.exec("n1", "redis-cli", "-h",
                                                  cluster.spec.node("n1").host, "-p",
                                                  str(PORT), "role"):
                    await asyncio.sleep(0.2)
            return await new_side.read("k"), await cluster.db.primaries(cluster.spec)
        finally:
            await old_side.close()
            await new_side.close()

    value, primaries = asyncio.run(scenario())
    assert value == 1
    assert primaries and "n1" not in primaries
