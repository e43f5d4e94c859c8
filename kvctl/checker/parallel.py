"""Run the keys of a history: quick ones here, hard ones in parallel worker processes.

Most keys decide in milliseconds, and starting processes costs more than that, so every key
first gets a short try in this process. The keys still undecided then get the rest of their
budget in a pool of forked workers (one per CPU), so that one hard key does not hold up an
easy invalid one. Unless a full report is asked for, the first invalid key stops everything.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable
from typing import Any

QUICK = 0.2

Task = Callable[[Hashable, float], Any]
_task: Task | None = None  # what forked workers run: inherited, never pickled


def run(
    task: Task, keys: list[Hashable], budget: float, full: bool, workers: int | None = None
) -> list[Any]:
    """`task(key, seconds)` for each key, in key order; stops at the first invalid one."""
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
    rest = budget - quick
    workers = min(workers or _cpus(), len(hard))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for key in hard:
            done.append(task(key, rest))
            if done[-1].valid is False and not full:
                break
    else:
        global _task
        _task = task
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(_work, [(key, rest) for key in hard]):
                done.append(result)
                if result.valid is False and not full:
                    break
    order = {key: n for n, key in enumerate(keys)}
    return sorted(done, key=lambda r: order[r.key])


def _work(job: tuple[Hashable, float]) -> Any:
    assert _task is not None
    return _task(*job)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
