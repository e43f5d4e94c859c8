"""The power and corrupt faults against a fake backend: what they run on which nodes, in what
order, how they share nodes with other faults, and what they report."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kvctl import nemesis
from kvctl.control.backend import BackendError, ClusterSpec, ExecResult
from kvctl.nemesis.corrupt import Corrupt
from kvctl.nemesis.partition import Partition
from kvctl.nemesis.power import Power
from kvctl.nemesis.process import kill
from tests.harness.fakes import FakeBackend, spec_of

MOUNT = "/data/db"


@dataclass
class LazyBackend(FakeBackend):
    """Answers lazyfs commands as the filesystem would; `refuses` nodes exit when started."""

    argvs: list[tuple[str, list[str]]] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # nodes whose lazyfs command fails
    refuses: set[str] = field(default_factory=set)
    stopping: set[str] = field(default_factory=set)  # answer, then the container stops (137)

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        self.argvs.append((node, argv))
        if node in self.broken:
            return ExecResult(1, "error: no lazy filesystem answers")
        if "crash" in argv:
            lost = {"torn": "--torn" in argv, "lost_bytes": 10, "kept_bytes": 0,
                    "undone_entries": 1, "files": 1}
            return ExecResult(137 if node in self.stopping else 0, json.dumps(lost))
        return ExecResult(0, json.dumps({"file": "wal.log", "mode": "flip", "size": 9,
                                         "offsets": [3]}))

    def kill(self, spec: ClusterSpec, node: str) -> None:
        if node in self.stopping:  # it stopped on its own just as it was killed
            self.down.add(node)
            raise BackendError(f"cannot kill {node}: container is not running")
        super().kill(spec, node)

    def start(self, spec: ClusterSpec, node: str) -> None:
        super().start(spec, node)
        if node in self.refuses:
            self.down.add(node)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A port that accepts connections: the address of every node that starts."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server


def context(n: int = 5, lazy: bool = True, seed: int = 1) -> tuple[nemesis.Context, LazyBackend]:
    spec = spec_of(n)
    if lazy:
        spec.extra["lazyfs"] = MOUNT
    backend = LazyBackend()
    ctx = nemesis.Context(spec, backend, seed)
    ctx.leaders = lambda: {0: "n2"}  # type: ignore[method-assign]
    return ctx, backend


def test_disk_faults_are_named_only_and_need_docker() -> None:
    assert not {"power", "corrupt"} & set(nemesis.parse("all", "docker").names)
    assert nemesis.needs_lazyfs(nemesis.parse("kill,power", "docker"))
    assert not nemesis.needs_lazyfs(nemesis.parse("all", "docker"))
    with pytest.raises(nemesis.NemesisError, match="docker backend only"):
        nemesis.parse("corrupt", "local")


def test_a_cluster_on_a_plain_disk_is_refused_with_the_reason() -> None:
    ctx, _ = context(lazy=False)
    with pytest.raises(nemesis.NemesisError, match=r"plain disk.*SYS_ADMIN"):
        Power(ctx).check()
    with pytest.raises(nemesis.NemesisError, match="plain disk"):
        Corrupt(ctx).check()


def test_power_cuts_the_disk_before_the_kill_and_restarts_on_stop() -> None:
    ctx, backend = context()
    power = Power(ctx)
    power.check()
    value = power.start()
    nodes = value["nodes"]
    assert [node for node, _ in backend.argvs] == nodes
    assert all(argv[:6] == ["python3", "-m", "kvctl.lazyfs", "crash", "--wait", "30"]
               and argv[-1] == MOUNT for _, argv in backend.argvs)
    assert backend.calls == [("kill", node) for node in nodes]
    assert {ctx.held[node] for node in nodes} == {"power"}
    assert f"{10 * len(nodes)} unsynced bytes" in value["summary"]
    power.stop()
    assert backend.calls[len(nodes):] == [("start", node) for node in nodes]
    assert not ctx.held and not backend.down


def test_power_hits_a_minority_a_majority_or_every_node() -> None:
    sizes: dict[str, set[int]] = {}
    torn = set()
    for seed in range(60):
        ctx, backend = context(seed=seed)
        power = Power(ctx)
        power.check()
        value = power.start()
        sizes.setdefault(value["targets"], set()).add(len(value["nodes"]))
        torn |= {"--torn" in argv for _, argv in backend.argvs}
    assert sizes == {"minority": {1, 2}, "majority": {3, 4, 5}, "all": {5}}
    assert torn == {True, False}


def test_power_leaves_nodes_another_fault_holds() -> None:
    ctx, _ = context(n=3)
    killer = kill(ctx)
    killer.start()
    taken = set(ctx.held)
    power = Power(ctx)
    power.check()
    for _ in range(10):
        value = power.start()
        assert not taken & set(value["nodes"])
        power.stop()


def test_a_node_whose_disk_cannot_be_cut_is_still_killed_and_the_error_recorded() -> None:
    ctx, backend = context(n=1)
    backend.broken.add("n1")
    power = Power(ctx)
    power.check()
    value = power.start()
    assert value["errors"]["n1"].startswith("exit 1")
    assert "failed on n1" in value["summary"]
    assert ("kill", "n1") in backend.calls


def test_a_node_that_stops_as_it_is_cut_is_no_failure() -> None:
    ctx, backend = context(n=1)
    backend.stopping.add("n1")
    power = Power(ctx)
    power.check()
    value = power.start()
    assert "errors" not in value and value["disks"]["n1"]["lost_bytes"] == 10
    assert ctx.held == {"n1": "power"}


def listening_corrupt(
    listening: socket.socket,
) -> tuple[nemesis.Context, LazyBackend, Corrupt]:
    """The corrupt fault on five nodes whose restarts find `listening` answering."""
    ctx, backend = context()
    host, port = listening.getsockname()
    for node in ctx.spec.nodes:
        node.host, node.port = host, port
    corrupt = Corrupt(ctx)
    corrupt.check()
    return ctx, backend, corrupt


def test_corrupt_damages_a_data_file_and_reports_who_refused_to_start(
    listening: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves: list[tuple[str, list[str]]] = []

    def move_out(ctx: nemesis.Context, node: str, candidates: list[str]) -> list:
        moves.append((node, candidates))
        return [(3, ["n9", "n4", "n5"])]

    monkeypatch.setattr("kvctl.nemesis.corrupt.move_out", move_out)
    ctx, backend, corrupt = listening_corrupt(listening)
    value = corrupt.start()
    nodes = value["nodes"]
    assert 1 <= len(nodes) <= 2
    for _, argv in backend.argvs:
        assert argv[3] == "corrupt" and argv[argv.index("--file") + 1] == "wal.log"
        assert argv[argv.index("--mode") + 1] in ("flip", "truncate")
    assert "wal.log (1 bits flipped)" in value["summary"]
    backend.refuses.add(nodes[0])
    stopped = corrupt.stop()
    assert stopped["refused"] == [nodes[0]]
    assert ctx.held == {nodes[0]: "corrupt"}  # no other fault picks a node that cannot start
    assert f"refused to start: {nodes[0]}" in stopped["summary"]
    # repaired as the README says: its replicas move to nodes no fault holds
    assert moves == [(nodes[0], [n for n in ctx.nodes if n != nodes[0]])]
    assert f"{nodes[0]}'s replicas moved (group 3 to n9,n4,n5)" in stopped["summary"]


def test_a_refused_node_whose_replicas_cannot_move_says_so(
    listening: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repair that fails (the network is cut, say) is tried again at the heal, which comes
    after the partitions' heal."""
    network_cut = [True]

    def move_out(ctx: nemesis.Context, node: str, candidates: list[str]) -> list:
        if network_cut[0]:
            raise nemesis.NemesisError("membership change failed: no leader")
        return [(1, ["n9"])]

    monkeypatch.setattr("kvctl.nemesis.corrupt.move_out", move_out)
    _, backend, corrupt = listening_corrupt(listening)
    victim = corrupt.start()["nodes"][0]
    backend.refuses.add(victim)
    stopped = corrupt.stop()
    assert stopped["repaired"] == {
        victim: "could not be moved (tried again at the heal): membership change failed: "
        "no leader"
    }
    assert corrupt.stage > Partition.stage
    with pytest.raises(nemesis.NemesisError, match="not repaired yet"):
        corrupt.start()  # a second damaged node could be a majority of one group's replicas
    network_cut[0] = False
    healed = corrupt.heal()
    assert healed["repaired"] == {victim: "moved (group 1 to n9)"}
    assert corrupt.heal().get("repaired") is None  # done once, not at every heal


def test_only_a_lazy_node_container_gets_fuse_and_sys_admin() -> None:
    from kvctl.control.docker import node_process

    plain = node_process(["kvctl-node", "node", "--name", "n1"], "vol", lazy=False)
    assert plain["cap_add"] == ["NET_ADMIN"] and "devices" not in plain
    assert plain["command"] == ["kvctl-node", "node", "--name", "n1"]
    lazy = node_process(["kvctl-node", "node", "--name", "n1"], "vol", lazy=True)
    assert set(lazy["cap_add"]) == {"NET_ADMIN", "SYS_ADMIN"}
    assert lazy["devices"] == ["/dev/fuse:/dev/fuse:rwm"]
    assert lazy["command"][:4] == ["python3", "-m", "kvctl.lazyfs", "run"]
    assert lazy["command"][-4:] == ["--", "kvctl-node", "node", "--name", "n1"][-4:]
    assert lazy["volumes"] == {"vol": {"bind": "/disk", "mode": "rw"}}


@pytest.mark.parametrize(("faults", "lazy"), [("power,kill", True), ("corrupt", True),
                                              ("kill,partition", False)])
def test_a_run_puts_its_nodes_on_the_lazy_filesystem_only_for_disk_faults(
    faults: str, lazy: bool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvctl import runner

    asked: list[bool | None] = []

    def provision(new, **options):
        asked.append(options.get("lazyfs"))
        raise BackendError("no cluster in this test")

    monkeypatch.setenv("KVCTL_HOME", str(tmp_path))
    monkeypatch.setattr(runner, "provision", provision)
    with pytest.raises(runner.Refused, match="no cluster in this test"):
        runner.run_test(runner.TestOptions(backend="docker", nemesis=faults), lambda text: None)
    assert asked == [lazy]


def test_corrupt_never_loses_more_nodes_for_good_than_a_minority(
    listening: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every victim refuses to start and stays out: over any number of rounds at most two of
    five nodes are lost, and then the fault says why it takes no more."""
    monkeypatch.setattr("kvctl.nemesis.corrupt.move_out", lambda ctx, node, candidates: [])
    ctx, backend, corrupt = listening_corrupt(listening)
    backend.refuses.update(ctx.nodes)
    for _ in range(6):
        try:
            corrupt.start()
        except nemesis.NemesisError as exc:
            assert "would leave no majority" in str(exc)
            continue
        corrupt.stop()
    lost = [node for node, fault in ctx.held.items() if fault == "corrupt"]
    assert len(lost) == 2


def test_corrupt_damages_one_node_at_a_time() -> None:
    """On five nodes with three replicas every two nodes share a group: two damaged at once
    would be a majority of its replicas."""
    for seed in range(40):
        ctx, _ = context(seed=seed)
        corrupt = Corrupt(ctx)
        corrupt.check()
        how, nodes = corrupt.targets()
        assert len(nodes) == 1 and how in ("one", "leader")
