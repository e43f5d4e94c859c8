"""Where runs are kept: `store/<name>/<YYYYmmddTHHMMSS>/`, and the `latest` links.

A run directory holds `test.json` (the options), `history.jsonl` (written line by line as the
run goes, so a crash keeps everything recorded so far), `results.json`, `index.html` and
`nodes/<node>/node.log`. `store/latest` and `store/<name>/latest` are relative links, so a
store directory can be moved or copied whole.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path("store")
STAMP = "%Y%m%dT%H%M%S"
STAMP_RE = re.compile(r"^\d{8}T\d{6}(-\d+)?$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
HISTORY = "history.jsonl"


class StoreError(Exception):
    """A path that is not a run, or a name that cannot name one."""


@dataclass(frozen=True)
class RunDir:
    """One run's directory."""

    path: Path
    name: str
    stamp: str

    def file(self, name: str) -> Path:
        return self.path / name

    def node_log(self, node: str) -> Path:
        path = self.path / "nodes" / node / "node.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name: str, value: Any) -> Path:
        """Write atomically: a reader never sees half a file."""
        path = self.path / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise StoreError(
            f"test name {name!r} cannot name a directory: use letters, digits, '_', '.' and "
            "'-', starting with a letter or digit"
        )
    return name


def create(name: str, root: Path = ROOT, now: datetime | None = None) -> RunDir:
    """A new, empty run directory (a suffix keeps two runs in one second apart)."""
    check_name(name)
    stamp = (now or datetime.now()).strftime(STAMP)
    parent = root / name
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = stamp if n == 0 else f"{stamp}-{n}"
        try:
            (parent / candidate).mkdir()
        except FileExistsError:
            continue
        return RunDir(parent / candidate, name, candidate)
    raise StoreError(f"too many runs named {name} in one second")


def link_latest(run: RunDir, root: Path = ROOT) -> None:
    """Point `store/latest` and `store/<name>/latest` at the run (relative links)."""
    _relink(root / "latest", Path(run.name) / run.stamp)
    _relink(root / run.name / "latest", Path(run.stamp))


def _relink(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


class HistoryWriter:
    """Appends events to history.jsonl as they happen, each with its index and time (ns)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._out: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._t0 = time.monotonic_ns()

    def now(self) -> int:
        """Nanoseconds since the writer was made: the history's clock."""
        return time.monotonic_ns() - self._t0

    def write(self, **fields: Any) -> dict[str, Any]:
        event = {"index": len(self.events), "time": self.now(), **fields}
        self.events.append(event)
        self._out.write(json.dumps(event, default=str) + "\n")
        self._out.flush()
        return event

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Summary:
    """What `kvctl serve` lists about one run."""

    run: RunDir
    test: dict[str, Any]
    results: dict[str, Any] | None  # None: no results (still running, or it crashed)

    @property
    def valid(self) -> bool | str | None:
        return None if self.results is None else self.results.get("valid")


def runs(root: Path = ROOT) -> Iterator[Summary]:
    """Every run in the store, newest first."""
    found = []
    if root.is_dir():
        for test in root.iterdir():
            if not test.is_dir() or test.is_symlink():
                continue
            for path in test.iterdir():
                if STAMP_RE.match(path.name) and (path / "test.json").is_file():
                    found.append(RunDir(path, test.name, path.name))
    found.sort(key=lambda r: (r.stamp.split("-")[0], _suffix(r.stamp), r.name), reverse=True)
    for run in found:
        try:
            test = run.read_json("test.json")
        except (OSError, ValueError):
            continue
        try:
            results = run.read_json("results.json")
        except (OSError, ValueError):
            results = None
        yield Summary(run, test, results)


def _suffix(stamp: str) -> int:
    _, _, n = stamp.partition("-")
    return int(n or 0)

