"""Every node loses power at least once a run: the power fault spreads its cuts over the starts
the schedule gives it, keeps each share what it says it is, draws the same cuts from the same
seed, and says which nodes never lost power when it could not reach them."""

from __future__ import annotations

import asyncio

import pytest

from kvctl.nemesis import Nemesis, schedule
from kvctl.nemesis.power import Power, coverage_line, share_sizes
from kvctl.nemesis.process import kill
from tests.lazyfs.test_faults import context

SEEDS = range(150)


def planned_run(seed: int, nodes: int = 5, interval: float = 10.0,
                duration: float = 60.0) -> tuple[Power, list[dict]]:
    """Power alone through the schedule of a run, as the runner plans it; each start's value."""
    ctx, _ = context(n=nodes, seed=seed)
    power = Power(ctx)
    power.check()
    steps = schedule.plan(["power"], interval, duration, seed)
    power.planned(sum(1 for s in steps if s.verb == "start"))
    starts = []
    for step in steps:
        value = getattr(power, step.verb)()
        if step.verb == "start":
            starts.append(value)
    return power, starts


@pytest.mark.parametrize("nodes", [3, 5])
def test_every_node_loses_power_in_every_planned_run(nodes: int) -> None:
    for seed in SEEDS:
        power, starts = planned_run(seed, nodes)
        coverage = power.coverage()
        assert coverage["never"] == [], (seed, starts)
        assert sum(coverage["losses"].values()) == sum(len(v["nodes"]) for v in starts)


def test_each_share_is_what_it_says_and_every_share_is_drawn() -> None:
    seen: dict[str, set[int]] = {}
    for seed in SEEDS:
        _, starts = planned_run(seed)
        for value in starts:
            low, high = share_sizes(value["targets"], 5)
            assert low <= len(value["nodes"]) <= high, value
            seen.setdefault(value["targets"], set()).add(len(value["nodes"]))
    assert seen == {"minority": {1, 2}, "majority": {3, 4, 5}, "all": {5}}


def test_the_same_seed_cuts_the_same_nodes_in_the_same_way() -> None:
    for seed in (3, 17):
        first = [(v["targets"], v["nodes"]) for v in planned_run(seed)[1]]
        again = [(v["targets"], v["nodes"]) for v in planned_run(seed)[1]]
        assert first == again
    assert planned_run(3)[1] != planned_run(17)[1]


def test_without_a_plan_nodes_not_yet_cut_still_go_first() -> None:
    for seed in range(40):
        ctx, _ = context(seed=seed)
        power = Power(ctx)
        power.check()
        for _ in range(4):
            uncut = {n for n in ctx.nodes if not power.losses[n]}
            nodes = set(power.start()["nodes"])
            assert nodes <= uncut or uncut <= nodes, "a cut node went before an uncut one"
            power.stop()


def test_a_node_another_fault_holds_all_run_is_named_as_never_losing_power() -> None:
    ctx, _ = context(n=3, seed=2)
    held = kill(ctx)
    held.start()
    (taken,) = ctx.held
    power = Power(ctx)
    power.check()
    power.planned(2)
    for _ in range(2):
        power.start()
        power.stop()
    coverage = power.coverage()
    assert coverage["never"] == [taken]
    assert coverage["losses"][taken] == 0
    assert f"NEVER lost power: {taken}" in coverage_line(coverage)


def test_a_cut_that_failed_on_a_node_is_not_counted_as_power_lost() -> None:
    ctx, backend = context(n=3, seed=4)
    backend.broken.add("n2")
    power = Power(ctx)
    power.check()
    power.planned(1)
    value = power.start()
    assert value["nodes"] == ["n1", "n2", "n3"]  # one start left for three nodes: all of them
    assert power.coverage() == {"losses": {"n1": 1, "n2": 0, "n3": 1}, "never": ["n2"]}


def test_the_schedule_tells_power_how_many_starts_it_has() -> None:
    ctx, _ = context(seed=9)
    power = Power(ctx)
    power.check()
    steps = schedule.plan(["power"], 0.002, 0.02, 9)
    starts = sum(1 for s in steps if s.verb == "start")
    assert starts >= 2

    async def run() -> None:
        async with Nemesis([power], lambda f, v: None) as nemesis:
            await schedule.run(nemesis, steps, asyncio.get_running_loop().time())

    asyncio.run(run())
    assert power.starts_left == 0
    assert power.coverage()["never"] == []
    assert "every node lost power at least once" in coverage_line(power.coverage())
