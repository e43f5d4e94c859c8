"""The replicated register map: read, write, compare-and-swap, exactly once per request.

Every command carries (client id, sequence number). A client has one request outstanding at a
time, so remembering the last sequence number and its result per client is enough: a retried
request (same id and number) returns its first result and changes nothing; an older one is
ignored. This table is part of the replicated state, so every replica dedupes alike.

Sessions expire deterministically: a client not heard from in the last `session_ttl` log
entries is forgotten, judged by log indices alone, so every replica forgets it at the same
entry and the table stays bounded by the clients active in a window of the log. A retry that
arrives after its session expired would apply again: the window (a million entries, minutes
at this store's speed) is far longer than any client retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvctl.node.messages import Command, Entry, as_command

READ, WRITE, CAS = "r", "w", "c"
OPS = (READ, WRITE, CAS)
SESSION_TTL = 1_000_000  # log entries
SWEEP_EVERY = 4096  # log entries between two looks for expired sessions


@dataclass(frozen=True, slots=True)
class Session:
    seq: int
    result: Any
    last_index: int  # the log index of the client's latest command


class StateMachine:
    def __init__(self, session_ttl: int = SESSION_TTL) -> None:
        self.data: dict[Any, Any] = {}
        self.sessions: dict[int, Session] = {}
        self.session_ttl = session_ttl

    def apply(self, entry: Entry, index: int) -> tuple[int, int, Any] | None:
        """Apply the decided entry at log `index`; (client id, seq, result), None if stale."""
        if index % SWEEP_EVERY == 0:
            self._expire(index)
        cmd = as_command(entry)
        last = self.sessions.get(cmd.client_id)
        if last is not None and cmd.seq <= last.seq:
            return (cmd.client_id, cmd.seq, last.result) if cmd.seq == last.seq else None
        result = self._execute(cmd) if isinstance(cmd, Command) else None
        self.sessions[cmd.client_id] = Session(cmd.seq, result, index)
        return cmd.client_id, cmd.seq, result

    def _execute(self, cmd: Command) -> Any:
        if cmd.op == WRITE:
            self.data[cmd.key] = cmd.value
            return None
        if cmd.op == CAS:
            swapped = self.data.get(cmd.key) == cmd.value
            if swapped:
                self.data[cmd.key] = cmd.new_value
            return swapped
        return self.data.get(cmd.key)

    def _expire(self, index: int) -> None:
        horizon = index - self.session_ttl
        for client in [c for c, s in self.sessions.items() if s.last_index < horizon]:
            del self.sessions[client]

    def read(self, key: Any) -> Any:
        """The local value, with no coordination: what the `stale` read mode serves."""
        return self.data.get(key)

    def export(self) -> list[Any]:
        """The state as plain lists, for snapshots on disk and on the wire."""
        sessions = [[c, s.seq, s.result, s.last_index] for c, s in self.sessions.items()]
        return [list(self.data.items()), sessions]

    def restore(self, state: list[Any]) -> None:
        data, sessions = state
        self.data = {k: v for k, v in data}
        self.sessions = {c: Session(seq, result, last) for c, seq, result, last in sessions}
