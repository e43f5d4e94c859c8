"""The register workload against an in-memory register that fails and times out on purpose."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict

from kvctl.checker import check
from kvctl.client import Failed, Indeterminate
from kvctl.history import History
from kvctl.workload import Options, RegisterWorkload


class FlakyStore:
    """Linearizable: each operation takes effect at one instant, or not at all. Some answers
    are lost (Indeterminate, whether or not it took effect), some refused (Failed)."""

    def __init__(self, rng: random.Random) -> None:
        self.data: dict[str, object] = {}
        self.rng = rng

    async def _op(self, key, apply):
        await asyncio.sleep(self.rng.uniform(0, 0.002))
        roll = self.rng.random()
        if roll < 0.05:
            raise Failed("refused")
        result = apply() if roll > 0.08 or self.rng.random() < 0.5 else None
        await asyncio.sleep(self.rng.uniform(0, 0.002))
        if roll < 0.08:
            raise Indeterminate("answer lost")
        return result

    async def read(self, key):
        return await self._op(key, lambda: self.data.get(key))

    async def write(self, key, value):
        return await self._op(key, lambda: self.data.__setitem__(key, value))

    async def cas(self, key, old, new):
        def swap():
            if self.data.get(key) != old:
                return False
            self.data[key] = new
            return True

        return await self._op(key, swap)


class StuckOn(FlakyStore):
    """A flaky store on which every operation on one key hangs (until the caller gives up)."""

    def __init__(self, rng: random.Random, stuck: str) -> None:
        super().__init__(rng)
        self.stuck = stuck

    async def _op(self, key, apply):
        if key == self.stuck:
            await asyncio.Event().wait()
        return await super()._op(key, apply)


def run(options: Options, seconds: float, seed: int = 1, store: FlakyStore | None = None):
    rng = random.Random(seed)
    events: list[dict] = []

    def record(**fields):
        fields = {"index": len(events), **fields}
        events.append(fields)
        return fields

    store = store or FlakyStore(rng)  # one register, seen through three "nodes"
    workload = RegisterWorkload({"n1": store, "n2": store, "n3": store}, record, options, rng)

    async def main():
        loop = asyncio.get_running_loop()
        await workload.run(loop.time() + seconds)
        main_phase = len(events)
        unread = await workload.final_reads(loop.time() + 5)
        return main_phase, unread

    main_phase, unread = asyncio.run(main())
    return workload, events, main_phase, unread


def test_history_is_well_formed_bounded_and_linearizable():
    workload, events, main_phase, unread = run(Options(concurrency=6, ops_per_key=20), 0.6)
    assert unread == []
    homes = {(e["process"], e["node"]) for e in events if e["type"] == "invoke"}
    assert {p % 3 for p, node in homes if node == "n2"} == {1}, "process p is bound to node p % 3"
    invokes = [e for e in events[:main_phase] if e["type"] == "invoke"]
    per_key = Counter(e["key"] for e in invokes)
    assert len(per_key) > 3, "the workload moved on to fresh keys"
    assert max(per_key.values()) <= 20
    written = defaultdict(list)
    for e in invokes:
        if e["f"] == "write":
            written[e["key"]].append(e["value"])
        elif e["f"] == "cas":
            written[e["key"]].append(e["value"][1])
    assert all(len(v) == len(set(v)) and None not in v for v in written.values()), "unique"
    final = [e for e in events[main_phase:] if e["type"] == "ok"]
    assert {e["key"] for e in final} == set(workload.keys.used)
    assert all(e["f"] == "read" for e in final)
    result = check(History.from_events(events), budget=10, full=True)
    assert result.valid is True, result.explanation


def test_a_process_retires_after_an_unknown_outcome():
    _, events, _, _ = run(Options(concurrency=4, ops_per_key=50), 0.6, seed=2)
    infos = [e for e in events if e["type"] == "info"]
    assert infos, "the flaky store lost some answers"
    for info in infos:
        process = info["process"]
        later = [e for e in events if e["index"] > info["index"] and e["process"] == process]
        assert later == [], f"process {process} went on after an info"
    fails = [e for e in events if e["type"] == "fail"]
    assert any(e.get("error") == "not applied: refused" for e in fails)
    assert all(e.get("error") == "the comparison failed" for e in fails if e["f"] == "cas")
    assert any(e["f"] == "cas" and e.get("error") == "not applied: refused" for e in infos)


def test_rate_limits_invocations_over_all_processes():
    _, events, main_phase, _ = run(Options(concurrency=8, rate=100), 0.5, seed=3)
    invokes = sum(1 for e in events[:main_phase] if e["type"] == "invoke")
    assert 35 <= invokes <= 60, invokes


def test_each_group_of_workers_has_a_key_of_its_own():
    options = Options(concurrency=7, ops_per_key=15, per_key=2)
    _, events, main_phase, _ = run(options, 0.6, seed=4)
    invokes = [e for e in events[:main_phase] if e["type"] == "invoke"]
    groups_of_key = defaultdict(set)
    nodes_of_worker = defaultdict(set)
    for e in invokes:
        worker = e["process"] % 7
        groups_of_key[e["key"]].add(worker // 2)
        nodes_of_worker[worker].add(e["node"])
    assert all(len(groups) == 1 for groups in groups_of_key.values()), groups_of_key
    assert {g for groups in groups_of_key.values() for g in groups} == {0, 1, 2, 3}
    assert all(nodes == {f"n{w % 3 + 1}"} for w, nodes in nodes_of_worker.items()), \
        "a worker stays on its node through its processes"
    assert any(e["process"] >= 7 for e in invokes), "some worker went on as a fresh process"


def test_a_key_that_cannot_be_served_stalls_only_its_own_group():
    options = Options(concurrency=6, ops_per_key=1000, per_key=2, timeout=0.1)
    stuck = StuckOn(random.Random(5), "k0")  # group 0's first key
    _, events, main_phase, _ = run(options, 0.6, seed=5, store=stuck)
    done = [e for e in events[:main_phase] if e["type"] != "invoke"]
    on_stuck = [e for e in done if e["key"] == "k0"]
    assert on_stuck and all(e["type"] == "info" for e in on_stuck)
    assert {e["process"] % 6 for e in on_stuck} == {0, 1}
    others = Counter(e["process"] % 6 // 2 for e in done if e["type"] == "ok")
    assert others[1] > 20 and others[2] > 20, others


def test_the_clients_of_a_run_give_each_operation_the_timeout_asked_for():
    from kvctl import runner
    from kvctl.control.backend import ClusterSpec, NodeSpec

    spec = ClusterSpec("c", "local", [NodeSpec(f"n{i}", "127.0.0.1", i) for i in (1, 2)])

    async def timeouts():
        async with runner._clients(spec, 1.5) as clients:
            return {name: client.timeout for name, client in clients.items()}

    assert asyncio.run(timeouts()) == {"n1": 1.5, "n2": 1.5}
