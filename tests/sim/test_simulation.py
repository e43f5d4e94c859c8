"""The simulator: seeds run clean, replay exactly, and a planted bug is caught."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys

import pytest

from kvctl.node import ble, paxos
from kvctl.sim.run import SimResult, run_seed

SEEDS = range(40)


@functools.cache
def result_of(seed: int) -> SimResult:
    return run_seed(seed)


def digest(seed: int) -> str:
    return hashlib.sha256(json.dumps(result_of(seed).history).encode()).hexdigest()


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_runs_clean(seed):
    result = result_of(seed)
    assert result.ok, "\n".join(result.violations + result.trace)
    assert result.ops_ok >= 10  # the clients got work done, not just the final reads


def test_the_seeds_reconfigure_groups_under_faults():
    assert sum(result_of(seed).reconfigurations for seed in SEEDS) >= 8


@pytest.mark.parametrize("size", [4, 6])
def test_even_sized_groups_run_clean(size):
    for seed in range(5):
        result = run_seed(seed, size=size, replication=size, groups=1)
        assert result.ok, "\n".join(result.violations + result.trace)


def test_a_seed_replays_exactly_in_another_process():
    code = (
        "import hashlib, json; from kvctl.sim.run import SimResult, run_seed;"
        "print(hashlib.sha256(json.dumps(run_seed(11).history).encode()).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED="99")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == digest(11)


def test_the_course_projects_majority_bug_is_caught(monkeypatch):
    """ceil((n + 1) / 2) with integer division first: 2 of 4 is a 'majority'."""
    wrong = lambda n: (n + 1) // 2  # noqa: E731
    monkeypatch.setattr(paxos, "majority", wrong)
    monkeypatch.setattr(ble, "majority", wrong)
    caught = [s for s in range(30) if not run_seed(s, size=4, replication=4, groups=1).ok]
    assert caught, "30 seeds of 4-node groups with a 2-of-4 quorum found nothing"
