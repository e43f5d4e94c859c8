"""`kvctl check` agrees with the brute-force reference (checker_oracle) on generated histories.

Histories are recorded from a simulated atomic register: every operation takes effect at one
instant between its invocation and its completion; one whose outcome the client never learns
(info, or no completion) at some instant after its invocation, even after the client gave up,
or never; a failed read or write never. Some results are then altered, so that about half the
histories are not linearizable. The true order of events is known, and the reference takes
real time from it; kvctl reads the history as a user would hand it over: a JSONL file, written
in one of several time styles, given to `kvctl check`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

from checker_oracle import json_identity
from checker_truth import Recording, TrueOp, agrees, examples, reference
from hypothesis import given
from hypothesis import strategies as st

# Values that compare equal in Python but not in JSON, and 1.0, which is 1 in JSON.
POOL = [None, 0, 1, 1.0, 2, True, False, "a", {"a": 1}, [["a", 1]], [1, 2]]
KEY_SETS = [["x"], ["x", "y"], [1, True], [{"k": 1}, [["k", 1]]], [0, False, None]]
# Exact total orders (ns integers, whole ms tied but indexed, float seconds, fractions, line
# order), and whole ms without index, where ties between processes are concurrent.
STYLES = ["ns", "ms+index", "float-s", "fraction", "none", "ms"]


class Register:
    """The atomic register the clients talk to, one per key (keys by JSON identity)."""

    def __init__(self) -> None:
        self.values: dict[Hashable, Any] = {}

    def get(self, key: Any) -> Any:
        return self.values.get(json_identity(key))

    def apply(self, op: TrueOp) -> None:
        now = self.get(op.key)
        if op.f == "read":
            op.result = now
        elif op.f == "write":
            self.values[json_identity(op.key)] = op.value
        else:
            old, new = op.value
            if json_identity(now) == json_identity(old):
                self.values[json_identity(op.key)] = new
                op.result = "swapped"
            else:
                op.result = "refused"
        op.effected = True


@st.composite
def recordings(draw: Any, styles: list[str] = STYLES) -> Recording:
    keys = draw(st.sampled_from(KEY_SETS))
    unique = draw(st.booleans())
    budget = draw(st.integers(1, 9))
    threads = list(range(draw(st.integers(1, 4))))
    register, ops, events = Register(), [], []  # events: (op, "invoke" | "complete")
    process_of = {t: t for t in threads}
    pending: dict[int, TrueOp] = {}
    lingering: list[TrueOp] = []  # unknown outcome: may still take effect
    fresh = iter(range(100, 10**6))
    for _ in range(200):
        actions = []
        idle = [t for t in threads if t not in pending]
        if budget and idle:
            actions.append("invoke")
        if any(not o.effected and o.plan != "fail" for o in [*pending.values(), *lingering]):
            actions.append("effect")
        if pending:
            actions.append("complete")
        if not actions:
            break
        action = draw(st.sampled_from(actions))
        if action == "invoke":
            budget -= 1
            thread = draw(st.sampled_from(idle))
            op = _invoke(draw, process_of[thread], keys, unique, fresh, register, len(ops))
            op.start = len(events)
            pending[thread] = op
            ops.append(op)
            events.append((op, "invoke"))
        elif action == "effect":
            waiting = [o for o in [*pending.values(), *lingering] if not o.effected]
            register.apply(draw(st.sampled_from([o for o in waiting if o.plan != "fail"])))
        else:
            thread = draw(st.sampled_from(sorted(pending)))
            op = pending[thread]
            if op.plan == "ok" and not op.effected:
                register.apply(op)
            del pending[thread]
            if op.plan in ("info", "never"):
                lingering.append(op)
                process_of[thread] = next(fresh)  # Jepsen retires the process
            if op.plan != "never":
                op.end = len(events)
                events.append((op, "complete"))
    for op in ops:
        _settle(op)
    altered = draw(st.booleans()) and _alter(draw, ops)
    style = draw(st.sampled_from(styles))
    moments = _clock(draw, len(events))
    return Recording(ops, moments, style, _write(draw, events, moments, style), altered)


def _invoke(
    draw: Any,
    process: int,
    keys: list[Any],
    unique: bool,
    fresh: Iterator[int],
    register: Register,
    seq: int,
) -> TrueOp:
    f = draw(st.sampled_from(["read", "write", "cas"]))
    key = draw(st.sampled_from(keys))
    new = next(fresh) if unique else draw(st.sampled_from(POOL))
    plans = ["ok", "ok", "ok", "info", "never"] + (["fail"] if f != "cas" else [])
    plan = draw(st.sampled_from(plans))
    value: Any = None
    if f == "write":
        value = new
    elif f == "cas":
        old = register.get(key) if draw(st.booleans()) else draw(st.sampled_from(POOL))
        value = [old, new]
    return TrueOp(process, seq, f, key, value, plan, start=0)


def _settle(op: TrueOp) -> None:
    """What the client learned."""
    if op.plan in ("info", "never"):
        op.status, op.result = "info", None
    elif op.plan == "fail":
        op.status, op.result = "fail", None
    elif op.f == "cas":
        op.status, op.result = ("ok" if op.result == "swapped" else "fail"), None
    else:
        op.status = "ok"
        op.result = op.result if op.f == "read" else None


def _alter(draw: Any, ops: list[TrueOp]) -> bool:
    """Change one result, what a read saw or whether a cas succeeded; False if none can be."""
    known = [o for o in ops if o.f == "cas" and o.status != "info"]
    known += [o for o in ops if o.f == "read" and o.status == "ok"]
    if not known:
        return False
    op = draw(st.sampled_from(known))
    if op.f == "cas":
        op.status = "fail" if op.status == "ok" else "ok"
    else:
        seen = json_identity(op.result)
        others = [v for v in POOL if json_identity(v) != seen]
        op.result = draw(st.sampled_from([*others, "never written"]))
    return True


def _clock(draw: Any, n: int) -> list[int]:
    """Whole milliseconds for events in true order: about half share one with the last."""
    moments, now = [], draw(st.integers(0, 5))
    for _ in range(n):
        now += draw(st.sampled_from([0, 0, 1, 2]))
        moments.append(now)
    return moments


def _write(
    draw: Any, events: list[tuple[TrueOp, str]], moments: list[int], style: str
) -> list[dict[str, Any]]:
    """The JSONL lines of the history, in `style`; lines of different processes may be
    shuffled wherever times or indexes say the order."""
    base_ns = draw(st.sampled_from([0, 1_700_000_000_000_000_000, 2**62]))
    base_s = draw(st.sampled_from([0.0, 1.7e9]))
    lines = []
    for place, (op, kind) in enumerate(events):
        line: dict[str, Any] = {"process": op.process, "f": op.f, "key": op.key}
        if kind == "invoke":
            line.update(type="invoke", value=op.value)
        else:
            done = op.result if op.f == "read" else op.value
            line.update(type=op.status, value=done)
        micros = moments[place] * 1000 + place  # distinct, in true order
        line["time"] = {
            "ns": base_ns + micros * 1000,
            "ms+index": moments[place],
            "float-s": base_s + micros / 1e6,
            "fraction": place * 0.1,
            "ms": moments[place],
            "none": None,
        }[style]
        if style == "ms+index":
            line["index"] = 1000 + place
        if line["time"] is None:
            del line["time"]
        lines.append(line)
    if style != "none" and draw(st.booleans()):
        lines = _shuffle_processes(draw, lines)
    return lines


def _shuffle_processes(draw: Any, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A random interleaving of the processes' lines, each process's kept in order."""
    queues: dict[Any, list[dict[str, Any]]] = {}
    for line in lines:
        queues.setdefault(line["process"], []).append(line)
    out = []
    while queues:
        process = draw(st.sampled_from(sorted(queues)))
        out.append(queues[process].pop(0))
        if not queues[process]:
            del queues[process]
    return out


@examples(2000)
@given(recordings())
def test_kvctl_check_agrees_with_the_reference(scratch: Path, rec: Recording) -> None:
    if not rec.altered:  # what the register really did: the reference must accept it
        assert reference(rec) is True
    agrees(rec, scratch)
