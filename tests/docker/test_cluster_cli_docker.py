"""The user's path, end to end: `kvctl up --nodes 5` in containers, used and faulted from the host.

One cluster goes through the whole story: up, read/write/cas, a node's container killed while
the others carry on, the node back, `down` and `up` with the data intact, `down --purge`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cluster_helpers import Kvctl, cluster_name
from docker.client import DockerClient

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_five_containers_serve_survive_a_kill_and_keep_their_data(
    docker_client: DockerClient, node_image: str, tmp_path: Path
) -> None:
    kvctl = Kvctl(tmp_path)
    name = cluster_name()
    started = time.monotonic()
    kvctl("up", "--nodes", "5", "--name", name)
    print(f"kvctl up --nodes 5 with the image present: {time.monotonic() - started:.1f} s")
    try:
        containers = docker_client.containers.list(filters={"label": f"kvctl={name}"})
        assert sorted(c.name for c in containers) == [f"{name}-n{i}" for i in range(1, 6)]

        kvctl("put", "k", "v1")
        assert kvctl("get", "k").stdout.strip() == "v1"
        assert kvctl("cas", "k", "v1", "v2").returncode == 0
        assert kvctl("cas", "k", "v1", "v3", ok=False).returncode == 1
        assert kvctl("get", "k").stdout.strip() == "v2"

        kvctl("kill", "n3")
        assert docker_client.containers.get(f"{name}-n3").status == "exited"
        for i in range(5):
            kvctl.until_ok("put", f"during-{i}", str(i))
        assert kvctl.until_ok("get", "during-4") == "4"
        status = kvctl("status").stdout
        assert "n3" in status and "down" in status
        kvctl("start", "n3")
        assert any("listening" in line for line in kvctl("logs", "n3").stdout.splitlines())

        kvctl("down")
        assert docker_client.containers.list(all=True, filters={"label": f"kvctl={name}"}) == []
        kvctl("up")
        assert kvctl.until_ok("get", "k") == "v2"
        assert kvctl.until_ok("get", "during-2") == "2"
    finally:
        kvctl("down", "--purge", ok=False)
    assert docker_client.volumes.list(filters={"label": f"kvctl={name}"}) == []
