"""Check a history: split it by key, and decide each key with the graph, then the search."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any

from kvctl.checker.explain import Words, failure
from kvctl.checker.graph import constrain
from kvctl.checker.kv import Kv
from kvctl.checker.model import choose, show
from kvctl.checker.mutex import Mutex
from kvctl.checker.parallel import run
from kvctl.checker.register import Register
from kvctl.checker.search import COMPILED, search, symmetric_before
from kvctl.checker.txn import MultiRegister
from kvctl.history import History, Op

MODELS: tuple[type[Any], ...] = (Register, Kv, MultiRegister, Mutex)
DEFAULT_BUDGET = 60.0
EXPLAIN_BUDGET = 2.0
# The first search, without symmetry masks, stops after this many steps an operation: about
# what working out the masks costs (some 1 us an operation), in steps of the search that runs.
QUICK_STEPS_PER_OP = 12 if COMPILED else 2
_CALL = attrgetter("call")


class _Deferred:
    """A text field that may be given as a function, called when the field is first read: an
    invalid key's explanation costs more than its verdict, and most callers want the verdict
    only (Porcupine's CheckEvents computes no explanation either)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: object, owner: type | None = None) -> str:
        if obj is None:
            return ""  # the field's default
        text = obj.__dict__[self.slot]
        if not isinstance(text, str):
            text = obj.__dict__[self.slot] = text()
        return text

    def __set__(self, obj: object, text: str | Callable[[], str]) -> None:
        obj.__dict__[self.slot] = text


@dataclass
class KeyResult:
    """The verdict for one key, decided `by` the graph or the search.

    `order` holds operation ids (`Op.id`): a linearization when valid (operations with unknown
    outcome that need not take effect are left out), the longest linearizable prefix found
    when invalid; `blocked` is the operation that cannot be placed after it (None when a
    graph cycle decided, or when undecided). `explanation` is worked out when first read."""

    key: Hashable
    valid: bool | str
    explanation: _Deferred = _Deferred()
    by: str = "search"
    ops: int = 0
    seconds: float = 0.0
    steps: int = 0
    order: list[int] = field(default_factory=list)
    blocked: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Sent from a worker process with its explanation in words, not the search behind it."""
        return {**self.__dict__, "_explanation": self.explanation}


@dataclass
class Result:
    """The verdict for a whole history: True, False or "unknown", and why."""

    valid: bool | str
    model: str
    keys: list[KeyResult]
    unchecked: int = 0

    @property
    def explanation(self) -> str:
        """Every invalid key's explanation, else every unknown one's; empty when valid."""
        bad = [k for k in self.keys if k.valid is False] or [
            k for k in self.keys if k.valid == "unknown"
        ]
        return "\n".join(f"key {show(k.key)}: {k.explanation}" for k in bad)

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON-ready data: keys shown as JSON text, orders left out (they
        can be long; they are in `keys`)."""
        keys = [
            {**asdict(k), "key": show(k.key), "seconds": round(k.seconds, 6)} for k in self.keys
        ]
        for k in keys:
            del k["order"]
        return {
            "valid": self.valid,
            "model": self.model,
            "explanation": self.explanation,
            "keys": keys,
            "unchecked_keys": self.unchecked,
        }


def check(
    history: History,
    *,
    budget: float = DEFAULT_BUDGET,
    initial: Any = None,
    full: bool = False,
    model: type[Any] | None = None,
    workers: int | None = None,
) -> Result:
    """Decide whether `history` is linearizable.

    `budget` is the time in seconds each key may take before it is "unknown"; `initial` the
    value every key starts with; `full` checks every key even after an invalid one; `model`
    defaults to the one whose operations the history uses; `workers` bounds the processes.
    """
    kind = model or choose(history, MODELS)
    distinct = set(map(kind.key, history.ops))
    parts: dict[Hashable, list[Op]] = {}
    if len(distinct) == 1:  # one key, as in most histories of other systems
        parts[distinct.pop()] = list(history.ops)
    else:
        for op in history.ops:
            parts.setdefault(kind.key(op), []).append(op)

    def one(key: Hashable, limit: float) -> KeyResult:
        return check_key(history, kind, key, parts[key], initial, limit)

    keys = run(one, list(parts), budget, full, workers)
    verdicts = {k.valid for k in keys}
    valid = False if False in verdicts else "unknown" if "unknown" in verdicts else True
    return Result(valid, kind.name, keys, len(parts) - len(keys))


def check_key(
    history: History, kind: type[Any], key: Hashable, ops: Sequence[Op], initial: Any, budget: float
) -> KeyResult:
    """One key: evidence, then the constraint graph, then the search."""
    start = time.monotonic()
    model = kind(ops, initial)
    ops = model.settle(sorted(filter(model.relevant, ops), key=_CALL))
    words = Words(history, model)
    graph = constrain(ops, model, words)
    if graph.cycle is not None:
        return KeyResult(key, False, graph.cycle, "graph", len(ops), time.monotonic() - start)
    # Most keys decide in a step or two per operation, a search that costs less than working
    # out the symmetry masks; so those come in only when a first search takes longer.
    deadline = start + budget
    before = graph.before if graph.edges else None
    out = search(ops, model, before, deadline, QUICK_STEPS_PER_OP * len(ops))
    steps = out.steps
    if out.valid == "unknown":
        before = symmetric_before(ops)
        if graph.edges:
            before = [a | b for a, b in zip(graph.before, before, strict=True)]
        out = search(ops, model, before, deadline)
        steps += out.steps
    result = KeyResult(key, out.valid, out.reason, "search", len(ops), 0.0, steps)
    if out.valid is False:
        if any(model.merges(state) for state in out.states):
            # Search again without merged states, so that the explanation names real values
            # (the prefix is replayed exactly by the explanation in any case).
            exact = model.exact()
            limit = min(start + budget, time.monotonic() + EXPLAIN_BUDGET)
            again = search(ops, exact, before, deadline=limit)
            if again.valid is False:
                model, out = exact, again
        assert out.blocked is not None  # an invalid search names the operation it blocked at
        result.explanation = partial(failure, Words(history, model), ops, out)
        result.blocked = ops[out.blocked].id
    result.order = [ops[i].id for i in out.order]
    result.seconds = time.monotonic() - start
    return result
