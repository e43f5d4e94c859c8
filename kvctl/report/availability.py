"""Availability under faults: one row per fault window, saying how much of the store kept
serving, and whether what did not serve could not (no majority) or would not (a defect).

A row holds the fault and its shape, its start and end (seconds since the first client event,
as on every plot), ok operations per second during the window and in the `BEFORE` seconds
before it, the time from when the fault was in force on every node to the first ok operation
(invoked since) on a key whose group kept a connected majority throughout, the time from the
heal to the first ok operation invoked after it, and the longest stretch of the window with
no ok operation at all.

Each group's connectivity comes from what the nemesis recorded (the grudge, the nodes taken
out, membership plans), judged by `connectivity`'s definitions. A group is *stalled* while an
operation on one of its keys, sent from a node that can serve the group, waits and no
operation on the group has completed ok since it began waiting. A stall longer than
`LIVENESS_BOUND` is a liveness defect, "unavailable although a majority existed"; a group
without a connected majority is "unavailable because no majority existed", which is no
defect. Stalls are judged only in windows where every fault in effect is one whose effect is
modelled (`MODELLED`): a slowed link (netem) or a reconfiguration may stall a group
legitimately; and only once each action has acted on every node: an action is recorded when
it returns, with how long it took, so a window starts when its start began to act and the
seconds until it returned are not judged.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from kvctl.history import History, thaw
from kvctl.node.placement import Placement
from kvctl.report import stats
from kvctl.report.connectivity import Network, has_majority, serves

LIVENESS_BOUND = 2.0  # seconds: an election and a forward's retry, with room to spare
BEFORE = 10.0  # seconds before a window that its "before" rate counts
MODELLED = frozenset({"partition", "kill", "pause", "power"})
NODE_FAULTS = frozenset({"kill", "pause", "power"})  # each takes its "nodes" out
DEFECT = "liveness defect: "


@dataclass(frozen=True)
class Topology:
    """Which nodes hold which group, as the cluster reported it when the run began."""

    nodes: tuple[str, ...]
    groups: int
    replication: int
    members: Mapping[int, tuple[str, ...]]
    assumed: bool = False  # not recorded: the cluster's defaults over the recorded nodes

    @classmethod
    def from_test(cls, test: Mapping[str, Any]) -> Topology:
        """From test.json: its `topology` (a node's own report), or else, for runs that did
        not record one, the default placement over the nodes of its `cluster`."""
        topo = test.get("topology")
        if isinstance(topo, Mapping):
            nodes = tuple(topo["nodes"])
            configs = topo.get("configs") or {}
            members = {int(g): tuple(c[1]) for g, c in configs.items()}
            return cls.placed(nodes, int(topo["groups"]), int(topo["replication"]), members)
        cluster = test.get("cluster")
        if not isinstance(cluster, Mapping) or not cluster:
            raise ValueError("test.json records neither the topology nor the cluster's nodes")
        nodes = tuple(cluster)
        return cls.placed(nodes, len(nodes), 3, {}, assumed=True)

    @classmethod
    def placed(cls, nodes: tuple[str, ...], groups: int, replication: int,
               members: Mapping[int, tuple[str, ...]], assumed: bool = False) -> Topology:
        """Members of each group as given, or as the placement ring puts them."""
        ring = Placement(nodes, groups, replication)
        full = {g: tuple(members.get(g) or ring.members(g)) for g in range(groups)}
        return cls(nodes, groups, replication, full, assumed)

    def group_of(self, key: Any) -> int:
        return Placement(self.nodes, self.groups, self.replication).group_of(key)


@dataclass(frozen=True)
class Epoch:
    """A stretch of the run with one state of the faults."""

    start: float
    end: float
    network: Network
    members: Mapping[int, tuple[str, ...]]
    active: frozenset[str]  # the faults in effect
    settled: bool = True  # False while an action is still changing the state

    @property
    def modelled(self) -> bool:
        return self.active <= MODELLED


@dataclass(frozen=True)
class Window:
    """One fault from when its start began to act to when its stop did (or the end of the
    history), and when the stop had acted on every node."""

    fault: str
    shape: str
    start: float
    in_force: float  # its start had acted on every node
    end: float
    healed: float


@dataclass(frozen=True)
class Call:
    """One client operation, reduced to what availability needs."""

    node: str | None  # the node its process is bound to
    group: int
    invoked: float
    done: float | None  # its completion, if it has one
    ok: bool


@dataclass
class Row:
    """One fault window's availability (times in seconds; None: it did not happen)."""

    fault: str
    shape: str
    start: float  # its start began to act
    in_force: float  # its start had acted on every node
    end: float  # its stop began to act
    healed: float  # its stop had acted on every node
    ok_per_second: float
    ok_per_second_before: float | None
    first_ok_majority: float | None  # from `in_force`, on a group that kept a majority
    first_ok_after_heal: float | None  # from `healed`
    longest_gap: float  # with no ok operation at all
    groups_with_majority: list[int] = field(default_factory=list)
    groups_without_majority: list[int] = field(default_factory=list)
    longest_stall: float | None = None  # None: not judged (no operation ran, or a fault
    # whose effect is not modelled was in effect)
    stalled_group: int | None = None
    liveness_defect: bool | None = None
    judgement: str = ""


# -- the run's state over time ------------------------------------------------------------


@dataclass
class _State:
    drops: dict[str, frozenset[str]] = field(default_factory=dict)
    out: dict[str, frozenset[str]] = field(default_factory=dict)  # fault -> nodes it took out
    members: dict[int, tuple[str, ...]] = field(default_factory=dict)
    opened: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # start, in force,
    # shape, by fault

    def frozen(self, start: float, end: float, settled: bool = True) -> Epoch:
        down = frozenset().union(*self.out.values())
        return Epoch(start, end, Network(dict(self.drops), down), dict(self.members),
                     frozenset(self.opened), settled)

    def apply(self, verb: str, fault: str, value: Mapping[str, Any], began: float,
              at: float) -> Window | None:
        """Change the state by one nemesis event (an action that began to act at `began` and
        was recorded at `at`); the window it closes, if any."""
        for group, members in value.get("plan") or []:
            self.members[int(group)] = tuple(members)
        if verb == "start" and "error" not in value:
            self.opened[fault] = (began, at, str(value.get("summary") or fault))
            if fault == "partition":
                self.drops = {n: frozenset(s) for n, s in (value.get("drops") or {}).items()}
            elif fault in NODE_FAULTS:
                self.out[fault] = frozenset(value.get("nodes") or ())
            return None
        if verb in ("stop", "heal") and fault in self.opened:
            if fault == "partition":
                self.drops = {}
            self.out.pop(fault, None)
            start, in_force, shape = self.opened.pop(fault)
            return Window(fault, shape, start, in_force, began, at)
        return None


def timeline(history: History, topology: Topology) -> tuple[list[Epoch], list[Window]]:
    """The run cut into epochs of one fault state each, and the fault windows. An action is
    recorded when it returns, with how long it took (`seconds`): from when it began until
    then, the state is changing (an unsettled epoch)."""
    zero, end = stats.origin(history), stats.span(history)
    state = _State(members=dict(topology.members))
    epochs: list[Epoch] = []
    windows: list[Window] = []
    last = 0.0
    for e in history.faults:
        verb, _, fault = e.f.partition("-")
        thawed = thaw(e.value)
        value = thawed if isinstance(thawed, dict) else {}
        at = max(last, ((e.time or zero) - zero) / 1e9)
        began = min(at, max(last, at - float(value.get("seconds") or 0.0)))
        epochs += [state.frozen(last, began), state.frozen(began, at, settled=False)]
        last = at
        closed = state.apply(verb, fault, value, began, at)
        if closed is not None:
            windows.append(closed)
    epochs.append(state.frozen(last, max(last, end)))
    windows += [Window(f, shape, start, in_force, end, end)
                for f, (start, in_force, shape) in state.opened.items()]
    return [e for e in epochs if e.end > e.start], sorted(windows, key=lambda w: w.start)


def calls(history: History, homes: Mapping[str, str], topology: Topology) -> list[Call]:
    """Every client operation with its node, its key's group and its times (s), by invocation."""
    zero = stats.origin(history)
    out = []
    for op in history.ops:
        if op.invoke.time is None:
            continue
        done = op.completion
        finished = None if done is None or done.time is None else (done.time - zero) / 1e9
        out.append(Call(homes.get(str(op.process)), topology.group_of(op.key),
                        (op.invoke.time - zero) / 1e9, finished,
                        done is not None and done.type == "ok"))
    return sorted(out, key=lambda c: c.invoked)


def homes(raw: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each process's node, as its invocations name it (kvctl's field beside the format's)."""
    return {str(e["process"]): str(e["node"]) for e in raw if "node" in e}


# -- the rows -----------------------------------------------------------------------------


def rows(history: History, raw: Iterable[Mapping[str, Any]], topology: Topology) -> list[Row]:
    """One row per fault window of the history."""
    epochs, windows = timeline(history, topology)
    ops = calls(history, homes(raw), topology)
    ok_times = sorted(c.done for c in ops if c.ok and c.done is not None)
    ok_by_group: dict[int, list[float]] = {}
    for c in ops:
        if c.ok and c.done is not None:
            ok_by_group.setdefault(c.group, []).append(c.done)
    for times in ok_by_group.values():
        times.sort()
    return [_row(w, epochs, ops, ok_times, ok_by_group, topology) for w in windows]


def _row(w: Window, epochs: Sequence[Epoch], ops: Sequence[Call], ok_times: Sequence[float],
         ok_by_group: Mapping[int, Sequence[float]], topology: Topology) -> Row:
    during = [e for e in epochs if e.start < w.end and e.end > w.start] or [
        e for e in epochs if e.start <= w.start][-1:]
    kept = [g for g in range(topology.groups)
            if all(has_majority(e.network, e.members[g]) for e in during)]
    before_from = max(0.0, w.start - BEFORE)
    row = Row(
        fault=w.fault, shape=w.shape, start=round(w.start, 3), in_force=round(w.in_force, 3),
        end=round(w.end, 3), healed=round(w.healed, 3),
        ok_per_second=_rate(ok_times, w.start, w.end),
        ok_per_second_before=_rate(ok_times, before_from, w.start) if w.start > 0 else None,
        first_ok_majority=_first_ok(ops, w.in_force, w.end, set(kept)),
        first_ok_after_heal=_first_ok(ops, w.healed, None, None),
        longest_gap=_longest_gap(ok_times, w.start, w.end),
        groups_with_majority=kept,
        groups_without_majority=[g for g in range(topology.groups) if g not in kept],
    )
    ran = any(c.invoked < w.end and (c.done is None or c.done > w.start) for c in ops)
    if ran and w.in_force < w.end and all(e.modelled for e in during):
        settled = [e for e in during if e.settled]
        row.longest_stall, row.stalled_group = _longest_stall(w, settled, ops, ok_by_group)
        row.liveness_defect = row.longest_stall > LIVENESS_BOUND
    row.judgement = judgement(row, topology)
    if not ran:
        row.judgement = "no client operation ran in this window (after the workload ended)"
    elif w.in_force >= w.end:
        row.judgement = (f"never in force on every node before its heal began (its start took "
                         f"{w.in_force - w.start:.1f} s): not judged")
    return row


def _rate(times: Sequence[float], start: float, end: float) -> float:
    """Ok operations per second completed in [start, end)."""
    if end <= start:
        return 0.0
    count = bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
    return round(count / (end - start), 1)


def _first_ok(ops: Sequence[Call], start: float, end: float | None,
              groups: set[int] | None) -> float | None:
    """Seconds from `start` to the first ok completion of an operation invoked at or after it
    (before `end`, on `groups`, if given)."""
    done = [c.done for c in ops
            if c.ok and c.done is not None and c.invoked >= start
            and (end is None or c.done <= end) and (groups is None or c.group in groups)]
    return round(min(done) - start, 3) if done else None


def _longest_gap(ok_times: Sequence[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] with no ok completion."""
    inside = ok_times[bisect.bisect_left(ok_times, start):bisect.bisect_right(ok_times, end)]
    marks = [start, *inside, end]
    return round(max(b - a for a, b in pairwise(marks)), 3)


def _longest_stall(w: Window, during: Sequence[Epoch], ops: Sequence[Call],
                   ok_by_group: Mapping[int, Sequence[float]]) -> tuple[float, int | None]:
    """The longest stretch in the window that some group which could serve spent stalled,
    and that group."""
    stalls: dict[int, list[tuple[float, float]]] = {}
    for epoch in during:
        lo, hi = max(w.start, epoch.start), min(w.end, epoch.end)
        can: dict[tuple[int, str | None], bool] = {}
        for c in ops:
            if c.invoked >= hi:
                break
            waits_from, waits_to = max(c.invoked, lo), min(c.done if c.done is not None else hi, hi)
            if waits_to <= waits_from:
                continue
            where = (c.group, c.node)
            if where not in can:
                can[where] = serves(epoch.network, epoch.members[c.group], c.node)
            if not can[where]:
                continue
            oks = ok_by_group.get(c.group, ())
            following = bisect.bisect_right(oks, waits_from)  # strictly after
            until = min(waits_to, oks[following]) if following < len(oks) else waits_to
            stalls.setdefault(c.group, []).append((waits_from, until))
    best, worst = 0.0, None
    for group, spans in stalls.items():
        longest = _longest_union(spans, ok_by_group.get(group, ()))
        if longest > best:
            best, worst = longest, group
    return round(best, 3), worst


def _longest_union(spans: Iterable[tuple[float, float]], oks: Sequence[float]) -> float:
    """The longest stretch covered by the union of the spans; spans that only touch at an ok
    completion (in `oks`, sorted) stay apart, since an ok ends a stall."""
    best, current = 0.0, None
    for a, b in sorted(spans):
        at_ok = bisect.bisect_right(oks, a) != bisect.bisect_left(oks, a)
        if current is not None and (a < current[1] or (a == current[1] and not at_ok)):
            current = (current[0], max(current[1], b))
        else:
            current = (a, b)
        best = max(best, current[1] - current[0])
    return best


def judgement(row: Row, topology: Topology) -> str:
    """The row's verdict in words."""
    def named(groups: Sequence[int]) -> str:
        return ", ".join(f"{g} ({','.join(topology.members[g])})" for g in groups)

    parts = []
    if row.liveness_defect and row.stalled_group is not None:
        parts.append(
            f"{DEFECT}group {named([row.stalled_group])} could serve but "
            f"operations on it waited {row.longest_stall:.1f} s with none completing "
            f"(unavailable although a majority existed)")
    if row.groups_without_majority:
        word = "group" if len(row.groups_without_majority) == 1 else "groups"
        parts.append(f"{word} {named(row.groups_without_majority)} had no connected majority "
                     "(unavailable because no majority existed)")
    if row.liveness_defect is None:
        parts.append("stalls not judged: a fault whose effect is not modelled was in effect")
    elif not row.liveness_defect:
        parts.append(f"every group that could serve did (longest wait {row.longest_stall:.1f} s)")
    return "; ".join(parts)


def defects(table: Sequence[Row]) -> list[str]:
    """The liveness defects of a table, one sentence each (the first part of a judgement)."""
    return [f"{r.fault} {r.start:.1f}-{r.end:.1f} s ({r.shape}): "
            f"{r.judgement.split('; ')[0].removeprefix(DEFECT)}"
            for r in table if r.liveness_defect]


def of_run(test: Mapping[str, Any], raw: Sequence[Mapping[str, Any]],
           source: str = "<events>") -> dict[str, Any]:
    """The table of one run as results.json keeps it, from its test.json and its events."""
    topology = Topology.from_test(test)
    return to_json(rows(History.from_events(raw, source=source), raw, topology), topology)


def from_json(data: Mapping[str, Any]) -> list[Row]:
    """The rows results.json keeps."""
    return [Row(**row) for row in data.get("windows", [])]


def to_json(table: Sequence[Row], topology: Topology) -> dict[str, Any]:
    """What results.json keeps."""
    return {
        "bound_seconds": LIVENESS_BOUND,
        "placement_assumed": topology.assumed,
        "members": {str(g): list(m) for g, m in topology.members.items()},
        "windows": [asdict(r) for r in table],
    }


COLUMNS = ("fault", "start-end s", "ok/s", "before", "first ok", "after heal", "no ok for",
           "longest wait")


def cells(row: Row) -> tuple[str, ...]:
    """A row as text, in the order of COLUMNS (- for what did not happen or was not judged)."""
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return (row.fault, f"{row.start:.1f}-{row.end:.1f}", f"{row.ok_per_second:g}",
            "-" if row.ok_per_second_before is None else f"{row.ok_per_second_before:g}",
            s(row.first_ok_majority), s(row.first_ok_after_heal), s(row.longest_gap),
            s(row.longest_stall))


def lines(table: Sequence[Row]) -> list[str]:
    """The table as aligned text, each row followed by its shape and judgement."""
    grid = [COLUMNS, *(cells(r) for r in table)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    out = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    for row in table:
        out.append("  ".join(c.ljust(w) for c, w in zip(cells(row), widths, strict=True)))
        out.append(f"    {row.shape}: {row.judgement}")
    return out


def shown(data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The rows of results.json's table as the report shows them: cells by COLUMNS, the
    shape, the judgement, and a class (defect, no-majority or fine)."""
    out = []
    for row in from_json(data or {}):
        css = ("invalid" if row.liveness_defect else
               "unknown" if row.groups_without_majority else "valid")
        out.append({"cells": cells(row), "shape": row.shape, "judgement": row.judgement,
                    "css": css})
    return out
