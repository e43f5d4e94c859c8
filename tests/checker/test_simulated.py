"""`kvctl check` agrees with the brute-force reference on kvctl's own simulator histories.

The simulator records every event as it happens, with a whole-millisecond clock and an index,
so many events share a millisecond. The true order is the order of the records. Windows of a
few consecutive operations on one key are small enough for the reference; some have one
result altered, some lose their index (then ties between processes are concurrent).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from checker_oracle import json_identity
from checker_truth import Recording, TrueOp, agrees, examples, kvctl_check
from hypothesis import given
from hypothesis import strategies as st

from kvctl.sim.run import run_seed

SEEDS = (1, 2, 3, 7)
WINDOW = 9


@cache
def simulated(seed: int) -> tuple[list[dict[str, Any]], list[TrueOp]]:
    """The simulator's history for a seed, and its operations paired from the records."""
    history = run_seed(seed).history
    ops: list[TrueOp] = []
    open_: dict[Any, TrueOp] = {}
    for place, event in enumerate(history):
        if event["process"] == "nemesis":
            continue  # faults, if the simulator ever records them here
        if event["type"] == "invoke":
            op = TrueOp(
                event["process"],
                len(ops),
                event["f"],
                event["key"],
                event["value"],
                plan="",
                start=place,
            )
            open_[event["process"]] = op
            ops.append(op)
            continue
        op = open_.pop(event["process"])
        op.end, op.status = place, event["type"]
        op.result = event["value"] if event["type"] == "ok" and op.f == "read" else None
    return history, ops


def window(seed: int, key: str, first: int, size: int) -> tuple[list[dict[str, Any]], list[TrueOp]]:
    """`size` operations on `key` from its `first`, with their records, in record order."""
    history, ops = simulated(seed)
    mine = [op for op in ops if op.key == key][first : first + size]
    places = sorted(p for op in mine for p in (op.start, op.end) if p is not None)
    return [dict(history[p]) for p in places], [TrueOp(**vars(op)) for op in mine]


def alter(draw: Any, lines: list[dict[str, Any]], ops: list[TrueOp], places: list[int]) -> bool:
    """Change what one read saw, or whether one cas succeeded; False if nothing can be."""
    known = [
        op
        for op in ops
        if op.end is not None
        and ((op.f == "read" and op.status == "ok") or (op.f == "cas" and op.status != "info"))
    ]
    if not known:
        return False
    op = draw(st.sampled_from(known))
    line = lines[places.index(op.end)]
    if op.f == "cas":
        op.status = line["type"] = "fail" if op.status == "ok" else "ok"
    else:
        written = [o.value for o in ops if o.f == "write"] + [None, -1]
        op.result = line["value"] = draw(
            st.sampled_from([v for v in written if json_identity(v) != json_identity(op.result)])
        )
    return True


@st.composite
def windows(draw: Any) -> tuple[Recording, Any]:
    seed = draw(st.sampled_from(SEEDS))
    history, ops = simulated(seed)
    key = draw(st.sampled_from(sorted({op.key for op in ops})))
    count = sum(1 for op in ops if op.key == key)
    first = draw(st.integers(0, max(0, count - 2)))
    lines, mine = window(seed, key, first, draw(st.integers(2, WINDOW)))
    places = sorted(p for op in mine for p in (op.start, op.end) if p is not None)
    altered = draw(st.booleans()) and alter(draw, lines, mine, places)
    style = "ms+index"
    if draw(st.booleans()):
        style = "ms"
        for line in lines:
            del line["index"]
    moments = [event["time"] for event in history]
    # What the register held when the window began is unknown: start from what a read in the
    # window saw first, or from absent.
    seen = [op.result for op in mine if op.f == "read" and op.status == "ok"]
    initial = draw(st.sampled_from([None, *seen[:1]]))
    return Recording(mine, moments, style, lines, altered), initial


@examples(500)
@given(windows())
def test_kvctl_check_agrees_on_simulator_windows(
    scratch: Path, case: tuple[Recording, Any]
) -> None:
    rec, initial = case
    agrees(rec, scratch, initial)


def test_whole_simulator_histories_are_valid_for_kvctl_check(scratch: Path) -> None:
    """As the simulator writes them, ties and all: its store is linearizable."""
    for seed in SEEDS:
        assert kvctl_check(simulated(seed)[0], scratch) is True
