"""The register workload: read, write and cas over independent keys, recorded as it runs.

- `concurrency` logical processes, each with one operation outstanding at a time, each bound
  to one node's client (process p to node p mod n, as Jepsen binds workers to nodes): a
  process sees the cluster as its node does, so a node cut off from the majority serves its
  processes whatever it has, and a read mode that trusts the local copy is caught. Each
  invocation names its node (`"node"`, beside the history's own fields).
- Values are unique per key (1, 2, 3, ... and never the initial "absent"), so a read names
  the one write it saw and the checker's constraint graph can explain a violation.
- A key takes at most `ops_per_key` operations, then a fresh key replaces it: each key's
  history stays small enough to check, however long the run.
- Every operation is written to the history as an invocation and a completion: ok, fail (a
  read or write that surely did not happen, or a cas whose comparison failed) or info
  (unknown; also a cas that was refused, see `invoke`). A process whose operation ends in
  info may still have it in flight, so it retires and a fresh process id takes its place
  (Jepsen's rule).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
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


class Keys:
    """The live keys, each with the operations it has left; exhausted keys are replaced."""

    def __init__(self, live: int, ops_per_key: int, prefix: str, rng: random.Random) -> None:
        self.ops_per_key = ops_per_key
        self.prefix = prefix
        self.rng = rng
        self.used: list[str] = []
        self._left: dict[str, int] = {}
        for _ in range(live):
            self._fresh()

    def _fresh(self) -> None:
        key = f"{self.prefix}{len(self.used)}"
        self.used.append(key)
        self._left[key] = self.ops_per_key

    def take(self) -> str:
        key = self.rng.choice(sorted(self._left))
        self._left[key] -= 1
        if self._left[key] == 0:
            del self._left[key]
            self._fresh()
        return key


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
        live = max(1, math.ceil(options.concurrency / 3))
        self.keys = Keys(live, options.ops_per_key, options.prefix, rng)
        self.counts: Counter[str] = Counter()  # completions by type, for the progress line
        self._values: Counter[str] = Counter()
        self._latest: dict[str, Any] = {}
        self._processes = 0
        self._pacer = Pacer(options.rate)

    def _process(self) -> int:
        self._processes += 1
        return self._processes - 1

    async def run(self, deadline: float) -> None:
        """Run every process until `deadline` (the event loop's clock)."""
        await asyncio.gather(*(self._worker(deadline) for _ in range(self.options.concurrency)))

    async def _worker(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        process = self._process()
        while True:
            await self._pacer.wait()
            if loop.time() >= deadline:
                return
            f, key, value = self._next_op()
            if await self.invoke(process, f, key, value) == "info":
                process = self._process()

    def _next_op(self) -> tuple[str, str, Any]:
        key = self.keys.take()
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
        node, client = self.clients[process % len(self.clients)]
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
        """Read every key the run used until each read succeeds; the keys left unread."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        for key in self.keys.used:
            queue.put_nowait(key)
        unread: list[str] = []

        async def reader() -> None:
            loop = asyncio.get_running_loop()
            process = self._process()
            while not queue.empty():
                key = queue.get_nowait()
                while True:
                    if loop.time() >= deadline:
                        unread.append(key)
                        break
                    kind = await self.invoke(process, "read", key, None)
                    if kind == "ok":
                        break
                    if kind == "info":
                        process = self._process()
                    await asyncio.sleep(FINAL_RETRY)

        await asyncio.gather(*(reader() for _ in range(self.options.concurrency)))
        return unread
