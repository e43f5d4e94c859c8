"""kvctl beside the other stores kvctl tests, measured the way `kvctl bench` measures kvctl.

Each store runs 3 nodes as local processes on this machine (kvctl.db.local, the same plans
its containers run), one store at a time, and takes the closed-loop mix of kvctl.bench (50%
read, 40% write, 10% cas over 1,000 keys) at each client count:

    python3 bench/stores_bench.py --db kvctl,etcd --clients 1,16,64,256 --duration 10

kvctl is driven through its one shared Client (as `kvctl bench` does); another store through
its own client, one per node, worker i on node i mod 3. Both durable: kvctl fsyncs every batch,
etcd every commit, Redis its append-only file every second, NATS as JetStream does by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from kvctl.bench import BenchResult, measure, measure_store
from kvctl.db import DATABASES, get_db
from kvctl.db.local import LocalCluster


async def bench_store(name: str, root: Path, nodes: int, counts: list[int],
                      duration: float) -> list[BenchResult]:
    db = get_db(name)
    cluster = LocalCluster(db, f"bench-{name}", nodes, root)
    cluster.start_all()
    try:
        await db.setup(cluster.spec, timeout=60)
        results = []
        for count in counts:
            if name == "kvctl":
                addresses = {n.name: n.address for n in cluster.spec.nodes}
                results.append(await measure(addresses, count, duration))
            else:
                results.append(await measure_store(db, cluster.spec, count, duration))
        return results
    finally:
        cluster.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="kvctl,etcd", help=f"comma list of {DATABASES}")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", default="1,16,64,256")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    names = args.db.split(",")
    for name in names:
        if name not in DATABASES:
            parser.error(f"unknown store {name!r}: choose among {', '.join(DATABASES)}")
    if not args.json:
        print(f"{args.nodes} nodes each, local processes, {args.duration:.0f} s per row")
        print(f"{'store':>6} {'clients':>8} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as root:
            results = asyncio.run(bench_store(name, Path(root), args.nodes, counts,
                                              args.duration))
        for r in results:
            if args.json:
                print(json.dumps({"db": name, **r.as_dict()}))
            else:
                print(f"{name:>6} {r.clients:>8} {r.ops_per_s:>9.0f} {r.p50_ms:>8.2f} "
                      f"{r.p99_ms:>8.2f} {r.errors:>7}", flush=True)


if __name__ == "__main__":
    main()
