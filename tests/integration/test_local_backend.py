"""The local backend keeps the Backend protocol's promises, with real node processes."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.control.local import LocalBackend
from tests.harness.backend_contract import check_verbs

pytestmark = pytest.mark.slow


def test_node_verbs_are_idempotent_and_answer_alike(local_cluster):
    spec, backend = local_cluster
    check_verbs(backend, spec, "n3")


def test_up_leaves_its_argument_alone_and_listens_on_loopback(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path / "home"))
    asked = ClusterSpec("mine", "local", [NodeSpec("n1", "", 0)])
    before = copy.deepcopy(asked)
    backend = LocalBackend()
    spec = backend.up(asked)
    try:
        assert asked == before
        assert spec.backend == "local" and spec.nodes[0].port > 0
        node_dir = tmp_path / "home" / "nodes" / "n1"
        argv = _argv_once_running((node_dir / "pid").read_text(), node_dir / "output.log")
        assert argv[argv.index(b"--listen") + 1] == f"127.0.0.1:{spec.nodes[0].port}".encode()
    finally:
        backend.down(spec, purge=True)


def _argv_once_running(pid: str, output: Path, deadline_s: float = 10.0) -> list[bytes]:
    """The node's command line, read once it shows one (an exited node shows none: then
    its output says why)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"--listen" in argv:
            return argv
        time.sleep(0.05)
    raise AssertionError(f"node {pid} shows no command line: {output.read_text()[-2000:]}")
