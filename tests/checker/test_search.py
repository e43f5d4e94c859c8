"""The checker against an exhaustive oracle, on random small register histories.

Every pruning (read-only operations taken at once, symmetry, unknown outcomes last and never
as no-ops, evidence, the constraint graph) must leave each verdict as the oracle's.
"""

from __future__ import annotations

from typing import Any

import pytest
from checker_oracle import linearizable
from hypothesis import given, settings
from hypothesis import strategies as st

from kvctl.checker import check
from kvctl.checker import search as search_module
from kvctl.checker.register import Register
from kvctl.checker.search import search, symmetric_before
from kvctl.history import History

VALUES = st.sampled_from([None, 0, 1, 2])
COMPLETIONS = st.sampled_from(["ok", "ok", "ok", "fail", "info", "never"])


@st.composite
def histories(draw: Any, unique: bool) -> History:
    """Processes invoke and complete operations in a random interleaving. With `unique`,
    every write and cas writes a new value (as our workload does)."""
    events: list[dict[str, Any]] = []
    pending: dict[int, dict[str, Any]] = {}
    idle, fresh, written = list(range(draw(st.integers(1, 4)))), 100, 0
    for _ in range(draw(st.integers(1, 18))):
        if idle and (not pending or draw(st.booleans())):
            process = idle.pop(draw(st.integers(0, len(idle) - 1)))
            f = draw(st.sampled_from(["read", "write", "cas"]))
            written += 1
            new = written if unique else draw(VALUES)
            value = {"read": None, "write": new, "cas": [draw(VALUES), new]}[f]
            pending[process] = {"process": process, "f": f, "value": value}
            events.append({**pending[process], "type": "invoke"})
        elif pending:
            process = draw(st.sampled_from(sorted(pending)))
            op = pending.pop(process)
            kind = draw(COMPLETIONS)
            if kind == "never":
                continue
            if op["f"] == "read":
                op = {**op, "value": draw(VALUES) if kind == "ok" else None}
            events.append({**op, "type": kind})
            if kind == "info":
                idle.append(fresh)  # the process is retired; a new one takes its place
                fresh += 1
            else:
                idle.append(process)
    return History.from_events(events)


@settings(max_examples=400, deadline=None)
@given(histories(unique=False))
def test_agrees_with_the_oracle(history: History) -> None:
    assert check(history).valid is linearizable(history.ops)


@settings(max_examples=400, deadline=None)
@given(histories(unique=True))
def test_agrees_with_the_oracle_on_unique_values(history: History) -> None:
    assert check(history).valid is linearizable(history.ops)


class _Counter:
    """A register whose every write increments: the smallest model, to test the search."""

    def init(self) -> int:
        return 0

    def step(self, state: int, op: Any) -> tuple[bool, int]:
        return (state == op.result, state) if op.f == "read" else (True, state + 1)

    def read_only(self, op: Any) -> bool:
        return op.f == "read"


def _ops(*spans: tuple[str, int, int | None, Any]) -> list[Any]:
    events = []
    for p, (f, start, end, result) in enumerate(spans):
        events.append({"process": p, "type": "invoke", "f": f, "time": start})
        if end is not None:
            events.append({"process": p, "type": "ok", "f": f, "time": end, "value": result})
    return list(History.from_events(events).ops)


def test_search_returns_a_linearization() -> None:
    ops = _ops(("read", 0, 10, 1), ("write", 1, 2, None))
    out = search(ops, _Counter())
    assert out.valid is True and out.order == [1, 0]


def test_search_reports_the_furthest_blocked_operation() -> None:
    ops = _ops(("write", 0, 1, None), ("read", 2, 3, 0), ("read", 4, 5, 1))
    out = search(ops, _Counter())
    assert out.valid is False
    assert out.blocked == 1 and out.states == [1] and out.order == [0]


def test_symmetry_orders_identical_operations_by_their_intervals() -> None:
    ops = _ops(("write", 0, 5, None), ("write", 1, 6, None), ("write", 2, 4, None))
    before = symmetric_before(ops)
    # 0 and 1 are identical and 0 is earlier at both ends; 2 nests inside 0: no order.
    assert before == [0, 1 << 0, 0]


def test_unknown_outcomes_need_no_place() -> None:
    ops = _ops(("write", 0, None, None), ("read", 1, 2, 0))
    assert search(ops, _Counter()).valid is True


def _hard() -> History:
    """Twelve concurrent writes, then a read of a value nobody wrote: proving that takes
    every subset of the writes."""
    events = [
        {"process": p, "type": "invoke", "f": "write", "value": p, "time": 0} for p in range(12)
    ]
    events += [
        {"process": 99, "type": "invoke", "f": "read", "time": 5},
        {"process": 99, "type": "ok", "f": "read", "value": "never", "time": 6},
    ]
    events += [
        {"process": p, "type": "ok", "f": "write", "value": p, "time": 10} for p in range(12)
    ]
    return History.from_events(events)


def test_budget_gives_unknown_never_a_false_verdict() -> None:
    history = _hard()
    hurried = check(history, budget=1e-6)  # looked at after 1,024 steps; it needs thousands
    assert hurried.valid == "unknown"
    assert "ran out of time" in hurried.explanation
    assert check(history).valid is False


def test_memory_bound_gives_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "MEMO_BYTES", 100_000)
    result = check(_hard())
    assert result.valid == "unknown" and "ran out of memory" in result.explanation


def test_step_cap_gives_unknown_never_a_false_verdict() -> None:
    ops = list(_hard().ops)
    model = Register(ops)
    full = search(ops, model)
    assert full.valid is False
    assert search(ops, model, max_steps=full.steps).valid is False  # the cap is inclusive
    capped = search(ops, model, max_steps=full.steps - 1)
    assert capped.valid == "unknown" and capped.reason.startswith("the search ran out of steps")


def test_a_key_the_first_search_cannot_decide_is_searched_again_with_symmetry() -> None:
    # The first search may take QUICK_STEPS_PER_OP steps an operation; this key needs thousands.
    [key] = check(_hard()).keys
    assert key.valid is False and key.steps > 1000 and key.by == "search"
