"""Simulated clients: the register workload, recorded in kvctl's history format.

Each logical process has one operation outstanding. It retries an unanswered or "unknown"
request with the same (client id, seq) on another node, which the state machine dedupes;
when its deadline passes it records the operation as info (indeterminate) and retires, and a
fresh process with a fresh client id takes its place, as Jepsen does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvctl.node.core import FAIL, OK
from kvctl.sim.world import World

ATTEMPT_MS = 300
DEADLINE_MS = 1500
BACKOFF_MS = 20


@dataclass
class _Op:
    f: str
    key: str
    value: Any
    seq: int
    invoked: int
    attempts: set[int] = field(default_factory=set)
    unanswered: set[int] = field(default_factory=set)
    definite_fail_only: bool = True


class SimClients:
    def __init__(self, world: World, count: int, keys: list[str]) -> None:
        self.world = world
        self.keys = keys
        self.history: list[dict[str, Any]] = []
        self.proposed: set[tuple[int, int]] = set()  # (client id, seq) ever sent
        self._written: dict[str, list[Any]] = {k: [] for k in keys}
        self._next_value = 0
        self._next_process = 0
        self._next_req = 0
        self._ops: dict[int, _Op | None] = {}  # process -> its outstanding op
        self._client_id: dict[int, int] = {}
        self._req_owner: dict[int, int] = {}  # request id -> process
        # Each process learns leaders on its own, as separate clients would: one that has not
        # heard of a new leader still goes to the old one.
        self._leader_hint: dict[tuple[int, str], str] = {}
        self.running = True
        world.client_inbox = self._on_response
        for _ in range(count):
            self._spawn()

    @property
    def busy(self) -> bool:
        return any(op is not None for op in self._ops.values())

    def _spawn(self) -> None:
        process = self._next_process
        self._next_process += 1
        self._client_id[process] = self.world.rng.getrandbits(62)
        self._ops[process] = None
        self.world.after(self.world.rng.randint(0, 20), self._invoke, process)

    def _invoke(self, process: int, f: str | None = None, key: str | None = None) -> None:
        if self._ops.get(process, 1) is not None or not (self.running or f):
            return
        rng = self.world.rng
        key = key or rng.choice(self.keys)
        f = f or rng.choices(["read", "write", "cas"], [4, 4, 2])[0]
        value: Any = None
        if f == "write":
            value = self._fresh_value(key)
        elif f == "cas":
            seen = self._written[key]
            old = rng.choice(seen[-3:]) if seen and rng.random() < 0.8 else None
            value = [old, self._fresh_value(key)]
        seq = len(self.history)  # unique and increasing per client id
        op = _Op(f, key, value, seq, self.world.now)
        self._ops[process] = op
        self._record(process, "invoke", op, value)
        self._attempt(process, op)
        self.world.after(DEADLINE_MS, self._give_up, process, seq)

    def final_reads(self) -> None:
        """After healing: one fresh process reads every key."""
        for key in self.keys:
            self._next_process += 1
            process = self._next_process
            self._client_id[process] = self.world.rng.getrandbits(62)
            self._ops[process] = None
            self._invoke(process, "read", key)

    def _fresh_value(self, key: str) -> int:
        self._next_value += 1
        self._written[key].append(self._next_value)
        return self._next_value

    def _attempt(self, process: int, op: _Op) -> None:
        rng = self.world.rng
        node = self._leader_hint.get((process, op.key)) or rng.choice(self.world.nodes_all)
        if op.attempts and rng.random() < 0.5:
            node = rng.choice(self.world.nodes_all)
        self._next_req += 1
        req = self._next_req
        op.attempts.add(req)
        op.unanswered.add(req)
        self._req_owner[req] = process
        cid = self._client_id[process]
        code = {"read": "r", "write": "w", "cas": "c"}[op.f]
        a, b = op.value if op.f == "cas" else (op.value, None)
        self.proposed.add((cid, op.seq))
        self.world.request(cid, node, (req, code, op.key, a, b, cid, op.seq))
        self.world.after(ATTEMPT_MS, self._retry, process, op.seq, req)

    def _retry(self, process: int, seq: int, req: int) -> None:
        op = self._ops.get(process)
        if op is not None and op.seq == seq and req == max(op.attempts):
            op.definite_fail_only = False  # no answer: it may have been proposed
            self._attempt(process, op)

    def _on_response(self, node: str, cid: int, response: tuple[Any, ...]) -> None:
        req, status, value, leader = response
        process = self._req_owner.get(req)
        op = self._ops.get(process) if process is not None else None
        if process is None or op is None or req not in op.attempts:
            return
        op.unanswered.discard(req)
        if leader:
            self._leader_hint[(process, op.key)] = leader
        if status == OK:
            if op.f == "cas":
                self._complete(process, op, "ok" if value else "fail", op.value)
            else:
                self._complete(process, op, "ok", value if op.f == "read" else op.value)
            return
        if status != FAIL:
            op.definite_fail_only = False
        self.world.after(BACKOFF_MS, self._retry_now, process, op.seq, req)

    def _retry_now(self, process: int, seq: int, req: int) -> None:
        op = self._ops.get(process)
        if op is not None and op.seq == seq and req == max(op.attempts):
            self._attempt(process, op)

    def _give_up(self, process: int, seq: int) -> None:
        op = self._ops.get(process)
        if op is None or op.seq != seq:
            return
        if op.definite_fail_only and not op.unanswered:  # every attempt was refused
            self._complete(process, op, "fail", op.value)
            return
        self._record(process, "info", op, op.value)
        self._ops.pop(process)  # an indeterminate process never issues again
        if self.running:
            self._spawn()

    def _complete(self, process: int, op: _Op, outcome: str, value: Any) -> None:
        self._record(process, outcome, op, value)
        self._ops[process] = None
        if self.running:
            self.world.after(self.world.rng.randint(0, 10), self._invoke, process)

    def _record(self, process: int, kind: str, op: _Op, value: Any) -> None:
        self.history.append(
            {
                "index": len(self.history),
                "time": self.world.now * 1_000_000,
                "process": process,
                "type": kind,
                "f": op.f,
                "key": op.key,
                "value": value,
            }
        )
