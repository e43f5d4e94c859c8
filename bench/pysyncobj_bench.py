"""PySyncObj, the Python Raft library, measured the way kvctl's bench measures itself.

A reference point for `kvctl bench`, run on the same machine in the same session:

    pip install pysyncobj
    python3 bench/pysyncobj_bench.py --clients 1,16,64,256 --duration 5
    kvctl bench --clients 1,16,64,256 --duration 5

Three PySyncObj processes on loopback replicate a dict; the load runs inside the leader's
process (PySyncObj's own benchmark does the same, which favours it: no client network hop),
C requests outstanding, each completion issuing the next, `set` of a 16-byte value over
1,000 keys. PySyncObj keeps its log in memory and never fsyncs; kvctl fsyncs every batch.
Entries are sent at once (appendEntriesUseBatch=False), its fastest setting at low load.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import socket
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType

from pysyncobj import SyncObj, SyncObjConf, replicated


class KV(SyncObj):
    def __init__(self, me: str, partners: list[str], eager: bool = False) -> None:
        # The driving node times out first, so it becomes the leader.
        timeouts = (0.4, 0.5) if eager else (3.0, 4.0)
        conf = SyncObjConf(
            appendEntriesUseBatch=False,
            dynamicMembershipChange=False,
            raftMinTimeout=timeouts[0],
            raftMaxTimeout=timeouts[1],
            connectionTimeout=max(3.5, timeouts[1]),
        )
        super().__init__(me, partners, conf)
        self.data: dict[str, str] = {}

    @replicated
    def set(self, key: str, value: str) -> None:
        self.data[key] = value


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class _Counter(logging.Handler):
    """Counts PySyncObj's "truncating already-applied log entries" warnings (the safety
    smell in shared/notes/consensus-anchors.md 4.3) instead of printing thousands."""

    truncations = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "truncating already-applied" in record.getMessage():
            _Counter.truncations += 1


def _quiet() -> None:
    root = logging.getLogger()
    root.handlers = [_Counter()]
    root.setLevel(logging.WARNING)


def _follower(me: str, partners: list[str], stop: EventType) -> None:
    _quiet()
    KV(me, partners)
    stop.wait()


def _measure(kv: KV, clients: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    stop_at = time.perf_counter() + duration
    rng = random.Random(1)
    outstanding = [clients]

    def issue() -> None:
        began = time.perf_counter()

        def callback(result: object, error: object) -> None:
            now = time.perf_counter()
            with lock:
                if error == 0:
                    latencies.append(now - began)
                if now < stop_at:
                    issue()
                else:
                    outstanding[0] -= 1
                    if outstanding[0] == 0:
                        done.set()

        kv.set(f"k{rng.randrange(1000)}", "v" * 16, callback=callback)

    for _ in range(clients):
        issue()
    done.wait(duration + 30)
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "clients": clients,
        "ops_per_s": round(len(latencies) / duration),
        "p50_ms": round(q(0.5), 2),
        "p99_ms": round(q(0.99), 2),
        "truncation_warnings_at_leader": _Counter.truncations,
    }


def start() -> KV:
    """A 3-node cluster on loopback (two follower processes); the leader, in this process."""
    _quiet()
    addrs = [f"127.0.0.1:{p}" for p in _free_ports(3)]
    stop = multiprocessing.Event()
    others = [
        multiprocessing.Process(
            target=_follower, args=(a, [b for b in addrs if b != a], stop), daemon=True
        )
        for a in addrs[1:]
    ]
    for p in others:
        p.start()
    kv = KV(addrs[0], addrs[1:], eager=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            kv.set("warm-up", "x", sync=True, timeout=1)
        except Exception:  # PySyncObj raises its own types until a leader commits
            continue
        if kv._isLeader():
            break
    return kv


def serve(conn: Connection) -> None:
    """For bench/compare.py: measure each (clients, duration) received, until None."""
    kv = start()
    conn.send(kv._isLeader())
    while (job := conn.recv()) is not None:
        conn.send(_measure(kv, *job))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,16,64,256")
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    kv = start()
    print(f"pysyncobj, 3 nodes, load inside the leader: {kv._isLeader()}, no fsync")
    for count in [int(c) for c in args.clients.split(",")]:
        print(json.dumps(_measure(kv, count, args.duration)))


if __name__ == "__main__":
    main()
