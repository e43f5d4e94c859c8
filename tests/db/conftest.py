"""Real servers of each store as local processes (kvctl.db.local): the plan a container runs,
run on 127.0.0.1, so a test covers the configuration each store generates."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.client import DockerClient

from kvctl.control.backend import BackendError
from kvctl.db import get_db
from kvctl.db.local import LocalCluster

SERVERS = {"kvctl": "python3", "etcd": "etcd", "redis": "redis-sentinel", "nats": "nats-server"}


def start_cluster(db_name: str, root: Path, nodes: int = 3,
                  read_mode: str | None = None) -> LocalCluster:
    if shutil.which(SERVERS[db_name]) is None:
        pytest.fail(f"{SERVERS[db_name]} is not installed (scripts/test.sh installs it)")
    cluster = LocalCluster(get_db(db_name), f"kvtest-{db_name}", nodes, root, read_mode)
    cluster.start_all()
    try:
        asyncio.run(cluster.db.setup(cluster.spec, timeout=60))
    except BaseException:
        cluster.stop_all()
        raise
    return cluster


@pytest.fixture(scope="session")
def docker_client() -> DockerClient:
    """The engine, for the tests marked docker: they skip without one, but fail under CI=true."""
    from kvctl.control.docker import connect

    try:
        return connect()
    except BackendError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the container tests must run, but: {err}")
        pytest.skip(str(err))


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """start(db, nodes=3, read_mode=None) -> LocalCluster; every cluster stopped afterwards."""
    started: list[LocalCluster] = []

    def start(db: str, nodes: int = 3, read_mode: str | None = None) -> LocalCluster:
        cluster = start_cluster(db, tmp_path / f"{db}-{len(started)}", nodes, read_mode)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop_all()
