"""The node image itself: what is in it, that it is reused, and that a bad base is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cluster_helpers import TEST_LABEL
from docker.client import DockerClient

from kvctl.control.image import (
    BuildProgress,
    ImageError,
    base_tag,
    ensure_base,
    ensure_node_image,
)

pytestmark = pytest.mark.docker


def run(client: DockerClient, image: str, command: list[str], **options: object) -> str:
    output = client.containers.run(
        image, command, remove=True, labels={TEST_LABEL: "1"}, stderr=True, **options
    )
    return output.decode()


def test_node_runs_on_python_with_its_two_modules(
    docker_client: DockerClient, node_image: str
) -> None:
    assert "Usage: kvctl" in run(docker_client, node_image, ["kvctl", "--help"])
    assert "node" in run(docker_client, node_image, ["kvctl", "node", "--help"])
    versions = run(
        docker_client,
        node_image,
        ["python3", "-c", "import sys, msgpack, click; print(sys.version_info >= (3, 11))"],
    )
    assert versions.strip() == "True"


def test_image_is_lean(docker_client: DockerClient, node_image: str) -> None:
    """No pip, no harness: the node runs offline on what Debian packages give it."""
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('pip', 'docker', 'paramiko', 'rich') if u.find_spec(m)])"
    )
    assert run(docker_client, node_image, ["python3", "-c", probe]).strip() == "[]"
    assert docker_client.images.get(node_image).attrs["Size"] < 200 * 2**20


def test_iptables_needs_and_gets_only_net_admin(
    docker_client: DockerClient, node_image: str
) -> None:
    rule = ["sh", "-c", "iptables -A INPUT -s 10.9.9.9 -j DROP && iptables -S INPUT"]
    assert "-A INPUT -s 10.9.9.9/32 -j DROP" in run(
        docker_client, node_image, rule, cap_add=["NET_ADMIN"]
    )
    container = docker_client.containers.run(
        node_image, rule, detach=True, labels={TEST_LABEL: "1"}
    )
    try:
        assert container.wait(timeout=30)["StatusCode"] != 0
    finally:
        container.remove(force=True)


def test_present_image_is_reused_without_a_build(
    docker_client: DockerClient, node_image: str
) -> None:
    before = docker_client.images.get(node_image).id
    started = time.monotonic()
    assert ensure_node_image(docker_client) == node_image
    assert time.monotonic() - started < 2.0
    assert docker_client.images.get(node_image).id == before


def test_a_configured_base_present_locally_is_used(
    docker_client: DockerClient, node_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_client.images.get(base_tag()).tag("kvtest-base", "copy")
    try:
        monkeypatch.setenv("KVCTL_BASE_IMAGE", "kvtest-base:copy")
        assert ensure_base(docker_client, BuildProgress(quiet=True), False) == "kvtest-base:copy"
    finally:
        docker_client.images.remove("kvtest-base:copy")


def test_a_configured_base_that_cannot_be_pulled_falls_back_to_ours(
    docker_client: DockerClient, node_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KVCTL_BASE_IMAGE", "localhost:1/kvtest-nowhere:1")  # nothing listens
    assert ensure_base(docker_client, BuildProgress(quiet=True), False) == base_tag()


@pytest.fixture
def broken_base(docker_client: DockerClient, node_image: str) -> Iterator[str]:
    """The base image without Python: what a wrong KVCTL_BASE_IMAGE would look like."""
    container = docker_client.containers.run(
        base_tag(),
        ["sh", "-c", "rm -f /usr/bin/python3*"],
        detach=True,
        labels={TEST_LABEL: "1"},
    )
    container.wait(timeout=30)
    image = container.commit(repository="kvtest-broken-base", tag="latest")
    container.remove(force=True)
    yield "kvtest-broken-base:latest"
    remove_image_tree(docker_client, image.id)


def remove_image_tree(client: DockerClient, image_id: str) -> None:
    """An image and the build cache on top of it (a failed build leaves its steps there)."""
    for child in client.images.list(all=True):
        if child.attrs.get("Parent") == image_id:
            remove_image_tree(client, child.id)
    client.images.remove(image_id, force=True, noprune=True)


@pytest.mark.slow
def test_a_base_without_python_fails_the_build_clearly(
    docker_client: DockerClient, broken_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KVCTL_BASE_IMAGE", broken_base)
    with pytest.raises(ImageError, match=r"the base image lacks: python3>=3\.11"):
        ensure_node_image(docker_client, BuildProgress(quiet=True))
