"""The lazy filesystem on pyfuse3: a passthrough to a backing directory that feeds the model.

Every operation is done on the backing directory at once (it plays the page cache, so a plain
SIGKILL loses nothing); before doing it, the filesystem tells the `PageCache` model how to take
it back. `crash` applies the model's undo plan to the backing directory, and from then on every
operation fails with EIO, as on a machine whose disk is gone: the node is killed next and its
container restarted, which mounts a fresh filesystem over what the backing directory holds.
Unlinked files and replaced rename targets are parked in a hidden trash directory until their
directory is synced, so those can be undone too.

Handlers run one at a time on trio's loop and never await in the middle, so a crash (from the
control socket, on the same loop) always falls between two whole operations.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import posixpath
import random
import shutil
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from kvctl.lazyfs.control import TRASH
from kvctl.lazyfs.model import Action, Crash, Delete, Move, PageCache, Patch, Remove, Resize

P = ParamSpec("P")
R = TypeVar("R")


def fuse_errors(
    handler: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """OSError becomes the FUSEError the kernel understands; after a crash, everything is EIO."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        fs = args[0]
        assert isinstance(fs, LazyFS)
        if fs.crashed:
            raise pyfuse3.FUSEError(errno.EIO)
        try:
            return await handler(*args, **kwargs)
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from exc

    return run


class LazyFS(pyfuse3.Operations):
    """Passthrough of `backing`, with a page-cache model of what is not yet durable."""

    def __init__(self, backing: Path) -> None:
        super().__init__()
        self.backing = backing
        self.cache = PageCache()
        self.crashed = False
        self._paths: dict[int, str] = {pyfuse3.ROOT_INODE: ""}  # fuse inode -> relative path
        self._inodes: dict[tuple[int, int], int] = {}  # backing (dev, ino) -> fuse inode
        self._next_inode = itertools.count(pyfuse3.ROOT_INODE + 1)
        self._handles: dict[int, tuple[int, int]] = {}  # fh -> (backing fd, fuse inode)
        self._dirs: dict[int, int] = {}  # directory fh -> fuse inode
        self._next_handle = itertools.count(1)
        self._trash_names = itertools.count()
        root = os.lstat(backing)
        self._inodes[(root.st_dev, root.st_ino)] = pyfuse3.ROOT_INODE
        trash = backing / TRASH
        if trash.exists():  # parked by a life that ended without a power cut: really gone
            shutil.rmtree(trash)
        trash.mkdir()

    # -- paths and attributes --------------------------------------------------------------

    def _real(self, relative: str) -> str:
        return str(self.backing / relative) if relative else str(self.backing)

    def _child(self, parent: int, name: bytes) -> str:
        text = os.fsdecode(name)
        if self._paths[parent] == "" and text == TRASH:
            raise pyfuse3.FUSEError(errno.EACCES)
        return posixpath.join(self._paths[parent], text)

    def _attributes(self, relative: str) -> pyfuse3.EntryAttributes:
        st = os.lstat(self._real(relative))
        key = (st.st_dev, st.st_ino)
        inode = self._inodes.get(key)
        if inode is None:
            inode = self._inodes[key] = next(self._next_inode)
        self._paths[inode] = relative
        entry = pyfuse3.EntryAttributes()
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size"):
            setattr(entry, name, getattr(st, name))
        entry.st_ino = inode
        entry.st_blksize = st.st_blksize
        entry.st_blocks = st.st_blocks
        entry.st_atime_ns, entry.st_mtime_ns = st.st_atime_ns, st.st_mtime_ns
        entry.st_ctime_ns = st.st_ctime_ns
        entry.generation = 0
        entry.entry_timeout = entry.attr_timeout = 0
        return entry

    def _park(self, relative: str) -> str:
        """Move an entry to the trash instead of deleting it; its trash path."""
        trash = posixpath.join(TRASH, str(next(self._trash_names)))
        os.rename(self._real(relative), self._real(trash))
        self._retarget(relative, trash)
        return trash

    def _retarget(self, old: str, new: str) -> None:
        """An entry moved: so did every inode at or under it."""
        for inode, path in list(self._paths.items()):
            if path == old or path.startswith(old + "/"):
                self._paths[inode] = new + path[len(old) :]

    def _inode_at(self, relative: str) -> int:
        st = os.lstat(self._real(relative))
        return self._inodes.get((st.st_dev, st.st_ino), 0)

    # -- lookups ---------------------------------------------------------------------------

    @fuse_errors
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if name == b".":
            return self._attributes(self._paths[parent_inode])
        if name == b"..":
            return self._attributes(posixpath.dirname(self._paths[parent_inode]))
        return self._attributes(self._child(parent_inode, name))

    async def forget(self, inode_list: Any) -> None:
        """Inodes stay known for the mount's life: a node's data directory has few files."""

    @fuse_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attributes(self._paths[inode])

    @fuse_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        path = self._real(self._paths[inode])
        if fields.update_size:
            self._truncate(inode, attr.st_size)
        if fields.update_mode:
            os.chmod(path, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            gid = attr.st_gid if fields.update_gid else -1
            os.chown(path, uid, gid, follow_symlinks=False)
        if fields.update_atime or fields.update_mtime:
            st = os.lstat(path)
            atime = attr.st_atime_ns if fields.update_atime else st.st_atime_ns
            mtime = attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns
            os.utime(path, ns=(atime, mtime), follow_symlinks=False)
        return self._attributes(self._paths[inode])

    def _truncate(self, inode: int, size: int) -> None:
        fd = os.open(self._real(self._paths[inode]), os.O_RDWR)
        try:
            old = os.fstat(fd).st_size
            cut = os.pread(fd, old - size, size) if size < old else b""
            self.cache.truncate(inode, old, size, cut)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    @fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.backing)
        data = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files"):
            setattr(data, name, getattr(st, name))
        data.f_ffree, data.f_favail, data.f_namemax = st.f_ffree, st.f_favail, st.f_namemax
        return data

    # -- directories -----------------------------------------------------------------------

    @fuse_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        handle = next(self._next_handle)
        self._dirs[handle] = inode
        return handle

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        relative = self._paths[self._dirs[fh]]
        names = sorted(os.listdir(self._real(relative)))
        if relative == "":
            names = [n for n in names if n != TRASH]
        for index, name in enumerate(names[start_id:], start_id + 1):
            entry = self._attributes(posixpath.join(relative, name))
            if not pyfuse3.readdir_reply(token, os.fsencode(name), entry, index):
                break

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @fuse_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        relative = self._paths[self._dirs[fh]]
        self._delete(self.cache.sync_dir(relative))
        fd = os.open(self._real(relative), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @fuse_errors
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        relative = self._child(parent_inode, name)
        os.mkdir(self._real(relative), mode)
        self.cache.created(relative, directory=True)
        return self._attributes(relative)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        relative = self._child(parent_inode, name)
        if os.listdir(self._real(relative)):
            raise OSError(errno.ENOTEMPTY, "directory not empty")
        inode = self._inode_at(relative)
        self.cache.removed(relative, self._park(relative), inode, directory=True)

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        relative = self._child(parent_inode, name)
        if stat.S_ISDIR(os.lstat(self._real(relative)).st_mode):
            raise OSError(errno.EISDIR, "is a directory")
        inode = self._inode_at(relative)
        self.cache.removed(relative, self._park(relative), inode)

    @fuse_errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        source = self._child(parent_inode_old, name_old)
        target = self._child(parent_inode_new, name_new)
        if flags & ~pyfuse3.RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, "only plain renames are supported")
        os.lstat(self._real(source))
        replaced = None
        if os.path.lexists(self._real(target)):
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise OSError(errno.EEXIST, "target exists")
            directory = stat.S_ISDIR(os.lstat(self._real(target)).st_mode)
            if directory and os.listdir(self._real(target)):
                raise OSError(errno.ENOTEMPTY, "directory not empty")
            inode = self._inode_at(target)
            replaced = (self._park(target), inode, directory)
        os.rename(self._real(source), self._real(target))
        self._retarget(source, target)
        self.cache.renamed(source, target, replaced)

    # -- files -----------------------------------------------------------------------------

    @fuse_errors
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        relative = self._child(parent_inode, name)
        fd = os.open(self._real(relative), _backing_flags(flags) | os.O_CREAT | os.O_EXCL, mode)
        self.cache.created(relative)
        entry = self._attributes(relative)
        return self._handle(fd, entry.st_ino), entry

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & os.O_TRUNC:
            self._truncate(inode, 0)
        return self._handle(os.open(self._real(self._paths[inode]), _backing_flags(flags)), inode)

    def _handle(self, fd: int, inode: int) -> pyfuse3.FileInfo:
        handle = next(self._next_handle)
        self._handles[handle] = (fd, inode)
        return pyfuse3.FileInfo(fh=handle)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return os.pread(self._handles[fh][0], size, off)

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        fd, inode = self._handles[fh]
        size = os.fstat(fd).st_size
        before = os.pread(fd, len(buf), off) if off < size else b""
        self.cache.write(inode, off, len(buf), before, size)
        return os.pwrite(fd, buf, off)

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        fd, inode = self._handles[fh]
        (os.fdatasync if datasync else os.fsync)(fd)
        self.cache.sync(inode)

    async def flush(self, fh: int) -> None:
        """Closing a descriptor syncs nothing."""

    async def release(self, fh: int) -> None:
        fd, _ = self._handles.pop(fh)
        os.close(fd)

    # -- power loss ------------------------------------------------------------------------

    def crash(self, torn: random.Random | None = None) -> Crash:
        """Cut the power: undo what was not synced (or all but a random prefix), then fail
        every later operation."""
        self.crashed = True
        keep, keep_entries = self.cache.draw_torn(torn) if torn else ({}, 0)
        result = self.cache.crash(keep, keep_entries)
        for action in result.actions:
            self._apply(action)
        return result

    def freeze(self) -> None:
        """Stop serving without losing anything: the disk keeps what the page cache held."""
        self.crashed = True

    def _apply(self, action: Action) -> None:
        match action:
            case Patch(file, offset, data):
                with open(self._real(self._paths[file]), "r+b") as out:
                    out.seek(offset)
                    out.write(data)
            case Resize(file, size):
                os.truncate(self._real(self._paths[file]), size)
            case Move(source, target):
                os.rename(self._real(source), self._real(target))
                self._retarget(source, target)
            case Remove(path, directory):
                (os.rmdir if directory else os.unlink)(self._real(path))
            case Delete():
                self._delete([action])

    def _delete(self, parked: list[Delete]) -> None:
        for entry in parked:
            path = self._real(entry.trash)
            (shutil.rmtree if entry.directory else os.unlink)(path)


def _backing_flags(flags: int) -> int:
    """The flags to open the backing file with: writes always come with their offset,
    truncation goes through the model, and a writer can read (what it overwrites)."""
    flags &= ~(os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL)
    if flags & os.O_ACCMODE == os.O_WRONLY:
        flags = flags & ~os.O_ACCMODE | os.O_RDWR
    return flags
