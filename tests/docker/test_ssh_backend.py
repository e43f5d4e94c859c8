"""The SSH backend for real: containers of the node image running sshd act as the hosts.

A key pair is made for the session; the hosts accept it, and their host keys go into the
known_hosts of a $HOME made for the test, read through the engine (a channel we trust)
rather than accepted on first use.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_helpers import TEST_LABEL, cluster_name, eventually, new_spec, op
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from docker.client import DockerClient
from docker.models.containers import Container

from kvctl import nemesis
from kvctl.control.backend import BackendError, ClusterSpec
from kvctl.control.ready import wait_until_serving
from kvctl.control.ssh import Host, SshBackend, read_hosts
from tests.harness.backend_contract import check_verbs

HOSTS = 3


def make_key(path: Path) -> str:
    """Write a fresh ed25519 private key to `path`; return its public key line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode()


@dataclass
class SshLab:
    home: Path  # a $HOME whose .ssh/known_hosts has the hosts' keys
    key: Path
    containers: list[Container]
    addresses: list[str]

    def hosts_file(self, path: Path, key: Path | None = None) -> Path:
        path.write_text(
            "# address user port key\n"
            + "".join(f"{a} root 22 {key or self.key}\n" for a in self.addresses)
        )
        return path

    def one_node(self, directory: Path, key: Path | None = None) -> ClusterSpec:
        """A fresh one-node cluster on the first host, logging in with `key`."""
        hosts = self.hosts_file(directory / "hosts", key)
        return new_spec(cluster_name(), 1, backend="ssh", hosts_file=str(hosts))


@pytest.fixture(scope="module")
def lab(
    docker_client: DockerClient, node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SshLab]:
    root = tmp_path_factory.mktemp("ssh")
    key = root / "id_ed25519"
    public = make_key(key)
    network = docker_client.networks.create(cluster_name(), labels={TEST_LABEL: "1"})
    containers = [
        docker_client.containers.run(
            node_image,
            ["kvctl-sshd"],
            detach=True,
            init=True,
            cap_add=["NET_ADMIN"],
            labels={TEST_LABEL: "1"},
            environment={"KVCTL_AUTHORIZED_KEYS": public},
            network=network.name,
        )
        for _ in range(HOSTS)
    ]
    addresses, known = [], []
    for container in containers:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        pub = eventually(
            lambda c=container: host_key(c), what=f"host key of {container.name}"
        )
        addresses.append(address)
        known.append(f"{address} {pub}\n")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("".join(known))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield SshLab(home, key, containers, addresses)
    for container in containers:
        container.remove(force=True)
    network.remove()


def host_key(container: Container) -> str:
    result = container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.decode().split()[:2])


# -- the hosts file -----------------------------------------------------------------------


def test_hosts_file_fields_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("key")
    hosts = tmp_path / "hosts"
    hosts.write_text("# nodes\n10.0.0.1\n\n10.0.0.2 admin\n10.0.0.3 - 2222 k  # comment\n")
    assert read_hosts(hosts) == [
        Host("10.0.0.1"),
        Host("10.0.0.2", user="admin"),
        Host("10.0.0.3", port=2222, key_file=str(tmp_path / "k")),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1 root http\n", "line 1: 'http' is not a port number"),
        ("\n10.0.0.1 root 22 missing-key\n", "line 2: no key file"),
        ("10.0.0.1 root 22 k extra\n", "expected `address"),
        ("# nothing\n", "names no host"),
    ],
)
def test_hosts_file_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(text)
    with pytest.raises(BackendError, match=message):
        read_hosts(hosts)


# -- against sshd containers ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(lab: SshLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSpec]:
    """Five nodes on three hosts: two hosts run two nodes each, on ports 7400 and 7401."""
    hosts = lab.hosts_file(tmp_path_factory.mktemp("hosts") / "hosts")
    backend = SshBackend()
    spec = backend.up(new_spec(cluster_name(), 5, backend="ssh", hosts_file=str(hosts)))
    wait_until_serving({n.name: n.address for n in spec.nodes}, 60)
    yield spec
    backend.down(spec, purge=True)


@pytest.mark.docker
@pytest.mark.slow
def test_nodes_are_spread_over_the_hosts(lab: SshLab, cluster: ClusterSpec) -> None:
    assert [n.address for n in cluster.nodes] == [
        f"{lab.addresses[0]}:7400",
        f"{lab.addresses[1]}:7400",
        f"{lab.addresses[2]}:7400",
        f"{lab.addresses[0]}:7401",
        f"{lab.addresses[1]}:7401",
    ]


@pytest.mark.docker
@pytest.mark.slow
def test_read_write_cas_and_faults_over_ssh(lab: SshLab, cluster: ClusterSpec) -> None:
    backend = SshBackend()
    op(cluster, "write", "s", "1")
    assert op(cluster, "cas", "s", "1", "2") is True
    assert op(cluster, "read", "s") == "2"

    backend.kill(cluster, "n4")
    assert [s.running for s in backend.status(cluster)] == [True, True, True, False, True]
    eventually(lambda: op(cluster, "write", "s", "3"), what="a write with n4 dead")
    backend.start(cluster, "n4")
    assert backend.status(cluster)[3].running is True

    backend.pause(cluster, "n2")
    assert backend.status(cluster)[1].paused is True
    backend.resume(cluster, "n2")
    assert backend.status(cluster)[1].paused is False

    rules = backend.exec(cluster, "n5", ["iptables", "-S", "INPUT"])
    assert (rules.exit_code, rules.output.strip()) == (0, "-P INPUT ACCEPT")
    assert backend.exec(cluster, "n5", ["sh", "-c", "exit 5"]).exit_code == 5
    logged = list(backend.logs(cluster, "n4"))
    assert any("n4" in line and "listening" in line for line in logged)
    followed = backend.logs(cluster, "n4", follow=True)
    assert next(followed) == logged[0]  # and then it would wait for more
    followed.close()
    backend.close()


@pytest.mark.docker
@pytest.mark.slow
def test_node_verbs_are_idempotent_and_answer_alike(cluster: ClusterSpec) -> None:
    backend = SshBackend()
    check_verbs(backend, cluster, "n4")
    backend.close()


@pytest.mark.docker
@pytest.mark.slow
def test_partitions_are_refused_where_two_nodes_share_a_host(
    lab: SshLab, cluster: ClusterSpec
) -> None:
    ctx = nemesis.Context(cluster, SshBackend())
    shared = re.escape(f"n1, n4 share host {lab.addresses[0]}")
    with pytest.raises(nemesis.NemesisError, match=shared):
        nemesis.build(nemesis.parse("partition", "ssh"), ctx)


@pytest.mark.docker
@pytest.mark.slow
def test_down_and_up_keep_the_data(cluster: ClusterSpec) -> None:
    backend = SshBackend()
    op(cluster, "write", "kept", "yes")
    backend.down(cluster)
    assert not any(s.running for s in backend.status(cluster))
    backend.up(cluster)
    assert eventually(lambda: op(cluster, "read", "kept"), what="read after up") == "yes"
    backend.close()


@pytest.mark.docker
@pytest.mark.slow
def test_the_cli_on_ssh_hosts(lab: SshLab, tmp_path: Path) -> None:
    hosts = lab.hosts_file(tmp_path / "hosts")
    env = {**os.environ, "KVCTL_HOME": str(tmp_path / "kvctl"), "HOME": str(lab.home)}

    def kvctl(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "kvctl", *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"kvctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    name = cluster_name()
    kvctl("up", "--backend", "ssh", "--hosts", str(hosts), "--nodes", "3", "--name", name)
    try:
        kvctl("put", "c", "d")
        assert kvctl("get", "c").strip() == "d"
    finally:
        kvctl("down", "--purge")


@pytest.mark.docker
@pytest.mark.slow
def test_unknown_host_key_is_refused_clearly(
    lab: SshLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no known_hosts at all
    with pytest.raises(BackendError, match=r"unknown host key; .* ssh-keyscan -p 22"):
        SshBackend().up(lab.one_node(tmp_path))


@pytest.mark.docker
@pytest.mark.slow
def test_authentication_failure_is_reported_clearly(lab: SshLab, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    make_key(other)
    with pytest.raises(BackendError, match=f"authentication failed with {other}"):
        SshBackend().up(lab.one_node(tmp_path, key=other))


@pytest.mark.docker
@pytest.mark.slow
def test_a_host_that_cannot_run_a_node_is_named(lab: SshLab, tmp_path: Path) -> None:
    msgpack = "/usr/lib/python3/dist-packages/msgpack"
    host = lab.containers[0]
    assert host.exec_run(["mv", msgpack, f"{msgpack}.off"]).exit_code == 0
    try:
        with pytest.raises(BackendError, match=r"cannot start there .*No module named 'msgpack'"):
            SshBackend().up(lab.one_node(tmp_path))
    finally:
        host.exec_run(["mv", f"{msgpack}.off", msgpack])
