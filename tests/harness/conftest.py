"""Fixtures for the harness tests: Docker clusters, Chromium, a private $KVCTL_HOME.

Docker and Chromium tests skip on a developer's machine that lacks them, but fail under
CI=true: CI is where the harness must be proven against real containers and a real browser.
Clusters are named `kvtest-h...`, so the container tests' cleanup finds them too.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import pytest

from kvctl.control.backend import BackendError


def need(what: str, problem: str | None) -> None:
    """Skip locally, fail under CI, when something a test needs is missing."""
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so this test must run, but {what}: {problem}")
    pytest.skip(f"{what}: {problem}")


@pytest.fixture
def docker_engine() -> None:
    from kvctl.control.docker import connect

    try:
        connect()
    except BackendError as exc:
        need("a Docker engine", str(exc))


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need("Chromium", None if path else "not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
def cluster_name() -> str:
    return f"kvtest-h{secrets.token_hex(3)}"


@pytest.fixture
def kvctl_home(tmp_path, monkeypatch) -> Iterator[str]:
    """A private $KVCTL_HOME and working directory (the store lands in it)."""
    home = tmp_path / "home"
    monkeypatch.setenv("KVCTL_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    yield str(home)
