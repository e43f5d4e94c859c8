"""The checker's API: verdicts per key, budgets, full reports, parallel workers."""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from checker_corpus import timed

from kvctl.checker import Result, check, load, parallel
from kvctl.checker.kv import Kv
from kvctl.history import History, HistoryError


def _two_keys() -> History:
    stale = timed((1, "write", 1, 0, 1, "ok"), (2, "read", None, 2, 3, "ok", None), key="bad")
    fine = timed((3, "write", 1, 0, 1, "ok"), (4, "read", None, 2, 3, "ok", 1), key="good")
    return History(tuple(replace(e, index=None) for e in stale.events + fine.events))


def test_stops_at_the_first_invalid_key_unless_asked_for_all() -> None:
    first = check(_two_keys())
    assert first.valid is False and [k.key for k in first.keys] == ["bad"]
    assert first.unchecked == 1
    full = check(_two_keys(), full=True)
    assert [(k.key, k.valid) for k in full.keys] == [("bad", False), ("good", True)]
    assert full.unchecked == 0
    assert full.explanation.startswith('key "bad": These orders cannot all hold')


def test_json_form() -> None:
    data = json.loads(json.dumps(check(_two_keys(), full=True).to_json()))
    assert data["valid"] is False and data["model"] == "register"
    assert [k["key"] for k in data["keys"]] == ['"bad"', '"good"']
    assert data["keys"][0]["by"] == "graph" and "order" not in data["keys"][0]


def test_explanation_worked_out_later_reads_the_same(corpus: Path) -> None:
    [key] = check(load(corpus / "porcupine" / "jepsen" / "etcd_000.log")).keys
    assert key.valid is False and key.by == "search"
    sent = pickle.loads(pickle.dumps(key))  # as from a worker process: the text travels
    text = key.explanation
    assert text.startswith("process 11's read 2 (lines 85 to 86) cannot take effect")
    assert sent.explanation == asdict(key)["explanation"] == text


def test_an_operation_of_the_wrong_shape_is_refused_with_its_line() -> None:
    events = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1},
        {"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": 1},
    ]
    refused = r"^<events>:3: a cas value must be \[old, new\], not 1$"
    with pytest.raises(HistoryError, match=refused):
        check(History.from_events(events))


def test_initial_value() -> None:
    h = timed((2, "read", None, 0, 1, "ok", 0))
    assert check(h).valid is False
    assert check(h, initial=0).valid is True


def test_empty_history_is_valid() -> None:
    result = check(History(()))
    assert isinstance(result, Result) and result.valid is True and result.keys == []


def test_model_can_be_given() -> None:
    h = History.from_events(
        [
            {"process": 0, "type": "invoke", "f": "get", "key": "k"},
            {"process": 0, "type": "ok", "f": "get", "key": "k", "value": ""},
        ]
    )
    assert check(h, model=Kv).model == "kv"


def test_hard_keys_run_in_worker_processes(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "QUICK", 1e-9)  # no key decides in the quick pass
    history = load(corpus / "porcupine" / "kv" / "c50-ok.txt")
    ok = check(history, workers=2)
    assert ok.valid is True
    assert [k.key for k in ok.keys] == list(dict.fromkeys(op.key for op in history.ops))
    bad = check(load(corpus / "porcupine" / "kv" / "c50-bad.txt"), workers=2)
    assert bad.valid is False and bad.explanation


@pytest.mark.parametrize(("workers", "keys"), [(1, 6), (2, 6), (2, parallel.MANY)])
def test_run_orders_results_and_stops_at_invalid(workers: int, keys: int) -> None:
    def task(key: int, seconds: float) -> SimpleNamespace:
        valid = "unknown" if seconds <= parallel.QUICK else key != 3
        return SimpleNamespace(key=key, valid=valid)

    budget = 10.0
    everything = parallel.run(task, list(range(keys)), budget, full=True, workers=workers)
    assert [(r.key, r.valid) for r in everything] == [(k, k != 3) for k in range(keys)]
    first = parallel.run(task, list(range(keys)), budget, full=False, workers=workers)
    assert [r.key for r in first if r.valid is False] == [3]
    assert [r.key for r in first] == sorted(r.key for r in first)
    if workers == 1:
        assert [r.key for r in first] == [0, 1, 2, 3]
