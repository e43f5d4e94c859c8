"""What really happened in a recorded history, and the check that kvctl agrees with it.

The property tests (generated register histories, and the simulator's) know the true order of
events. The reference (checker_oracle) takes real time from that truth; kvctl reads the JSONL
lines as a user hands them over, through `kvctl check FILE`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from checker_oracle import json_identity, linearizable
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from kvctl.cli import main

EXIT = {0: True, 1: False, 2: "unknown", 3: "refused"}


def examples(count: int) -> settings:
    """Hypothesis settings for a property test: `count` cases, no deadline (the machine is
    shared), one scratch file for all of them (the `scratch` fixture)."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@dataclass
class TrueOp:
    """An operation as it really happened; `start` and `end` are places in the true order of
    events (`end` None: no completion was recorded)."""

    process: int
    seq: int
    f: str
    key: Any
    value: Any
    plan: str  # ok, fail (read or write that did not happen), info, never
    start: int
    end: int | None = None
    result: Any = None
    status: str = "info"
    effected: bool = False


@dataclass
class Recording:
    """A history as the clients saw it, its JSONL lines, and the clock of each event."""

    ops: list[TrueOp]
    moments: list[int]  # the coarse clock (whole ms) of each event, ties included
    style: str  # "ms": whole milliseconds without index; any other: an exact order
    lines: list[dict[str, Any]]
    altered: bool  # one result was changed after the fact


def precedence(rec: Recording) -> Callable[[TrueOp, TrueOp], bool]:
    """Real time as it truly was: the true order of events, or, for whole milliseconds
    without index, the clock (ties between processes are concurrent) and program order."""

    def exact(a: TrueOp, b: TrueOp) -> bool:
        return a.status != "info" and a.end is not None and a.end < b.start

    def coarse(a: TrueOp, b: TrueOp) -> bool:
        if a.status == "info" or a.end is None:
            return False
        return rec.moments[a.end] < rec.moments[b.start] or (
            a.process == b.process and a.seq < b.seq
        )

    return coarse if rec.style == "ms" else exact


def reference(rec: Recording, initial: Any = None) -> bool:
    """The reference verdict: each key on its own (a register per key)."""
    keys: dict[Hashable, list[TrueOp]] = {}
    for op in rec.ops:
        keys.setdefault(json_identity(op.key), []).append(op)
    return all(linearizable(ops, initial, precedence(rec)) for ops in keys.values())


def untieable(rec: Recording) -> bool:
    """Whether two processes each complete an operation and invoke their next one in the same
    millisecond: without index, kvctl refuses such a history (rule 7 of kvctl.history)."""
    chained: dict[int, set[int]] = {}
    by_process: dict[int, list[TrueOp]] = {}
    for op in rec.ops:
        by_process.setdefault(op.process, []).append(op)
    for process, ops in by_process.items():
        for a, b in pairwise(ops):
            if a.end is not None and rec.moments[a.end] == rec.moments[b.start]:
                chained.setdefault(rec.moments[b.start], set()).add(process)
    return any(len(processes) > 1 for processes in chained.values())


def kvctl_check(lines: list[dict[str, Any]], path: Path, initial: Any = None) -> bool | str:
    """`kvctl check FILE` on the lines, as a user runs it: the verdict from the exit status."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--initial", json.dumps(initial), str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return EXIT[result.exit_code]


def agrees(rec: Recording, path: Path, initial: Any = None) -> bool | str:
    """Assert that `kvctl check` (from the lines) and the reference (from the truth) agree, or
    that kvctl refuses ties it cannot order (rule 7); kvctl's verdict."""
    verdict = kvctl_check(rec.lines, path, initial)
    if rec.style == "ms" and untieable(rec):
        assert verdict == "refused"
        return verdict
    assert verdict == reference(rec, initial), "\n".join(json.dumps(line) for line in rec.lines)
    return verdict
