"""Plain words for operations, times and search failures.

A verdict is only useful if a person can check it by hand, so an invalid key is explained by
the operation that cannot be placed, what the state could be at that point, what changed it
last, what ran concurrently, and the faults injected just before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from kvctl.checker.model import show
from kvctl.checker.search import Outcome
from kvctl.history import History, Op

_SHOWN = 6


def seconds(ns: int) -> str:
    """12300000000 -> '12.3 s', 1000004 -> '0.001000004 s': exact to the nanosecond, so that
    two events an explanation puts in order never read as happening at one time."""
    whole, fraction = divmod(abs(ns), 1_000_000_000)
    text = f"{whole}.{fraction:09d}".rstrip("0").rstrip(".")
    return f"{'-' if ns < 0 else ''}{text} s"


class Words:
    """Describes operations of one history for one model."""

    def __init__(self, history: History, model: Any) -> None:
        self.history, self.model = history, model

    def at(self, rank: int) -> str:
        """When the event of a rank happened: seconds since the first event, else its line."""
        event = self.history.ranked[rank]
        return f"line {event.line}" if event.time is None else self.clock(event.time)

    def clock(self, time: float) -> str:
        """A time as seconds since the first event when times are whole nanoseconds; other
        times (float seconds, say) as written, since their unit is not known."""
        first = self.history.ranked[0].time
        if isinstance(time, int) and isinstance(first, int):
            return seconds(time - first)
        return f"time {time!r}"

    def apart(self, first: int, second: int) -> tuple[str, str]:
        """When the events of two ranks happened, worded so that they read apart: events at
        one time are told apart by the index, or else the line, that put them in order."""
        a, b = self.at(first), self.at(second)
        if a == b:
            ea, eb = self.history.ranked[first], self.history.ranked[second]
            if ea.index is not None and eb.index is not None:
                a, b = f"{a} (index {ea.index})", f"{b} (index {eb.index})"
            else:
                a, b = f"{a} (line {ea.line})", f"{b} (line {eb.line})"
        return a, b

    def called(self, op: Op) -> str:
        return self.at(op.call)

    def returned(self, op: Op) -> str:
        assert op.ret is not None
        return self.at(op.ret)

    def span(self, op: Op) -> str:
        """When it ran: like "12.1 s to 12.3 s", "lines 10 to 14", "invoked at 12.1 s, outcome
        unknown"."""
        if op.completion is None or op.completion.type not in ("ok", "fail"):
            outcome = "never returned" if op.completion is None else "outcome unknown"
            seen = ", but its effect was seen" if op.ret is not None else ""
            return f"invoked at {self.called(op)}, {outcome}{seen}"
        start, end = self.called(op), self.returned(op)
        if start.startswith("line ") and end.startswith("line "):
            return f"lines {start[5:]} to {end[5:]}"
        return f"{start} to {end}"

    def op(self, op: Op) -> str:
        """Like "process 7's read 4 (12.1 s to 12.3 s)"."""
        failed = "failed " if op.status == "fail" else ""
        return f"process {op.process}'s {failed}{self.model.describe_op(op)} ({self.span(op)})"

    def last_fault(self, rank: int) -> str | None:
        """The last nemesis event recorded before the event of a rank, in words."""
        at, first = self.history.ranked[rank], self.history.ranked[0]
        faults = self.history.faults
        times = [e.time for e in faults if e.time is not None]
        t = at.time
        if t is not None and first.time is not None and len(times) == len(faults):
            timed = [(e, time) for e, time in zip(faults, times, strict=True) if time <= t]
            if not timed:
                return None
            e, time = timed[-1]
            when = self.clock(time)
        else:
            before = [e for e in faults if e.line < at.line]
            if not before:
                return None
            e = before[-1]
            when = f"line {e.line}"
        return f"nemesis {e.type} {e.f} {show(e.value)} at {when}"

    def states(self, states: Sequence[Hashable]) -> str:
        """Like "2, 3 or 4": numbers first, in order."""
        words = [self.model.describe_state(s) for s in sorted(states, key=_order)]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]

    def listing(self, ops: Sequence[Op]) -> str:
        shown = "; ".join(self.op(o) for o in ops[:_SHOWN])
        return shown + (f"; and {len(ops) - _SHOWN} more" if len(ops) > _SHOWN else "")


def _order(state: Hashable) -> tuple[int, float, str]:
    if isinstance(state, int | float) and not isinstance(state, bool):
        return (0, state, "")
    return (1, 0.0, repr(state))


def failure(words: Words, ops: Sequence[Op], outcome: Outcome) -> str:
    """Why the search could not linearize `ops`, from the furthest point it reached."""
    model = words.model
    assert outcome.blocked is not None
    x = ops[outcome.blocked]
    prefix = [ops[i] for i in outcome.order]
    lines = [
        f"{words.op(x)} cannot take effect: at that point {model.noun} could only hold "
        f"{words.states(outcome.states)}."
    ]
    lines.append(_last_fit(words, x, prefix))
    if prefix:
        lines.append(
            f"Longest linearizable prefix found: {len(prefix)} operations, ending with "
            f"{words.listing(prefix[-3:])}."
        )
    assert x.ret is not None  # the search blocks at a return
    concurrent = [
        o for o in ops if o is not x and o.call < x.ret and (o.ret is None or o.ret > x.call)
    ]
    if concurrent:
        lines.append(f"Concurrent with it: {words.listing(concurrent)}.")
    fault = words.last_fault(x.ret)
    if fault is not None:
        lines.append(f"The last fault before it returned: {fault}.")
    return " ".join(line for line in lines if line)


def _last_fit(words: Words, x: Op, prefix: Sequence[Op]) -> str:
    """Where in the longest prefix `x` last fitted, and what took that chance away (replayed
    with the exact model, so that states are real values)."""
    model = words.model.exact()
    states = [model.init()]
    for op in prefix:
        states.append(model.step(states[-1], op)[1])
    k = next((k for k in range(len(states) - 1, -1, -1) if model.step(states[k], x)[0]), -1)
    if k < 0:
        return "No order of the operations before it lets it take effect."
    if k == len(prefix):
        return ""
    after = "at the start" if k == 0 else f"right after {words.op(prefix[k - 1])}"
    text = (
        f"It could have taken effect {after}, but then {words.op(prefix[k])} changed "
        f"{model.noun} to {model.describe_state(states[k + 1])}"
    )
    ret = prefix[k].ret
    if ret is not None and ret < x.call:
        text += ", which completed before it was invoked"
    return text + "."
