"""The linearizability search: Wing & Gong's tree search as Lowe and Porcupine run it.

Operations are entries in a doubly linked list in real-time order (call and return points).
At each node the candidates are the calls that come before the first return: only those can
take effect next. Taking one lifts its call and return out of the list; reaching a return
means the earliest pending operation can no longer be placed, so the search backtracks. A
memo of (operations linearized, state) pairs cuts every subtree that was already explored.

On top of that loop, three prunings that never change a verdict:

- An operation that leaves the state as it is whenever it is legal (a read, a failed cas) is
  taken at once, without trying alternatives, if it is legal now: any linearization that
  places it later stays legal when it moves here.
- `before[i]` is a bitmask of operations that must be linearized before operation i. The
  caller fills it with facts every linearization obeys (the constraint graph) and with
  symmetry: of two operations that are identical to the model, the one that is invoked and
  returns no later goes first (`symmetric_before`).
- An operation whose outcome is unknown must be legal in every state (the model's duty), so
  once every operation with a known outcome is placed, the rest can follow in any order.

The search knows nothing of any model beyond `Model`; states must be hashable.

The loop runs compiled (`_csearch.c`, built when kvctl is installed with a C compiler at
hand) or, without it, as `python_loop` below: the same loop, step for step, with the same
result (the tests run both). Compiled, a typical 85-operation key's search takes a few
microseconds instead of a hundred.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from types import ModuleType
from typing import Protocol

from kvctl.history import Op

_csearch: ModuleType | None
try:
    from kvctl.checker import _csearch
except ImportError:  # installed without a C compiler: python_loop runs instead
    _csearch = None
COMPILED = _csearch is not None

_CALL, _RET = attrgetter("call"), attrgetter("ret")
_CALL_FIELD, _RET_FIELD = Op._fields.index("call"), Op._fields.index("ret")
# What makes two operations identical to a model: f, value, result and status, by position.
_CLASS = itemgetter(*map(Op._fields.index, ("f", "value", "result", "status")))
MEMO_BYTES = 1 << 30  # about what one search's memo may hold before the key is unknown
_AUDIT_EVERY = 1024


class Model(Protocol):
    """A sequential specification, as the search sees it (compare Porcupine's Model)."""

    def init(self) -> Hashable:
        """The state before any operation."""
        ...

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]:
        """Whether `op` can take effect in `state`, and the state after it. Pure."""
        ...

    def read_only(self, op: Op) -> bool:
        """True if `op`, whenever legal, leaves the state unchanged."""
        ...


@dataclass
class Outcome:
    """What one search found.

    `order` is a linearization (valid) or the longest prefix found, as indices into the
    operations given. When invalid, `blocked` is the operation that could not be placed after
    the furthest point reached, and `states` the states it was tried in there.
    """

    valid: bool | str
    order: list[int]
    blocked: int | None = None
    states: list[Hashable] = field(default_factory=list)
    steps: int = 0
    memo: int = 0
    reason: str = ""


def symmetric_before(ops: Sequence[Op]) -> list[int]:
    """For identical operations (same f, value, result, status), which ones must go first.

    Of two identical operations where one is invoked no later and returns no later than the
    other, some linearization places it first if any linearization exists (swapping them
    keeps every constraint), so the search may insist on that order. Models must therefore
    depend on those four fields of an operation only.
    """
    inf = float("inf")
    calls = list(map(_CALL, ops))
    rets = [inf if r is None else r for r in map(_RET, ops)]
    keys = list(map(_CLASS, ops))
    classes: defaultdict[tuple, list[int]] = defaultdict(list)
    for i in sorted(range(len(ops)), key=calls.__getitem__):  # each class in order of call
        classes[keys[i]].append(i)
    masks = [0] * len(ops)
    for members in classes.values():
        if len(members) < 2:
            continue
        earlier, latest = 0, -inf  # the members so far, and their latest return
        for k, j in enumerate(members):
            rj = rets[j]
            if rj >= latest:  # the common case: every earlier member returned no later
                masks[j] = earlier
            else:
                masks[j] = sum(1 << i for i in members[:k] if rets[i] <= rj)
            earlier |= 1 << j
            if rj > latest:
                latest = rj
    return masks


Loop = Callable[..., tuple[bool | str, list[int], int | None, list[Hashable], int, int, str | None]]


def search(
    ops: Sequence[Op],
    model: Model,
    before: Sequence[int] | None = None,
    deadline: float | None = None,
    max_steps: int | None = None,
    *,
    loop: Loop | None = None,
) -> Outcome:
    """Decide whether `ops` (one partition) is linearizable for `model`; "unknown" when
    `deadline` (a `time.monotonic()` value) passes, the memo outgrows `MEMO_BYTES`, or more
    than `max_steps` steps are taken. `loop` is the loop that runs: the compiled one when it
    was built, else `python_loop` (the tests run both)."""
    if loop is None:
        loop = python_loop if _csearch is None else _csearch.search
    valid, order, blocked, states, steps, memo, why = loop(
        ops,
        model,
        before,
        deadline,
        -1 if max_steps is None else max_steps,
        MEMO_BYTES // (len(ops) // 8 + 120),  # an entry: an n-bit int and a slot in a set
        _AUDIT_EVERY,
        _CALL_FIELD,
        _RET_FIELD,
    )
    reason = f"the search ran out of {why} after {steps:,} steps" if why else ""
    return Outcome(valid, order, blocked, states, steps, memo, reason)


def python_loop(
    ops: Sequence[Op],
    model: Model,
    before: Sequence[int] | None,
    deadline: float | None,
    max_steps: int,
    memo_limit: int,
    audit_every: int,
    call_field: int,
    ret_field: int,
) -> tuple[bool | str, list[int], int | None, list[Hashable], int, int, str | None]:
    """`search`'s loop in Python, where it is read, and what runs when it is not compiled:
    (valid, order, blocked, states, steps, memo size, what ran out or None). `max_steps` < 0
    is no cap; `call_field` and `ret_field` are where an operation holds its ranks."""
    n = len(ops)
    before = list(before) if before is not None else [0] * n
    pos, nxt, prv, has_ret = _lists(ops, model.read_only, call_field, ret_field)
    known_left = sum(has_ret)
    if known_left == 0:
        return True, [], None, [], 0, 0, None
    heads = 2 * n
    states: list[Hashable] = [model.init()]
    ids: dict[Hashable, int] = {states[0]: 0}
    trans: list[dict[int, int]] = [{}]  # per state: operation -> the state after it, or -1
    memo: set[int] = set()
    stack: list[tuple[int, int, int]] = []
    lin = s = steps = 0
    cap = sys.maxsize if max_steps < 0 else max_steps
    audit = min(audit_every, cap + 1)  # the step at which limits are next looked at
    furthest: float = -1  # the furthest point reached, a position in the lists
    blocked: int | None = None
    tried: set[int] = set()
    prefix: list[int] = []

    def step(i: int, sid: int) -> int:
        legal, after = model.step(states[sid], ops[i])
        r = ids.setdefault(after, len(states)) if legal else -1
        if r == len(states):
            states.append(after)
            trans.append({})
        trans[sid][i] = r
        return r

    # mode 0: a new node; 1: trying candidates with a known outcome; 2: those with an unknown
    # outcome (they explain little, so they go last). `w` is where the window of candidates ends.
    mode, e, w = 0, -1, pos[nxt[heads + 3]]
    while True:
        steps += 1
        if steps >= audit:
            audit = min(steps + audit_every, cap + 1)
            why = None
            if steps > cap:
                why = "steps"
            elif len(memo) > memo_limit:
                why = "memory"
            elif deadline is not None and time.monotonic() > deadline:
                why = "time"
            if why:
                return "unknown", prefix, None, [], steps, len(memo), why
        take = False
        if mode == 0:
            # A legal read-only candidate is taken, and no alternative to it is tried.
            w = pos[nxt[heads + 3]]
            e = nxt[heads]
            while pos[e] < w:
                need = before[e]
                if lin & need == need:
                    got = trans[s].get(e)
                    r = step(e, s) if got is None else got
                    if r >= 0:
                        break
                e = nxt[e]
            else:
                mode, e = 1, nxt[heads + 1]
                continue
            key = (lin | 1 << e) << 32 | s
            if key not in memo:  # else this very choice was explored from an equal node: dead
                memo.add(key)
                take = True
        elif pos[e] < w:
            need = before[e]
            if lin & need == need:
                got = trans[s].get(e)
                r = step(e, s) if got is None else got
                if r >= 0 and not (mode == 2 and r == s):
                    key = (lin | 1 << e) << 32 | r
                    if key not in memo:
                        memo.add(key)
                        take = True
            if not take:
                e = nxt[e]
                continue
        elif mode == 1:
            mode, e = 2, nxt[heads + 2]
            continue
        else:
            # The first pending return: its operation cannot be placed from here.
            at = pos[nxt[heads + 3]]
            if at > furthest:
                furthest, blocked, tried = at, nxt[heads + 3] - n, {s}
                prefix = [i for i, _, _ in stack]
            elif at == furthest:
                tried.add(s)
        if take:
            stack.append((e, s, mode))
            lin |= 1 << e
            s = r
            p, q = prv[e], nxt[e]
            nxt[p], prv[q] = q, p
            if has_ret[e]:
                p, q = prv[e + n], nxt[e + n]
                nxt[p], prv[q] = q, p
                known_left -= 1
                if known_left == 0:
                    return True, [i for i, _, _ in stack], None, [], steps, len(memo), None
            mode = 0
            continue
        while True:
            if not stack:
                tried_states = [states[t] for t in sorted(tried)]
                return False, prefix, blocked, tried_states, steps, len(memo), None
            e, s, mode = stack.pop()
            lin ^= 1 << e
            if has_ret[e]:
                known_left += 1
                r = e + n
                nxt[prv[r]] = prv[nxt[r]] = r
            nxt[prv[e]] = prv[nxt[e]] = e
            if mode:
                break
        w = pos[nxt[heads + 3]]
        e = nxt[e]


def _lists(
    ops: Sequence[Op], read_only: Callable[[Op], bool], call_field: int, ret_field: int
) -> tuple[list[float], list[int], list[int], list[bool]]:
    """Four doubly linked lists in time order, each behind its head, and whether each
    operation's outcome is known.

    Entries 0..n-1 are calls, n..2n-1 returns; heads 2n..2n+3 lead the read-only calls, the
    other calls with a known outcome, those with an unknown outcome, and the returns. The last
    slot (index -1) is a shared tail at infinity, so no list end needs a test.
    """
    n = len(ops)
    inf = float("inf")
    pos = [inf] * (2 * n + 5)
    has_ret = [False] * n
    lists: tuple[list[int], ...] = ([], [], [], [])
    ranks = itemgetter(call_field, ret_field)
    for i, op in enumerate(ops):
        call, ret = ranks(op)
        pos[i] = 2 * call
        lists[0 if read_only(op) else 2 if ret is None else 1].append(i)
        if ret is not None:
            has_ret[i] = True
            pos[n + i] = 2 * ret + 1
            lists[3].append(n + i)
    nxt, prv = [-1] * (2 * n + 5), [-1] * (2 * n + 5)
    for last, entries in enumerate(lists, 2 * n):
        for e in sorted(entries, key=pos.__getitem__):
            nxt[last], prv[e], last = e, last, e
    return pos, nxt, prv, has_ret
