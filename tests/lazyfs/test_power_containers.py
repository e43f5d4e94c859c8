"""`kvctl test --nemesis power` on real containers: kvctl's store comes out valid, and a store
that acknowledges before it fsyncs is caught. `--nemesis corrupt`: a node whose log has flipped
bits refuses to start, naming the file and offset, and the run stays valid.

The careless store is made here, never in the product: a sitecustomize.py copied into each
node container turns os.fsync and os.fdatasync into no-ops, so the node acknowledges what only
the page cache holds. Each test uses its own $KVCTL_HOME and a cluster of its own, which it
takes down (with its volumes) whatever happens.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvctl.control.backend import BackendError, ClusterSpec, NodeSpec
from kvctl.control.docker import DockerBackend, connect
from kvctl.control.provision import provision
from tests.harness.test_runner import kvctl_test

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = "6"  # its first power cut takes every node, about 4 s into the run
CARELESS = "import os\n\nos.fsync = os.fdatasync = lambda fd: None  # acknowledge, never sync\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    try:
        connect()
    except BackendError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the container tests must run, but: {exc}")
        pytest.skip(str(exc))
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def lazy_cluster(home: Path) -> Iterator[ClusterSpec]:
    """Five nodes on the lazy filesystem, each restarted once: the files a node creates are
    then named durably (their directory is not synced by the store, which the first power cut
    of a node's first life would otherwise undo), so only unsynced data is at stake."""
    name = f"kvlz-{secrets.token_hex(3)}"  # kvtest-...: removed by any docker test session
    nodes = [NodeSpec(f"n{i}", "", 0) for i in range(1, 6)]
    spec, _ = provision(lambda: ClusterSpec(name, "docker", nodes), backend="docker",
                        timeout=120, say=lambda text: None, lazyfs=True)
    backend = DockerBackend()
    try:
        for node in spec.nodes:
            backend.kill(spec, node.name)
            backend.start(spec, node.name)
        yield spec
    finally:
        backend.down(spec, purge=True)


def container_ids(spec: ClusterSpec) -> list[str]:
    client = connect()
    return [client.containers.get(node.extra["container"]).id for node in spec.nodes]


def make_careless(spec: ClusterSpec) -> None:
    """Copy the no-fsync sitecustomize into every node and restart it, so it takes effect."""
    data = CARELESS.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("sitecustomize.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    client, backend = connect(), DockerBackend()
    for node in spec.nodes:
        client.containers.get(node.extra["container"]).put_archive(
            "/opt/kvctl/lib", archive.getvalue()
        )
        backend.kill(spec, node.name)
        backend.start(spec, node.name)


def power_test(home: Path) -> tuple[subprocess.CompletedProcess[str], dict, list[dict]]:
    return kvctl_test("--nemesis", "power", "--nemesis-interval", "5", "--time-limit", "20",
                      "--seed", SEED, cwd=home)


def power_cuts(history: list[dict]) -> list[dict]:
    return [e["value"] for e in history if e["process"] == "nemesis" and e["f"] == "start-power"]


def acknowledged_before_the_first_cut(history: list[dict]) -> int:
    """Writes (and cas) answered ok before the first power cut was over: what it could lose."""
    cut = next(e["time"] for e in history if e["process"] == "nemesis" and e["f"] == "start-power")
    return sum(1 for e in history if e["type"] == "ok" and e["f"] in ("write", "cas")
               and e["time"] < cut)


def test_kvctl_loses_nothing_it_acknowledged_when_power_is_cut(
    home: Path, lazy_cluster: ClusterSpec
) -> None:
    done, results, history = power_test(home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results["valid"] is True
    cuts = power_cuts(history)
    assert cuts and cuts[0]["targets"] == "all" and "errors" not in cuts[0]
    assert acknowledged_before_the_first_cut(history) > 0


def test_a_store_that_acknowledges_before_it_fsyncs_is_caught(
    home: Path, lazy_cluster: ClusterSpec
) -> None:
    make_careless(lazy_cluster)
    careless = container_ids(lazy_cluster)
    done, results, history = power_test(home)
    assert container_ids(lazy_cluster) == careless, "recreated (new code?): the hook is gone"
    assert done.returncode == 1, done.stdout + done.stderr
    assert results["valid"] is False
    cuts = power_cuts(history)
    assert cuts[0]["targets"] == "all"
    assert sum(d.get("lost_bytes", 0) for d in cuts[0]["disks"].values()) > 0


def test_a_node_with_flipped_bits_refuses_to_start_and_the_rest_serve(home: Path) -> None:
    name = f"kvlz-{secrets.token_hex(3)}"
    try:
        # seed 3: bits flip in n3's log 5.6 s in, it restarts at 14 s, and nothing else happens
        done, results, history = kvctl_test("--nemesis", "corrupt", "--nemesis-interval", "8",
                                            "--seed", "3", "--cluster-name", name, cwd=home)
    finally:
        subprocess.run([sys.executable, "-m", "kvctl", "down", "--purge"], cwd=home,
                       capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results["valid"] is True
    events = {e["f"]: e["value"] for e in history if e["process"] == "nemesis"}
    assert events["start-corrupt"]["disks"]["n3"]["mode"] == "flip"
    assert events["stop-corrupt"]["refused"] == ["n3"]
    log = (home / "store" / "latest" / "nodes" / "n3" / "node.log").read_text()
    assert "refusing to start: /data/db/wal.log: corrupt record at byte offset" in log
