"""The compiled search (kvctl/checker/_csearch.c) returns exactly what the Python loop does.

Every other checker test runs whichever `search` is installed (compiled wherever a C compiler
was at hand, as in CI); these run both on the same inputs and compare every field of the
outcome: verdict, order or prefix, blocked operation, states tried, steps and memo size.
"""

from __future__ import annotations

import importlib
import os
import random
from pathlib import Path
from typing import Any

import pytest
from checker_corpus import manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search import _hard, histories

from kvctl.checker import check, load
from kvctl.checker import search as search_module
from kvctl.checker.register import Register
from kvctl.checker.search import Outcome, python_loop, search, symmetric_before
from kvctl.history import History

# kvctl.checker.check is the function; the module is here
check_module = importlib.import_module("kvctl.checker.check")
compiled = pytest.mark.skipif(
    not search_module.COMPILED and os.environ.get("CI") != "true",
    reason="kvctl was installed without a C compiler: the search runs in Python",
)


def test_the_search_is_compiled_in_ci() -> None:
    """CI installs with gcc at hand, so the compiled search must be what its tests ran."""
    if os.environ.get("CI") == "true":
        assert search_module.COMPILED, "kvctl/checker/_csearch.c was not built"


@pytest.fixture
def both_searches(monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    """Make `check` run both searches on every call and fail on any difference."""
    outcomes: list[Outcome] = []

    def both(*args: Any, **kwargs: Any) -> Outcome:
        fast = search(*args, **kwargs)
        slow = search(*args, **kwargs, loop=python_loop)
        assert fast == slow
        outcomes.append(fast)
        return fast

    monkeypatch.setattr(check_module, "search", both)
    return outcomes


@compiled
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories(unique=False))
def test_same_outcome_on_random_histories(history: History, both_searches: list[Outcome]) -> None:
    result = check(history, workers=1)
    assert len(both_searches) >= sum(key.by == "search" for key in result.keys)


@compiled
@settings(max_examples=300, deadline=None)
@given(history=histories(unique=True), cap=st.integers(0, 40), masks=st.booleans())
def test_same_outcome_with_step_caps_and_masks(history: History, cap: int, masks: bool) -> None:
    ops = list(history.ops)
    model = Register(ops)
    before = symmetric_before(ops) if masks else None
    for max_steps in (cap, None):
        assert search(ops, model, before, None, max_steps) == search(
            ops, model, before, None, max_steps, loop=python_loop
        )


def _wide(rng: random.Random, n: int) -> History:
    """`n` operations on up to 8 processes, values often repeated, some outcomes unknown:
    more than 64 operations, so the compiled search's sets span several words."""
    events: list[dict[str, Any]] = []
    pending: dict[int, dict[str, Any]] = {}
    idle, fresh, invoked = list(range(rng.randrange(2, 9))), 100, 0
    while invoked < n or pending:
        if idle and invoked < n and (not pending or rng.random() < 0.5):
            process = idle.pop(rng.randrange(len(idle)))
            f, new = rng.choice(["read", "write", "cas"]), rng.randrange(4)
            value = {"read": None, "write": new, "cas": [rng.randrange(4), new]}[f]
            pending[process] = {"process": process, "f": f, "value": value}
            events.append({**pending[process], "type": "invoke"})
            invoked += 1
            continue
        process = rng.choice(sorted(pending))
        op, kind = pending.pop(process), rng.choice(["ok", "ok", "ok", "fail", "info"])
        if op["f"] == "read":
            op["value"] = rng.randrange(4) if kind == "ok" else None
        events.append({**op, "type": kind})
        idle.append(fresh if kind == "info" else process)
        fresh += kind == "info"
    return History.from_events(events)


@compiled
@pytest.mark.parametrize("seed", range(40))
def test_same_outcome_on_wide_histories(seed: int) -> None:
    rng = random.Random(seed)
    ops = sorted(_wide(rng, rng.randrange(65, 200)).ops, key=lambda op: op.call)
    model = Register(ops)
    for before in (None, symmetric_before(ops)):
        for max_steps in (None, rng.randrange(1, 3000)):
            assert search(ops, model, before, None, max_steps) == search(
                ops, model, before, None, max_steps, loop=python_loop
            )


ROWS = [row for row in manifest() if row[0].stat().st_size < 200_000]


@compiled
@pytest.mark.parametrize(
    "path", [p for p, _ in ROWS], ids=[f"{p.parent.name}/{p.name}" for p, _ in ROWS]
)
def test_same_outcome_on_the_reference_corpus(path: Path, both_searches: list[Outcome]) -> None:
    initial = 0 if "knossos" in path.parts else None
    result = check(load(path), initial=initial, full=True, workers=1)  # workers: monkeypatch
    assert len(both_searches) >= sum(key.by == "search" for key in result.keys)


@compiled
def test_same_outcome_when_out_of_steps_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = list(_hard().ops)
    model = Register(ops)
    assert search(ops, model, max_steps=500) == search(ops, model, max_steps=500, loop=python_loop)
    monkeypatch.setattr(search_module, "MEMO_BYTES", 100_000)
    out = search(ops, model)
    assert out == search(ops, model, loop=python_loop)
    assert out.valid == "unknown" and "ran out of memory" in out.reason


class _Broken:
    """A model whose step raises, or returns nonsense."""

    def __init__(self, error: bool) -> None:
        self.error = error

    def init(self) -> int:
        return 0

    def step(self, state: int, op: Any) -> Any:
        if self.error:
            raise ValueError("step failed")
        return "not a pair"

    def read_only(self, op: Any) -> bool:
        return False


@compiled
def test_a_model_error_reaches_the_caller() -> None:
    ops = list(_hard().ops)
    with pytest.raises(ValueError, match="step failed"):
        search(ops, _Broken(error=True))
    with pytest.raises(TypeError, match="legal, state"):
        search(ops, _Broken(error=False))
