"""provision knows which store a saved cluster runs, and waits for it the store's own way."""

from __future__ import annotations

import pytest

from kvctl.control.backend import BackendError, ClusterSpec, NodeSpec, save_spec
from kvctl.control.provision import provision


def saved_cluster(db: str) -> ClusterSpec:
    spec = ClusterSpec("kvtest", "local", [NodeSpec("n1", "127.0.0.1", 1)], extra={"db": db})
    save_spec(spec)
    return spec


def test_a_saved_cluster_of_another_store_is_refused_before_anything_starts(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    saved_cluster("etcd")
    with pytest.raises(BackendError, match="has store etcd, not kvctl: `kvctl down --purge`"):
        provision(lambda: saved_cluster("kvctl"), backend=None, timeout=1, say=print,
                  db="kvctl")


def test_a_saved_cluster_from_before_stores_is_kvctl(tmp_path, monkeypatch):
    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    save_spec(ClusterSpec("kvtest", "local", [NodeSpec("n1", "127.0.0.1", 1)]))
    with pytest.raises(BackendError, match="has store kvctl, not redis"):
        provision(lambda: saved_cluster("redis"), backend=None, timeout=1, say=print,
                  db="redis")
