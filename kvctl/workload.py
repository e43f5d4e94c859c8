"""The register workload: read, write and cas over independent keys, recorded as it runs.

- `concurrency` workers, each with one operation outstanding at a time, each bound to one
  node's client (worker w to node w mod n, as Jepsen binds workers to nodes): a worker sees
  the cluster as its node does, so a node cut off from the majority serves its processes
  whatever it has, and a read mode that trusts the local copy is caught. Each invocation
  names its node (`"node"`, beside the history's own fields).
- Workers form groups of `per_key`, and each group works on a key of its own (Jepsen's
  independent concurrent generator): a key whose replication group cannot serve stalls only
  the workers on it, and each key sees at most `per_key` operations at once, so its history
  stays fast to check.
- Values are unique per key (1, 2, 3, ... and never the initial "absent"), so a read names
  the one write it saw and the checker's constraint graph can explain a violation.
- A key takes at most `ops_per_key` operations, then its group moves to a fresh key: each
  key's history stays small enough to check, however long the run.
- Every operation is written to the history as an invocation and a completion: ok, fail (a
  read or write that surely did not happen, or a cas whose comparison failed) or info
  (unknown; also a cas that was refused, see `invoke`). A process whose operation ends in
  info may still have it in flight, so it retires and its worker goes on as a fresh process
  (Jepsen's rule: worker w's processes are w, w + concurrency, w + 2 x concurrency, ...).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kvctl.client import Failed, Indeterminate

MIX = (("read", 0.4), ("write", 0.3), ("cas", 0.3))
FINAL_RETRY = 0.2  # seconds between final reads of a key that failed


class KV(Protocol):
    """What the workload needs of a client (kvctl.client.Client has it)."""

    async def read(self, key: Any) -> Any: ...

    async def write(self, key: Any, value: Any) -> None: ...

    async def cas(self, key: Any, old: Any, new: Any) -> bool: ...


Record = Callable[..., dict[str, Any]]


@dataclass
class Options:
    concurrency: int = 10
    ops_per_key: int = 100
    rate: float | None = None  # operations per second over all processes; None: as fast as it goes
    prefix: str = "k"  # key names: <prefix><n>; a fresh prefix per run keeps keys fresh
    timeout: float = 10.0  # a call that outlives the client's own deadline by this is info
    per_key: int = 2  # workers that share a key

    @property
    def groups(self) -> int:
        return -(-self.concurrency // self.per_key)


class Keys:
    """Each group's key, with the operations it has left; an exhausted key is replaced by a
    fresh one for its group."""

    def __init__(self, groups: int, ops_per_key: int, prefix: str) -> None:
        self.ops_per_key = ops_per_key
        self.prefix = prefix
        self.used: list[str] = []
        self._current = [self._fresh() for _ in range(groups)]
        self._left = [ops_per_key] * groups

    def _fresh(self) -> str:
        key = f"{self.prefix}{len(self.used)}"
        self.used.append(key)
        return key

    def take(self, group: int) -> str:
        if self._left[group] == 0:
            self._current[group], self._left[group] = self._fresh(), self.ops_per_key
        self._left[group] -= 1
        return self._current[group]


class Pacer:
    """Spaces invocations `1/rate` apart over every process together."""

    def __init__(self, rate: float | None) -> None:
        self.gap = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.gap:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self.gap
        if slot > now:
            await asyncio.sleep(slot - now)


class RegisterWorkload:
    """Drives a client with the register workload and records every operation."""

    def __init__(self, clients: Mapping[str, KV], record: Record, options: Options,
                 rng: random.Random) -> None:
        self.clients = list(clients.items())  # (node, its client)
        self.record = record  # writes one history event: record(process=..., type=..., ...)
        self.options = options
        self.rng = rng
        self.keys = Keys(options.groups, options.ops_per_key, options.prefix)
        self.counts: Counter[str] = Counter()  # completions by type, for the progress line
        self._values: Counter[str] = Counter()
        self._latest: dict[str, Any] = {}
        self._process = list(range(options.concurrency))  # each worker's current process
        self._pacer = Pacer(options.rate)

    def _retire(self, worker: int) -> None:
        """The worker goes on as a fresh process: its last one may still have an op in flight."""
        self._process[worker] += self.options.concurrency

    async def run(self, deadline: float) -> None:
        """Run every worker until `deadline` (the event loop's clock)."""
        await asyncio.gather(*(self._worker(w, deadline) for w in range(self.options.concurrency)))

    async def _worker(self, worker: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._pacer.wait()
            if loop.time() >= deadline:
                return
            f, key, value = self._next_op(worker // self.options.per_key)
            if await self.invoke(self._process[worker], f, key, value) == "info":
                self._retire(worker)

    def _next_op(self, group: int) -> tuple[str, str, Any]:
        key = self.keys.take(group)
        f = self.rng.choices([f for f, _ in MIX], [w for _, w in MIX])[0]
        if f == "read":
            return f, key, None
        self._values[key] += 1
        new = self._values[key]
        if f == "write":
            return f, key, new
        return f, key, [self._latest.get(key), new]

    async def invoke(self, process: int, f: str, key: str, value: Any) -> str:
        """One operation: record the invocation, call, record the completion; its type."""
        node, client = self.clients[process % self.options.concurrency % len(self.clients)]
        self.record(process=process, type="invoke", f=f, key=key, value=value, node=node)
        error = None
        try:
            call = self._call(client, f, key, value)
            result = await asyncio.wait_for(call, self.options.timeout)
        except Failed as exc:
            # A failed cas in the history means "the comparison failed", which the checker
            # reads as evidence about the value; one that was never applied says nothing about
            # it, so it is recorded as unknown: weaker, but never a false alarm.
            kind, error = ("info" if f == "cas" else "fail"), f"not applied: {exc}"
        except Indeterminate as exc:
            kind, error = "info", str(exc)
        except TimeoutError:
            kind, error = "info", f"no answer in {self.options.timeout:.0f} s"
        except Exception as exc:  # a client bug: outcome unknown, the test goes on
            kind, error = "info", f"client crashed: {exc!r}"
        else:
            kind = "ok"
            if f == "cas" and not result:
                kind, error = "fail", "the comparison failed"
            elif f == "read":
                value = result
        if kind == "ok":
            self._latest[key] = value[1] if f == "cas" else value
        extra = {"error": error} if error else {}
        self.record(process=process, type=kind, f=f, key=key, value=value, **extra)
        self.counts[kind] += 1
        return kind

    @staticmethod
    async def _call(client: KV, f: str, key: str, value: Any) -> Any:
        if f == "read":
            return await client.read(key)
        if f == "write":
            return await client.write(key, value)
        return await client.cas(key, value[0], value[1])

    async def final_reads(self, deadline: float) -> list[str]:
        """Read every key the run used until one read of it succeeds; the keys left unread.

        A worker stays on its node (its processes are bound there), so a key whose read fails
        goes back in line for the next worker free: a key is read through another node when
        its first reader's node stays down."""
        waiting = deque(self.keys.used)
        unread = set(self.keys.used)

        async def reader(worker: int) -> None:
            loop = asyncio.get_running_loop()
            while unread and loop.time() < deadline:
                if not waiting:  # the rest are in other readers' hands
                    await asyncio.sleep(FINAL_RETRY)
                    continue
                key = waiting.popleft()
                kind = await self.invoke(self._process[worker], "read", key, None)
                if kind == "ok":
                    unread.discard(key)
                    continue
                if kind == "info":
                    self._retire(worker)
                waiting.append(key)
                await asyncio.sleep(FINAL_RETRY)

        await asyncio.gather(*(reader(w) for w in range(self.options.concurrency)))
        return [key for key in self.keys.used if key in unread]
