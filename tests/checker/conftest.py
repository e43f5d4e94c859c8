"""Fixtures: the reference corpus (missing in CI is a failure, elsewhere a skip), and a
scratch history file for property tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from checker_corpus import CORPUS


@pytest.fixture
def corpus() -> Path:
    """The corpus folder; in CI its absence is a failure, elsewhere a skip."""
    if not CORPUS.is_dir():
        message = f"reference histories not found at {CORPUS.resolve()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CORPUS


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file that property tests write each generated history to, for `kvctl check`."""
    return tmp_path_factory.mktemp("property") / "history.jsonl"
