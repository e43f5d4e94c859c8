"""Availability per fault window, from hand-built histories: the figures, and the line between
"no majority existed" and "unavailable although a majority existed"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kvctl import report, store
from kvctl.cli.check import check
from kvctl.history import History
from kvctl.nemesis import grudge
from kvctl.report import availability as av
from kvctl.report import stats
from kvctl.report.connectivity import Network, has_majority, serves, viable_leaders
from kvctl.runner import analyse

NODES = ("n1", "n2", "n3", "n4", "n5")
TOPOLOGY = av.Topology.placed(NODES, 5, 3, {})  # group g on n(g+1), n(g+2), n(g+3) of the ring
S = 1_000_000_000


def key_in(group: int) -> str:
    return next(f"k{i}" for i in range(1000) if TOPOLOGY.group_of(f"k{i}") == group)


class Run:
    """A history built op by op (times in seconds), each process bound to one node."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def op(self, process: int, node: str, group: int, invoked: float, done: float | None,
           kind: str = "ok") -> None:
        key = key_in(group)
        self.events.append({"time": int(invoked * S), "process": process, "type": "invoke",
                            "f": "write", "key": key, "value": process, "node": node})
        if done is not None:
            self.events.append({"time": int(done * S), "process": process, "type": kind,
                                "f": "write", "key": key, "value": process})

    def fault(self, at: float, f: str, **value: Any) -> None:
        self.events.append({"time": int(at * S), "process": "nemesis", "type": "info", "f": f,
                            "value": value})

    def sorted(self) -> list[dict[str, Any]]:
        events = sorted(self.events, key=lambda e: e["time"])
        for i, e in enumerate(events):
            e["index"] = i
        return events

    def rows(self, topology: av.Topology = TOPOLOGY) -> list[av.Row]:
        events = self.sorted()
        return av.rows(History.from_events(events), events, topology)


def steady(run: Run, process: int, node: str, group: int, start: float, end: float,
           step: float = 0.5) -> None:
    """A process that completes one ok operation every `step` seconds."""
    t = start
    while t + step <= end + 1e-9:
        run.op(process, node, group, t, t + step)
        t += step


# -- connectivity ---------------------------------------------------------------------------


def test_a_leader_needs_a_majority_it_reaches_directly() -> None:
    path = {"a": "b", "b": "ac", "c": "bd", "d": "c", "e": "", "f": "", "g": ""}
    members = list(path)
    drops = {n: frozenset(m for m in members if m != n and m not in path[n]) for n in members}
    net = Network(drops)
    # a-b-c-d are connected through each other, 4 of 7, but none reaches 4 directly
    assert viable_leaders(net, members) == []
    assert viable_leaders(net, ["a", "b", "c"]) == ["a", "b", "c"]  # 2 of 3 each
    assert viable_leaders(net, ["a", "c", "d"]) == ["c", "d"]
    assert viable_leaders(net, ["a", "c", "e"]) == []  # b joins a and c, but is no member
    assert not has_majority(Network(drops, frozenset({"b"})), ["a", "b", "c"])


def test_a_node_serves_through_at_most_one_member() -> None:
    members = ["a", "b", "c", "d", "e"]
    links = {("a", "b"), ("b", "c"), ("x", "a"), ("y", "x")}
    everyone = [*members, "x", "y"]
    drops = {n: frozenset(m for m in everyone if m != n and (n, m) not in links
                          and (m, n) not in links) for n in everyone}
    net = Network(drops)
    assert viable_leaders(net, members) == ["b"]  # a and c reach 2 of 5 each
    assert serves(net, members, "x")  # x -> a (a member) -> b
    assert not serves(net, members, "y")  # y -> x is no member: three hops
    assert not serves(net, members, "d")
    assert not serves(Network(drops, frozenset({"a"})), members, "x")  # a is out


def test_a_bridge_keeps_every_group_of_three_a_majority() -> None:
    import random

    drops = grudge.bridge(list(NODES), random.Random(3))
    net = Network(drops)
    assert all(has_majority(net, TOPOLOGY.members[g]) for g in range(5))


# -- rows -----------------------------------------------------------------------------------


def halves(run: Run, start: float, end: float) -> None:
    drops = grudge.describe(grudge.complete([["n1", "n2", "n3"]], list(NODES)))
    run.fault(start, "start-partition", drops=drops, summary="halves: n1,n2,n3 | n4,n5")
    run.fault(end, "stop-partition", summary="network healed")


def test_the_figures_of_a_window() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 30.0)  # 2 ok/s all along
    steady(run, 1, "n4", 3, 0.0, 10.0, step=0.25)  # 4 ok/s before the cut
    run.op(1, "n4", 3, 10.0, 11.0)  # the first second of the window: group 3 on n4, n5
    steady(run, 1, "n4", 3, 20.0, 30.0, step=0.25)
    halves(run, 10.0, 20.0)
    [row] = run.rows()
    assert (row.fault, row.shape, row.start, row.end) == (
        "partition", "halves: n1,n2,n3 | n4,n5", 10.0, 20.0)
    assert row.ok_per_second_before == 5.8  # completions in [0, 10): 19 + 39
    assert row.ok_per_second == 2.2  # in [10, 20): 20 of process 0, 2 of process 1
    assert row.first_ok_majority == 0.5  # process 0's first op invoked in the window
    assert row.first_ok_after_heal == 0.25  # process 1 again
    assert row.longest_gap == 0.5
    assert row.groups_without_majority == []  # with R=3, a 3|2 split leaves every group two
    assert row.liveness_defect is False
    assert row.longest_stall == 1.0


def test_a_group_that_could_serve_but_stalls_is_a_liveness_defect() -> None:
    run = Run()
    steady(run, 0, "n1", 1, 0.0, 30.0)
    run.op(1, "n2", 0, 10.5, 15.5, kind="info")  # n2 is with n1, n2, n3: group 0 could serve
    run.op(2, "n2", 0, 15.5, 19.0)
    halves(run, 10.0, 20.0)
    [row] = run.rows()
    assert row.liveness_defect is True
    assert row.stalled_group == 0
    assert row.longest_stall == 8.5  # 10.5 to 19.0: no op on group 0 completed ok meanwhile
    assert "liveness defect: group 0 (n1,n2,n3)" in row.judgement
    assert "unavailable although a majority existed" in row.judgement
    assert av.defects([row]) == [
        "partition 10.0-20.0 s (halves: n1,n2,n3 | n4,n5): group 0 (n1,n2,n3) could serve but "
        "operations on it waited 8.5 s with none completing (unavailable although a majority "
        "existed)"]


def test_waiting_on_a_node_that_cannot_reach_the_majority_is_no_defect() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 30.0)
    run.op(1, "n4", 0, 10.5, 19.0, kind="info")  # n4 is cut from every member of group 0
    halves(run, 10.0, 20.0)
    [row] = run.rows()
    assert row.liveness_defect is False
    assert row.longest_stall == 0.5


def test_no_majority_is_said_so_and_is_no_defect() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 10.0)
    run.op(0, "n1", 0, 10.0, 20.0, kind="info")
    steady(run, 0, "n1", 0, 20.0, 30.0)
    alone = grudge.describe(grudge.complete([[n] for n in NODES], list(NODES)))
    run.fault(10.0, "start-partition", drops=alone, summary="every node alone")
    run.fault(20.0, "stop-partition", summary="network healed")
    [row] = run.rows()
    assert row.groups_without_majority == [0, 1, 2, 3, 4]
    assert row.first_ok_majority is None
    assert row.longest_gap == 10.0
    assert row.liveness_defect is False
    assert "unavailable because no majority existed" in row.judgement


def test_a_killed_node_serves_nothing_while_its_groups_keep_a_majority() -> None:
    run = Run()
    steady(run, 0, "n2", 0, 0.0, 30.0)
    run.op(1, "n1", 0, 10.5, 19.0, kind="info")  # bound to the killed node
    run.op(2, "n3", 4, 10.5, 14.0)  # group 4 (n5, n1, n2) without n1: 3.5 s
    run.fault(10.0, "start-kill", nodes=["n1"], summary="kill n1")
    run.fault(20.0, "stop-kill", nodes=["n1"], summary="start n1")
    [row] = run.rows()
    assert row.groups_without_majority == []
    assert (row.liveness_defect, row.stalled_group, row.longest_stall) == (True, 4, 3.5)


def test_stalls_are_not_judged_under_a_fault_whose_effect_is_not_modelled() -> None:
    run = Run()
    steady(run, 0, "n2", 0, 0.0, 10.0)
    run.op(0, "n2", 0, 10.0, 19.0, kind="info")
    run.fault(10.0, "start-netem", nodes=["n2"], summary="slow n2")
    run.fault(20.0, "stop-netem", summary="links fast again")
    [row] = run.rows()
    assert row.liveness_defect is None and row.longest_stall is None
    assert "not judged" in row.judgement


def test_a_membership_plan_moves_a_group() -> None:
    run = Run()
    run.fault(1.0, "start-membership", plan=[[0, ["n4", "n5", "n1"]]], summary="replace")
    run.fault(2.0, "stop-membership", plan=[], summary="add")
    split = grudge.describe(grudge.complete([["n1"], ["n2"], ["n3"]], list(NODES)))
    run.fault(10.0, "start-partition", drops=split, summary="n1 | n2 | n3 | n4,n5")
    run.fault(20.0, "stop-partition", summary="network healed")
    steady(run, 0, "n4", 0, 0.0, 30.0)
    rows = run.rows()
    assert [r.fault for r in rows] == ["membership", "partition"]
    # before the move, group 0 (n1, n2, n3) would have none; it lives on n4, n5, n1 now
    assert rows[1].groups_with_majority == [0, 2, 3]


def test_a_fault_never_stopped_lasts_to_the_end() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 12.0)
    run.fault(10.0, "start-pause", nodes=["n5"], summary="pause n5")
    [row] = run.rows()
    assert (row.start, row.end, row.first_ok_after_heal) == (10.0, 12.0, None)
    assert row.ok_per_second_before == 1.9  # completions at 0.5 ... 9.5


def test_a_failed_start_opens_no_window() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 5.0)
    run.fault(1.0, "start-kill", error="no node free", summary="start kill failed")
    assert run.rows() == []


# -- the topology ---------------------------------------------------------------------------


def test_the_topology_a_run_recorded_wins_over_the_default() -> None:
    test = {"cluster": {"a": "", "b": "", "c": ""},
            "topology": {"nodes": ["a", "b", "c"], "groups": 2, "replication": 3,
                         "configs": {"0": [1, ["a", "b"]], "1": [0, ["c", "b", "a"]]}}}
    topo = av.Topology.from_test(test)
    assert (topo.groups, topo.members, topo.assumed) == (
        2, {0: ("a", "b"), 1: ("c", "b", "a")}, False)
    old = av.Topology.from_test({"cluster": {n: "" for n in NODES}})
    assert old.assumed and old.members == TOPOLOGY.members


def test_a_test_json_without_nodes_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="neither the topology nor the cluster"):
        av.Topology.from_test({"name": "x"})


def test_the_text_table_lines_up() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 30.0)
    halves(run, 10.0, 20.0)
    out = av.lines(run.rows())
    assert out[0].startswith("fault")
    assert out[1].split()[:3] == ["partition", "10.0-20.0", "2"]
    assert out[0].index("ok/s") == out[1].index("2 ")
    assert "halves: n1,n2,n3 | n4,n5: every group that could serve did" in out[2]


def test_an_action_acts_from_when_it_began_and_is_judged_once_it_returned() -> None:
    run = Run()
    steady(run, 0, "n1", 1, 0.0, 30.0)
    run.op(1, "n2", 0, 9.0, 12.4)  # group 0 could serve: it waits while the cut is applied
    steady(run, 1, "n2", 0, 12.4, 30.0)
    drops = grudge.describe(grudge.complete([["n1", "n2", "n3"]], list(NODES)))
    run.fault(12.0, "start-partition", drops=drops, summary="halves", seconds=2.0)
    run.fault(21.0, "stop-partition", summary="network healed", seconds=1.0)
    [row] = run.rows()
    assert (row.start, row.in_force, row.end, row.healed) == (10.0, 12.0, 20.0, 21.0)
    assert row.first_ok_majority == 0.5  # from 12.0, when the cut was in force everywhere
    assert row.longest_stall == 0.5  # 12.0 to 12.4 is judged, then steady 0.5 s waits
    assert row.first_ok_after_heal == 0.5  # process 0's op invoked at 21.0
    [band] = stats.windows(History.from_events(run.sorted()))  # the plots shade the same
    assert (band.start, band.end, band.summary) == (10.0, 21.0, "halves")


# -- where the table is shown ---------------------------------------------------------------


def stored_stall(tmp_path: Path) -> store.RunDir:
    """A stored run whose one window has a liveness defect and an HTML shape."""
    run = Run()
    steady(run, 0, "n1", 1, 0.0, 30.0)
    run.op(1, "n2", 0, 10.5, 19.0)
    drops = grudge.describe(grudge.complete([["n1", "n2", "n3"]], list(NODES)))
    run.fault(10.0, "start-partition", drops=drops, summary="<b>halves</b>")
    run.fault(20.0, "stop-partition", summary="network healed")
    events = run.sorted()
    stored = store.create("availability", tmp_path)
    with open(stored.file(store.HISTORY), "w") as out:
        out.writelines(json.dumps(e) + "\n" for e in events)
    test = {"name": "availability", "nodes": 5, "cluster": {n: "" for n in NODES}}
    stored.write_json("test.json", test)
    stored.write_json("results.json", {**analyse(events, "test", 10.0), "notes": [],
                                       "availability": av.of_run(test, events)})
    return stored


def test_the_report_shows_the_table_and_the_defect(tmp_path: Path) -> None:
    page = report.render_run(stored_stall(tmp_path)).read_text()
    table = page[page.index('<table id="availability">'):]
    table = table[:table.index("</table>")]
    assert "&lt;b&gt;halves&lt;/b&gt;: liveness defect: group 0 (n1,n2,n3)" in table
    assert 'class="t-invalid"' in table
    assert "<td>partition</td>" in table


def test_kvctl_check_on_a_run_directory_shows_the_table(tmp_path: Path) -> None:
    stored = stored_stall(tmp_path)
    out = CliRunner().invoke(check, [str(stored.path)])
    assert out.exit_code == 0, out.output
    assert "availability under faults (placement assumed" in out.output
    assert "LIVENESS DEFECT: partition 10.0-20.0 s (<b>halves</b>): group 0" in out.output
    as_json = CliRunner().invoke(check, ["--json", str(stored.path)])
    [window] = json.loads(as_json.output)["availability"]["windows"]
    assert window["liveness_defect"] is True and window["longest_stall"] == 8.5


def test_a_window_without_operations_is_not_judged() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 10.0)
    halves(run, 12.0, 20.0)
    [row] = run.rows()
    assert row.liveness_defect is None and row.ok_per_second == 0.0
    assert row.judgement.startswith("no client operation ran in this window")


def test_a_fault_healed_before_it_was_in_force_everywhere_is_not_judged() -> None:
    run = Run()
    steady(run, 0, "n1", 0, 0.0, 30.0)
    drops = grudge.describe(grudge.complete([["n1", "n2", "n3"]], list(NODES)))
    run.fault(18.0, "start-partition", drops=drops, summary="halves", seconds=8.0)
    run.fault(19.0, "stop-partition", summary="network healed", seconds=1.0)
    [row] = run.rows()
    assert (row.start, row.in_force, row.end) == (10.0, 18.0, 18.0)
    assert row.liveness_defect is None
    assert row.judgement == ("never in force on every node before its heal began (its start "
                             "took 8.0 s): not judged")


def test_kvctl_tests_summary_states_a_liveness_defect_in_words(tmp_path: Path) -> None:
    from kvctl.cli.test import _print_availability

    said: list[str] = []
    _print_availability(said.append, stored_stall(tmp_path).read_json("results.json")
                        ["availability"])
    assert said[0] == "availability under faults:"
    assert said[-1] == ("LIVENESS DEFECT: partition 10.0-20.0 s (<b>halves</b>): group 0 "
                        "(n1,n2,n3) could serve but operations on it waited 8.5 s with none "
                        "completing (unavailable although a majority existed)")
