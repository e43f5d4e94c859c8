"""Every reference history gets the verdict its MANIFEST.md states (upstream's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from checker_corpus import manifest

from kvctl.checker import check, load

ROWS = manifest()


def test_corpus_is_complete(corpus: Path) -> None:
    """Each history file in the corpus has a row, and each row a file."""
    files = {p for p in corpus.rglob("*") if p.suffix in (".log", ".txt", ".edn")}
    assert {path for path, _ in ROWS} == files
    assert len(ROWS) >= 229


@pytest.mark.parametrize(
    ("path", "linearizable"), ROWS, ids=[f"{p.parent.name}/{p.name}" for p, _ in ROWS]
)
def test_reference_verdict(path: Path, linearizable: bool) -> None:
    # Knossos's own tests start every register at 0 (knossos/MANIFEST.md); Porcupine's at
    # absent (null) for etcd, and "" for kv (the kv model's empty string).
    initial = 0 if "knossos" in path.parts else None
    result = check(load(path), initial=initial)
    assert result.valid is linearizable
    if not linearizable:
        assert result.explanation
