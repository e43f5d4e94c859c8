"""Histories: the JSONL format, pairing, real-time order, and malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvctl.history import History, HistoryError


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pairs_invocations_with_completions() -> None:
    h = History.from_events(
        [
            {"process": 0, "type": "invoke", "f": "write", "key": "a", "value": 1},
            {"process": 1, "type": "invoke", "f": "cas", "key": "a", "value": [1, 2]},
            {"process": 0, "type": "ok", "f": "write", "key": "a", "value": 1},
            {"process": 1, "type": "fail", "f": "cas", "key": "a", "value": [1, 2]},
            {"process": 2, "type": "invoke", "f": "read", "key": "a", "value": None},
            {"process": 2, "type": "ok", "f": "read", "key": "a", "value": 1},
            {"process": 3, "type": "invoke", "f": "write", "key": "a", "value": 3},
        ]
    )
    w, cas, r, lost = h.ops
    assert (w.status, w.call, w.ret) == ("ok", 0, 2)
    assert (cas.status, cas.value, cas.ret) == ("fail", (1, 2), 3)
    assert (r.result, r.known) == (1, True)
    assert (lost.status, lost.ret, lost.completion) == ("info", None, None)


def test_info_has_no_return_point() -> None:
    h = History.from_events(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1},
            {"process": 0, "type": "info", "f": "write", "value": 1},
        ]
    )
    assert h.ops[0].status == "info" and h.ops[0].ret is None and not h.ops[0].known


def test_time_orders_events_and_shared_timestamps_overlap() -> None:
    # Recorded out of order; equal times put invocations first (closed intervals).
    h = History.from_events(
        [
            {"process": 1, "type": "invoke", "f": "read", "time": 50},
            {"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 10},
            {"process": 0, "type": "ok", "f": "write", "value": 1, "time": 50},
            {"process": 1, "type": "ok", "f": "read", "value": 1, "time": 60},
        ]
    )
    read, write = h.ops
    assert write.call < read.call < write.ret < read.ret
    assert h.time_at(read.ret) == 50


def test_index_orders_events_without_time() -> None:
    h = History.from_events(
        [
            {"process": 1, "type": "invoke", "f": "read", "index": 2},
            {"process": 0, "type": "invoke", "f": "write", "value": 1, "index": 0},
            {"process": 0, "type": "ok", "f": "write", "value": 1, "index": 1},
            {"process": 1, "type": "ok", "f": "read", "value": 1, "index": 3},
        ]
    )
    read, write = h.ops
    assert write.ret < read.call
    assert h.time_at(0) is None


def test_line_order_without_time_or_index() -> None:
    h = History.from_events(
        [
            {"process": 1, "type": "invoke", "f": "read"},
            {"process": 0, "type": "invoke", "f": "write", "value": 1},
            {"process": 0, "type": "ok", "f": "write", "value": 1},
            {"process": 1, "type": "ok", "f": "read", "value": 1},
        ]
    )
    read, write = h.ops
    assert read.call < write.call < write.ret < read.ret


def test_nemesis_events_are_faults_not_operations() -> None:
    h = History.from_events(
        [
            {"process": "nemesis", "type": "info", "f": "start-partition", "value": ["n1"]},
            {"process": 0, "type": "invoke", "f": "read"},
        ]
    )
    assert len(h.ops) == 1 and h.faults[0].f == "start-partition"
    assert h.faults[0].value == ("n1",)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    events = [
        {
            "index": 0,
            "time": 5,
            "process": 0,
            "type": "invoke",
            "f": "cas",
            "key": "k",
            "value": [1, 2],
        },
        {
            "index": 1,
            "time": 9,
            "process": 0,
            "type": "ok",
            "f": "cas",
            "key": "k",
            "value": [1, 2],
        },
    ]
    path = tmp_path / "out.jsonl"
    History.from_events(events).write_jsonl(path)
    assert [json.loads(line) for line in path.read_text().splitlines()] == events
    assert History.read_jsonl(path).ops[0].value == (1, 2)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"process": 0, "type": "invoke", "f": "read"}', "not json"], ":2: not JSON"),
        (["[1, 2]"], ":1: expected a JSON object, got list"),
        (['{"type": "invoke", "f": "read"}'], ":1: missing field 'process'"),
        (['{"process": 0, "type": "begin", "f": "read"}'], ":1: type must be one of"),
        (['{"process": 0, "type": "invoke", "f": 7}'], ":1: f must be a string"),
        (['{"process": 0, "type": "invoke", "f": "read", "time": "noon"}'], ":1: time must be"),
        (['{"process": 0, "type": "ok", "f": "read"}'], ":1: process 0 completes read it never"),
        (
            [
                '{"process": 0, "type": "invoke", "f": "read"}',
                '{"process": 0, "type": "invoke", "f": "read"}',
            ],
            ":2: process 0 invokes again",
        ),
        (
            [
                '{"process": 0, "type": "invoke", "f": "read"}',
                '{"process": 0, "type": "ok", "f": "write"}',
            ],
            ":2: process 0 completes write but",
        ),
        (
            [
                '{"process": 0, "type": "invoke", "f": "read", "time": 9}',
                '{"process": 0, "type": "ok", "f": "read", "time": 3}',
            ],
            ":2: process 0's ok read comes after line 1 in the file, but its time 3 is earlier",
        ),
    ],
)
def test_malformed_jsonl_names_file_and_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = _jsonl(tmp_path, *lines)
    with pytest.raises(HistoryError) as err:
        History.read_jsonl(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_blank_lines_are_skipped_and_unreadable_files_reported(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, "", '{"process": 0, "type": "invoke", "f": "read"}', "  ")
    assert History.read_jsonl(path).ops[0].invoke.line == 2
    with pytest.raises(HistoryError, match="cannot read"):
        History.read_jsonl(tmp_path / "missing.jsonl")
