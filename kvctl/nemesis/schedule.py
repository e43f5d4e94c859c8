"""When faults happen: each fault flips between start and stop at random gaps.

Every gap is drawn uniformly from [0, 2 x interval], so a fault changes about once per
interval but never on a beat the system could settle into (Jepsen's `stagger`). Faults flip
independently, so a partition may begin while a node is frozen.

The whole schedule is planned before the run from the seed alone, each fault from its own
generator (`{seed}/{fault}/schedule`): the same seed gives the same steps in the same order
however long each action takes (an action that runs late delays the steps after it, never
reorders them). The schedule ends before the deadline, possibly mid-fault: the final heal is
the caller's, always. A fault that spreads its targets over the run (`Paced`: power, so that
every node loses power) is told how many starts it will get before the first step.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kvctl.nemesis.compose import Nemesis

VERBS = ("start", "stop")


@dataclass(frozen=True)
class Step:
    """One action of the schedule: `verb` of `fault`, `at` seconds after the run begins."""

    at: float
    fault: str
    verb: str


@runtime_checkable
class Paced(Protocol):
    """A fault that chooses its targets knowing how many times it will start."""

    def planned(self, starts: int) -> None: ...


def plan(faults: Sequence[str], interval: float, duration: float, seed: int) -> list[Step]:
    """Every step of a run of `duration` seconds, in the order they happen."""
    steps = []
    for fault in faults:
        rng = random.Random(f"{seed}/{fault}/schedule")
        at, flips = 0.0, 0
        while True:
            at += rng.uniform(0.0, 2.0 * interval)
            if at >= duration:
                break
            steps.append(Step(at, fault, VERBS[flips % 2]))
            flips += 1
    return sorted(steps, key=lambda s: (s.at, s.fault))


async def run(nemesis: Nemesis, steps: Sequence[Step], begun: float) -> None:
    """Take each step at its time after `begun` (the event loop's clock), one at a time."""
    loop = asyncio.get_running_loop()
    faults = {fault.name: fault for fault in nemesis.faults}
    for name, fault in faults.items():
        if isinstance(fault, Paced):
            fault.planned(sum(1 for s in steps if s.fault == name and s.verb == "start"))
    for step in steps:
        await asyncio.sleep(max(0.0, begun + step.at - loop.time()))
        await nemesis.act(faults[step.fault], step.verb)
