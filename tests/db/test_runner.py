"""`kvctl test --db X`: the runner refuses what a store cannot take before anything starts,
and runs the workload, faults and checker against the store a test names."""

from __future__ import annotations

import json
import uuid

import pytest

from kvctl import runner
from kvctl.control.backend import load_spec
from kvctl.runner import Refused, run_test

Options = runner.TestOptions  # under another name, so pytest does not take it for tests


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (Options(db="etcd", nemesis="kill,membership"),
         "etcd cannot take the membership fault"),
        (Options(db="redis", nemesis="kill", read_mode="stale"),
         "redis has no read mode 'stale'"),
        (Options(db="mongo", nemesis="kill"), "unknown store 'mongo'"),
    ],
)
def test_what_a_store_cannot_do_is_refused_before_a_cluster_starts(options, reason, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path / "home"))
    options.backend, options.store = "local", tmp_path / "store"
    with pytest.raises(Refused, match=reason):
        run_test(options, say=lambda text: None)
    assert load_spec() is None


@pytest.mark.docker
@pytest.mark.slow
def test_a_short_etcd_run_under_partitions_is_valid(docker_client, tmp_path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path / "home"))
    options = Options(db="etcd", backend="docker", nodes=3, nemesis="partition",
                          interval=2.0, time_limit=10.0, recovery=20.0,
                          cluster=f"kvtest-{uuid.uuid4().hex[:6]}", store=tmp_path / "store")
    finished = run_test(options, say=lambda text: None)
    test = json.loads(finished.run.file("test.json").read_text())
    assert (test["db"], test["read_mode"]) == ("etcd", "linearizable")
    assert finished.results["valid"] is True, finished.results.get("explanation")
    assert finished.results.get("crashed") is None
