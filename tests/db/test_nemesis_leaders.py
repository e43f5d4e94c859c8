"""The nemesis finds another store's leader through that store (kvctl/db), so a partition
or a kill aimed at "the leader" hits it."""

from __future__ import annotations

import pytest

from kvctl.control.local import LocalBackend
from kvctl.nemesis.fault import Context


@pytest.mark.slow
def test_the_nemesis_asks_an_etcd_cluster_for_its_leader(local_cluster):
    cluster = local_cluster("etcd")
    context = Context(cluster.spec, LocalBackend())
    leaders = context.leaders()
    assert list(leaders) == [0]
    assert leaders[0] in {"n1", "n2", "n3"}
    assert context.topology() == {}  # no kvctl groups to report
