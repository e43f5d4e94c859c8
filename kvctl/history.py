"""Operations and histories: the JSONL format every part of kvctl reads and writes.

A history is a sequence of events, one JSON object a line::

    {"index": 7, "time": 1200000000, "process": 3, "type": "invoke", "f": "cas",
     "key": "k1", "value": [4, 5]}

`type` is invoke, ok, fail or info; `f` is read, write or cas; a cas value is `[old, new]`;
`time` is in nanoseconds. Events of process "nemesis" record faults; they are kept apart from
client operations. An invocation and the next completion of the same process form one `Op`.

How events are read, rule by rule. Input that breaks a rule is refused with a `HistoryError`
naming the file, the line and the problem (`kvctl check` exits 3): a checker that guesses can
call a history valid that is not.

1. Values and keys compare by JSON identity: `true` is not `1`, `false` is not `0`, an object
   is not a list of pairs, a list is not an object. JSON has one number type, so `1.0` is `1`.
   NaN and infinities are not JSON numbers and are refused.
2. `process` is a number or a string (never `true`, `null`, a list or an object), so that
   `true` and `1` cannot name one process.
3. `time` is a finite number, kept exactly: integers stay integers, floats stay floats (Python
   compares the two exactly). `index` is an integer, each one used once.
4. Either every client event has a time or none has; the same for `index`. When only some
   have one, which order was meant is a guess, so it is refused.
5. Real-time order: by time, then by index where given; by index alone when there is no time;
   by line when there is neither. Where times and indexes are both given they must agree: an
   event with a larger index never has an earlier time.
6. Program order: each process's events are in the order of its lines, and their times (or
   indexes) never go back from one line to the next. So a process that invokes an operation
   before its previous one completed, or whose line order contradicts its times, is refused.
   An operation invoked at the same instant as its predecessor on that process completed
   still follows it.
7. Ties without index: two events of different processes at the same time are concurrent
   (an operation that completes at t and one invoked at t may take effect in either order).
   When two processes each complete an operation and invoke their next at one instant, those
   ties cannot all be concurrent while each process keeps its order: refused, give index.

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
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypeVar

_T = TypeVar("_T")
TYPES = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"


class HistoryError(ValueError):
    """Input that is not a history; the message names the source and the line."""


class JsonBool:
    """JSON's true or false: equal only to itself, never to 1 or 0 as Python's bool is."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonBool) and other.value is self.value

    def __hash__(self) -> int:
        return hash((JsonBool, self.value))

    def __repr__(self) -> str:
        return "true" if self.value else "false"


class JsonObject:
    """A JSON object, frozen: equal to objects with the same members, never to a list."""

    __slots__ = ("members",)

    def __init__(self, members: Iterable[tuple[str, Hashable]]) -> None:
        self.members = frozenset(members)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonObject) and other.members == self.members

    def __hash__(self) -> int:
        return hash((JsonObject, self.members))

    def __repr__(self) -> str:
        members = sorted(self.members, key=lambda m: str(m[0]))
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in members) + "}"


TRUE, FALSE = JsonBool(True), JsonBool(False)


def freeze(value: Any) -> Hashable:
    """A JSON value in a form that compares by JSON identity (module rule 1) and can be hashed
    and memoized: lists become tuples, objects `JsonObject`, booleans `JsonBool`.

    Raises ValueError for NaN and infinities, which JSON does not have."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is bool:
        return TRUE if value else FALSE
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return value
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return JsonObject((k, freeze(v)) for k, v in value.items())
    return value


def thaw(value: Any) -> Any:
    """The JSON form of a frozen value."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if isinstance(value, JsonBool):
        return value.value
    if isinstance(value, JsonObject):
        return {k: thaw(v) for k, v in sorted(value.members, key=lambda m: str(m[0]))}
    return value


@dataclass(slots=True)
class Event:
    """One line of a history. `line` is where it was read from (1-based), for messages.

    Not a NamedTuple, whose `index` would hide tuple's method of that name; not frozen, since
    a frozen dataclass takes several times longer to make and a history has one per line.
    Treated as immutable all the same."""

    process: Hashable
    type: str
    f: str
    key: Hashable = None
    value: Any = None
    time: int | float | None = None
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
        order = _real_time(clients, self.source)  # positions in clients
        ranks: Sequence[int] = order
        if not isinstance(order, range):  # line order is its own inverse
            ranks = [0] * len(order)
            for rank, n in enumerate(order):
                ranks[n] = rank
        object.__setattr__(self, "faults", tuple(e for e in self.events if e.process == NEMESIS))
        object.__setattr__(self, "ops", tuple(_pair(clients, ranks, self.source)))
        ranked = clients if isinstance(order, range) else [clients[n] for n in order]
        object.__setattr__(self, "ranked", tuple(ranked))

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
                d = json.loads(raw, parse_constant=_not_a_number)
            except json.JSONDecodeError as err:
                raise HistoryError(f"{_where(source, n)}: not JSON: {err.msg}") from None
            except ValueError as err:
                raise HistoryError(f"{_where(source, n)}: not JSON: {err}") from None
            events.append(_event(d, n, source))
        return cls(tuple(events), source)

    def write_jsonl(self, path: str | Path) -> None:
        """Write the events, one JSON object a line."""
        with open(path, "w", encoding="utf-8") as out:
            for e in self.events:
                out.write(json.dumps(e.to_dict()) + "\n")

    def time_at(self, rank: int) -> int | float | None:
        """Time from the first event to the event of a rank; None without a clock."""
        first, t = self.ranked[0].time, self.ranked[rank].time
        return None if first is None or t is None else t - first


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def number(v: Any, name: str, where: str) -> int | float | None:
    """A time as given (module rule 3): None if absent, else a finite number, kept exactly."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise HistoryError(f"{where}: {name} must be a number, not {v!r}")
    if not math.isfinite(v):
        raise HistoryError(f"{where}: {name} must be a finite number, not {v}")
    return v


def integer(v: Any, name: str, where: str) -> int | None:
    """An index as given (module rule 3): None if absent, else a whole finite number."""
    n = number(v, name, where)
    if n is None:
        return None
    if n != int(n):
        raise HistoryError(f"{where}: {name} must be an integer, not {v!r}")
    return int(n)


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
    process = d["process"]
    if isinstance(process, bool) or not isinstance(process, str | int | float):
        shown = json.dumps(process) if _jsonable(process) else repr(process)
        raise HistoryError(f"{where}: process must be a number or a string, not {shown}")
    try:
        key, value = freeze(d.get("key")), freeze(d.get("value"))
        freeze(process)  # a process may not be NaN either
    except ValueError as err:
        raise HistoryError(f"{where}: {err}") from None
    return Event(
        process,
        d["type"],
        d["f"],
        key,
        value,
        number(d.get("time"), "time", where),
        integer(d.get("index"), "index", where),
        line,
    )


def _jsonable(value: Any) -> bool:
    """Whether `value` can be shown as JSON (from_events takes any Python value)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _real_time(events: list[Event], source: str) -> Sequence[int]:
    """The events' positions in real-time order (module rules 4 to 7)."""
    times = _all_or_none(events, [e.time for e in events], "time", source)
    indexes = _all_or_none(events, [e.index for e in events], "index", source)
    if indexes is not None:
        return _by_index(events, indexes, times, source)
    if times is not None:
        return _by_time(events, times, source)
    return range(len(events))


def _all_or_none(
    events: list[Event], values: list[_T | None], name: str, source: str
) -> list[_T] | None:
    """The events' `values` of a field when every event has one; None when none has; refused
    when only some have it."""
    missing = values.count(None)
    if missing == len(values):
        return None
    if not missing:
        return [v for v in values if v is not None]
    first = next(e for e, v in zip(events, values, strict=True) if v is not None)
    lacking = next(e for e, v in zip(events, values, strict=True) if v is None)
    _refuse(
        source,
        lacking.line,
        f"this event has no {name}, but line {first.line} has one: give every event a "
        f"{name}, or none (then line order is real-time order)",
    )


def _refuse(source: str, line: int, problem: str) -> NoReturn:
    raise HistoryError(f"{_where(source, line)}: {problem}")


def _by_index(
    events: list[Event], indexes: list[int], times: list[int | float] | None, source: str
) -> list[int]:
    """Index order; with times, it must agree with time order."""
    order = sorted(range(len(events)), key=indexes.__getitem__)
    for a, b in pairwise(order):
        if indexes[a] == indexes[b]:
            _refuse(
                source,
                events[b].line,
                f"index {indexes[b]} is also the index of line {events[a].line}",
            )
        if times is not None and times[b] < times[a]:
            _refuse(
                source,
                events[b].line,
                f"index {indexes[b]} comes after index {indexes[a]} (line {events[a].line}), "
                f"but its time {times[b]} is earlier than {times[a]}",
            )
    return order


def _by_time(events: list[Event], times: list[int | float], source: str) -> list[int]:
    """Time order, ties resolved as module rule 7 says."""
    order = sorted(range(len(events)), key=times.__getitem__)
    resolved: list[int] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or times[order[end]] != times[order[start]]:
            tie = order[start:end]
            resolved.extend(tie if len(tie) == 1 else _untie(events, tie, source))
            start = end
    return resolved


def _untie(events: list[Event], tie: list[int], source: str) -> list[int]:
    """Events that share one time: other processes' invocations first and their completions
    last, so they overlap; in between, the one process that completes an operation and
    invokes its next one at this instant, in its own order."""
    mine: dict[Hashable, list[Event]] = {}
    for n in tie:  # line order: sorted() is stable
        mine.setdefault(events[n].process, []).append(events[n])
    chained = [p for p, es in mine.items() if _completes_then_invokes(es)]
    if len(chained) > 1:
        a, b = (mine[p] for p in chained[:2])
        _refuse(
            source,
            b[-1].line,
            f"processes {chained[0]} (lines {a[0].line}-{a[-1].line}) and {chained[1]} (lines "
            f"{b[0].line}-{b[-1].line}) each complete an operation and invoke the next at "
            f"time {events[tie[0]].time}; which completion came first matters and cannot be "
            f"told: give every event an index, or finer times",
        )
    rest = [n for n in tie if not chained or events[n].process != chained[0]]
    middle = [n for n in tie if chained and events[n].process == chained[0]]
    return (
        [n for n in rest if events[n].type == "invoke"]
        + middle
        + [n for n in rest if events[n].type != "invoke"]
    )


def _completes_then_invokes(events: list[Event]) -> bool:
    completed = False
    for e in events:
        if e.type != "invoke":
            completed = True
        elif completed:
            return True
    return False


def _out_of_order(earlier: Event, later: Event) -> str:
    """What is wrong when `later`, recorded after `earlier` by the same process, comes first
    in time."""
    clock = "time" if earlier.time is not None else "index"
    at_earlier, at_later = getattr(earlier, clock), getattr(later, clock)
    if later.type == "invoke" and earlier.type != "invoke":
        return (
            f"process {later.process} invokes {later.f} at {clock} {at_later}, before its "
            f"previous {earlier.f} (line {earlier.line}) completed at {clock} {at_earlier}"
        )
    return (
        f"process {later.process}'s {later.type} {later.f} comes after line {earlier.line} "
        f"in the file, but its {clock} {at_later} is earlier than that line's {at_earlier}"
    )


def _pair(events: list[Event], ranks: Sequence[int], source: str) -> list[Op]:
    """Join each invocation with its process's next completion, in recorded order, which
    must be real-time order on each process (module rule 6). `ranks[n]` is the rank of
    `events[n]` in real-time order."""
    open_: dict[Hashable, int] = {}  # process -> its operation's id
    last: dict[Hashable, int] | None = None if isinstance(ranks, range) else {}  # line order
    ops: list[Any] = []  # by id: the Op, or the invocation's position until it completes
    for n, e in enumerate(events):
        process = e.process
        if last is not None:
            before = last.get(process)
            if before is not None and ranks[before] > ranks[n]:
                _refuse(source, e.line, _out_of_order(events[before], e))
            last[process] = n
        if e.type == "invoke":
            if process in open_:
                busy = events[ops[open_[process]]]
                _refuse(
                    source,
                    e.line,
                    f"process {process} invokes again while its {busy.f} from line "
                    f"{busy.line} has not completed",
                )
            open_[process] = len(ops)
            ops.append(n)
            continue
        k = open_.pop(process, -1)
        if k < 0:
            _refuse(source, e.line, f"process {process} completes {e.f} it never invoked")
        i = ops[k]
        invoke = events[i]
        if invoke.f != e.f:
            _refuse(
                source,
                e.line,
                f"process {process} completes {e.f} but invoked {invoke.f} at line {invoke.line}",
            )
        status = e.type
        ok = status == "ok"
        ops[k] = _new_op(
            (
                k,
                process,
                invoke.f,
                invoke.key,
                invoke.value,
                e.value if ok else None,
                status,
                ranks[i],
                ranks[n] if ok or status == "fail" else None,
                invoke,
                e,
            )
        )
    for process, k in open_.items():  # never completed
        i = ops[k]
        invoke = events[i]
        ops[k] = _new_op(
            (
                k,
                process,
                invoke.f,
                invoke.key,
                invoke.value,
                None,
                "info",
                ranks[i],
                None,
                invoke,
                None,
            )
        )
    return ops


_new_op = partial(tuple.__new__, Op)  # an Op from a tuple, without NamedTuple's slower __new__
