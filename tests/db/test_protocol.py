"""The DB protocol without servers: registry, error kinds, plans and the files they write."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kvctl.client import Failed, Indeterminate
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import DATABASES, READ_MODES, DBError, NodePlan, db_of, fail, get_db
from kvctl.db.launch import write_files
from kvctl.node import errors


def spec(nodes: int = 3, read_mode: str = "linearizable") -> ClusterSpec:
    return ClusterSpec(
        "kvtest", "docker",
        [NodeSpec(f"n{i}", f"10.0.0.{10 + i}", 7400) for i in range(1, nodes + 1)],
        read_mode=read_mode,
    )


def test_every_store_is_registered_under_its_own_name():
    assert [get_db(name).name for name in DATABASES] == list(DATABASES)


def test_a_cluster_names_its_store_and_an_old_cluster_is_kvctl():
    cluster = spec()
    assert db_of(cluster).name == "kvctl"
    cluster.extra["db"] = "nats"
    assert db_of(cluster).name == "nats"


def test_an_unknown_store_is_refused_with_the_choices():
    with pytest.raises(DBError, match=r"unknown store 'mongo'.*etcd"):
        get_db("mongo")


def test_a_fault_a_store_cannot_take_is_refused_with_the_reason():
    get_db("kvctl").check_faults(["partition", "membership"])
    with pytest.raises(DBError, match=r"etcd cannot take the membership fault: .*member"):
        get_db("etcd").check_faults(["partition", "membership"])
    with pytest.raises(DBError, match=r"redis cannot take the corrupt fault: .*kvctl's own"):
        get_db("redis").check_faults(["kill", "corrupt"])


@pytest.mark.parametrize("name", ["etcd", "nats"])
def test_etcd_and_nats_take_power_but_not_corrupt_which_knows_only_kvctls_files(name):
    get_db(name).check_faults(["power", "kill", "partition"])
    with pytest.raises(DBError, match=rf"{name} cannot take the corrupt fault: .*kvctl's own"):
        get_db(name).check_faults(["power", "corrupt"])
    with pytest.raises(DBError, match=r"redis cannot take the power fault: .*not been tried"):
        get_db("redis").check_faults(["power"])


def test_a_read_mode_a_store_lacks_is_refused():
    get_db("nats").check_read_mode("leader")
    with pytest.raises(DBError, match="redis has no read mode 'stale'"):
        get_db("redis").check_read_mode("stale")


@pytest.mark.parametrize(
    ("op", "error", "outcome"),
    [
        ("write", errors.TEMPORARILY_UNAVAILABLE, Failed),
        ("write", errors.TIMEOUT, Indeterminate),
        ("cas", errors.CRASH, Indeterminate),
        ("cas", errors.PRECONDITION_FAILED, Failed),
        ("read", errors.TIMEOUT, Failed),  # a read changes nothing
    ],
)
def test_an_error_ends_as_the_registry_says(op, error, outcome):
    with pytest.raises(outcome, match=error.name):
        fail(op, error, "detail")


def test_a_plan_survives_the_command_line():
    plan = NodePlan({"/d/a.conf": "x 'y' \"z\"\n"}, [["srv", "--flag", "a b"]])
    assert NodePlan.from_arg(plan.to_arg()) == plan


def test_etcd_members_start_as_one_new_cluster_with_peers_on_the_next_port():
    cluster = spec()
    (argv,) = get_db("etcd").plan(cluster, cluster.nodes[1], "/data").processes
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--name"] == "n2"
    assert flags["--listen-client-urls"] == "http://10.0.0.12:7400"
    assert flags["--initial-advertise-peer-urls"] == "http://10.0.0.12:7401"
    assert flags["--initial-cluster"] == (
        "n1=http://10.0.0.11:7401,n2=http://10.0.0.12:7401,n3=http://10.0.0.13:7401"
    )
    assert flags["--initial-cluster-state"] == "new"


def test_redis_replicas_follow_the_first_node_and_a_majority_of_sentinels_fails_it_over():
    cluster = spec(5)
    db = get_db("redis")
    first = db.plan(cluster, cluster.nodes[0], "/data")
    fourth = db.plan(cluster, cluster.nodes[3], "/data")
    assert "replicaof" not in first.files["/data/redis/redis.conf"]
    assert "replicaof 10.0.0.11 7400\n" in fourth.files["/data/redis/redis.conf"]
    sentinel = fourth.files["/data/sentinel/sentinel.conf"]
    assert "port 7401\n" in sentinel
    assert "sentinel monitor kv 10.0.0.11 7400 3\n" in sentinel
    assert [argv[0] for argv in fourth.processes] == ["redis-server", "redis-sentinel"]


def test_nats_servers_route_to_every_other_server_with_jetstream_on():
    cluster = spec()
    (argv,) = get_db("nats").plan(cluster, cluster.nodes[0], "/data").processes
    routes = argv[argv.index("--routes") + 1]
    assert routes == "nats://10.0.0.12:7401,nats://10.0.0.13:7401"
    assert "--jetstream" in argv
    assert argv[argv.index("--name") + 1] == "n1"


def test_kvctl_runs_its_node_command_unchanged():
    cluster = spec()
    node = cluster.nodes[0]
    command = get_db("kvctl").command(cluster, node, "/data/db")
    assert command == ["kvctl-node", *cluster.node_argv(node, "/data/db")]


def test_kvctl_runs_as_one_local_process_and_the_others_through_the_launcher():
    cluster = spec()
    node = cluster.nodes[0]
    kvctl = get_db("kvctl").local_command(cluster, node, "/d")
    argv = cluster.node_argv(node, "/d", listen_host=node.host)
    assert kvctl == [sys.executable, "-m", "kvctl", *argv]
    nats = get_db("nats").local_command(cluster, node, "/d")
    assert nats[:3] == [sys.executable, "-m", "kvctl.db.launch"]
    assert NodePlan.from_arg(nats[3]) == get_db("nats").plan(cluster, node, "/d")


def test_other_stores_run_their_plan_through_the_launcher():
    cluster = spec()
    command = get_db("etcd").command(cluster, cluster.nodes[0], "/data")
    assert command[:4] == ["kvctl-run", "python3", "-m", "kvctl.db.launch"]
    assert NodePlan.from_arg(command[4]) == get_db("etcd").plan(cluster, cluster.nodes[0], "/data")


def test_files_are_written_once_so_a_store_may_rewrite_its_own(tmp_path):
    path = tmp_path / "sentinel" / "sentinel.conf"
    write_files({str(path): "first\n"})
    path.write_text("rewritten by the store\n")
    write_files({str(path): "first\n"})
    assert path.read_text() == "rewritten by the store\n"


def test_the_launcher_ends_the_node_when_any_process_ends(tmp_path):
    """A node is one unit: the long-lived process is stopped when its partner exits."""
    plan = NodePlan({}, [["sleep", "60"], ["sh", "-c", "exit 3"]])
    done = subprocess.run(
        [sys.executable, "-m", "kvctl.db.launch", plan.to_arg()],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 3
    assert "sh ended (exit 3)" in done.stdout


def test_the_command_line_offers_every_stores_read_modes():
    offered = {mode for name in DATABASES for mode in get_db(name).read_modes}
    assert offered == set(READ_MODES)
