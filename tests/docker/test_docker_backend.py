"""The Docker backend on a real engine: what it creates, the faults it offers, its errors."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator

import pytest
from cluster_helpers import TEST_LABEL, cluster_name, eventually, new_spec, op
from docker.client import DockerClient

from kvctl.control.backend import BackendError, ClusterSpec
from kvctl.control.docker import DockerBackend, connect, engine_available
from kvctl.control.ready import wait_until_serving
from tests.harness.backend_contract import check_verbs

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def backend(docker_client: DockerClient, node_image: str) -> DockerBackend:
    return DockerBackend(docker_client)


@pytest.fixture(scope="module")
def cluster(backend: DockerBackend) -> Iterator[ClusterSpec]:
    """Three nodes, serving; removed with their data at the end."""
    spec = backend.up(new_spec(cluster_name(), 3))
    wait_until_serving({n.name: n.address for n in spec.nodes}, 60)
    yield spec
    backend.down(spec, purge=True)


def test_containers_are_labelled_capped_and_addressed(
    docker_client: DockerClient, cluster: ClusterSpec
) -> None:
    network = docker_client.networks.get(cluster.extra["network"])
    subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
    for node in cluster.nodes:
        container = docker_client.containers.get(node.extra["container"])
        assert container.labels["kvctl"] == cluster.name
        assert container.labels["kvctl.node"] == node.name
        host_config = container.attrs["HostConfig"]
        assert host_config["CapAdd"] == ["NET_ADMIN"]
        assert host_config["Privileged"] is False
        networks = container.attrs["NetworkSettings"]["Networks"]
        assert networks[cluster.name]["IPAddress"] == node.host
        assert ipaddress.ip_address(node.host) in subnet
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert mounts["/data"]["Name"] == f"{node.extra['container']}-data"


def test_up_again_leaves_running_nodes_alone(
    backend: DockerBackend, docker_client: DockerClient, cluster: ClusterSpec
) -> None:
    def ids() -> list[str]:
        return [docker_client.containers.get(n.extra["container"]).id for n in cluster.nodes]

    before, asked = ids(), copy.deepcopy(cluster)
    assert backend.up(cluster) == cluster
    assert cluster == asked
    assert ids() == before


def test_node_verbs_are_idempotent_and_answer_alike(
    backend: DockerBackend, cluster: ClusterSpec
) -> None:
    check_verbs(backend, cluster, "n3")


def test_exec_runs_in_the_node_with_its_exit_code(
    backend: DockerBackend, cluster: ClusterSpec
) -> None:
    listed = backend.exec(cluster, "n1", ["iptables", "-S", "INPUT"])
    assert (listed.exit_code, listed.output.strip()) == (0, "-P INPUT ACCEPT")
    failed = backend.exec(cluster, "n1", ["sh", "-c", "echo no >&2; exit 7"])
    assert (failed.exit_code, failed.output.strip()) == (7, "no")


def test_logs_on_the_output_and_in_the_volume(
    backend: DockerBackend, cluster: ClusterSpec
) -> None:
    lines = list(backend.logs(cluster, "n2"))
    assert any("n2" in line and "listening" in line for line in lines)
    in_volume = backend.exec(cluster, "n2", ["cat", "/data/node.log"]).output.splitlines()
    assert lines[0] in in_volume
    followed = backend.logs(cluster, "n2", follow=True)
    assert next(followed) == lines[0]  # and then it would wait for more
    followed.close()


def test_kill_and_start_keep_the_node_and_its_data(
    backend: DockerBackend, cluster: ClusterSpec
) -> None:
    op(cluster, "write", "kill-start", "before")
    backend.kill(cluster, "n1")
    assert backend.status(cluster)[0].running is False
    backend.start(cluster, "n1")
    assert backend.status(cluster)[0].running is True
    assert eventually(lambda: op(cluster, "read", "kill-start"), what="read after restart") == (
        "before"
    )
    stored = backend.exec(cluster, "n1", ["ls", "/data/db"])
    assert stored.exit_code == 0 and stored.output.strip()


def test_unknown_node_is_a_clear_error(backend: DockerBackend, cluster: ClusterSpec) -> None:
    with pytest.raises(BackendError, match="no node named 'n9'"):
        backend.kill(cluster, "n9")


def test_a_name_taken_by_someone_else(backend: DockerBackend, docker_client: DockerClient) -> None:
    name = cluster_name()
    docker_client.networks.create(name, labels={TEST_LABEL: "1"})
    with pytest.raises(BackendError, match=f"network named {name} already exists"):
        backend.up(new_spec(name, 1))


def test_a_subnet_taken_by_someone_else(
    backend: DockerBackend, docker_client: DockerClient
) -> None:
    taken = docker_client.networks.create(cluster_name(), labels={TEST_LABEL: "1"})
    subnet = taken.attrs["IPAM"]["Config"][0]["Subnet"]
    with pytest.raises(BackendError, match=f"subnet {subnet} is taken"):
        backend.up(new_spec(cluster_name(), 1, subnet=subnet))


def test_a_bad_cluster_name(backend: DockerBackend) -> None:
    with pytest.raises(BackendError, match="cannot name Docker objects"):
        backend.up(new_spec("no/slashes", 1))


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert engine_available() is False
    with pytest.raises(BackendError, match="no Docker engine answers at unix:///nonexistent"):
        connect()


def test_down_keeps_volumes_and_purge_removes_everything(
    backend: DockerBackend, docker_client: DockerClient
) -> None:
    asked = new_spec(cluster_name(), 1)
    spec = backend.up(asked)
    assert asked.nodes[0].port == 0 and not asked.extra, "up returns a new spec"
    owned = {"label": f"kvctl={spec.name}"}
    backend.down(spec)
    assert docker_client.containers.list(all=True, filters=owned) == []
    assert docker_client.networks.list(filters=owned) == []
    assert [v.name for v in docker_client.volumes.list(filters=owned)] == [f"{spec.name}-n1-data"]
    again = backend.up(spec)
    assert again.nodes[0].host == spec.nodes[0].host  # the subnet is remembered by the volume
    backend.down(again, purge=True)
    assert docker_client.volumes.list(filters=owned) == []
