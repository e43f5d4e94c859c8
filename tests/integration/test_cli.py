"""The CLI as a user types it, in a fresh directory: exit codes and messages, no tracebacks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest


def kvctl(cwd, *args, check=False):
    done = subprocess.run(
        [sys.executable, "-m", "kvctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_commands_without_a_cluster_say_how_to_start_one(tmp_path):
    done = kvctl(tmp_path, "get", "k")
    assert done.returncode == 1
    assert "kvctl up" in done.stderr


def test_bad_node_options_are_clear(tmp_path):
    done = kvctl(tmp_path, "node", "--name", "x", "--data-dir", "d", "--cluster", "y=h")
    assert done.returncode == 2 and "'h' is not HOST:PORT" in done.stderr


@pytest.mark.slow
def test_up_put_get_cas_status_down(tmp_path):
    up = kvctl(tmp_path, "up", "--backend", "local", "--nodes", "3", check=True)
    try:
        assert "serving" in up.stdout
        assert kvctl(tmp_path, "put", "greeting", "hello", check=True).stdout.strip() == "ok"
        assert kvctl(tmp_path, "get", "greeting", check=True).stdout.strip() == "hello"
        assert kvctl(tmp_path, "cas", "greeting", "hello", "bye").returncode == 0
        assert kvctl(tmp_path, "cas", "greeting", "hello", "again").returncode == 1
        assert kvctl(tmp_path, "get", "nothing").returncode == 1
        status = json.loads(kvctl(tmp_path, "status", "--json", check=True).stdout)
        assert [n["up"] for n in status["nodes"]] == [True, True, True]
        assert all(g["leader"] in ("n1", "n2", "n3") for g in status["groups"])
        assert kvctl(tmp_path, "kill", "n9").returncode == 1
        kvctl(tmp_path, "kill", "n2", check=True)
        status = json.loads(kvctl(tmp_path, "status", "--json", check=True).stdout)
        assert [n["up"] for n in status["nodes"]] == [True, False, True]
        assert kvctl(tmp_path, "get", "greeting", check=True).stdout.strip() == "bye"
        kvctl(tmp_path, "start", "n2", check=True)
        kvctl(tmp_path, "down", check=True)
        kvctl(tmp_path, "up", check=True)  # same directory: the same cluster, data kept
        assert kvctl(tmp_path, "get", "greeting", check=True).stdout.strip() == "bye"
    finally:
        kvctl(tmp_path, "down", "--purge")
    assert not (tmp_path / ".kvctl" / "cluster.json").exists()


@pytest.mark.slow
def test_a_test_stopped_by_sigterm_takes_its_cluster_down_and_keeps_its_history(tmp_path):
    """A CI timeout or `timeout` sends SIGTERM: the test ends as after Ctrl-C, not with its
    nodes left running and its history lost."""
    test = subprocess.Popen(
        [sys.executable, "-m", "kvctl", "test", "--backend", "local", "--nodes", "3",
         "--nemesis", "none", "--time-limit", "120", "--store", "store"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert test.stdout is not None
        output = []
        for line in test.stdout:  # ends if the test exits first: then the asserts say why
            output.append(line)
            if " left " in line:  # the workload runs
                break
        test.send_signal(signal.SIGTERM)
        rest, _ = test.communicate(timeout=120)
    finally:
        test.kill()
    text = "".join(output) + rest
    assert "Traceback" not in text, text
    assert "the test stopped: interrupted" in text, text
    assert test.returncode == 255 and "verdict: UNKNOWN" in text, text  # cut short
    assert (tmp_path / "store" / "register" / "latest" / "history.jsonl").exists()
    status = kvctl(tmp_path, "status")
    assert status.returncode != 0 and "kvctl up" in status.stderr, status.stdout
