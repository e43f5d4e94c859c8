"""Knossos's multi-register: transactions of reads and writes over several registers.

An operation `txn` carries micro-operations `[f, register, value]` with f read or write. An
ok transaction is judged by its completion (the values it read); one with unknown outcome by
its invocation, whose reads are nil. As in Knossos, a read of nil matches any value. Every
register starts at `initial`. Transactions span registers, so the history is one partition.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, cast

from kvctl.checker.model import Base, brief, show
from kvctl.history import Op


class MultiRegister(Base):
    """Registers named by the transactions, all in one state."""

    name = "multi-register"
    fs = frozenset({"txn"})
    noun = "the registers"

    def __init__(self, ops: Sequence[Op], initial: Any = None) -> None:
        super().__init__(ops, initial)
        names = {m[1] for op in ops for m in self.micro_ops(op)}
        self.names = sorted(names, key=repr)
        self.slot = {name: k for k, name in enumerate(self.names)}

    @staticmethod
    def key(op: Op) -> Hashable:
        return None

    @staticmethod
    def invalid(ops: Sequence[Op]) -> tuple[Op, str] | None:
        for op in ops:
            for m in MultiRegister.micro_ops(op):
                if not (isinstance(m, tuple) and len(m) == 3 and m[0] in ("read", "write")):
                    return op, f"a txn holds [read|write, register, value] triples, not {show(m)}"
        return None

    @staticmethod
    def micro_ops(op: Op) -> tuple:
        ops = op.result if op.status == "ok" else op.value
        return ops if isinstance(ops, tuple) else (ops,)

    def relevant(self, op: Op) -> bool:
        return op.status != "fail"

    def init(self) -> Hashable:
        return (self.initial,) * len(self.names)

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]:
        values = list(cast(tuple[Hashable, ...], state))  # as init() made it: one per register
        for f, name, value in self.micro_ops(op):
            k = self.slot[name]
            if f == "write":
                values[k] = value
            elif value is not None and values[k] != value:
                return False, state
        return True, tuple(values)

    def read_only(self, op: Op) -> bool:
        return all(m[0] == "read" for m in self.micro_ops(op))

    def describe_op(self, op: Op) -> str:
        return "txn " + ", ".join(f"{f} {name} {brief(v)}" for f, name, v in self.micro_ops(op))

    def describe_state(self, state: Hashable) -> str:
        pairs = zip(self.names, cast(tuple[Hashable, ...], state), strict=True)
        return "{" + ", ".join(f"{name}={brief(v)}" for name, v in pairs) + "}"
