"""Fixtures for tests against real containers: the engine, the node image, and cleanup.

Without an engine these tests skip on a developer's machine, but fail under CI=true: CI is
where the container story must be proven, so a missing engine there is an error, not a pass.
Everything the tests create is named `kvtest-...` (clusters) or labelled `kvctl.test`
(helper containers and networks), and is removed before and after the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cluster_helpers import remove_test_objects
from docker.client import DockerClient

from kvctl.control.backend import BackendError
from kvctl.control.docker import connect
from kvctl.control.image import BuildProgress, ensure_node_image


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    try:
        client = connect()
    except BackendError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the container tests must run, but: {err}")
        pytest.skip(str(err))
    remove_test_objects(client)
    yield client
    remove_test_objects(client)


@pytest.fixture(scope="session")
def node_image(docker_client: DockerClient) -> str:
    """The node image, built once per session (from nothing if need be: ~35 s)."""
    return ensure_node_image(docker_client, BuildProgress(quiet=True))
