"""Run the keys of a history in parallel worker processes, when that pays.

Most keys decide in milliseconds, and starting processes costs more than that. So a history
with few keys first gives every key a short try in this process; the keys still undecided
then get the rest of their budget in a pool of forked workers (one per CPU), so that one hard
key does not hold up an easy invalid one. A history with many keys goes to the pool at once,
in chunks. Unless a full report is asked for, the first invalid key stops everything.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable
from typing import Any

QUICK = 0.2
MANY = 16  # this many keys or more go to the pool at once

Task = Callable[[Hashable, float], Any]
_task: Task | None = None  # what forked workers run: inherited, never pickled


def run(
    task: Task, keys: list[Hashable], budget: float, full: bool, workers: int | None = None
) -> list[Any]:
    """`task(key, seconds)` for each key, in key order; stops at the first invalid one."""
    # One key needs no pool: spare the system calls that size it.
    if len(keys) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        workers = 1
    else:
        workers = workers or _cpus()
    order = {key: n for n, key in enumerate(keys)}
    if workers > 1 and len(keys) >= MANY:
        done = _pooled(task, keys, budget, full, workers)
    else:
        done = _quick_then_pooled(task, keys, budget, full, workers)
    return sorted(done, key=lambda r: order[r.key])


def _quick_then_pooled(
    task: Task, keys: list[Hashable], budget: float, full: bool, workers: int
) -> list[Any]:
    quick = min(budget, QUICK)
    done, hard = [], []
    for key in keys:
        result = task(key, quick)
        if result.valid == "unknown" and quick < budget:
            hard.append(key)
            continue
        done.append(result)
        if result.valid is False and not full:
            return done
    if len(hard) > 1 and workers > 1:
        return done + _pooled(task, hard, budget - quick, full, workers)
    for key in hard:
        done.append(task(key, budget - quick))
        if done[-1].valid is False and not full:
            break
    return done


def _pooled(
    task: Task, keys: list[Hashable], seconds: float, full: bool, workers: int
) -> list[Any]:
    global _task
    _task = task
    done = []
    chunk = max(1, len(keys) // (8 * workers))
    with multiprocessing.get_context("fork").Pool(min(workers, len(keys))) as pool:
        for result in pool.imap_unordered(_work, [(key, seconds) for key in keys], chunk):
            done.append(result)
            if result.valid is False and not full:
                break
    return done


def _work(job: tuple[Hashable, float]) -> Any:
    assert _task is not None
    return _task(*job)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
