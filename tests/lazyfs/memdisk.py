"""An in-memory backing directory driven through the PageCache model exactly as the FUSE layer
drives it: tell the model how to undo, then do it; apply the model's plans."""

from __future__ import annotations

import itertools
import posixpath

from kvctl.lazyfs.model import Action, Crash, Delete, Move, PageCache, Patch, Remove, Resize

TRASH = ".trash"


class MemoryDisk:
    """Files by id, names by path; directories are paths in `dirs`."""

    def __init__(self) -> None:
        self.cache = PageCache()
        self.files: dict[int, bytearray] = {}
        self.names: dict[str, int] = {}
        self.dirs: set[str] = {""}
        self._ids = itertools.count(1)
        self._trash = itertools.count()

    # -- what a program does ---------------------------------------------------------------

    def create(self, path: str) -> int:
        assert posixpath.dirname(path) in self.dirs and path not in self.names
        file = next(self._ids)
        self.files[file] = bytearray()
        self.names[path] = file
        self.cache.created(path)
        return file

    def mkdir(self, path: str) -> None:
        self.dirs.add(path)
        self.cache.created(path, directory=True)

    def write(self, path: str, offset: int, data: bytes) -> None:
        file = self.names[path]
        content = self.files[file]
        before = bytes(content[offset : offset + len(data)])
        self.cache.write(file, offset, len(data), before, len(content))
        _put(content, offset, data)

    def truncate(self, path: str, size: int) -> None:
        file = self.names[path]
        content = self.files[file]
        self.cache.truncate(file, len(content), size, bytes(content[size:]))
        _resize(content, size)

    def fsync(self, path: str) -> None:
        self.cache.sync(self.names[path])

    def unlink(self, path: str) -> None:
        trash = f"{TRASH}/{next(self._trash)}"
        file = self.names.pop(path)
        self.names[trash] = file
        self.cache.removed(path, trash, file)

    def rename(self, source: str, target: str) -> None:
        replaced = None
        if target in self.names:
            trash = f"{TRASH}/{next(self._trash)}"
            self.names[trash] = self.names.pop(target)
            replaced = (trash, self.names[trash], False)
        self.names[target] = self.names.pop(source)
        self.cache.renamed(source, target, replaced)

    def fsync_dir(self, path: str) -> None:
        for action in self.cache.sync_dir(path):
            self.apply(action)

    def crash(self, keep: dict[int, int] | None = None, keep_entries: int = 0) -> Crash:
        result = self.cache.crash(keep, keep_entries)
        for action in result.actions:
            self.apply(action)
        return result

    # -- what the FUSE layer does with a plan ------------------------------------------------

    def apply(self, action: Action) -> None:
        match action:
            case Patch(file, offset, data):
                _put(self.files[file], offset, data)
            case Resize(file, size):
                _resize(self.files[file], size)
            case Move(source, target):
                self.names[target] = self.names.pop(source)
            case Remove(path, directory):
                if directory:
                    self.dirs.remove(path)
                else:
                    del self.names[path]
            case Delete(trash, _):
                del self.names[trash]

    def view(self) -> dict[str, bytes]:
        """What a program sees: every visible file's bytes."""
        return {
            path: bytes(self.files[file])
            for path, file in self.names.items()
            if not path.startswith(TRASH + "/")
        }


def _put(content: bytearray, offset: int, data: bytes) -> None:
    """pwrite: writing nothing past the end does not extend the file."""
    if not data:
        return
    if offset > len(content):
        content.extend(bytes(offset - len(content)))
    content[offset : offset + len(data)] = data


def _resize(content: bytearray, size: int) -> None:
    if size < len(content):
        del content[size:]
    else:
        content.extend(bytes(size - len(content)))
