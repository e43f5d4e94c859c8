"""Issue 11: how the history reader takes times, ties, values and ambiguous input.

Each example goes through `kvctl check` on a JSONL file, the path a user's history takes.
Exit status 0 is valid, 1 invalid, 3 input refused (see `kvctl.history`, rule by rule).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kvctl.cli import main

VALID, INVALID, REFUSED = 0, 1, 3


def _event(process: Any, kind: str, f: str, value: Any = None, **extra: Any) -> str:
    return json.dumps(
        {"process": process, "type": kind, "f": f, "key": "x", "value": value, **extra}
    )


def _check(tmp_path: Path, lines: list[str]) -> tuple[int, str, Path]:
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(path)])
    return result.exit_code, result.stdout + result.stderr, path


def _write_then_read(seen: Any, times: list[Any], **value: Any) -> list[str]:
    """Process 0 writes (value 1 unless given), then process 1 reads `seen`; one time each."""
    written = value.get("written", 1)
    return [
        _event(0, "invoke", "write", written, time=times[0]),
        _event(0, "ok", "write", written, time=times[1]),
        _event(1, "invoke", "read", None, time=times[2]),
        _event(1, "ok", "read", seen, time=times[3]),
    ]


# 1. Times are exact.


def test_issue_example_float_seconds_are_not_truncated(tmp_path: Path) -> None:
    # The read began after the write completed and saw null: not linearizable.
    code, out, _ = _check(tmp_path, _write_then_read(None, [1.2, 1.4, 1.7, 1.9]))
    assert code == INVALID, out
    # Times that are not whole nanoseconds are shown as written.
    assert "the first completed at time 1.4, before the second was invoked at time 1.7" in out


def test_fractional_times_order_within_one_unit(tmp_path: Path) -> None:
    code, out, _ = _check(tmp_path, _write_then_read(None, [0.25, 0.5, 0.75, 0.875]))
    assert code == INVALID, out
    code, out, _ = _check(tmp_path, _write_then_read(1, [0.25, 0.5, 0.75, 0.875]))
    assert code == VALID, out


def test_integer_times_beyond_float_precision_stay_exact(tmp_path: Path) -> None:
    big = 2**60
    code, out, _ = _check(tmp_path, _write_then_read(None, [big, big + 1, big + 2, big + 3]))
    assert code == INVALID, out


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_times_are_refused_not_a_traceback(tmp_path: Path, bad: str) -> None:
    lines = _write_then_read(None, [1, 2, 3, 4])
    lines[2] = lines[2].replace('"time": 3', f'"time": {bad}')
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED
    assert out.startswith(f"kvctl check: {path}:3: ") and "Traceback" not in out


# 2. Ties follow program order on each process, and index where given.


def test_an_op_invoked_when_its_predecessor_completed_follows_it(tmp_path: Path) -> None:
    lines = [
        _event(0, "invoke", "write", 1, time=0),
        _event(0, "ok", "write", 1, time=5),
        _event(0, "invoke", "read", None, time=5),
        _event(0, "ok", "read", None, time=6),
    ]
    code, out, _ = _check(tmp_path, lines)
    assert code == INVALID, out


def test_index_orders_events_with_equal_times(tmp_path: Path) -> None:
    lines = [
        _event(0, "invoke", "write", 1, time=0, index=0),
        _event(0, "ok", "write", 1, time=5, index=1),
        _event(1, "invoke", "read", None, time=5, index=2),
        _event(1, "ok", "read", None, time=5, index=3),
    ]
    code, out, _ = _check(tmp_path, lines)
    assert code == INVALID, out


def test_without_index_ties_between_processes_overlap(tmp_path: Path) -> None:
    # The read may have taken effect before the write did: both happened at time 5.
    code, out, _ = _check(tmp_path, _write_then_read(None, [0, 5, 5, 6]))
    assert code == VALID, out


def test_two_processes_chaining_at_one_instant_need_an_index(tmp_path: Path) -> None:
    lines = [
        _event(0, "invoke", "write", 1, time=0),
        _event(1, "invoke", "write", 2, time=0),
        _event(0, "ok", "write", 1, time=5),
        _event(0, "invoke", "read", None, time=5),
        _event(1, "ok", "write", 2, time=5),
        _event(1, "invoke", "read", None, time=5),
        _event(0, "ok", "read", 1, time=6),
        _event(1, "ok", "read", 2, time=6),
    ]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED
    assert f"{path}:6: processes 0 (lines 3-4) and 1 (lines 5-6)" in out and "index" in out


# 3. Values and keys compare by JSON identity.


@pytest.mark.parametrize(
    ("written", "seen"),
    [(True, 1), (False, 0), (1, True), ({"a": 1}, [["a", 1]]), ([["a", 1]], {"a": 1})],
)
def test_values_compare_by_json_identity(tmp_path: Path, written: Any, seen: Any) -> None:
    code, out, _ = _check(tmp_path, _write_then_read(seen, [0, 1, 2, 3], written=written))
    assert code == INVALID, out


def test_one_number_type(tmp_path: Path) -> None:
    code, out, _ = _check(tmp_path, _write_then_read(1.0, [0, 1, 2, 3], written=1))
    assert code == VALID, out


def test_keys_compare_by_json_identity(tmp_path: Path) -> None:
    lines = _write_then_read(5, [0, 1, 2, 3], written=5)
    lines[:2] = [line.replace('"key": "x"', '"key": 1') for line in lines[:2]]
    lines[2:] = [line.replace('"key": "x"', '"key": true') for line in lines[2:]]
    code, out, _ = _check(tmp_path, lines)
    assert code == INVALID, out  # nobody wrote 5 under the key true


def test_nan_values_are_refused(tmp_path: Path) -> None:
    lines = _write_then_read(None, [0, 1, 2, 3])
    lines[3] = lines[3].replace('"value": null', '"value": NaN')
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:4: not JSON: NaN" in out


# 4. Ambiguous or inconsistent input is refused, naming the file, the line and the problem.


def test_only_some_events_timed(tmp_path: Path) -> None:
    lines = _write_then_read(None, [10, 20, 30, 40])
    lines[2] = lines[2].replace(', "time": 30', "")
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED
    assert f"{path}:3: this event has no time, but line 1 has one" in out


def test_only_some_events_indexed(tmp_path: Path) -> None:
    lines = [
        line.replace("}", f', "index": {n}}}')
        for n, line in enumerate(_write_then_read(1, [1, 2, 3, 4]))
    ]
    lines[1] = lines[1].replace(', "index": 1', "")
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:2: this event has no index, but line 1 has one" in out


def test_a_process_invoking_before_its_previous_op_completed(tmp_path: Path) -> None:
    lines = [
        _event(0, "invoke", "write", 1, time=0),
        _event(0, "ok", "write", 1, time=10),
        _event(0, "invoke", "read", None, time=5),
        _event(0, "ok", "read", 1, time=12),
    ]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED
    assert f"{path}:3: process 0 invokes read at time 5, before its previous write (line 2)" in out


def test_line_order_contradicting_times_on_one_process(tmp_path: Path) -> None:
    lines = [_event(0, "invoke", "read", None, time=9), _event(0, "ok", "read", None, time=3)]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:2: process 0's ok read comes after line 1" in out


def test_index_contradicting_time(tmp_path: Path) -> None:
    lines = [
        _event(0, "invoke", "write", 1, time=0, index=0),
        _event(1, "invoke", "read", None, time=2, index=1),
        _event(0, "ok", "write", 1, time=1, index=2),
        _event(1, "ok", "read", None, time=3, index=3),
    ]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:3: index 2 comes after index 1 (line 2)" in out


def test_an_index_used_twice(tmp_path: Path) -> None:
    lines = [line.replace("}", ', "index": 7}') for line in _write_then_read(1, [1, 2, 3, 4])]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:2: index 7 is also the index of line 1" in out


@pytest.mark.parametrize("process", ["true", "false", "null", "[1]", '{"p": 1}'])
def test_a_process_must_be_a_number_or_a_string(tmp_path: Path, process: str) -> None:
    lines = _write_then_read(1, [0, 1, 2, 3])
    lines[2:] = [line.replace('"process": 1', f'"process": {process}') for line in lines[2:]]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED
    assert f"{path}:3: process must be a number or a string, not {process}" in out


def test_true_and_1_are_not_one_process(tmp_path: Path) -> None:
    # Process 1 invokes; "process true" completing it would pair them if they were one.
    lines = [_event(1, "invoke", "read", None), _event(True, "ok", "read", None)]
    code, out, path = _check(tmp_path, lines)
    assert code == REFUSED and f"{path}:2: process must be" in out


def test_an_invalid_file_still_wins_over_a_refused_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(_write_then_read(None, [1, 2, 3, 4])) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["check", str(broken), str(bad)]).exit_code == INVALID
    assert CliRunner().invoke(main, ["check", str(broken)]).exit_code == REFUSED
