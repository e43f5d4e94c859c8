"""Models: what each operation means, for the search, the graph and the explanations.

A model is the sequential specification of one partition of a history (one key, usually):
`init` and a pure `step`, as Porcupine's Model, plus what the rest of the checker asks:

- `key(op)`: the partition an operation belongs to (P-compositionality: a history is
  linearizable if and only if each partition is);
- `relevant(op)`: whether the operation constrains anything at all (a read with unknown result
  does not);
- `read_only(op)`: whether the operation leaves the state unchanged whenever it is legal;
- `settle(ops)`: evidence that fixes unknown outcomes before the search;
- `facts(ops, known)`: orders that every linearization must obey, for the constraint graph;
- `describe_op`, `describe_state`: words for explanations, and `exact()`: the model without
  any merging of states (see the register), so that explanations name real values;
  `merges(state)`: whether a state stands for several. A model and its exact form must agree
  on which operations are legal after any sequence of operations.

An operation whose outcome is unknown must be legal in every state (it may have taken effect,
or not). `step` may depend on an operation's f, value, result and status only. The checker
hands a partition's operations over in order of invocation.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from operator import attrgetter
from typing import Any, ClassVar, NamedTuple, Protocol

from kvctl.history import History, HistoryError, Op, thaw

_F = attrgetter("f")


class Fact(NamedTuple):
    """`before` takes effect before `after` in every linearization, for the reason `why`
    (words about "the first" and "the second"). Operations are indices into a partition."""

    before: int
    after: int
    why: str


class Known(NamedTuple):
    """What the constraint graph knows so far: for each operation, bitmasks of the operations
    known to take effect after it and before it."""

    later: Sequence[int]
    earlier: Sequence[int]


class Model(Protocol):
    """The sequential specification of one partition (see the module docstring)."""

    name: ClassVar[str]
    fs: ClassVar[frozenset[str]]
    noun: ClassVar[str]

    @staticmethod
    def key(op: Op) -> Hashable: ...

    def relevant(self, op: Op) -> bool: ...

    def init(self) -> Hashable: ...

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]: ...

    def read_only(self, op: Op) -> bool: ...

    def settle(self, ops: list[Op]) -> list[Op]: ...

    def facts(self, ops: Sequence[Op], known: Known) -> Iterable[Fact]: ...

    def describe_op(self, op: Op) -> str: ...

    def describe_state(self, state: Hashable) -> str: ...

    def exact(self) -> Model: ...

    def merges(self, state: Hashable) -> bool: ...


class Base:
    """Defaults: every operation counts, no evidence, no facts."""

    def __init__(self, ops: Sequence[Op], initial: Any = None) -> None:
        self.initial = initial

    @staticmethod
    def invalid(ops: Sequence[Op]) -> tuple[Op, str] | None:
        """The first operation of a shape the model cannot take, and what is wrong with it.
        One call for a whole history: a call per operation cost more than the checks."""
        return None

    def relevant(self, op: Op) -> bool:
        return True

    def settle(self, ops: list[Op]) -> list[Op]:
        return ops

    def facts(self, ops: Sequence[Op], known: Known) -> Iterable[Fact]:
        return ()

    def describe_state(self, state: Hashable) -> str:
        return brief(state)

    def exact(self) -> Any:
        return self

    def merges(self, state: Hashable) -> bool:
        return False


def show(value: Any) -> str:
    """A value as JSON text (null for absent), the way users wrote it."""
    if value is None:
        return "null"
    if type(value) is int:  # most values: no need for the encoder
        return str(value)
    try:
        return json.dumps(thaw(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def brief(value: Any, limit: int = 60) -> str:
    """`show`, with the middle of a long value left out: explanations stay readable."""
    text = show(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 3]}…{text[-(limit - limit // 3) :]} ({len(text)} characters)"


def choose(history: History, models: Sequence[type[Any]]) -> type[Any]:
    """The model whose operations the history uses; an operation no model knows is an error."""
    fs = set(map(_F, history.ops))
    for model in models:
        if fs <= model.fs:
            found = model.invalid(history.ops)
            if found is not None:
                op, problem = found
                raise HistoryError(f"{history.source}:{op.invoke.line}: {problem}")
            return model
    first = history.ops[0]
    home = next((m for m in models if first.f in m.fs), None)
    if home is None:
        known = "; ".join(f"{', '.join(sorted(m.fs))} ({m.name})" for m in models)
        raise HistoryError(
            f"{history.source}:{first.invoke.line}: unknown operation {first.f!r}; known: {known}"
        )
    odd = next(op for op in history.ops if op.f not in home.fs)
    raise HistoryError(
        f"{history.source}:{odd.invoke.line}: operation {odd.f!r} does not go "
        f"with {first.f!r} (line {first.invoke.line}) in one history"
    )
