"""Operations and histories: the JSONL format every part of kvctl reads and writes.

A history is a sequence of events, one JSON object a line::

    {"index": 7, "time": 1200000000, "process": 3, "type": "invoke", "f": "cas",
     "key": "k1", "value": [4, 5]}

`type` is invoke, ok, fail or info; `f` is read, write or cas; a cas value is `[old, new]`;
`time` is in nanoseconds. `index` and `time` may be missing: then line order is real-time
order. Events of process "nemesis" record faults; they are kept apart from client operations.

An invocation and the next completion of the same process form one `Op`. Real time is a
total order of events (by time when every event has one, invocations first at equal times,
so two operations that share a timestamp count as concurrent).

What the events mean (the linearizability checker relies on exactly this):

- Each key is a register of its own and starts as null, meaning absent (unless the checker is
  given another initial value).
- read ok v: the register held v (null: absent) at some point between invocation and completion.
- write ok v: the register held v from some point between invocation and completion.
- cas ok [a, b]: at some point it held a, and from then on b.
- cas fail [a, b]: the comparison failed, so at some point the register did not hold a; the
  value did not change. This is an observation the checker uses.
- fail on read or write: it did not happen.
- info, or an invocation that never completes: the outcome is unknown. A write or cas may take
  effect at any point after its invocation (even after the info was recorded), or never; a cas
  takes effect only if the register held a. A read with unknown result constrains nothing.

Histories of other systems are read into the same form (`kvctl.checker.formats`); Knossos's
semantics differ (a failed cas did not happen; a read of nil matches any value) and its
importer translates them.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

TYPES = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"


class HistoryError(ValueError):
    """Input that is not a history; the message names the source and the line."""


def freeze(value: Any) -> Hashable:
    """JSON lists become tuples, so that values can be compared, hashed and memoized."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def thaw(value: Any) -> Any:
    """The JSON form of a frozen value."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


class Event(NamedTuple):
    """One line of a history. `line` is where it was read from (1-based), for messages."""

    process: Hashable
    type: str
    f: str
    key: Hashable = None
    value: Any = None
    time: int | None = None
    index: int | None = None
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSONL object of this event (fields that are unknown are left out)."""
        d: dict[str, Any] = {}
        if self.index is not None:
            d["index"] = self.index
        if self.time is not None:
            d["time"] = self.time
        d.update(
            process=self.process,
            type=self.type,
            f=self.f,
            key=thaw(self.key),
            value=thaw(self.value),
        )
        return d


class Op(NamedTuple):
    """An invocation with its completion.

    `call` and `ret` are ranks in the history's real-time order; `ret` is None when the
    outcome is unknown. `value` is the argument the client sent; `result` what an ok
    completion returned.
    """

    id: int
    process: Hashable
    f: str
    key: Hashable
    value: Any
    result: Any
    status: str
    call: int
    ret: int | None
    invoke: Event
    completion: Event | None

    @property
    def known(self) -> bool:
        """True when the client learned the outcome (ok or fail)."""
        return self.ret is not None


def _where(source: str, line: int) -> str:
    return f"{source}:{line}"


@dataclass(frozen=True)
class History:
    """Events in the order they were recorded, with their operations paired and ranked."""

    events: tuple[Event, ...]
    source: str = "<history>"
    ops: tuple[Op, ...] = field(init=False)
    faults: tuple[Event, ...] = field(init=False)
    ranked: tuple[Event, ...] = field(init=False)

    def __post_init__(self) -> None:
        clients = [e for e in self.events if e.process != NEMESIS]
        rank = _ranks(clients)
        object.__setattr__(self, "faults", tuple(e for e in self.events if e.process == NEMESIS))
        object.__setattr__(self, "ops", tuple(_pair(clients, rank, self.source)))
        object.__setattr__(self, "ranked", tuple(sorted(clients, key=lambda e: rank[id(e)])))

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]], source: str = "<events>") -> History:
        """A history from dicts in the JSONL format (as the simulator and runner make them)."""
        return cls(tuple(_event(d, n, source) for n, d in enumerate(events, 1)), source)

    @classmethod
    def read_jsonl(cls, path: str | Path) -> History:
        """Read a JSONL history; a malformed line raises HistoryError naming file and line."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise HistoryError(f"{source}: cannot read: {err}") from None
        events = []
        for n, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
            except json.JSONDecodeError as err:
                raise HistoryError(f"{_where(source, n)}: not JSON: {err.msg}") from None
            events.append(_event(d, n, source))
        return cls(tuple(events), source)

    def write_jsonl(self, path: str | Path) -> None:
        """Write the events, one JSON object a line."""
        with open(path, "w", encoding="utf-8") as out:
            for e in self.events:
                out.write(json.dumps(e.to_dict()) + "\n")

    def time_at(self, rank: int) -> int | None:
        """Nanoseconds from the first event to the event of a rank; None without a clock."""
        first, t = self.ranked[0].time, self.ranked[rank].time
        return None if first is None or t is None else t - first


def _event(d: Any, line: int, source: str) -> Event:
    where = _where(source, line)
    if not isinstance(d, Mapping):
        raise HistoryError(f"{where}: expected a JSON object, got {type(d).__name__}")
    for name in ("process", "type", "f"):
        if name not in d:
            raise HistoryError(f"{where}: missing field {name!r}")
    if d["type"] not in TYPES:
        raise HistoryError(f"{where}: type must be one of {', '.join(TYPES)}, not {d['type']!r}")
    if not isinstance(d["f"], str):
        raise HistoryError(f"{where}: f must be a string, not {d['f']!r}")
    numbers = {}
    for name in ("time", "index"):
        v = d.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise HistoryError(f"{where}: {name} must be a number, not {v!r}")
        numbers[name] = None if v is None else int(v)
    process = freeze(d["process"])
    return Event(
        process,
        d["type"],
        d["f"],
        freeze(d.get("key")),
        freeze(d.get("value")),
        numbers["time"],
        numbers["index"],
        line,
    )


def _ranks(events: list[Event]) -> dict[int, int]:
    """Real-time order: by time if every event has one, else by index, else as recorded."""
    if events and all(e.time is not None for e in events):
        order = sorted(events, key=lambda e: (e.time, e.type != "invoke"))
    elif events and all(e.index is not None for e in events):
        order = sorted(events, key=lambda e: e.index)
    else:
        order = events
    return {id(e): r for r, e in enumerate(order)}


def _pair(events: list[Event], rank: dict[int, int], source: str) -> list[Op]:
    """Join each invocation with its process's next completion, in recorded order."""
    open_: dict[Hashable, Event] = {}
    pairs: list[tuple[Event, Event | None]] = []
    slot: dict[Hashable, int] = {}
    for e in events:
        where = _where(source, e.line)
        if e.type == "invoke":
            if e.process in open_:
                raise HistoryError(
                    f"{where}: process {e.process} invokes again while its {open_[e.process].f} "
                    f"from line {open_[e.process].line} has not completed"
                )
            open_[e.process] = e
            slot[e.process] = len(pairs)
            pairs.append((e, None))
            continue
        inv = open_.pop(e.process, None)
        if inv is None:
            raise HistoryError(f"{where}: process {e.process} completes {e.f} it never invoked")
        if inv.f != e.f:
            raise HistoryError(
                f"{where}: process {e.process} completes {e.f} but invoked {inv.f} "
                f"at line {inv.line}"
            )
        if rank[id(e)] < rank[id(inv)]:
            raise HistoryError(f"{where}: completes before its invocation at line {inv.line}")
        pairs[slot[e.process]] = (inv, e)
    ops = []
    for n, (inv, done) in enumerate(pairs):
        status = "info" if done is None else done.type
        known = status in ("ok", "fail")
        ops.append(
            Op(
                n,
                inv.process,
                inv.f,
                inv.key,
                inv.value,
                done.value if status == "ok" else None,
                status,
                rank[id(inv)],
                rank[id(done)] if known else None,
                inv,
                done,
            )
        )
    return ops
