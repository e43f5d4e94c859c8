"""The nemesis against a fake backend: what each fault runs, how faults share nodes, the
catalogue's refusals, and the schedule."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kvctl import nemesis
from kvctl.nemesis import compose, schedule
from kvctl.nemesis.compose import Nemesis
from kvctl.nemesis.firewall import CHAIN
from kvctl.nemesis.netem import Netem
from kvctl.nemesis.partition import Partition
from kvctl.nemesis.process import kill, pause

from .fakes import FakeBackend, spec_of


def context(n: int = 5, seed: int = 1) -> tuple[nemesis.Context, FakeBackend]:
    backend = FakeBackend()
    ctx = nemesis.Context(spec_of(n), backend, seed)
    ctx.leaders = lambda: {0: "n2", 1: "n4"}  # type: ignore[method-assign]
    return ctx, backend


# -- the catalogue ---------------------------------------------------------------------------


def test_clock_is_refused_with_the_reason():
    with pytest.raises(nemesis.NemesisError, match="share the host kernel's one clock"):
        nemesis.parse("partition,clock", "docker")


def test_network_faults_are_refused_on_local_but_all_keeps_the_rest():
    with pytest.raises(nemesis.NemesisError, match="no per-node network"):
        nemesis.parse("kill,partition", "local")
    local = nemesis.parse("all", "local").names
    assert "kill" in local and "pause" in local
    assert "partition" not in local and "netem" not in local
    assert {"partition", "kill", "pause", "netem"} <= set(nemesis.parse("all", "docker").names)


def test_unknown_fault_names_the_known_ones():
    with pytest.raises(nemesis.NemesisError, match="partition-ring"):
        nemesis.parse("partitoin", "docker")


def test_partition_shapes_merge_into_one_fault():
    chosen = nemesis.parse("partition-ring,kill,partition-bridge", "docker")
    assert chosen.names == ["partition", "kill"]
    assert chosen.shapes == ["ring", "bridge"]
    assert nemesis.parse("none", "docker").names == []


def test_all_leaves_out_netem_where_the_kernel_lacks_it():
    ctx, backend = context()
    backend.exec_fails["tc qdisc add"] = "Error: Specified qdisc kind is unknown."
    nem = nemesis.build(nemesis.parse("all", "docker"), ctx)
    assert "netem" not in nem.names and {"partition", "kill", "pause"} <= set(nem.names)
    assert any("netem left out" in note and "no sch_netem" in note for note in nem.notes)
    with pytest.raises(nemesis.NemesisError, match="no sch_netem"):
        nemesis.build(nemesis.parse("netem", "docker"), ctx)


# -- partitions ------------------------------------------------------------------------------


def test_partition_drops_on_receivers_in_our_chain_and_heal_removes_only_it():
    ctx, backend = context()
    value = Partition(ctx, ["one"]).start()
    victim = value["isolated"]
    rules = {node: s for node, s in backend.scripts if "-j DROP" in s}
    assert set(rules) == set(ctx.nodes)
    others = ",".join(n.host for n in ctx.spec.nodes if n.name != victim)
    assert f"-A {CHAIN} -s {others} -j DROP" in rules[victim]
    victim_ip = ctx.spec.node(victim).host
    assert all(victim_ip in s for node, s in rules.items() if node != victim)
    assert all(f"-I INPUT -j {CHAIN}" in s for s in rules.values())
    backend.scripts.clear()
    Partition(ctx).stop()
    heals = [s for _, s in backend.scripts if "-D INPUT" in s]
    assert len(heals) == 5
    assert all(f"-F {CHAIN}" in s and f"-X {CHAIN}" in s and " -F -w" not in s for s in heals)
    assert not any("-F INPUT" in s or s.endswith("-F") for _, s in backend.scripts)


def test_a_frozen_node_is_healed_when_it_comes_back():
    ctx, backend = context()
    part = Partition(ctx, ["halves"])
    nem = Nemesis([part, pause(ctx)], lambda f, v: None)
    part.start()
    backend.paused.add("n3")
    value = part.stop()
    assert any("n3" in m for m in value["missed"])
    assert part.behind == {"n3"}
    backend.scripts.clear()
    backend.paused.discard("n3")
    nem._run(nem.faults[1], "refresh")  # any action refreshes every fault
    assert part.behind == set()
    assert any(node == "n3" and "-D INPUT" in s for node, s in backend.scripts)


def test_iptables_falls_back_to_legacy_when_nft_fails():
    ctx, backend = context(2)

    def exec_(spec, node, argv):
        from kvctl.control.backend import ExecResult

        script = argv[-1]
        backend.scripts.append((node, script))
        if script.startswith("iptables -w -n -L"):
            return ExecResult(1, "Failed to initialize nft: Protocol not supported")
        return ExecResult(0, "")

    backend.exec = exec_  # type: ignore[method-assign]
    Partition(ctx, ["one"]).start()
    drops = [s for _, s in backend.scripts if "-j DROP" in s]
    assert drops and all(s.startswith("{ iptables-legacy ") for s in drops)


# -- kill, pause, netem ----------------------------------------------------------------------


def test_kill_and_pause_never_take_the_same_node():
    ctx, backend = context(3, seed=7)
    k, p = kill(ctx), pause(ctx)
    for _ in range(20):
        killed = k.start()["nodes"]
        paused = p.start()["nodes"] if ctx.free() else []
        assert not set(killed) & set(paused)
        k.stop()
        if paused:
            p.stop()
    assert backend.down == set() and backend.paused == set()
    assert ctx.held == {}


def test_kill_heal_restarts_every_node_that_is_down_even_if_not_ours():
    ctx, backend = context()
    backend.down = {"n2", "n4"}
    value = kill(ctx).heal()
    assert value["nodes"] == ["n2", "n4"]
    assert backend.down == set()


def test_netem_shapes_the_first_device_and_removes_only_netem():
    ctx, backend = context()
    fault = Netem(ctx)
    fault.check()
    value = fault.start()
    shaped = [s for _, s in backend.scripts if "tc qdisc replace" in s]
    assert shaped and all("dev eth0 root netem" in s for s in shaped)
    assert value["nodes"]
    fault.stop()
    removals = [s for _, s in backend.scripts if "tc qdisc del" in s and "grep -q netem" in s]
    assert len(removals) == len(value["nodes"])


# -- composition and schedule ----------------------------------------------------------------


class Flaky:
    """A fault whose start fails every other time."""

    name = "flaky"
    stage = 1

    def __init__(self) -> None:
        self.starts = 0

    def check(self) -> None: ...

    def start(self) -> dict:
        self.starts += 1
        if self.starts % 2 == 0:
            raise nemesis.NemesisError("no luck")
        return {"summary": "flaky on"}

    def stop(self) -> dict:
        return {"summary": "flaky off"}

    def heal(self) -> dict:
        return {"summary": "flaky healed"}

    def refresh(self) -> None: ...


def test_failed_actions_are_recorded_and_the_schedule_goes_on():
    ctx, _ = context()
    events: list[tuple[str, dict]] = []
    nem = Nemesis([Flaky(), kill(ctx)], lambda f, v: events.append((f, v)))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        steps = schedule.plan(nem.names, 0.02, 0.6, seed=3)
        await schedule.run(nem, steps, loop.time())
        await nem.heal()

    asyncio.run(main())
    flaky = [f for f, _ in events if f.endswith("-flaky")]
    assert flaky[:4] == ["start-flaky", "stop-flaky", "start-flaky", "stop-flaky"]
    assert any("error" in v and v["error"] == "no luck" for _, v in events)
    heals = [f for f, _ in events if f.startswith("heal-")]
    assert heals == ["heal-kill", "heal-flaky"], "nodes come back before the network heals"
    assert nem.active == {}


def test_gaps_stay_within_twice_the_interval():
    times: list[float] = []

    class Clock(Flaky):
        def start(self) -> dict:
            times.append(time.monotonic())  # the event loop's clock, read from a thread
            return {}

        def stop(self) -> dict:
            times.append(time.monotonic())
            return {}

    nem = Nemesis([Clock()], lambda f, v: None)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await schedule.run(nem, schedule.plan(nem.names, 0.05, 1.0, seed=5), start)
        return start

    start = asyncio.run(main())
    gaps = [b - a for a, b in zip([start, *times], times, strict=False)]
    assert len(gaps) >= 5
    assert all(g <= 2 * 0.05 + 0.05 for g in gaps)  # 2 x interval, plus the loop's slack
    assert times[-1] <= start + 1.0


def test_a_restarted_node_gets_the_partition_again():
    ctx, backend = context(seed=4)
    part, k = Partition(ctx, ["halves"]), kill(ctx)
    nem = Nemesis([part, k], lambda f, v: None)
    nem._run(part, "start")
    victims = nem._run(k, "start")["nodes"]
    backend.scripts.clear()
    nem._run(k, "stop")  # the nodes restart, with an empty firewall in a container
    again = {node for node, s in backend.scripts if "-j DROP" in s}
    assert again == set(victims)


def test_without_docker_network_faults_become_kill_and_pause_with_a_note():
    assert nemesis.for_local("kill,pause") == ("kill,pause", None)
    faults, note = nemesis.for_local("partition-one,kill,netem")
    assert faults == "kill,pause"
    assert note is not None and "no Docker engine" in note and "partition-one, netem" in note
    assert nemesis.parse(faults, "local").names == ["kill", "pause"]


# -- the same seed, the same faults (B14) ----------------------------------------------------

SEVERAL = ["partition", "kill", "pause"]


def test_a_seed_plans_one_schedule_each_fault_alternating():
    steps = schedule.plan(SEVERAL, 1.0, 60.0, seed=7)
    assert steps == schedule.plan(SEVERAL, 1.0, 60.0, seed=7)
    assert steps != schedule.plan(SEVERAL, 1.0, 60.0, seed=8)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert all(0.0 < s.at < 60.0 for s in steps)
    for name in SEVERAL:
        verbs = [s.verb for s in steps if s.fault == name]
        assert len(verbs) > 10
        assert verbs == ["start", "stop"] * (len(verbs) // 2) + ["start"] * (len(verbs) % 2)


def test_a_fault_plans_the_same_steps_whatever_else_runs():
    alone = schedule.plan(["kill"], 1.0, 60.0, seed=7)
    together = schedule.plan(SEVERAL, 1.0, 60.0, seed=7)
    assert alone == [s for s in together if s.fault == "kill"]


class SlowBackend(FakeBackend):
    """An engine that takes its time with every node verb, as a loaded Docker daemon does."""

    def kill(self, spec, node):
        time.sleep(0.004)
        super().kill(spec, node)

    def pause(self, spec, node):
        time.sleep(0.007)
        super().pause(spec, node)

    def exec(self, spec, node, argv):
        time.sleep(0.001)
        return super().exec(spec, node, argv)


def faults_of_a_run(backend: FakeBackend, seed: int) -> list[tuple[str, dict]]:
    """Run `--nemesis partition,kill,pause` against `backend`; the recorded fault events,
    without how long each took (which every one records)."""
    ctx = nemesis.Context(spec_of(5), backend, seed)
    ctx.leaders = lambda: {0: "n2", 1: "n4"}  # type: ignore[method-assign]
    events: list[tuple[str, dict]] = []
    faults = nemesis.build(nemesis.parse(",".join(SEVERAL), "docker"), ctx)

    def record(f: str, v: dict) -> None:
        assert v.pop("seconds") >= 0
        events.append((f, v))

    nem = faults.compose(record)

    async def main() -> None:
        steps = schedule.plan(nem.names, 0.01, 0.4, seed)
        await schedule.run(nem, steps, asyncio.get_running_loop().time())
        await nem.heal()

    asyncio.run(main())
    return events


def test_the_same_seed_gives_the_same_faults_however_long_actions_take():
    quick = faults_of_a_run(FakeBackend(), seed=11)
    slow = faults_of_a_run(SlowBackend(), seed=11)
    assert len({f for f, _ in quick if f.startswith("start-")}) == 3
    assert quick == slow
    assert quick != faults_of_a_run(FakeBackend(), seed=12)


# -- an action that overstays its limit ------------------------------------------------------


class Hung(Flaky):
    """A fault whose start blocks until released; it notes any two verbs that overlap."""

    name = "hung"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls: list[str] = []
        self.running = 0
        self.overlapped = False

    def _enter(self, verb: str) -> None:
        self.running += 1
        self.overlapped |= self.running > 1
        self.calls.append(verb)

    def start(self) -> dict:
        self._enter("start")
        self.release.wait(10)
        self.running -= 1
        return {"summary": "hung on"}

    def stop(self) -> dict:
        self._enter("stop")
        self.running -= 1
        return {"summary": "hung off"}


def test_a_timed_out_action_stays_visible_and_blocks_the_next(monkeypatch):
    monkeypatch.setattr(compose, "ACTION_TIMEOUT", 0.05)
    fault = Hung()
    events: list[tuple[str, dict]] = []
    nem = Nemesis([fault], lambda f, v: events.append((f, v)))

    async def main() -> None:
        timed_out = await nem.act(fault, "start")
        assert timed_out["timed_out"] and "timed out" in nem.active["hung"]
        skipped = await nem.act(fault, "stop")
        assert "skipped: start hung has not returned" in skipped["error"]
        fault.release.set()
        await nem.act(fault, "stop")

    asyncio.run(main())
    assert fault.calls == ["start", "stop"] and not fault.overlapped
    assert [f for f, _ in events] == ["start-hung", "stop-hung", "start-hung", "stop-hung"]
    late = events[2][1]
    assert late["late"] is True and late["summary"] == "hung on"
    assert nem.active == {}
