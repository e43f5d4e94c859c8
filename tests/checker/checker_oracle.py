"""A slow, obviously correct linearizability check for small register histories (tests only).

It tries every order of the operations that respects real time, dropping or keeping each
operation whose outcome is unknown, and runs the register by hand. Nothing is shared with the
checker but the Op type.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from kvctl.history import Op


def effect(state: Any, op: Op) -> tuple[bool, Any]:
    """The register by hand: may `op` happen in `state`, and what is the state after?"""
    if op.f == "read":
        return (op.status != "ok" or op.result == state), state
    if op.f == "write":
        return True, (state if op.status == "fail" else op.value)
    old, new = op.value
    if op.status == "ok":
        return state == old, new
    if op.status == "fail":
        return state != old, state
    return True, (new if state == old else state)


def linearizable(ops: Sequence[Op], initial: Any = None) -> bool:
    """Exhaustive search over orders (fine for up to about eight operations)."""
    todo = [op for op in ops if not (op.status == "fail" and op.f != "cas")]
    n = len(todo)
    inf = float("inf")
    ret = [inf if op.ret is None else op.ret for op in todo]

    @cache
    def go(done: int, state: Any) -> bool:
        left = [i for i in range(n) if not done >> i & 1]
        if all(todo[i].ret is None for i in left):
            return True
        first_return = min(ret[i] for i in left)
        for i in left:
            if todo[i].call > first_return:
                continue
            legal, after = effect(state, todo[i])
            if legal and go(done | 1 << i, after):
                return True
        return False

    return go(0, initial)
