"""The small rules: majorities, ballots, placement, the state machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from kvctl.node.ballot import Ballot, majority
from kvctl.node.placement import Placement
from kvctl.node.statemachine import SWEEP_EVERY, StateMachine


@pytest.mark.parametrize(("size", "quorum"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4)])
def test_majority_is_half_plus_one(size, quorum):
    assert majority(size) == quorum


def test_ballots_order_by_round_then_priority_then_pid():
    assert Ballot(1, 0, "a") > Ballot(0, 9, "z") > Ballot(0, 9, "y") > Ballot(0, 1, "z")


def test_placement_is_stable_across_processes():
    placement = Placement(("n1", "n2", "n3"), 7, 3)
    here = [placement.group_of(f"key-{i}") for i in range(50)]
    code = (
        "from kvctl.node.placement import Placement;"
        "p = Placement(('n1', 'n2', 'n3'), 7, 3);"
        "print([p.group_of(f'key-{i}') for i in range(50)])"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == str(here)


def test_keys_spread_evenly_over_groups():
    placement = Placement(tuple(f"n{i}" for i in range(5)), 5, 3)
    counts = Counter(placement.group_of(f"user:{i}") for i in range(20_000))
    assert set(counts) == set(range(5))
    assert max(counts.values()) < 1.1 * min(counts.values())


def test_replicas_form_a_ring_and_fewer_nodes_than_r_means_everyone():
    placement = Placement(("n1", "n2", "n3", "n4", "n5"), 5, 3)
    assert placement.members(3) == ["n4", "n5", "n1"]
    assert Placement(("n1", "n2"), 2, 3).members(1) == ["n2", "n1"]
    assert [g for g in range(5) if "n1" in placement.members(g)] == [0, 3, 4]


def test_cas_swaps_only_on_a_match():
    sm = StateMachine()
    assert sm.apply(("c", "k", None, "a", 1, 1), 1) == (1, 1, True)
    assert sm.apply(("c", "k", "zzz", "b", 1, 2), 2) == (1, 2, False)
    assert sm.apply(("r", "k", None, None, 1, 3), 3) == (1, 3, "a")


def test_a_retried_request_applies_once_and_returns_its_first_result():
    sm = StateMachine()
    sm.apply(("w", "k", 1, None, 7, 1), 4)
    assert sm.apply(("c", "k", 1, 2, 7, 2), 5) == (7, 2, True)
    sm.apply(("w", "k", 5, None, 8, 1), 6)  # another client overwrites
    assert sm.apply(("c", "k", 1, 2, 7, 2), 7) == (7, 2, True)  # the retry: same answer
    assert sm.read("k") == 5  # ...and no second swap
    assert sm.apply(("w", "k", 9, None, 7, 1), 8) is None  # older than the last: ignored
    assert sm.read("k") == 5


def test_state_survives_export_and_restore():
    sm = StateMachine()
    sm.apply(("w", "k", "v", None, 3, 1), 9)
    copy = StateMachine()
    copy.restore(sm.export())
    assert copy.read("k") == "v"
    assert copy.apply(("w", "k", "v", None, 3, 1), 10) == (3, 1, None)


def test_sessions_expire_by_log_index_alike_on_every_replica():
    """B11: the session table is bounded by the clients active in a window of the log."""
    replicas = [StateMachine(session_ttl=10_000), StateMachine(session_ttl=10_000)]
    for sm in replicas:
        sm.apply(("w", "k", "old", None, 1, 1), 1)
        for index in range(2, 3 * SWEEP_EVERY + 2):
            sm.apply(("w", "k", index, None, 1000 + index % 5, index), index)
    assert all(1 not in sm.sessions for sm in replicas)  # idle past the window: forgotten
    assert all(len(sm.sessions) == 5 for sm in replicas)
    assert replicas[0].export() == replicas[1].export()


def test_a_session_inside_the_window_still_dedupes_after_a_snapshot():
    sm = StateMachine(session_ttl=10 * SWEEP_EVERY)
    sm.apply(("c", "k", None, "a", 7, 3), 1)
    for index in range(2, 2 * SWEEP_EVERY + 1):
        sm.apply(("w", "j", index, None, 8, index), index)
    copy = StateMachine(session_ttl=10 * SWEEP_EVERY)
    copy.restore(sm.export())
    assert copy.apply(("c", "k", None, "a", 7, 3), 2 * SWEEP_EVERY + 1) == (7, 3, True)
    assert copy.read("k") == "a"
