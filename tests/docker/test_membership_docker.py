"""Membership at run time on containers: a node joins, n1 leaves, every key stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cluster_helpers import Kvctl, cluster_name
from docker.client import DockerClient

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_add_node_then_remove_n1_leaves_three_members_and_every_key(
    docker_client: DockerClient, node_image: str, tmp_path: Path
) -> None:
    kvctl = Kvctl(tmp_path)
    name = cluster_name()
    kvctl("up", "--nodes", "3", "--name", name)
    try:
        for i in range(20):
            kvctl("put", f"k{i}", f"v{i}")
        kvctl("add-node")
        assert docker_client.containers.get(f"{name}-n4").status == "running"
        kvctl("remove-node", "n1")
        status = json.loads(kvctl("status", "--json").stdout)
        members = {n["name"]: n for n in status["nodes"] if n["member"]}
        assert sorted(members) == ["n2", "n3", "n4"]
        assert all(n["up"] for n in members.values())
        assert all("n1" not in g["members"] and g["config"] >= 1 for g in status["groups"])
        assert docker_client.containers.get(f"{name}-n1").status == "exited"
        for i in range(20):
            assert kvctl.until_ok("get", f"k{i}") == f"v{i}"
        kvctl("put", "after", "yes")
        assert kvctl("get", "after").stdout.strip() == "yes"
    finally:
        kvctl("down", "--purge", ok=False)
