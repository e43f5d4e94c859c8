from __future__ import annotations

import asyncio

import pytest

from kvctl.control.backend import ClusterSpec, NodeSpec, load_spec, save_spec
from kvctl.control.local import LocalBackend
from kvctl.control.ready import wait_until_serving


@pytest.fixture
def local_cluster(tmp_path, monkeypatch):
    """Three node processes on loopback, in a private $KVCTL_HOME; stopped afterwards."""
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path / "home"))
    spec = ClusterSpec("it", "local", [NodeSpec(f"n{i}", "", 0) for i in (1, 2, 3)])
    backend = LocalBackend()
    spec = backend.up(spec)
    save_spec(spec)
    try:
        wait_until_serving(addresses(spec), 30)
        yield spec, backend
    finally:  # the spec a test grew, and the saved one (which the supervisor grows)
        saved = load_spec()
        for grown in (spec, saved):
            if grown is not None:
                backend.down(grown)
        backend.down(spec, purge=True)


def addresses(spec: ClusterSpec) -> dict[str, str]:
    return {n.name: n.address for n in spec.nodes}


def run(coro):
    return asyncio.run(coro)
