"""Knossos's mutex: acquire and release of one lock, which starts free.

An ok acquire needs the lock free and takes it; an ok release needs it held and frees it. One
with unknown outcome takes effect only where it could have succeeded.
"""

from __future__ import annotations

from collections.abc import Hashable

from kvctl.checker.model import Base
from kvctl.history import Op


class Mutex(Base):
    """One lock: the state is whether it is held."""

    name = "mutex"
    fs = frozenset({"acquire", "release"})
    noun = "the lock"

    @staticmethod
    def key(op: Op) -> Hashable:
        return None

    def relevant(self, op: Op) -> bool:
        return op.status != "fail"

    def init(self) -> Hashable:
        return False

    def step(self, state: Hashable, op: Op) -> tuple[bool, Hashable]:
        wanted = op.f == "release"  # held before a release, free before an acquire
        if state != wanted:
            return op.status != "ok", state
        return True, not wanted

    def read_only(self, op: Op) -> bool:
        return False

    def describe_op(self, op: Op) -> str:
        return op.f

    def describe_state(self, state: Hashable) -> str:
        return "held" if state else "free"
