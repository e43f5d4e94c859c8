"""Stored runs made from hand-written histories, for the report and web tests."""

from __future__ import annotations

import json
from pathlib import Path

from kvctl import report, store
from kvctl.runner import analyse

EVIL = '<img src=x onerror="document.title=1">'


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.t = 0

    def add(self, **fields) -> None:
        self.t += 1_000_000
        self.events.append({"index": len(self.events), "time": self.t, **fields})

    def op(self, process, f, key, value, result, kind="ok", error=None) -> None:
        self.add(process=process, type="invoke", f=f, key=key, value=value,
                 node=f"n{process % 3 + 1}")
        extra = {"error": error} if error else {}
        self.add(process=process, type=kind, f=f, key=key, value=result, **extra)


def stale_history(big: int = 0) -> list[dict]:
    """A valid key whose value is HTML, a key read stale during a partition, and optionally a
    long key whose last read is stale."""
    r = Recorder()
    r.op(0, "write", EVIL, 1, 1)
    r.op(1, "read", EVIL, None, 1)
    r.add(process="nemesis", type="info", f="start-partition",
          value={"summary": f"halves: n1 | n2 {EVIL}"})
    r.op(2, "write", "k-stale", 1, 1)
    r.op(3, "read", "k-stale", None, None)
    r.op(4, "cas", "k-stale", [1, 2], [1, 2], kind="info", error=f"timed out {EVIL}")
    r.add(process="nemesis", type="info", f="stop-partition", value={"summary": "healed"})
    for i in range(1, big):
        r.op(5 + i % 3, "write", "k-big", i, i)
    if big:
        r.op(9, "read", "k-big", None, 1)
    return r.events


def stored_run(tmp_path: Path, events: list[dict]) -> store.RunDir:
    run = store.create("report-test", tmp_path / "store")
    with open(run.file(store.HISTORY), "w") as out:
        out.writelines(json.dumps(e) + "\n" for e in events)
    run.write_json("test.json", {"name": "report-test", "nodes": 5, "backend": "docker",
                                 "read_mode": "stale", "faults": ["partition"],
                                 "time_limit": 1, "concurrency": 5, "rate": None, "seed": 7})
    run.write_json("results.json", {**analyse(events, "test", 10.0), "notes": []})
    report.render_run(run)
    return run
