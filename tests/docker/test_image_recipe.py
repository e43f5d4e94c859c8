"""The image recipe's logic that needs no engine: the mirror, the release, the code digest."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kvctl.control.image import (
    BuildProgress,
    ImageError,
    bootstrap_base,
    build_context,
    debian_release,
    digest,
    recipe_dir,
)

APTSOURCES = recipe_dir() / "aptsources.py"


def mirrors(root: Path, release: str = "bookworm") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APTSOURCES), release, "--root", str(root)],
        capture_output=True,
        text=True,
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


ONE_LINE = (
    "# a comment\n"
    "deb-src http://src.example/debian bookworm main\n"
    "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n"
    "deb http://other.example/debian bookworm main\n"
    "deb http://mirror.example/debian bookworm-updates main  # trailing comment\n"
    "deb http://thirdparty.example/apt bookworm stable\n"
)
DEB822 = (
    "Types: deb deb-src\n"
    "# http://snapshot.example/archive\n"
    "URIs: http://deb.example/debian\n"
    "Suites: bookworm bookworm-updates\n"
    "Components: main\n"
    "\n"
    "Types: deb\n"
    "URIs: http://disabled.example/debian-security\n"
    "Suites: bookworm-security\n"
    "Components: main\n"
    "Enabled: no\n"
    "\n"
    "Types: deb\n"
    "URIs: http://security.example/debian-security\n"
    "Suites: bookworm-security\n"
    "Components: main non-free-firmware\n"
)


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "etc/apt/sources.list",
            ONE_LINE,
            [
                "deb http://mirror.example/debian bookworm main",
                "deb http://mirror.example/debian bookworm-updates main",
            ],
        ),
        (
            "etc/apt/sources.list.d/debian.sources",
            DEB822,
            [
                "deb http://deb.example/debian bookworm main",
                "deb http://deb.example/debian bookworm-updates main",
                "deb http://security.example/debian-security bookworm-security main",
            ],
        ),
    ],
    ids=["one-line", "deb822"],
)
def test_mirror_from_apt_sources(tmp_path: Path, path: str, text: str, expected: list[str]) -> None:
    """Enabled binary `main` sources only, first URI per suite; options and comments ignored."""
    write(tmp_path / path, text)
    result = mirrors(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_no_mirror_for_the_release_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "etc/apt/sources.list", "deb http://deb.example/debian bookworm main\n")
    result = mirrors(tmp_path, release="trixie")
    assert result.returncode == 2
    assert "no enabled 'trixie main' source" in result.stderr
    assert "Traceback" not in result.stderr


def test_release_follows_the_machine(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=debian\nVERSION_CODENAME="trixie"\n')
    assert debian_release(os_release) == "trixie"
    os_release.write_text("ID=ubuntu\nVERSION_CODENAME=noble\n")
    assert debian_release(os_release) == "bookworm"
    assert debian_release(tmp_path / "missing") == "bookworm"


def test_digest_changes_with_content_mode_and_base(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("echo 1\n")
    script.chmod(0o644)
    files = [("lib/tool", script)]
    first = digest(files, "sha256:base1")
    assert digest(files, "sha256:base1") == first
    assert digest(files, "sha256:base2") != first
    script.chmod(0o755)
    executable = digest(files, "sha256:base1")
    assert executable != first
    script.write_text("echo 2\n")
    assert digest(files, "sha256:base1") not in (first, executable)


def test_missing_mmdebstrap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ImageError, match="apt-get install mmdebstrap"):
        bootstrap_base(None, BuildProgress(quiet=True))  # type: ignore[arg-type]


def test_scripts_are_executable_in_the_context_whatever_the_installed_mode(tmp_path: Path) -> None:
    script = tmp_path / "kvctl-node"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)  # as a wheel may install it
    with tarfile.open(fileobj=build_context([("bin/kvctl-node", script)])) as tar:
        assert tar.getmember("bin/kvctl-node").mode == 0o755
