"""Damage to a data file at rest: flipped bits, or a tail cut off. A plan, then its application.

This is the disk lying, not the page cache: what it damages had been synced. A store must
notice it (a checksum, a length that does not add up) and refuse to serve from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("flip", "truncate")
MAX_FLIPS = 8
MAX_CUT = 4096


@dataclass(frozen=True)
class Damage:
    """Bits to flip (byte offset, bit) or the size to cut the file to."""

    mode: str
    size: int  # the file's size before
    flips: tuple[tuple[int, int], ...] = field(default=())
    cut_to: int | None = None

    def summary(self) -> dict[str, object]:
        if self.mode == "flip":
            return {"mode": "flip", "size": self.size, "offsets": [o for o, _ in self.flips]}
        return {"mode": "truncate", "size": self.size, "cut_to": self.cut_to}


def plan(size: int, mode: str, rng: random.Random) -> Damage:
    """Flip 1..MAX_FLIPS random bits, or cut 1..MAX_CUT bytes (at most the whole file) off
    the end, of a file of `size` bytes (at least one)."""
    if size < 1:
        raise ValueError("an empty file has nothing to damage")
    if mode == "flip":
        offsets = rng.sample(range(size), min(size, rng.randint(1, MAX_FLIPS)))
        return Damage("flip", size, tuple((o, rng.randrange(8)) for o in sorted(offsets)))
    if mode == "truncate":
        return Damage("truncate", size, cut_to=size - rng.randint(1, min(size, MAX_CUT)))
    raise ValueError(f"unknown damage {mode!r}: choose from {', '.join(MODES)}")


def apply(path: Path, damage: Damage) -> None:
    """Do `damage` to the file at `path`."""
    if damage.cut_to is not None:
        with open(path, "r+b") as file:
            file.truncate(damage.cut_to)
        return
    with open(path, "r+b") as file:
        for offset, bit in damage.flips:
            file.seek(offset)
            byte = file.read(1)[0]
            file.seek(offset)
            file.write(bytes([byte ^ (1 << bit)]))
