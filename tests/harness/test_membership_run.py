"""`kvctl test --nemesis membership`: groups move between nodes while the workload runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def kvctl_test(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kvctl test --backend local ARGS` in its own directory and $KVCTL_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "kvctl", "test", "--backend", "local", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KVCTL_HOME": str(tmp_path / "home")},
    )


def test_membership_and_kill_on_local_processes_come_out_valid(tmp_path: Path) -> None:
    done = kvctl_test(
        tmp_path, "--nodes", "5", "--nemesis", "membership,kill", "--time-limit", "20",
        "--nemesis-interval", "3", "--concurrency", "6",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    latest = tmp_path / "store" / "latest"
    assert json.loads((latest / "results.json").read_text())["valid"] is True
    events = [json.loads(line) for line in (latest / "history.jsonl").read_text().splitlines()]
    changes = [e for e in events if e["process"] == "nemesis" and "membership" in e["f"]]
    assert any(e["type"] == "info" and e["value"].get("plan") for e in changes), changes


def test_membership_needs_more_nodes_than_replicas(tmp_path: Path) -> None:
    done = kvctl_test(tmp_path, "--nodes", "3", "--nemesis", "membership", "--time-limit", "5")
    assert done.returncode == 255
    assert "more nodes than the replication factor" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
