"""Porcupine's key-value model: get, put and append on strings, one string per key.

Each key starts as the empty string (or `initial`); get returns the whole string, put replaces
it, append concatenates. Histories have no failures and no unknown outcomes.

States that no get can ever match merge into one: appends only make a string longer, so a
string that is not a prefix of any get's result stays unmatched until the next put. Without
this, every order of unobserved appends is a different state, and the search drowns in them
(keys "0" and "9" of Porcupine's c50-bad take Porcupine itself more than a minute).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from typing import Any

from kvctl.checker.model import Base, brief, show
from kvctl.history import Op

DEAD = None


class Kv(Base):
    """One string per key, with get, put and append."""

    name = "kv"
    fs = frozenset({"get", "put", "append"})
    noun = "the key"

    def __init__(self, ops: Sequence[Op], initial: Any = None) -> None:
        super().__init__(ops, "" if initial is None else str(initial))
        self.results = sorted({op.result for op in ops if op.f == "get" and op.status == "ok"})

    @staticmethod
    def key(op: Op) -> Hashable:
        return op.key

    @staticmethod
    def invalid(ops: Sequence[Op]) -> tuple[Op, str] | None:
        for op in ops:
            if op.f != "get" and not isinstance(op.value, str):
                return op, f"{op.f} needs a string, not {show(op.value)}"
            if op.f == "get" and op.status == "ok" and not isinstance(op.result, str):
                return op, f"get returned {show(op.result)}, not a string"
        return None

    def relevant(self, op: Op) -> bool:
        return op.status == "ok" if op.f == "get" else op.status != "fail"

    def canon(self, text: str) -> str | None:
        """The string, or DEAD if no get result starts with it."""
        k = bisect_left(self.results, text)
        return text if k < len(self.results) and self.results[k].startswith(text) else DEAD

    def init(self) -> Hashable:
        return self.canon(self.initial)

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]:
        if op.f == "get":
            return state == op.result, state
        if op.f == "put":
            return True, self.canon(op.value)
        return True, DEAD if state is DEAD else self.canon(state + op.value)

    def read_only(self, op: Op) -> bool:
        return op.f == "get"

    def describe_op(self, op: Op) -> str:
        return f"get {brief(op.result)}" if op.f == "get" else f"{op.f} {brief(op.value)}"

    def describe_state(self, state: Hashable) -> str:
        return "a string no get returned" if state is DEAD else brief(state)
