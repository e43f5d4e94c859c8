"""The mounted filesystem against the model: random file operations done through FUSE and on a
memory disk driven by the model alone, then a power cut; both must keep the same files with
the same bytes. This checks the passthrough's wiring (what it tells the model, how it applies
the undo plan), which the model's own tests cannot see."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.lazyfs.memdisk import MemoryDisk
from tests.lazyfs.test_model_property import DIRS, steps
from tests.lazyfs.test_mount import Mount, cli, fsync_dir

pytestmark = pytest.mark.slow  # a mount per example


def do(point: Path, disk: MemoryDisk, step: tuple[str, str, str, int, bytes]) -> None:
    """One step on the mount and on the memory disk, when it applies to both."""
    op, name, other, offset, data = step
    path = point / name
    exists = name in disk.names
    if op == "create" and not exists:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        disk.create(name)
    elif op == "write" and exists:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)
        disk.write(name, offset, data)
    elif op == "truncate" and exists:
        os.truncate(path, offset)
        disk.truncate(name, offset)
    elif op == "fsync" and exists:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        disk.fsync(name)
    elif op == "unlink" and exists:
        os.unlink(path)
        disk.unlink(name)
    elif op == "rename" and exists and other != name:
        os.rename(path, point / other)
        disk.rename(name, other)
    elif op == "fsync_dir":
        directory = DIRS[offset % len(DIRS)]
        fsync_dir(point / directory)
        disk.fsync_dir(directory)


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` but the trash, by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.relative_to(root).parts[0].startswith(".lazyfs")
    }


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_the_mount_keeps_what_the_model_keeps(tmp_path: Path, sequence: list) -> None:
    root = tmp_path / "example"
    shutil.rmtree(root, ignore_errors=True)
    (root / "backing" / "d").mkdir(parents=True)  # a directory that exists before the mount
    disk = MemoryDisk()
    disk.dirs.add("d")
    with Mount(root) as fs:
        for step in sequence:
            do(fs.point, disk, step)
        assert files(fs.point) == disk.view()
        cli("crash", str(fs.point))
    disk.crash()
    assert files(root / "backing") == disk.view()
