"""The nemesis against real containers: a partition really drops traffic between nodes, the
heal restores it, and only our chain is ever touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from kvctl.cli import main
from kvctl.control.backend import ClusterSpec, NodeSpec, save_spec
from kvctl.control.docker import DockerBackend
from kvctl.nemesis import Context
from kvctl.nemesis.firewall import CHAIN

pytestmark = pytest.mark.docker

FOREIGN = [  # rules someone else owns: they must survive every heal
    "iptables -w -N OTHER",
    "iptables -w -A OTHER -p tcp --dport 9 -j ACCEPT",
    "iptables -w -A INPUT -p udp --dport 9 -j DROP",
]


@pytest.fixture
def cluster(docker_engine, cluster_name, kvctl_home) -> Iterator[tuple[ClusterSpec, Context]]:
    backend = DockerBackend()
    spec = ClusterSpec(cluster_name, "docker", [NodeSpec(f"n{i}", "", 0) for i in (1, 2, 3)])
    try:
        spec = backend.up(spec)
        save_spec(spec)
        yield spec, Context(spec, backend)
    finally:
        backend.down(spec, purge=True)


def rules(ctx: Context, node: str) -> str:
    """Every rule of the node's filter table, to compare before and after."""
    out = ctx.sh(node, "iptables -w -S")
    assert out.exit_code == 0, out.output
    return out.output


def reaches(ctx: Context, src: str, dst: str) -> bool:
    """Whether `src` opens a TCP connection to `dst`'s server within a second."""
    host = ctx.spec.node(dst).host
    probe = ("import socket; s = socket.socket(); s.settimeout(1.0); "
             f"s.connect(('{host}', {ctx.spec.node(dst).port})); print('open')")
    out = ctx.sh(src, f"python3 -c \"{probe}\" 2>&1")
    return out.exit_code == 0 and "open" in out.output


def test_partition_drops_traffic_and_heal_restores_only_our_chain(cluster):
    spec, ctx = cluster
    for node in ctx.nodes:
        for rule in FOREIGN:
            assert ctx.sh(node, rule).exit_code == 0
    before = {node: rules(ctx, node) for node in ctx.nodes}
    assert reaches(ctx, "n2", "n1") and reaches(ctx, "n1", "n3")

    runner = CliRunner()
    done = runner.invoke(main, ["partition", "n1", "n2,n3"])
    assert done.exit_code == 0, done.output
    assert "n1 | n2,n3" in done.output
    assert not reaches(ctx, "n2", "n1") and not reaches(ctx, "n1", "n3")
    assert reaches(ctx, "n2", "n3")
    assert f"-A {CHAIN} -s {spec.node('n1').host}/32 -j DROP" in rules(ctx, "n2")

    done = runner.invoke(main, ["heal"])
    assert done.exit_code == 0, done.output
    assert reaches(ctx, "n2", "n1") and reaches(ctx, "n1", "n3")
    assert {node: rules(ctx, node) for node in ctx.nodes} == before
    assert "-A INPUT -p udp -m udp --dport 9 -j DROP" in before["n1"]


def test_partition_is_refused_on_the_local_backend(kvctl_home):
    save_spec(ClusterSpec("loc", "local", [NodeSpec("n1", "127.0.0.1", 1)]))
    done = CliRunner().invoke(main, ["partition", "n1"])
    assert done.exit_code != 0
    assert "local backend" in done.output and "Traceback" not in done.output
