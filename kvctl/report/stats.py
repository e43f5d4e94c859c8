"""Figures of a history: counts, latencies, throughput and fault windows.

Times are seconds since the first client event, the origin the checker's explanations use,
so "at 12.3 s" means the same moment in the verdict and on every plot.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kvctl.history import History, thaw

TYPES = ("ok", "fail", "info")
QUANTILES = (0.5, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Point:
    """One completed operation: when it was invoked (s), how long it took (ms), its outcome."""

    time: float
    latency: float
    type: str
    f: str


@dataclass(frozen=True)
class Window:
    """A fault in effect from `start` to `end` (seconds)."""

    fault: str
    start: float
    end: float
    summary: str


def origin(history: History) -> float:
    """The time (ns) of the first client event: zero on every axis."""
    first = history.ranked[0].time if history.ranked else None
    return first or 0


def points(history: History) -> list[Point]:
    zero = origin(history)
    out = []
    for op in history.ops:
        done = op.completion
        if done is None or done.time is None or op.invoke.time is None:
            continue
        out.append(Point((op.invoke.time - zero) / 1e9, (done.time - op.invoke.time) / 1e6,
                         done.type, op.f))
    return out


def span(history: History) -> float:
    """Seconds from the first client event to the last event of any kind."""
    times = [e.time for e in history.events if e.time is not None]
    return max(0.0, (max(times) - origin(history)) / 1e9) if times else 0.0


def windows(history: History) -> list[Window]:
    """Each fault's start-to-stop intervals (a start never stopped lasts to the end)."""
    zero, end = origin(history), span(history)
    opened: dict[str, tuple[float, str]] = {}
    found = []
    for e in history.faults:
        verb, _, fault = e.f.partition("-")
        at = ((e.time or zero) - zero) / 1e9
        thawed = thaw(e.value)
        fields = thawed if isinstance(thawed, dict) else {}
        if verb == "start" and "error" not in fields:
            began = at - float(fields.get("seconds") or 0.0)  # recorded when it returned
            opened[fault] = (began, str(fields.get("summary", fault)))
        elif verb in ("stop", "heal") and fault in opened:
            start, summary = opened.pop(fault)
            found.append(Window(fault, start, at, summary))
    found.extend(Window(f, start, end, summary) for f, (start, summary) in opened.items())
    return sorted(found, key=lambda w: w.start)


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max (nearest rank), in the values' unit."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in QUANTILES:
        rank = max(0, math.ceil(q * len(ordered)) - 1)
        out["max" if q == 1.0 else f"p{round(q * 100)}"] = round(ordered[rank], 3)
    return out


def counts(history: History) -> dict[str, dict[str, int]]:
    """Completions by f and by type, plus a total row; never-completed ops count as info."""
    table: dict[str, Counter[str]] = {}
    for op in history.ops:
        table.setdefault(op.f, Counter())[op.status] += 1
    total: Counter[str] = sum(table.values(), Counter())
    return {f: {t: row[t] for t in TYPES} for f, row in [*sorted(table.items()), ("all", total)]}


def latency_table(pts: Sequence[Point]) -> dict[str, dict[str, float]]:
    """Quantiles of ok operations' latencies (ms), by f and for all."""
    ok = [p for p in pts if p.type == "ok"]
    table = {f: quantiles([p.latency for p in ok if p.f == f]) for f in sorted({p.f for p in ok})}
    table["all"] = quantiles([p.latency for p in ok])
    return table


def summary(history: History) -> dict[str, Any]:
    """The figures results.json keeps: counts, latency quantiles of ok operations (ms)."""
    pts = points(history)
    seconds = span(history)
    ok = sum(1 for p in pts if p.type == "ok")
    return {
        "operations": len(history.ops),
        "counts": counts(history),
        "latency_ms": latency_table(pts),
        "seconds": round(seconds, 3),
        "ok_per_second": round(ok / seconds, 1) if seconds else 0.0,
    }
