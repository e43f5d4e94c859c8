"""`kvctl up --db X` starts that store, and get/put/cas speak to it."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from kvctl.cli import main


@pytest.mark.docker
@pytest.mark.slow
def test_up_put_get_cas_down_on_etcd(docker_client, tmp_path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    runner = CliRunner()
    name = f"kvtest-{uuid.uuid4().hex[:6]}"
    up = runner.invoke(main, ["up", "--db", "etcd", "--nodes", "3", "--name", name,
                              "--backend", "docker"])
    try:
        assert up.exit_code == 0, up.output
        assert runner.invoke(main, ["put", "k", "v1"]).output.strip() == "ok"
        assert runner.invoke(main, ["get", "k"]).output.strip() == "v1"
        swapped = runner.invoke(main, ["cas", "k", "v1", "v2"])
        assert (swapped.exit_code, swapped.output.strip()) == (0, "swapped")
        assert runner.invoke(main, ["cas", "k", "v1", "v3"]).exit_code == 1
        assert runner.invoke(main, ["get", "k"]).output.strip() == "v2"
    finally:
        runner.invoke(main, ["down", "--purge"])


def test_up_refuses_a_read_mode_the_store_lacks(tmp_path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["up", "--db", "redis", "--read-mode", "stale",
                                       "--backend", "local"])
    assert result.exit_code == 2
    assert "redis has no read mode 'stale'" in result.output


@pytest.mark.slow
def test_bench_measures_another_store_through_its_own_client(tmp_path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["bench", "--db", "etcd", "--clients", "2",
                                       "--duration", "1", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert row["clients"] == 2 and row["ops"] > 0 and row["errors"] == 0
