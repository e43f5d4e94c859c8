"""Print the Debian mirror lines mmdebstrap should use, read from this machine's apt sources.

Why: the base image is built from the same mirror the machine already trusts (a local cache,
a snapshot, a company proxy); a host name written into the recipe would bypass all of those.
Reads the one-line format (`sources.list`, `*.list`) and deb822 (`*.sources`), skips disabled
entries, `deb-src` and repositories without `main`, and prints one `deb URI SUITE main` line
for RELEASE, RELEASE-updates and RELEASE-security where the machine has them.

Usage: python3 aptsources.py RELEASE [--root DIR]   (exit 2 and a message when none is found)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

Source = tuple[str, str, list[str]]  # (uri, suite, components)


def one_line_sources(text: str) -> Iterator[Source]:
    """Entries of a `sources.list`-style file: `deb [options] URI SUITE COMPONENT...`."""
    for raw in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb":
            yield words[1], words[2], words[3:]


def deb822_sources(text: str) -> Iterator[Source]:
    """Entries of a deb822 `.sources` file; a stanza may list several URIs and suites."""
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        for line in stanza.splitlines():
            if line.lstrip().startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []):
            continue
        if [v.lower() for v in fields.get("enabled", ["yes"])] == ["no"]:
            continue
        for uri in fields.get("uris", []):
            for suite in fields.get("suites", []):
                yield uri, suite, fields.get("components", [])


def apt_sources(root: Path) -> Iterator[Source]:
    """Every enabled binary source under ROOT/etc/apt, in apt's own reading order."""
    etc = root / "etc" / "apt"
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            yield from one_line_sources(path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        yield from deb822_sources(path.read_text(encoding="utf-8", errors="replace"))


def mirror_lines(release: str, root: Path) -> list[str]:
    """`deb URI SUITE main` for the release and its -updates/-security suites, first URI wins."""
    wanted = (release, f"{release}-updates", f"{release}-security")
    found: dict[str, str] = {}
    for uri, suite, components in apt_sources(root):
        if suite in wanted and "main" in components:
            found.setdefault(suite, uri.rstrip("/"))
    if release not in found:
        raise LookupError(
            f"no enabled '{release} main' source in {root / 'etc/apt'}: the base image is built "
            f"from the machine's own Debian mirror, so add one (or provide a base image)"
        )
    return [f"deb {found[suite]} {suite} main" for suite in wanted if suite in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release")
    parser.add_argument("--root", type=Path, default=Path("/"))
    args = parser.parse_args(argv)
    try:
        print("\n".join(mirror_lines(args.release, args.root)))
    except LookupError as err:
        print(f"aptsources: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
