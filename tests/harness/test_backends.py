"""What each backend says about itself, checked without running a node: its name, where its
`exec` runs, and that network faults are refused where nodes share a network (B13)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvctl import nemesis
from kvctl.cli import main
from kvctl.control import BACKENDS, get_backend
from kvctl.control.backend import IDEMPOTENT, ClusterSpec, NodeSpec, save_spec
from kvctl.control.ssh import SshBackend

from .fakes import FakeBackend, spec_of


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_declares_its_name_and_idempotent_verbs(name):
    backend = get_backend(name)
    assert backend.name == name
    assert backend.idempotent == IDEMPOTENT


def test_docker_runs_each_exec_in_the_node_s_own_container():
    places = get_backend("docker").exec_places(spec_of(3))
    assert places == {f"n{i}": f"container fake-n{i}" for i in (1, 2, 3)}


def test_local_runs_every_exec_on_this_machine():
    assert set(get_backend("local").exec_places(spec_of(3, "local")).values()) == {"this machine"}


def ssh_spec(tmp_path: Path, hosts: int, nodes: int) -> ClusterSpec:
    """A cluster of `nodes` placed on `hosts` SSH hosts (placing needs no connection)."""
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("".join(f"10.9.0.{i}\n" for i in range(1, hosts + 1)))
    asked = ClusterSpec("s", "ssh", [NodeSpec(f"n{i}", "", 0) for i in range(1, nodes + 1)],
                        extra={"hosts_file": str(hosts_file)})
    before = copy.deepcopy(asked)
    spec, _ = SshBackend()._place(asked)
    assert asked == before, "placing returns a new spec and leaves the one given alone"
    return spec


def test_ssh_nodes_on_one_host_share_its_exec(tmp_path):
    places = SshBackend().exec_places(ssh_spec(tmp_path, hosts=2, nodes=3))
    assert places == {"n1": "host 10.9.0.1", "n2": "host 10.9.0.2", "n3": "host 10.9.0.1"}


def build(spec: ClusterSpec, faults: str, backend: FakeBackend) -> nemesis.Faults:
    return nemesis.build(nemesis.parse(faults, "ssh"), nemesis.Context(spec, backend))


@pytest.mark.parametrize("fault", ["partition", "netem"])
def test_network_faults_are_refused_when_nodes_share_a_host(tmp_path, fault):
    spec = ssh_spec(tmp_path, hosts=2, nodes=3)
    backend = FakeBackend(places=SshBackend().exec_places(spec))
    with pytest.raises(nemesis.NemesisError, match=re.escape("n1, n3 share host 10.9.0.1")):
        build(spec, fault, backend)


def test_node_faults_and_all_still_run_when_nodes_share_a_host(tmp_path):
    spec = ssh_spec(tmp_path, hosts=2, nodes=3)
    backend = FakeBackend(places=SshBackend().exec_places(spec))
    assert build(spec, "kill,pause", backend).names == ["kill", "pause"]
    everything = build(spec, "all", backend)
    assert "partition" not in everything.names and "netem" not in everything.names
    assert any("partition left out" in note and "share host" in note
               for note in everything.notes)


def test_network_faults_run_when_every_node_has_its_own_host(tmp_path):
    spec = ssh_spec(tmp_path, hosts=3, nodes=3)
    backend = FakeBackend(places=SshBackend().exec_places(spec))
    assert build(spec, "partition", backend).names == ["partition"]


def test_a_manual_partition_is_refused_when_nodes_share_a_host(tmp_path, kvctl_home):
    save_spec(ssh_spec(tmp_path, hosts=2, nodes=3))
    done = CliRunner().invoke(main, ["partition", "n1"])
    assert done.exit_code == 1, done.output
    assert "n1, n3 share host 10.9.0.1" in done.output and "Traceback" not in done.output
