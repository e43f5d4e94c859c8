"""Helpers for the checker tests: the reference corpus and its verdicts, small histories."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kvctl.history import History

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference-histories"
_ROW = re.compile(r"\| (\S+\.(?:log|txt|edn)) \|(?:[^|]*\|)? (NOT linearizable|linearizable)\b")


def manifest() -> list[tuple[Path, bool]]:
    """(file, linearizable?) for every row of both MANIFEST.md tables; [] without a corpus."""
    rows = []
    for part in ("porcupine", "knossos"):
        path = CORPUS / part / "MANIFEST.md"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                m = _ROW.match(line)
                if m:
                    rows.append((CORPUS / part / m[1], m[2] == "linearizable"))
    return rows


def timed(*ops: tuple[Any, ...], key: Any = "k") -> History:
    """A history from (process, f, value, start s, end s or None, type, result) tuples.

    `value` is what was sent (a cas [old, new]); `result` what an ok read returned.
    """
    events = []
    for process, f, value, start, end, kind, *result in ops:
        events.append(
            {
                "process": process,
                "type": "invoke",
                "f": f,
                "key": key,
                "value": value,
                "time": int(start * 1e9),
            }
        )
        if end is not None:
            done = result[0] if result else value
            events.append(
                {
                    "process": process,
                    "type": kind,
                    "f": f,
                    "key": key,
                    "value": done,
                    "time": int(end * 1e9),
                }
            )
    return History.from_events(events)
