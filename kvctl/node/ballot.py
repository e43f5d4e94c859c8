"""Ballots and quorums: the two rules every other module of the node leans on.

Keeping them here, tested where they live, is the lesson of the course project this store
descends from: its majority was `ceil((n + 1) / 2)` with integer division first (2 of 4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True, slots=True)
class Ballot:
    """A leader's ballot, ordered by (n, priority, pid): the pid breaks every tie."""

    n: int
    priority: int
    pid: str


ZERO = Ballot(0, 0, "")


def majority(size: int) -> int:
    """Smallest number of members that overlaps every other majority: n // 2 + 1."""
    if size < 1:
        raise ValueError(f"a group needs at least one member, not {size}")
    return size // 2 + 1
