"""Linearizability checking for histories of kvctl and of other systems.

    from kvctl.history import History
    from kvctl.checker import check
    result = check(History.from_events(events), budget=10)
    result.valid        # True, False or "unknown"
    result.explanation  # why, in words, for each invalid (or undecided) key

`load(path, fmt)` reads our JSONL or Jepsen, Porcupine and Knossos histories.
"""

from kvctl.checker.check import DEFAULT_BUDGET, MODELS, KeyResult, Result, check
from kvctl.checker.formats import FORMATS, load

__all__ = ["DEFAULT_BUDGET", "FORMATS", "MODELS", "KeyResult", "Result", "check", "load"]
