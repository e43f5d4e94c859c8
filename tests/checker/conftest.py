"""The reference corpus as a fixture: missing in CI is a failure, elsewhere a skip."""

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
