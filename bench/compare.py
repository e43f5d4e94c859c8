"""kvctl beside PySyncObj and etcd: one run, the three interleaved, and the ratio table.

    pip install pysyncobj          # Debian's etcd-server for etcd (left out, and said, if absent)
    python3 bench/compare.py --clients 1,16,64,256 --duration 5 --rounds 2

All three clusters (3 nodes each, local processes) stay up for the whole run; at each client
count the three are measured one after the other, in an order that rotates, so the noise of a
shared machine falls on all of them alike. Each round prints one table.

- kvctl: its closed-loop mix (kvctl.bench: 50% read, 40% write, 10% cas over 1,000 keys)
  through one shared Client in this process; durable (fsync before it acknowledges).
- PySyncObj: writes only, driven inside its leader's process (bench/pysyncobj_bench.py, which
  favours it: no client hop); it keeps its log in memory and never fsyncs.
- etcd 3.4: the same mix as kvctl through kvctl.db.etcd's client (its JSON gateway over httpx),
  one client per member, worker i on member i mod 3; durable (fsync every commit).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kvctl.bench import BenchResult, measure, measure_store
from kvctl.client import Client
from kvctl.db import get_db
from kvctl.db.local import LocalCluster
from kvctl.node.server import event_loop

Row = dict[str, Any]  # ops_per_s, p50_ms, p99_ms


def _row(result: BenchResult) -> Row:
    return {"ops_per_s": result.ops_per_s, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}


class PySyncObj:
    """Its cluster in a child process; each measurement is a message to it."""

    name = "PySyncObj"

    def __init__(self) -> None:
        import pysyncobj_bench

        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=pysyncobj_bench.serve, args=(child,))
        self._process.start()
        if not self._conn.recv():
            raise RuntimeError("PySyncObj elected no leader in the driving process")

    async def measure(self, clients: int, duration: float) -> Row:
        self._conn.send((clients, duration))
        return dict(await asyncio.to_thread(self._conn.recv))

    def stop(self) -> None:
        self._conn.send(None)
        self._process.join(10)
        self._process.kill()


class Store:
    """kvctl or etcd as a local cluster (kvctl.db.local), measured through kvctl.bench."""

    def __init__(self, db: str, label: str, root: Path) -> None:
        self.name = label
        self.db = get_db(db)
        self.cluster = LocalCluster(self.db, f"compare-{db}", 3, root / db)
        self.cluster.start_all()

    async def ready(self) -> None:
        await self.db.setup(self.cluster.spec, timeout=60)

    async def measure(self, clients: int, duration: float) -> Row:
        spec = self.cluster.spec
        if self.db.name == "kvctl":
            addresses = {n.name: n.address for n in spec.nodes}
            return _row(await measure(addresses, clients, duration))
        return _row(await measure_store(self.db, spec, clients, duration))

    async def leaders(self) -> str | None:
        """Which node leads each group, for kvctl: on one machine, how the leaders fall
        changes its figures (kvctl.node.placement.leader_priority)."""
        if self.db.name != "kvctl":
            return None
        addresses = {n.name: n.address for n in self.cluster.spec.nodes}
        async with Client(addresses, timeout=10) as client:
            leaders = (await client.topology())["leaders"]
        return ", ".join(f"group {g} {leader}" for g, leader in sorted(leaders.items()))

    def stop(self) -> None:
        self.cluster.stop_all()


def _cell(row: Row | None) -> str:
    if row is None:
        return "-"
    return f"{row['ops_per_s']:,.0f} ({row['p50_ms']:.2f} / {row['p99_ms']:.1f})"


def _ratio(a: Row | None, b: Row | None) -> str:
    if a is None or b is None or not b["ops_per_s"]:
        return "-"
    return f"{a['ops_per_s'] / b['ops_per_s']:.2f}"


def table(names: list[str], rows: dict[int, dict[str, Row]]) -> list[str]:
    """Markdown: ops/s (p50 / p99 ms) per system, and kvctl's ratio to each peer."""
    peers = [n for n in names if n != "kvctl"]
    head = ["clients", *(f"{n} ops/s (p50 / p99 ms)" for n in names)]
    head += [f"kvctl / {n}" for n in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for clients, by_name in rows.items():
        cells = [str(clients), *(_cell(by_name.get(n)) for n in names)]
        cells += [_ratio(by_name.get("kvctl"), by_name.get(n)) for n in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


async def run(systems: list[Any], counts: list[int], duration: float, rounds: int,
              show: Callable[[str], None]) -> None:
    for store in systems:
        ready: Callable[[], Awaitable[None]] | None = getattr(store, "ready", None)
        if ready is not None:
            await ready()
    names = [s.name for s in systems]
    for round_no in range(1, rounds + 1):
        rows: dict[int, dict[str, Row]] = {}
        for i, clients in enumerate(counts):
            turn = (i + round_no) % len(systems)
            for store in systems[turn:] + systems[:turn]:
                rows.setdefault(clients, {})[store.name] = await store.measure(clients, duration)
        show(f"\nround {round_no} of {rounds}, {duration:g} s per cell\n")
        for store in systems:
            if isinstance(store, Store) and (layout := await store.leaders()) is not None:
                show(f"{store.name}'s leaders at the end of the round: {layout}\n")
        for line in table(names, rows):
            show(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,16,64,256")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--without", default="", help="leave out: pysyncobj,etcd")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    without = set(filter(None, args.without.lower().split(",")))
    with tempfile.TemporaryDirectory(prefix="kvctl-compare-") as home:
        root = Path(home)
        systems: list[Any] = [Store("kvctl", "kvctl", root)]
        try:
            if "pysyncobj" not in without:
                try:
                    systems.append(PySyncObj())
                except ImportError:
                    print("PySyncObj left out: pip install pysyncobj", file=sys.stderr)
            if "etcd" not in without:
                if shutil.which("etcd"):
                    systems.append(Store("etcd", "etcd", root))
                else:
                    print("etcd left out: no etcd binary (apt install etcd-server)",
                          file=sys.stderr)
            print("3 nodes each, local processes on this machine; " + ", ".join(
                s.name for s in systems) + " interleaved")
            with event_loop() as runner:  # the clients' loop: uvloop when installed
                runner.run(run(systems, counts, args.duration, args.rounds,
                               lambda line: print(line, flush=True)))
        finally:
            for store in systems:
                store.stop()


if __name__ == "__main__":
    main()
