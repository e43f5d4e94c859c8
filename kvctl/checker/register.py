"""The read / write / cas register, one per key: the model of our store and of Jepsen's etcd.

It implements the semantics stated in `kvctl.history` (the same as Porcupine's etcd model):
a failed cas is an observation that the register did not hold the old value; a write or cas
with unknown outcome may take effect later or never; a failed read or write did not happen.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable, Sequence
from operator import attrgetter
from typing import Any

from kvctl.checker.model import Base, Fact, Known, brief, show
from kvctl.history import Op

UNSEEN = "<unseen>"


class _Unseen:
    """Every value that no operation can ever observe: one state, so such states merge."""

    __slots__ = ()

    def __repr__(self) -> str:
        return UNSEEN


_UNSEEN = _Unseen()


class Register(Base):
    """A register per key with read, write and compare-and-swap."""

    name = "register"
    fs = frozenset({"read", "write", "cas"})
    noun = "the register"

    def __init__(self, ops: Sequence[Op], initial: Any = None) -> None:
        super().__init__(ops, initial)
        # Values some operation compares with: any other value looks the same to every op.
        observed: set[Hashable] = set()
        writer: dict[Hashable, Op | None] = {}  # a value's only writer; None once two write it
        for op in ops:
            f = op.f
            if f == "read":
                if op.status == "ok":
                    observed.add(op.result)
                continue
            if f == "write":
                value = op.value
            else:
                observed.add(op.value[0])
                value = op.value[1]
            if op.status != "fail":
                writer[value] = None if value in writer else op
        unseen = self.initial not in observed or not writer.keys() <= observed
        self.observed: set[Hashable] | None = observed if unseen else None
        # Whether `settle` can find anything: a value, not the initial one, that only one
        # operation writes, and whose outcome is unknown.
        self.lone_unknown = any(
            w is not None and w.ret is None and v != self.initial for v, w in writer.items()
        )
        self._exact: Register | None = None

    key = staticmethod(attrgetter("key"))  # a partition per key; a C call, once per operation

    @staticmethod
    def invalid(ops: Sequence[Op]) -> tuple[Op, str] | None:
        for op in ops:
            if op.f == "cas" and not (isinstance(op.value, tuple) and len(op.value) == 2):
                return op, f"a cas value must be [old, new], not {show(op.value)}"
        return None

    def relevant(self, op: Op) -> bool:
        if op.f == "read":
            return op.status == "ok"
        return op.f == "cas" or op.status != "fail"

    def canon(self, value: Hashable) -> Hashable:
        return value if self.observed is None or value in self.observed else _UNSEEN

    def exact(self) -> Register:
        """The same register without merging unobserved values, for explanations."""
        if self.observed is None:
            return self
        if self._exact is None:
            self._exact = copy.copy(self)
            self._exact.observed = None
        return self._exact

    def merges(self, state: Hashable) -> bool:
        return state is _UNSEEN

    def init(self) -> Hashable:
        return self.canon(self.initial)

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]:
        if op.f == "read":
            return state == op.result, state
        if op.f == "write":
            return True, self.canon(op.value)
        old, new = op.value
        if op.status == "ok":
            return state == old, self.canon(new)
        if op.status == "fail":
            return state != old, state
        return True, self.canon(new) if state == old else state

    def read_only(self, op: Op) -> bool:
        return op.f == "read" or (op.f == "cas" and op.status == "fail")

    def describe_op(self, op: Op) -> str:
        if op.f == "read":
            return f"read {brief(op.result)}"
        if op.f == "write":
            return f"write {brief(op.value)}"
        return f"cas {brief(op.value[0])}->{brief(op.value[1])}"

    def describe_state(self, state: Hashable) -> str:
        return "a value no operation read" if state is _UNSEEN else brief(state)

    # Evidence and facts: who could have written each value, and who saw it.

    @staticmethod
    def _evidence(ops: Sequence[Op]) -> tuple[dict[Hashable, list[int]], dict[Hashable, list[int]]]:
        """For each value, the operations that write it if they take effect, and those that saw
        it: ok reads, and ok cas (the old value)."""
        sources: dict[Hashable, list[int]] = {}
        seen: dict[Hashable, list[int]] = {}
        for i, op in enumerate(ops):
            f, status = op.f, op.status
            if f == "read":
                if status == "ok":
                    seen.setdefault(op.result, []).append(i)
            elif status != "fail":
                if f == "write":
                    sources.setdefault(op.value, []).append(i)
                else:
                    sources.setdefault(op.value[1], []).append(i)
                    if status == "ok":
                        seen.setdefault(op.value[0], []).append(i)
        return sources, seen

    def _unique(self, ops: Sequence[Op]) -> bool:
        """Whether every value is written at most once, and never the initial one (stops at
        the first repeat: most histories with repeated values repeat one early)."""
        written = {self.initial}
        for op in ops:
            if op.f != "read" and op.status != "fail":
                value = op.value if op.f == "write" else op.value[1]
                if value in written:
                    return False
                written.add(value)
        return True

    def settle(self, ops: list[Op]) -> list[Op]:
        """A value that someone saw and only one unknown operation wrote proves that this
        operation happened (a cas: succeeded), before the first who saw it returned.

        `ops` are the relevant ones of those the model was made from."""
        if not self.lone_unknown:
            return ops  # no value that only an operation of unknown outcome wrote
        sources, observers = self._evidence(ops)
        settled = list(ops)
        for value, seen_by in observers.items():
            writers = sources.get(value, [])
            if value == self.initial or len(writers) != 1 or ops[writers[0]].known:
                continue
            w = ops[writers[0]]
            by = min(r for i in seen_by if (r := ops[i].ret) is not None)  # each one ok
            if by > w.call:
                settled[writers[0]] = w._replace(status="ok", ret=by, result=w.value)
        return settled

    def facts(self, ops: Sequence[Op], known: Known) -> Iterable[Fact]:
        """Orders forced by unique values, those not known yet: only when every value is
        written at most once and never equals the initial one (our workload makes them so)."""
        if not self._unique(ops):
            return
        sources, observers = self._evidence(ops)
        later, earlier = known
        writer = {value: w[0] for value, w in sources.items()}
        # Operations that surely change the value if they take effect at all.
        sure = sum(
            1 << i
            for i, op in enumerate(ops)
            if op.f == "write" or (op.f == "cas" and op.status == "ok")
        )
        for value, readers in observers.items():
            w = writer.get(value)
            if w is None and value != self.initial:
                continue  # nobody wrote it: the search will say so
            v = show(value)
            seen = sum(1 << r for r in readers)
            for r in readers:
                if w is not None and w != r and not later[w] >> r & 1:
                    yield Fact(w, r, f"only the first wrote {v}, and the second saw it")
                if ops[r].f == "cas":
                    for o in readers:
                        if o != r and not later[o] >> r & 1:
                            yield Fact(
                                o, r, f"the first saw {v}, which the second (a cas) replaced"
                            )
            # Writes known to follow the write of v end v: its reads come before the first
            # of them (the others follow by transitivity). Operations are in order of
            # invocation, so the first ones are found among the lowest bits.
            rest, covered = (sure if w is None else later[w]) & sure & ~seen, 0
            while rest:
                w2 = (rest & -rest).bit_length() - 1
                if not covered >> w2 & 1:
                    for r in readers:
                        if not later[r] >> w2 & 1:
                            yield Fact(
                                r,
                                w2,
                                f"the first saw {v}, which was gone once the second took effect",
                            )
                covered |= later[w2]
                rest &= ~covered & ~(1 << w2)
            if w is None:
                continue
            # A write known to precede a read of v took effect before v was written.
            before_reads = 0
            for r in readers:
                before_reads |= earlier[r]
            for w2 in _bits(before_reads & sure & ~seen & ~earlier[w] & ~(1 << w)):
                yield Fact(
                    w2,
                    w,
                    f"the first took effect before a read of {v}, so before the second wrote {v}",
                )


def _bits(mask: int) -> Iterable[int]:
    """The positions of the bits set in `mask`."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
