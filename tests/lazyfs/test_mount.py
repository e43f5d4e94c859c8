"""The lazy filesystem mounted for real on this machine (needs /dev/fuse, root and pyfuse3):
write through it, cut its power with the CLI the harness runs, and look at what is left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("CI") != "true":  # in CI a missing FUSE is a failure, not a skip
    pytest.importorskip("pyfuse3")
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        pytest.skip("needs /dev/fuse and root", allow_module_level=True)

from kvctl.lazyfs.control import LazyFSError, ask

pytestmark = pytest.mark.slow  # a mount takes a second or two
MOUNT_TIMEOUT = 20.0


def lazyfs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvctl.lazyfs", *args], capture_output=True, text=True, timeout=30
    )


def cli(*args: str) -> dict:
    done = lazyfs(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Mount:
    """One mounted lazy filesystem over a backing directory."""

    def __init__(self, root: Path) -> None:
        self.backing = root / "backing"
        self.point = root / "mnt"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Mount:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kvctl.lazyfs", "mount", str(self.backing), str(self.point)]
        )
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while True:
            try:
                ask(self.point, {"op": "status"}, timeout=1.0)
                return self
            except LazyFSError:
                assert self.process.poll() is None, "the filesystem process exited"
                assert time.monotonic() < deadline, "not mounted in time"
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.point)], check=False)
        assert self.process is not None
        self.process.wait(timeout=MOUNT_TIMEOUT)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes, mode: str = "wb", sync: bool = False) -> None:
    with open(path, mode) as out:
        out.write(data)
        out.flush()
        if sync:
            os.fdatasync(out.fileno())


def test_a_crash_keeps_what_was_synced_and_nothing_else(root: Path) -> None:
    with Mount(root) as fs:
        write(fs.point / "wal", b"synced|", sync=True)
        fsync_dir(fs.point)
        write(fs.point / "wal", b"lost", mode="ab")
        write(fs.point / "new", b"never named durably", sync=True)
        write(fs.point / "tmp", b"renamed", sync=True)
        os.rename(fs.point / "tmp", fs.point / "wal2")
        assert (fs.point / "wal").read_bytes() == b"synced|lost"
        assert cli("status", str(fs.point))["unsynced_bytes"] == 4

        lost = cli("crash", str(fs.point))

        assert lost["lost_bytes"] == 4 and lost["undone_entries"] == 3
        with pytest.raises(OSError):
            (fs.point / "wal").read_bytes()  # the disk is gone until the next mount
    assert sorted(p.name for p in fs.backing.iterdir() if not p.name.startswith(".")) == ["wal"]
    with Mount(root) as fs:
        assert sorted(os.listdir(fs.point)) == ["wal"]
        assert (fs.point / "wal").read_bytes() == b"synced|"


def test_an_unsynced_replace_and_unlink_are_undone(root: Path) -> None:
    with Mount(root) as fs:
        write(fs.point / "wal", b"old", sync=True)
        write(fs.point / "gone", b"still here", sync=True)
        fsync_dir(fs.point)
        write(fs.point / "wal.tmp", b"new", sync=True)
        os.replace(fs.point / "wal.tmp", fs.point / "wal")
        os.unlink(fs.point / "gone")
        assert sorted(os.listdir(fs.point)) == ["wal"]
        cli("crash", str(fs.point))
    assert (fs.backing / "wal").read_bytes() == b"old"
    assert (fs.backing / "gone").read_bytes() == b"still here"


def test_an_overwrite_through_a_write_only_descriptor_is_undone(root: Path) -> None:
    with Mount(root) as fs:
        write(fs.point / "f", b"0123456789", sync=True)
        fsync_dir(fs.point)
        fd = os.open(fs.point / "f", os.O_WRONLY)
        try:
            os.pwrite(fd, b"abc", 4)
        finally:
            os.close(fd)
        assert (fs.point / "f").read_bytes() == b"0123abc789"
        cli("crash", str(fs.point))
    assert (fs.backing / "f").read_bytes() == b"0123456789"


def test_an_unsynced_truncate_is_undone(root: Path) -> None:
    with Mount(root) as fs:
        write(fs.point / "f", b"0123456789", sync=True)
        fsync_dir(fs.point)
        os.truncate(fs.point / "f", 3)
        with open(fs.point / "f", "r+b") as grown:
            grown.truncate(20)
        cli("crash", str(fs.point))
    assert (fs.backing / "f").read_bytes() == b"0123456789"


def test_a_synced_directory_keeps_its_entries(root: Path) -> None:
    with Mount(root) as fs:
        (fs.point / "db").mkdir()
        write(fs.point / "db" / "wal", b"x" * 100, sync=True)
        fsync_dir(fs.point / "db")
        cli("crash", str(fs.point))
    assert (fs.backing / "db" / "wal").read_bytes() == b"x" * 100


def test_a_torn_crash_keeps_a_prefix_of_the_unsynced_bytes(root: Path) -> None:
    written = bytes(range(256)) * 16
    with Mount(root) as fs:
        write(fs.point / "wal", b"head", sync=True)
        fsync_dir(fs.point)
        with open(fs.point / "wal", "ab") as out:
            for start in range(0, len(written), 512):
                out.write(written[start : start + 512])
                out.flush()
        kept = cli("crash", "--torn", "--seed", "3", str(fs.point))["kept_bytes"]
    data = (fs.backing / "wal").read_bytes()
    assert data == b"head" + written[:kept]


def test_corrupt_damages_a_synced_file_and_freezes_the_filesystem(root: Path) -> None:
    with Mount(root) as fs:
        (fs.point / "db").mkdir()
        write(fs.point / "db" / "wal.log", bytes(1000), sync=True)
        write(fs.point / "db" / "node.log", b"log", sync=True)
        flipped = cli("corrupt", "--mode", "flip", "--seed", "1", "--file", "wal.log",
                      str(fs.point))
        with pytest.raises(OSError):
            (fs.point / "db" / "wal.log").read_bytes()
    assert flipped["file"] == "db/wal.log"
    data = (fs.backing / "db" / "wal.log").read_bytes()
    assert len(data) == 1000
    assert sorted(i for i, byte in enumerate(data) if byte) == flipped["offsets"]
    with Mount(root) as fs:
        cut = cli("corrupt", "--mode", "truncate", "--file", "wal.log", str(fs.point))
    assert (fs.backing / "db" / "wal.log").stat().st_size == cut["cut_to"] < 1000


def test_a_command_waits_for_a_filesystem_that_is_still_mounting(root: Path) -> None:
    point = root / "mnt"
    waiting = subprocess.Popen(
        [sys.executable, "-m", "kvctl.lazyfs", "crash", "--wait", "20", str(point)],
        stdout=subprocess.PIPE, text=True,
    )
    with Mount(root):
        out, _ = waiting.communicate(timeout=30)
    assert waiting.returncode == 0 and json.loads(out)["lost_bytes"] == 0


def test_the_control_socket_leaves_no_file_a_later_life_could_trip_on(root: Path) -> None:
    """A socket file on the container's fuse-overlayfs refused the next life's connections."""
    with Mount(root) as fs:
        assert sorted(os.listdir(root)) == ["backing", "mnt"]
        assert cli("status", str(fs.point))["crashed"] is False


def test_commands_on_a_directory_without_the_filesystem_say_so(tmp_path: Path) -> None:
    done = lazyfs("crash", str(tmp_path))
    assert done.returncode == 1
    assert "no lazy filesystem answers" in done.stderr and "Traceback" not in done.stderr
    done = lazyfs("corrupt", "--mode", "bogus", "--file", "x", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_kvctl_store_keeps_a_synced_promise_across_a_power_cut(root: Path) -> None:
    from kvctl.node.ballot import Ballot
    from kvctl.node.durable import SetPromise
    from kvctl.node.storage import Storage

    instance, ballot = (0, 0), Ballot(1, 0, "a")
    with Mount(root) as fs:
        storage = Storage(fs.point)
        storage.write([(instance, SetPromise(ballot))])
        storage.sync()
        storage.close()
        cli("crash", str(fs.point))
    with Mount(root) as fs:
        states = Storage(fs.point).load()
    assert instance in states, "the whole log is gone"
    assert states[instance].promise == ballot
