"""The lazyfs command without FUSE: clear errors, and a client side that needs no pyfuse3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WITHOUT_PYFUSE3 = (
    "import sys; sys.modules['pyfuse3'] = None; sys.argv[0] = 'lazyfs'; "
    "from kvctl.lazyfs.__main__ import main; main()"
)


def lazyfs_without_pyfuse3(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_PYFUSE3, *args],
                          capture_output=True, text=True, timeout=30)


def test_mounting_without_pyfuse3_says_what_to_install(tmp_path: Path) -> None:
    done = lazyfs_without_pyfuse3("mount", str(tmp_path / "b"), str(tmp_path / "m"))
    assert done.returncode == 1
    assert "python3-pyfuse3" in done.stderr and "Traceback" not in done.stderr


def test_the_harness_commands_need_no_pyfuse3(tmp_path: Path) -> None:
    done = lazyfs_without_pyfuse3("crash", "--torn", str(tmp_path))
    assert done.returncode == 1
    assert "no lazy filesystem answers" in done.stderr and "Traceback" not in done.stderr
