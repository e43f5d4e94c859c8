"""A slow, obviously correct linearizability check for small register histories (tests only).

Written from the definition, sharing nothing with the checker: a history is linearizable if
some order of its operations (those with unknown outcome may be left out) respects real time
(an operation that completed before another was invoked comes first) and, run one by one on a
register that starts as `initial`, gives every client what it saw. It tries every such order
(with a memo of (operations placed, register value), which never changes the answer).

Operations are anything with `f`, `value`, `result` and `status` (ok, fail or info, as in
`kvctl.history`); real time is a `precedes(a, b)` relation given by the caller, from what it
knows to be true, never from kvctl's reading of a file. Values compare by JSON identity
(`true` is not `1`, an object is not a list of pairs, `1.0` is `1`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import cache
from typing import Any

Precedes = Callable[[Any, Any], bool]


def json_identity(value: Any) -> Hashable:
    """A value tagged with its JSON type, so that equal means equal in JSON."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, list | tuple):
        return ("array", tuple(json_identity(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, json_identity(v)) for k, v in value.items()))
    return ("other", value)  # strings, null, and values kvctl already froze


def effect(state: Hashable, op: Any) -> tuple[bool, Hashable]:
    """The register by hand: may `op` happen in `state`, and what is the state after?"""
    if op.f == "read":
        return (op.status != "ok" or json_identity(op.result) == state), state
    if op.f == "write":
        return True, json_identity(op.value)
    old, new = (json_identity(v) for v in op.value)
    if op.status == "ok":
        return state == old, new
    if op.status == "fail":
        return state != old, state
    return True, (new if state == old else state)


def ranked(a: Any, b: Any) -> bool:
    """Real time for kvctl's own Ops: a returned before b was invoked (ranks of one order)."""
    return a.ret is not None and a.ret < b.call


def linearizable(ops: Sequence[Any], initial: Any = None, precedes: Precedes = ranked) -> bool:
    """Whether some order of `ops` that respects `precedes` is legal for one register."""
    happened = [op for op in ops if not (op.status == "fail" and op.f != "cas")]
    n = len(happened)
    must_follow = [
        sum(1 << j for j in range(n) if j != i and precedes(happened[j], happened[i]))
        for i in range(n)
    ]
    unknown = [op.status == "info" for op in happened]

    @cache
    def place(done: int, state: Hashable) -> bool:
        left = [i for i in range(n) if not done >> i & 1]
        if all(unknown[i] for i in left):
            return True  # the rest never took effect
        for i in left:
            if must_follow[i] & ~done:
                continue
            legal, after = effect(state, happened[i])
            if legal and place(done | 1 << i, after):
                return True
        return False

    return place(0, json_identity(initial))
