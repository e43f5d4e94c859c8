"""The page-cache model against a reference built the other way round.

The model undoes (it remembers what each write overwrote); the reference redoes: it keeps the
last synced bytes of each file and the journal of names, and after a crash replays the part a
torn write kept onto them. Both must leave the same files with the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lazyfs.memdisk import MemoryDisk

NAMES = ["a", "b", "c", "d/a", "d/b"]
DIRS = ["", "d"]


@dataclass
class Reference:
    """Synced bytes + unsynced ops per file; the names' journal and how much of it is synced."""

    synced: dict[int, bytes] = field(default_factory=dict)
    pending: dict[int, list[tuple[str, int, bytes]]] = field(default_factory=dict)
    names_synced: dict[str, int] = field(default_factory=dict)
    journal: list[tuple[str, str, str, int]] = field(default_factory=list)  # op, path, to, id

    def content(self, file: int, keep: int | None = None) -> bytes:
        """The file's bytes: synced, then its unsynced ops (the first `keep` units of them)."""
        data = bytearray(self.synced.get(file, b""))
        budget = keep if keep is not None else 1 << 62
        for kind, offset, payload in self.pending.get(file, []):
            if budget <= 0:
                break
            if kind == "t":
                data = data[:offset] + bytes(max(0, offset - len(data)))
                budget -= 1
                continue
            part = payload[:budget]
            if part:
                data.extend(bytes(max(0, offset - len(data))))
                data[offset : offset + len(part)] = part
            budget -= len(payload)
        return bytes(data)

    def names(self, entries: int | None = None) -> dict[str, int]:
        names = dict(self.names_synced)
        for op, path, to, file in self.journal[:entries]:
            if op == "create":
                names[path] = file
            elif op == "unlink":
                del names[path]
            else:
                names[to] = names.pop(path)
        return names

    def record(self, file: int, op: tuple[str, int, bytes]) -> None:
        self.pending.setdefault(file, []).append(op)

    def sync(self, file: int) -> None:
        self.synced[file] = self.content(file)
        self.pending.pop(file, None)

    def sync_dir(self, path: str) -> None:
        touched = [
            i
            for i, (_, source, target, _) in enumerate(self.journal)
            if path in {source.rpartition("/")[0], target.rpartition("/")[0]}
        ]
        if touched:
            self._commit(touched[-1] + 1)

    def _commit(self, count: int) -> None:
        self.names_synced = self.names(count)
        self.journal = self.journal[count:]

    def crash(self, keep: dict[int, int], keep_entries: int) -> dict[str, bytes]:
        for file in list(self.pending):
            self.synced[file] = self.content(file, keep.get(file, 0))
        self.pending.clear()
        self._commit(keep_entries)
        self.journal = []
        return {path: self.content(file) for path, file in self.names().items()}


class Pair:
    """The model on a memory disk, and the reference, fed the same steps."""

    def __init__(self) -> None:
        self.disk = MemoryDisk()
        self.ref = Reference()
        self.disk.dirs.add("d")  # a durable subdirectory

    def step(self, op: str, name: str, other: str, offset: int, data: bytes) -> None:
        disk, ref = self.disk, self.ref
        exists = name in disk.names
        if op == "create" and not exists:
            file = disk.create(name)
            ref.journal.append(("create", name, name, file))
        elif op == "write" and exists:
            if data:
                ref.record(disk.names[name], ("w", offset, data))
            disk.write(name, offset, data)
        elif op == "truncate" and exists:
            if len(disk.files[disk.names[name]]) != offset:
                ref.record(disk.names[name], ("t", offset, b""))
            disk.truncate(name, offset)
        elif op == "fsync" and exists:
            ref.sync(disk.names[name])
            disk.fsync(name)
        elif op == "unlink" and exists:
            ref.journal.append(("unlink", name, name, 0))
            disk.unlink(name)
        elif op == "rename" and exists and other != name:
            ref.journal.append(("rename", name, other, 0))
            disk.rename(name, other)
        elif op == "fsync_dir":
            directory = DIRS[offset % len(DIRS)]
            ref.sync_dir(directory)
            disk.fsync_dir(directory)

    def crash(self, rng: random.Random | None) -> None:
        """A clean crash, or a torn one drawn from `rng`; the same for both."""
        keep, entries = self.disk.cache.draw_torn(rng) if rng else ({}, 0)
        expected = self.ref.crash(keep, entries)
        self.disk.crash(keep, entries)
        assert self.disk.view() == expected


steps = st.lists(
    st.tuples(
        st.sampled_from(["create", "write", "truncate", "fsync", "unlink", "rename", "fsync_dir"]),
        st.sampled_from(NAMES),
        st.sampled_from(NAMES),
        st.integers(0, 24),
        st.binary(max_size=12),
    ),
    max_size=40,
)
crashes = st.one_of(st.none(), st.randoms(use_true_random=False))


@settings(max_examples=300, deadline=None)
@given(steps, crashes, steps, crashes)
def test_model_matches_the_reference_after_every_crash(
    first: list, torn: random.Random | None, second: list, torn_again: random.Random | None
) -> None:
    pair = Pair()
    for step in first:
        pair.step(*step)
    pair.crash(torn)
    for step in second:
        pair.step(*step)
    pair.crash(torn_again)
