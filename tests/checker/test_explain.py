"""Explanations: the words a person reads to check a verdict by hand."""

from __future__ import annotations

from checker_corpus import timed

from kvctl.checker import check
from kvctl.checker.explain import seconds
from kvctl.history import History


def test_seconds() -> None:
    assert seconds(12_300_000_000) == "12.3 s"
    assert seconds(5_000_000) == "0.005 s"
    assert seconds(7_000_000_000) == "7 s"
    assert seconds(1_000_004) == "0.001000004 s"  # to the nanosecond: see the next test


def test_events_a_few_nanoseconds_apart_read_as_apart() -> None:
    events = [
        {"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 5},
        {"process": 0, "type": "ok", "f": "write", "key": "x", "value": 1, "time": 6},
        {"process": 1, "type": "invoke", "f": "read", "key": "x", "time": 8},
        {"process": 1, "type": "ok", "f": "read", "key": "x", "value": None, "time": 9},
    ]
    text = check(History.from_events(events)).explanation
    assert "completed at 0.000000001 s, before the second was invoked at 0.000000003 s" in text


def test_a_stale_read_found_by_the_search() -> None:
    # Two writes of 4 make values not unique, so the search (not the graph) decides.
    h = timed(
        (1, "write", 4, 1.0, 1.5, "ok"),
        (6, "write", 4, 1.0, 1.5, "ok"),
        (2, "write", 5, 11.0, 11.9, "ok"),
        (3, "write", 2, 12.0, 13.0, "ok"),
        (4, "write", 3, 12.0, 13.0, "ok"),
        (7, "read", None, 12.1, 12.3, "ok", 4),
    )
    result = check(h)
    assert result.valid is False and result.keys[0].by == "search"
    text = result.explanation
    assert text.startswith(
        'key "k": process 7\'s read 4 (11.1 s to 11.3 s) cannot take '
        "effect: at that point the register could only hold 2, 3 or 5."
    )
    assert (
        "but then process 2's write 5 (10 s to 10.9 s) changed the register to 5, which "
        "completed before it was invoked."
    ) in text
    assert (
        "Longest linearizable prefix found: 5 operations, ending with process 2's write 5 "
        "(10 s to 10.9 s); process 3's write 2"
    ) in text
    assert (
        "Concurrent with it: process 3's write 2 (11 s to 12 s); process 4's write 3 "
        "(11 s to 12 s)."
    ) in text
    assert result.keys[0].blocked == 5


def test_a_cycle_found_by_the_graph() -> None:
    h = timed(
        (1, "write", 1, 0, 1, "ok"), (2, "write", 2, 2, 3, "ok"), (3, "read", None, 4, 5, "ok", 1)
    )
    result = check(h)
    assert result.keys[0].by == "graph"
    assert result.explanation == (
        'key "k": These orders cannot all hold, since they form a cycle: '
        "(1) process 3's read 1 (4 s to 5 s) before process 2's write 2 (2 s to 3 s): the first "
        "saw 1, which was gone once the second took effect; "
        "(2) process 2's write 2 (2 s to 3 s) before process 3's read 1 (4 s to 5 s): the first "
        "completed at 3 s, before the second was invoked at 4 s."
    )


def test_a_cycle_through_a_cas_chain() -> None:
    # Both cas saw 1; only one of them can have replaced it.
    h = timed(
        (1, "write", 1, 0, 1, "ok"), (2, "cas", [1, 2], 2, 3, "ok"), (3, "cas", [1, 3], 2, 3, "ok")
    )
    text = check(h).explanation
    assert "which the second (a cas) replaced" in text
    assert text.count("(a cas) replaced") == 2


def test_unknown_writes_settled_by_evidence() -> None:
    # The write's outcome is unknown, but a read saw 9, so it happened before that read ended;
    # a later read of the initial value is then stale.
    h = timed(
        (1, "write", 9, 0, 1, "info"),
        (2, "read", None, 2, 3, "ok", 9),
        (3, "read", None, 4, 5, "ok", None),
    )
    result = check(h)
    assert result.valid is False
    assert (
        "process 1's write 9 (invoked at 0 s, outcome unknown, but its effect was seen)"
        in result.explanation
    )


def test_lines_stand_for_times_without_a_clock() -> None:
    h = History.from_events(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1},
            {"process": 0, "type": "ok", "f": "write", "value": 1},
            {"process": 1, "type": "invoke", "f": "write", "value": 1},
            {"process": 1, "type": "ok", "f": "write", "value": 1},
            {"process": 2, "type": "invoke", "f": "read"},
            {"process": 2, "type": "ok", "f": "read", "value": 2},
        ]
    )
    text = check(h).explanation
    assert text.startswith(
        "key null: process 2's read 2 (lines 5 to 6) cannot take effect: "
        "at that point the register could only hold 1."
    )
    assert "No order of the operations before it lets it take effect." in text


def test_the_last_fault_is_named() -> None:
    h = History.from_events(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 0},
            {"process": 1, "type": "invoke", "f": "write", "value": 1, "time": 0},
            {"process": 0, "type": "ok", "f": "write", "value": 1, "time": 10},
            {"process": 1, "type": "ok", "f": "write", "value": 1, "time": 10},
            {
                "process": "nemesis",
                "type": "info",
                "f": "start-partition",
                "value": "n1",
                "time": 15,
            },
            {"process": 2, "type": "invoke", "f": "read", "time": 20},
            {"process": 2, "type": "ok", "f": "read", "value": None, "time": 30},
        ]
    )
    assert (
        'The last fault before it returned: nemesis info start-partition "n1" at 0.000000015 s.'
        in check(h).explanation
    )


def test_valid_histories_need_no_explanation() -> None:
    result = check(timed((1, "write", 1, 0, 1, "ok"), (2, "read", None, 0.5, 2, "ok", 1)))
    assert result.valid is True and result.explanation == ""
    assert result.keys[0].order == [0, 1]


def test_events_at_one_time_are_told_apart_by_what_ordered_them() -> None:
    def events(index: bool) -> list[dict[str, object]]:
        rows = [
            (0, "invoke", "write", 1, 1),
            (0, "ok", "write", 1, 2),
            (1, "invoke", "read", None, 2),
            (1, "ok", "read", None, 3),
        ]
        return [
            {"process": p, "type": t, "f": f, "key": "x", "value": v, "time": time}
            | ({"index": n} if index else {})
            for n, (p, t, f, v, time) in enumerate(rows)
        ]

    # Without index, the write's completion and the read's invocation at one time overlap:
    # the read may come first, and the history is linearizable.
    assert check(History.from_events(events(index=False))).valid is True
    text = check(History.from_events(events(index=True))).explanation
    assert (
        "the first completed at 0.000000001 s (index 1), before the second was invoked at "
        "0.000000001 s (index 2)"
    ) in text
