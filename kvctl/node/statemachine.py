"""The replicated register map: read, write, compare-and-swap, exactly once per request.

Every command carries (client id, sequence number). A client has one request outstanding at a
time, so remembering the last sequence number and its result per client is enough: a retried
request (same id and number) returns its first result and changes nothing; an older one is
ignored. This table is part of the replicated state, so every replica dedupes alike.
"""

from __future__ import annotations

from typing import Any

from kvctl.node.messages import STOPSIGN, Entry

READ, WRITE, CAS = "r", "w", "c"
OPS = (READ, WRITE, CAS)

# A command is (op, key, a, b, client_id, seq): write a; cas from a to b.
Command = tuple[str, Any, Any, Any, int, int]


def command(op: str, key: Any, a: Any, b: Any, client_id: int, seq: int) -> Command:
    return (op, key, a, b, client_id, seq)


class StateMachine:
    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.sessions: dict[int, tuple[int, Any]] = {}

    def apply(self, entry: Entry) -> tuple[int, int, Any] | None:
        """Apply one decided command; returns (client id, seq, result), None for a stale one."""
        op, key, a, b, client_id, seq = entry
        last = self.sessions.get(client_id)
        if last is not None and seq <= last[0]:
            return (client_id, seq, last[1]) if seq == last[0] else None
        if op == STOPSIGN:
            result = None  # the configuration change itself is the node's business
        elif op == READ:
            result = self.data.get(key)
        elif op == WRITE:
            self.data[key] = a
            result = None
        else:
            result = self.data.get(key) == a
            if result:
                self.data[key] = b
        self.sessions[client_id] = (seq, result)
        return client_id, seq, result

    def read(self, key: Any) -> Any:
        """The local value, with no coordination: what the `stale` read mode serves."""
        return self.data.get(key)

    def export(self) -> list[Any]:
        """The state as plain lists, for snapshots on disk and on the wire."""
        return [list(self.data.items()), [[c, s, r] for c, (s, r) in self.sessions.items()]]

    def restore(self, state: list[Any]) -> None:
        data, sessions = state
        self.data = {k: v for k, v in data}
        self.sessions = {c: (s, r) for c, s, r in sessions}
