"""The page cache of the lazy filesystem, sans IO: what is durable and what a power cut loses.

The filesystem writes everything through to its backing directory at once, so the backing
directory plays the kernel's page cache (a SIGKILL loses nothing of it). This model remembers,
for every write the backing directory took since the last sync, how to take it back: the bytes
it overwrote and the size the file had. A power cut (`crash`) is then a plan of undo actions,
applied newest first, that brings the backing directory back to what was synced:

- file data is durable once its file is fsynced (or fdatasynced); files are independent;
- directory entries (create, mkdir, unlink, rmdir, rename) form one ordered journal, and
  fsyncing a directory makes durable the journal up to the last entry that touched it.

Removed entries are not deleted but moved aside (to a trash path the caller chooses), so an
unsynced unlink or a rename over a file can be undone; syncing the directory says which of them
may really go. A torn crash keeps a prefix of each file's unsynced bytes (and of the journal)
instead of nothing. Paths are relative to the filesystem's root; files are named by ids the
caller chooses (inode numbers). Nothing here touches a disk, a clock or a random generator.
"""

from __future__ import annotations

import posixpath
import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Patch:
    """Put `data` back at `offset` of file `file`."""

    file: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class Resize:
    """Cut (or extend) file `file` back to `size` bytes."""

    file: int
    size: int


@dataclass(frozen=True)
class Move:
    """Rename `source` to `target` (both relative paths)."""

    source: str
    target: str


@dataclass(frozen=True)
class Remove:
    """Remove the entry at `path`: a file, or an empty directory when `directory`."""

    path: str
    directory: bool


@dataclass(frozen=True)
class Delete:
    """A removed entry, parked at `trash`, is gone for good: delete it for real."""

    trash: str
    directory: bool


Action = Patch | Resize | Move | Remove | Delete


@dataclass(frozen=True)
class _Write:
    offset: int
    length: int
    before: bytes  # what the written range held, up to the old end of file
    size_before: int

    @property
    def weight(self) -> int:
        return self.length

    def undo(self, file: int, keep: int) -> list[Action]:
        """Take back all but the first `keep` bytes of this write."""
        actions: list[Action] = []
        if keep < len(self.before):
            actions.append(Patch(file, self.offset + keep, self.before[keep:]))
        if self.offset + self.length > self.size_before:
            size = max(self.size_before, self.offset + keep) if keep else self.size_before
            actions.append(Resize(file, size))
        return actions


@dataclass(frozen=True)
class _Truncate:
    size_before: int
    size_after: int
    cut: bytes  # what a shrink removed

    @property
    def weight(self) -> int:
        return 1  # a truncate happens whole or not at all

    def undo(self, file: int, keep: int) -> list[Action]:
        """Undone whole: with a weight of one, a kept truncate is never undone."""
        if self.cut:
            return [Patch(file, self.size_after, self.cut)]
        return [Resize(file, self.size_before)]


_DataOp = _Write | _Truncate


@dataclass(frozen=True)
class _Entry:
    """One journal entry: how to undo it, which directories it touched, what it parked."""

    undo: tuple[Action, ...]
    touched: frozenset[str]
    parked: tuple[Delete, ...] = ()
    parked_files: tuple[int, ...] = ()


@dataclass
class Crash:
    """What a power cut does: the undo actions, in order, and what it cost."""

    actions: list[Action]
    lost_bytes: int
    kept_bytes: int
    undone_entries: int
    files: int  # files that lost something

    def summary(self) -> dict[str, int]:
        return {
            "lost_bytes": self.lost_bytes,
            "kept_bytes": self.kept_bytes,
            "undone_entries": self.undone_entries,
            "files": self.files,
        }


@dataclass
class PageCache:
    """Unsynced writes per file and the unsynced directory journal (see the module doc)."""

    _data: dict[int, list[_DataOp]] = field(default_factory=dict)
    _journal: list[_Entry] = field(default_factory=list)

    # -- file data -------------------------------------------------------------------------

    def write(self, file: int, offset: int, length: int, before: bytes, size: int) -> None:
        """`length` bytes were written at `offset` of a file that had `size` bytes, over
        `before` (what [offset, offset+length) held below `size`)."""
        expected = max(0, min(length, size - offset))
        if len(before) != expected:
            raise ValueError(f"before holds {len(before)} bytes, the range held {expected}")
        if length:
            self._data.setdefault(file, []).append(_Write(offset, length, before, size))

    def truncate(self, file: int, size_before: int, size_after: int, cut: bytes) -> None:
        """The file went from `size_before` to `size_after` bytes; `cut` is what a shrink
        removed."""
        if len(cut) != max(0, size_before - size_after):
            raise ValueError(f"cut holds {len(cut)} bytes, the shrink removed more or less")
        if size_before != size_after:
            self._data.setdefault(file, []).append(_Truncate(size_before, size_after, cut))

    def sync(self, file: int) -> None:
        """fsync or fdatasync: the file's data is durable."""
        self._data.pop(file, None)

    def unsynced_bytes(self, file: int | None = None) -> int:
        """Unsynced bytes of one file, or of all (a truncate counts as one byte)."""
        files = [file] if file is not None else list(self._data)
        return sum(op.weight for f in files for op in self._data.get(f, []))

    # -- directory entries -----------------------------------------------------------------

    def created(self, path: str, directory: bool = False) -> None:
        """A file (or directory) appeared at `path`."""
        self._journal.append(_Entry((Remove(path, directory),), frozenset({_parent(path)})))

    def removed(self, path: str, trash: str, file: int, directory: bool = False) -> None:
        """The entry at `path` was moved aside to `trash` instead of being deleted."""
        self._journal.append(
            _Entry(
                (Move(trash, path),),
                frozenset({_parent(path)}),
                (Delete(trash, directory),),
                (file,),
            )
        )

    def renamed(
        self,
        source: str,
        target: str,
        replaced: tuple[str, int, bool] | None = None,
    ) -> None:
        """`source` became `target`; `replaced` is (trash, file, directory) of what `target`
        held before, already moved aside to its trash path."""
        undo: list[Action] = [Move(target, source)]
        parked: tuple[Delete, ...] = ()
        files: tuple[int, ...] = ()
        if replaced is not None:
            trash, file, directory = replaced
            undo.append(Move(trash, target))
            parked, files = (Delete(trash, directory),), (file,)
        touched = frozenset({_parent(source), _parent(target)})
        self._journal.append(_Entry(tuple(undo), touched, parked, files))

    def sync_dir(self, path: str) -> list[Delete]:
        """fsync of the directory `path`: the journal up to its last entry is durable. Returns
        the parked entries that may now be deleted for real."""
        last = max(
            (i for i, entry in enumerate(self._journal) if path in entry.touched), default=-1
        )
        return self._commit(last + 1)

    def unsynced_entries(self) -> int:
        return len(self._journal)

    # -- power loss ------------------------------------------------------------------------

    def draw_torn(self, rng: random.Random) -> tuple[dict[int, int], int]:
        """A random torn crash: how many unsynced bytes each file keeps (files in id order),
        then how many journal entries."""
        keep = {file: rng.randint(0, self.unsynced_bytes(file)) for file in sorted(self._data)}
        return keep, rng.randint(0, len(self._journal))

    def crash(self, keep: Mapping[int, int] | None = None, keep_entries: int = 0) -> Crash:
        """Power is cut: every unsynced write and entry is undone, except the first
        `keep[file]` unsynced bytes of a file and the first `keep_entries` journal entries.
        The actions bring the backing directory back to that; afterwards nothing is unsynced."""
        keep = keep or {}
        actions: list[Action] = []
        lost = kept = files = 0
        for file, ops in sorted(self._data.items()):
            left = min(keep.get(file, 0), sum(op.weight for op in ops))
            kept += left
            lost += sum(op.weight for op in ops) - left
            files += left < sum(op.weight for op in ops)
            budget = [min(op.weight, max(0, left - before)) for op, before in _starts(ops)]
            for op, keep_here in reversed(list(zip(ops, budget, strict=True))):
                if keep_here < op.weight:  # ops kept whole, all before the torn one, stay
                    actions.extend(op.undo(file, keep_here))
        self._data.clear()
        kept_entries = min(keep_entries, len(self._journal))
        actions.extend(self._commit(kept_entries))
        undone = self._journal
        self._journal = []
        for entry in reversed(undone):
            actions.extend(entry.undo)
        return Crash(actions, lost, kept, len(undone), files)

    def _commit(self, count: int) -> list[Delete]:
        """The first `count` journal entries are durable."""
        done, self._journal = self._journal[:count], self._journal[count:]
        deletes: list[Delete] = []
        for entry in done:
            deletes.extend(entry.parked)
            for file in entry.parked_files:
                self._data.pop(file, None)  # its data can no longer be reached
        return deletes


def _starts(ops: list[_DataOp]) -> list[tuple[_DataOp, int]]:
    """Each op with the count of unsynced bytes before it."""
    out, total = [], 0
    for op in ops:
        out.append((op, total))
        total += op.weight
    return out


def _parent(path: str) -> str:
    return posixpath.dirname(path)
