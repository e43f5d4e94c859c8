"""The page-cache model on its own: what a power cut keeps and what it undoes."""

from __future__ import annotations

import random

import pytest

from kvctl.lazyfs.model import Delete, PageCache
from tests.lazyfs.memdisk import MemoryDisk


def test_written_without_fsync_then_cut_is_gone() -> None:
    disk = MemoryDisk()
    disk.create("wal")
    disk.fsync_dir("")
    disk.write("wal", 0, b"not synced")
    result = disk.crash()
    assert disk.view() == {"wal": b""}
    assert result.lost_bytes == len(b"not synced")


def test_fsynced_then_cut_stays() -> None:
    disk = MemoryDisk()
    disk.create("wal")
    disk.fsync_dir("")
    disk.write("wal", 0, b"synced")
    disk.fsync("wal")
    disk.write("wal", 6, b" and more")
    disk.crash()
    assert disk.view() == {"wal": b"synced"}


def test_an_overwrite_is_undone_to_the_synced_bytes() -> None:
    disk = MemoryDisk()
    disk.create("f")
    disk.fsync_dir("")
    disk.write("f", 0, b"abcdef")
    disk.fsync("f")
    disk.write("f", 2, b"XYZWVU")  # over the end, too
    disk.write("f", 0, b"Q")
    disk.crash()
    assert disk.view() == {"f": b"abcdef"}


def synced_old_and_new_logs() -> MemoryDisk:
    """A log and its rewrite beside it, both fsynced and named durably: a WAL rewrite."""
    disk = MemoryDisk()
    for name, data in (("wal", b"old"), ("wal.tmp", b"new")):
        disk.create(name)
        disk.write(name, 0, data)
        disk.fsync(name)
    disk.fsync_dir("")
    return disk


def test_an_unsynced_rename_is_undone() -> None:
    disk = synced_old_and_new_logs()
    disk.rename("wal.tmp", "wal")  # replaces the old log, but the directory is not synced
    assert disk.view() == {"wal": b"new"}
    disk.crash()
    assert disk.view() == {"wal": b"old", "wal.tmp": b"new"}


def test_a_synced_rename_stays_and_frees_what_it_replaced() -> None:
    disk = synced_old_and_new_logs()
    disk.rename("wal.tmp", "wal")
    disk.fsync_dir("")
    assert not any(path.startswith(".trash/") for path in disk.names)
    disk.crash()
    assert disk.view() == {"wal": b"new"}


def test_a_file_created_since_the_directory_was_synced_disappears_even_if_fsynced() -> None:
    disk = MemoryDisk()
    disk.create("wal")
    disk.write("wal", 0, b"data")
    disk.fsync("wal")
    disk.crash()
    assert disk.view() == {}


def test_an_unsynced_unlink_is_undone() -> None:
    disk = MemoryDisk()
    disk.create("f")
    disk.write("f", 0, b"kept")
    disk.fsync("f")
    disk.fsync_dir("")
    disk.unlink("f")
    disk.crash()
    assert disk.view() == {"f": b"kept"}


def test_syncing_one_directory_commits_the_journal_up_to_its_last_entry() -> None:
    disk = MemoryDisk()
    disk.mkdir("d")
    disk.create("d/a")
    disk.create("b")
    disk.fsync_dir("d")  # makes "d" and "d/a" durable, not "b", created later
    disk.crash()
    assert disk.view() == {"d/a": b""}
    assert disk.dirs == {"", "d"}


def test_an_unsynced_shrink_is_undone() -> None:
    disk = MemoryDisk()
    disk.create("f")
    disk.fsync_dir("")
    disk.write("f", 0, b"0123456789")
    disk.fsync("f")
    disk.truncate("f", 4)
    disk.crash()
    assert disk.view() == {"f": b"0123456789"}


def test_a_torn_crash_keeps_a_prefix_of_the_unsynced_bytes() -> None:
    disk = MemoryDisk()
    file = disk.create("wal")
    disk.fsync_dir("")
    disk.write("wal", 0, b"synced|")
    disk.fsync("wal")
    disk.write("wal", 7, b"first|")
    disk.write("wal", 13, b"second")
    result = disk.crash({file: 9})  # "first|" and "sec"
    assert disk.view() == {"wal": b"synced|first|sec"}
    assert (result.kept_bytes, result.lost_bytes) == (9, 3)


def test_draw_torn_keeps_at_most_what_is_unsynced() -> None:
    disk = MemoryDisk()
    file = disk.create("f")
    disk.write("f", 0, b"x" * 50)
    rng = random.Random(7)
    for _ in range(100):
        keep, entries = disk.cache.draw_torn(rng)
        assert 0 <= keep[file] <= 50 and 0 <= entries <= 1


def test_nothing_is_unsynced_after_a_crash() -> None:
    disk = MemoryDisk()
    disk.create("f")
    disk.write("f", 0, b"abc")
    disk.crash()
    assert disk.cache.unsynced_bytes() == 0 and disk.cache.unsynced_entries() == 0
    assert disk.crash().actions == []


def test_a_before_image_that_does_not_fit_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="before holds"):
        PageCache().write(1, 0, 4, b"ab", size=10)


def test_sync_dir_of_an_untouched_directory_commits_nothing() -> None:
    cache = PageCache()
    cache.removed("d/f", ".trash/0", 3)
    assert cache.sync_dir("other") == []
    assert cache.sync_dir("d") == [Delete(".trash/0", False)]
