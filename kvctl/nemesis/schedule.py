"""When faults happen: each fault flips between start and stop at random gaps.

Every gap is drawn uniformly from [0, 2 x interval], so a fault changes about once per
interval but never on a beat the system could settle into (Jepsen's `stagger`). Faults flip
independently, so a partition may begin while a node is frozen. The schedule ends at the
deadline, possibly mid-fault: the final heal is the caller's, always.
"""

from __future__ import annotations

import asyncio
import random

from kvctl.nemesis.compose import Nemesis
from kvctl.nemesis.fault import Fault


async def flip_flop(
    nemesis: Nemesis, fault: Fault, interval: float, deadline: float, rng: random.Random
) -> None:
    """Start, stop, start, ... one fault until `deadline` (the event loop's clock)."""
    loop = asyncio.get_running_loop()
    while True:
        for verb in ("start", "stop"):
            gap = rng.uniform(0.0, 2.0 * interval)
            if loop.time() + gap >= deadline:
                return
            await asyncio.sleep(gap)
            await nemesis.act(fault, verb)


async def run(nemesis: Nemesis, interval: float, deadline: float, rng: random.Random) -> None:
    """Every fault of the nemesis on its own flip-flop, until `deadline`."""
    await asyncio.gather(*(flip_flop(nemesis, f, interval, deadline, rng) for f in nemesis.faults))
