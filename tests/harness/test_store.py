"""The store: run directories, relative `latest` links, the listing, the history on disk."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

from kvctl import store


def test_runs_get_their_own_directories_and_relative_latest_links(tmp_path):
    root = tmp_path / "store"
    at = datetime(2026, 11, 24, 3, 15, 0)
    first = store.create("register", root, at)
    second = store.create("register", root, at)
    assert first.path.name == "20261124T031500" and second.path.name == "20261124T031500-1"
    for run, valid in ((first, True), (second, False)):
        run.write_json("test.json", {"name": run.name})
        run.write_json("results.json", {"valid": valid})
        store.link_latest(run, root)
    assert os.readlink(root / "latest") == "register/20261124T031500-1"
    assert os.readlink(root / "register" / "latest") == "20261124T031500-1"
    moved = tmp_path / "moved"
    root.rename(moved)  # relative links survive a move
    assert json.loads((moved / "latest" / "results.json").read_text()) == {"valid": False}
    listed = list(store.runs(moved))
    assert [s.run.stamp for s in listed] == ["20261124T031500-1", "20261124T031500"]
    assert [s.valid for s in listed] == [False, True]


def test_history_is_on_disk_line_by_line(tmp_path):
    writer = store.HistoryWriter(tmp_path / "history.jsonl")
    writer.write(process=0, type="invoke", f="read", key="k", value=None)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["index"] == 0  # readable before close: a crash keeps it
    writer.write(process=0, type="ok", f="read", key="k", value=None)
    writer.close()
    events = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [e["index"] for e in events] == [0, 1]
    assert events[0]["time"] <= events[1]["time"]


def test_a_name_that_cannot_name_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(store.StoreError, match="cannot name a directory"):
        store.create("../etc", tmp_path)
