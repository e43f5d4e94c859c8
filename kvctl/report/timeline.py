"""The timeline of one key, in the style of Porcupine's visualization.

A row per process, each operation a box from its invocation to its completion with its value
written in it; the linearization the checker found as numbered points joined by a line; the
operation that could not be placed outlined in red; faults as bands behind. The x axis is
the order of events, not clock time, so that quick operations stay wide enough to read; the
clock time is on the ticks and in every box's tooltip.

A key with many operations is shown as the window around its failure (the operations just
before the one that could not be placed, those concurrent with it, a few after), never
thousands of boxes.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kvctl.checker.model import show
from kvctl.history import History, Op, freeze
from kvctl.report.plots import COLORS, FAULT_COLORS
from kvctl.report.stats import Window, origin

SLOT, ROW, LEFT, TOP, BOX = 36, 40, 12, 30, 22
BEFORE, AFTER, MAX_OPS = 30, 10, 160


@dataclass
class Extra:
    """What kvctl records beside the history format's fields."""

    errors: dict[int, str] = field(default_factory=dict)  # completion index -> client's error
    homes: dict[str, str] = field(default_factory=dict)  # process -> the node it talks to


@dataclass
class Timeline:
    key: str
    width: int
    height: int
    left: int = 112  # the width of the process labels' column
    rows: list[tuple[float, str]] = field(default_factory=list)  # y, process label
    boxes: list[dict[str, Any]] = field(default_factory=list)
    steps: list[tuple[float, float, int]] = field(default_factory=list)  # x, y, step number
    path: str = ""
    bands: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    note: str = ""
    focus: float = 0.0  # where the page scrolls the timeline to: the op that could not fit


def label(op: Op) -> str:
    """What the box says: "w 5", "r 5", "cas 4→5"; "?" for an unknown result."""
    if op.f == "read":
        return "r " + (show(op.result) if op.status == "ok" else "?")
    if op.f == "write":
        return "w " + show(op.value)
    if op.f == "cas" and isinstance(op.value, tuple) and len(op.value) == 2:
        return f"cas {show(op.value[0])}→{show(op.value[1])}"
    return f"{op.f} {show(op.value)}"


def choose(ops: Sequence[Op], blocked: int | None) -> tuple[list[Op], str]:
    """The operations to draw, and a note when some are left out."""
    ops = sorted(ops, key=lambda o: o.call)
    at = next((i for i, o in enumerate(ops) if o.id == blocked), None)
    if at is None:
        if len(ops) <= MAX_OPS:
            return ops, ""
        return ops[:MAX_OPS], f"the first {MAX_OPS} of {len(ops)} operations"
    if len(ops) <= BEFORE + AFTER + 1:
        return ops, ""
    x = ops[at]
    end = x.ret if x.ret is not None else x.call
    near = set(range(max(0, at - BEFORE), min(len(ops), at + AFTER + 1)))
    near |= {i for i, o in enumerate(ops) if o.call <= end and (o.ret is None or o.ret >= x.call)}
    picked = [ops[i] for i in sorted(near)][:MAX_OPS]
    return picked, (f"{len(picked)} of the key's {len(ops)} operations: those just before the "
                    "one that could not be placed, those concurrent with it, and a few after")


def locate(history: History, key: Any, model: type[Any], budget: float
           ) -> tuple[list[int], int | None]:
    """For a key the constraint graph proved invalid (which names a cycle, not an operation):
    the search's longest linearizable prefix and the operation it could not place, as ids,
    so that its timeline can show them too. ([], None) if the search does not finish."""
    from kvctl.checker.search import search, symmetric_before

    frozen = freeze(key)
    ops = [op for op in history.ops if op.key == frozen]
    m = model(ops, None)
    ops = m.settle([op for op in ops if m.relevant(op)])
    out = search(ops, m, symmetric_before(ops), deadline=time.monotonic() + budget)
    if out.valid is not False or out.blocked is None:
        return [], None
    return [ops[i].id for i in out.order], ops[out.blocked].id


def build(history: History, key: Any, order: Sequence[int], blocked: int | None,
          windows: Sequence[Window], extra: Extra) -> Timeline:
    """The timeline of `key`; `order` and `blocked` are operation ids from the checker."""
    frozen = freeze(key)
    ops, note = choose([o for o in history.ops if o.key == frozen], blocked)
    ranks = sorted({r for o in ops for r in (o.call, o.ret) if r is not None})
    slot = {r: i for i, r in enumerate(ranks)}
    open_end = len(ranks)
    processes = list(dict.fromkeys(o.process for o in ops))
    row = {p: i for i, p in enumerate(processes)}
    line = Timeline(show(key), LEFT + SLOT * (open_end + 1) + 20,
                    TOP + ROW * len(processes) + 8, note=note)
    zero = origin(history)

    def x(s: float) -> float:
        return LEFT + SLOT * s + SLOT / 2

    def seconds(rank: int) -> str:
        t = history.ranked[rank].time
        return "" if t is None else f"{(t - zero) / 1e9:.3f} s"

    line.rows = [(TOP + ROW * i + 6 + BOX / 2, f"process {p}" + (
        f" · {extra.homes[str(p)]}" if str(p) in extra.homes else ""))
        for i, p in enumerate(processes)]
    for i in range(0, len(ranks), max(1, len(ranks) // 12)):
        line.ticks.append((x(i), seconds(ranks[i])))
    position = {}
    for op in ops:
        x0 = x(slot[op.call])
        x1 = x(slot[op.ret]) if op.ret is not None else x(open_end)
        y = TOP + ROW * row[op.process] + 6
        position[op.id] = (x0, x1, y - 1)
        if op.id == blocked:
            line.focus = x0
        error = extra.errors.get(op.completion.index) if op.completion else None  # type: ignore[arg-type]
        title = (f"process {op.process}: {op.f} {show(op.value)} → {op.status}"
                 + (f" {show(op.result)}" if op.status == "ok" and op.f == "read" else "")
                 + f"\ninvoked {seconds(op.call)}"
                 + (f", returned {seconds(op.ret)}" if op.ret is not None else ", no answer")
                 + (f"\n{error}" if error else ""))
        line.boxes.append({
            "x": x0, "y": y, "width": max(8.0, x1 - x0), "height": BOX,
            "label": label(op), "color": COLORS.get(op.status, "#cccccc"),
            "open": op.ret is None, "blocked": op.id == blocked, "title": title,
        })
    _linearization(line, order, position)
    _bands(line, history, ranks, windows, x, zero)
    return line


def _linearization(line: Timeline, order: Sequence[int], position: dict) -> None:
    """Numbered points in the order found, each inside its box and after the one before."""
    last = 0.0
    points = []
    for step, op_id in enumerate(order, 1):
        if op_id not in position:
            continue
        x0, x1, y = position[op_id]
        at = min(max(last + 6, x0 + 6), x1 - 6) if x1 - x0 > 12 else (x0 + x1) / 2
        last = at
        points.append((round(at, 1), round(y, 1), step))
    line.steps = points
    line.path = " ".join(f"{px},{py}" for px, py, _ in points)


def _bands(line: Timeline, history: History, ranks: Sequence[int],
           windows: Sequence[Window], x: Any, zero: float) -> None:
    """Fault windows mapped onto the event axis."""
    times = [history.ranked[r].time for r in ranks]
    if not ranks or any(t is None for t in times):
        return
    secs = [(t - zero) / 1e9 for t in times]  # type: ignore[operator]
    for w in windows:
        if w.end < secs[0] or w.start > secs[-1]:
            continue
        a, b = bisect_left(secs, w.start), bisect_left(secs, w.end)
        x0, x1 = x(a - 0.5), x(min(b, len(secs)) - 0.5)
        line.bands.append({
            "x": x0, "width": max(2.0, x1 - x0), "color": FAULT_COLORS.get(w.fault, "#ddd"),
            "title": f"{w.fault} {w.start:.1f}-{w.end:.1f} s: {w.summary}",
        })
