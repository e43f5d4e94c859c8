"""Histories recorded from a simulated atomic register are linearizable, and stop being so when
one read is corrupted to a value nobody wrote.

Each operation takes effect at one instant between its invocation and completion; one whose
outcome the client never learns (info, or no completion) takes effect at some instant after
its invocation, possibly after the client gave up, or never.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kvctl.checker import check
from kvctl.history import History


@st.composite
def recordings(draw: Any) -> list[dict[str, Any]]:
    keys = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True))
    unique = draw(st.booleans())
    ops, counter = [], 0
    for thread in range(draw(st.integers(1, 5))):
        process, clock = thread, draw(st.integers(0, 20))
        for _ in range(draw(st.integers(1, 8))):
            f = draw(st.sampled_from(["read", "write", "cas"]))
            counter += 1
            new = counter if unique else draw(st.integers(0, 3))
            start = clock
            effect = start + draw(st.integers(0, 30))
            end = effect + draw(st.integers(0, 30))
            outcome = draw(st.sampled_from(["ok", "ok", "ok", "info", "never", "lost"]))
            if outcome == "lost":  # an unknown outcome that never took effect
                effect = None
            elif outcome in ("info", "never"):
                effect = start + draw(st.integers(0, 90))  # maybe after the client gave up
            ops.append(
                {
                    "process": process,
                    "f": f,
                    "key": draw(st.sampled_from(keys)),
                    "new": new,
                    "start": start,
                    "end": end,
                    "effect": effect,
                    "outcome": "info" if outcome == "lost" else outcome,
                    "expect": draw(st.integers(0, 3)),
                }
            )
            if outcome != "ok":
                process += 100  # Jepsen retires a process after an unknown outcome
            clock = end + 1 + draw(st.integers(0, 10))
    return _record(ops)


def _record(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the register at each effect instant; write down what clients saw."""
    register: dict[str, Any] = {}
    for op in sorted((o for o in ops if o["effect"] is not None), key=lambda o: o["effect"]):
        now = register.get(op["key"])
        if op["f"] == "read":
            op["seen"] = now
        elif op["f"] == "write":
            register[op["key"]] = op["new"]
        else:
            expect = now if op["expect"] == 0 else op["expect"]  # often succeed
            op["cas"] = [expect, op["new"]]
            op["failed"] = now != expect
            if not op["failed"]:
                register[op["key"]] = op["new"]
    events = []
    for op in ops:
        value = {"read": None, "write": op["new"], "cas": op.get("cas", [op["expect"], op["new"]])}[
            op["f"]
        ]
        base = {"process": op["process"], "f": op["f"], "key": op["key"]}
        events.append({**base, "type": "invoke", "value": value, "time": op["start"]})
        if op["outcome"] == "never":
            continue
        kind = op["outcome"]
        if kind == "ok" and op["f"] == "cas" and op["failed"]:
            kind = "fail"
        done = op.get("seen") if op["f"] == "read" else value
        events.append({**base, "type": kind, "value": done, "time": op["end"]})
    return sorted(events, key=lambda e: e["time"])


@settings(max_examples=150, deadline=None)
@given(recordings())
def test_an_atomic_register_is_linearizable(events: list[dict[str, Any]]) -> None:
    result = check(History.from_events(events), full=True)
    assert result.valid is True, result.explanation


@settings(max_examples=150, deadline=None)
@given(recordings(), st.data())
def test_a_read_of_a_value_never_written_is_not(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    reads = [e for e in events if e["f"] == "read" and e["type"] == "ok"]
    if not reads:
        return
    data.draw(st.sampled_from(reads))["value"] = "never written"
    result = check(History.from_events(events), full=True)
    assert result.valid is False
    assert '"never written"' in result.explanation
