"""A Backend runs the store a cluster names (spec.extra["db"]): its image variant and its
command in Docker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kvctl.client import Failed
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import db_of


def store_cluster(db: str, backend: str, nodes: int = 3) -> ClusterSpec:
    return ClusterSpec(
        name=f"kvtest-{uuid.uuid4().hex[:6]}",
        backend=backend,
        nodes=[NodeSpec(f"n{i}", "", 0) for i in range(1, nodes + 1)],
        extra={"db": db},
    )


async def write_then_read(spec: ClusterSpec) -> object:
    db = db_of(spec)
    await db.setup(spec, timeout=90)
    first, last = db.client(spec, spec.nodes[0].name), db.client(spec, spec.nodes[-1].name)
    try:
        await first.write("k", 1)
        return await last.read("k")
    finally:
        await first.close()
        await last.close()


@pytest.mark.docker
@pytest.mark.slow
def test_the_docker_backend_runs_the_store_a_cluster_names(docker_client, tmp_path, monkeypatch):
    from kvctl.control.docker import DockerBackend

    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    backend = DockerBackend(docker_client)
    spec = store_cluster("etcd", "docker")
    try:
        spec = backend.up(spec)
        assert spec.extra["image"].startswith("kvctl-node:etcd-")
        assert asyncio.run(write_then_read(spec)) == 1
    finally:
        backend.down(spec, purge=True)


@pytest.mark.slow
def test_the_local_backend_runs_the_store_a_cluster_names(tmp_path, monkeypatch):
    """And a kill takes the whole node: the launcher and the store under it."""
    from kvctl.control.local import LocalBackend

    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    backend = LocalBackend()
    spec = store_cluster("etcd", "local")
    try:
        spec = backend.up(spec)
        assert asyncio.run(write_then_read(spec)) == 1
        backend.kill(spec, "n1")
        with pytest.raises(Failed):  # its etcd is gone with it: refused, not hanging
            asyncio.run(read_on(spec, "n1"))
    finally:
        backend.down(spec, purge=True)


async def read_on(spec: ClusterSpec, node: str) -> object:
    client = db_of(spec).client(spec, node, timeout=2.0)
    try:
        return await client.read("k")
    finally:
        await client.close()
