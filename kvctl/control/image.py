"""The node image, built without a registry: a Debian base from Debian packages, then our code.

Two layers with different lifetimes. The base (`kvbase:RELEASE`, recipe in kvctl/recipe/base.sh)
takes half a minute to bootstrap with mmdebstrap, so it is imported once and reused while it
exists; a base that is already present, or that `KVCTL_BASE_IMAGE` names and the engine can
pull, is used instead. The node image (`kvctl-node:DIGEST`, recipe in kvctl/recipe/Dockerfile) only
adds the `kvctl` package, and is tagged by a digest of everything that goes into it, so that
a change to the code (or the base) makes `kvctl up` rebuild it, and nothing else does.

Another store under test (kvctl/db) gets an image variant of its own: a base bootstrapped with
its Debian packages too, from the same mirror, tagged `kvbase:RELEASE-HASH` by a digest of the
packages and the base recipe (so a changed recipe is bootstrapped again, an unchanged one never
is), and a node image `kvctl-node:DB-DIGEST` on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from docker.client import DockerClient
from docker.errors import APIError, DockerException, ImageNotFound
from rich.console import Console
from rich.status import Status

import kvctl
from kvctl.control.backend import BackendError

BASE_REPOSITORY = "kvbase"
NODE_REPOSITORY = "kvctl-node"
KIND_LABEL = "kvctl.image"  # "base" or "node" (set in recipe/Dockerfile): images kvctl made
SOURCE_LABEL = "kvctl.source"  # the checkout a node image was built from
DEFAULT_RELEASE = "bookworm"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class ImageError(BackendError):
    """The node image cannot be had: no mirror, no mmdebstrap, a failed build."""


class BuildProgress:
    """What a build shows: a line per finished stage, and a spinner with the latest detail.

    Why a class: the spinner should appear only when something is built, so `kvctl up` with
    the image present prints nothing, and it must stop cleanly even when the build fails.
    """

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._status: Status | None = None
        self._stage = ""
        self._started = 0.0

    def stage(self, message: str) -> None:
        """Begin a stage (and close the previous one with its duration)."""
        self._finish_stage()
        self._stage, self._started = message, time.monotonic()
        if self.quiet:
            return
        if self._status is None:
            self._status = self.console.status(message)
            self._status.start()
        self._status.update(message)

    def fail(self, reason: str) -> None:
        """End the running stage as failed: the build goes on another way (pull, then bootstrap)."""
        if self._stage and not self.quiet:
            self.console.print(f"[yellow]✗[/yellow] {self._stage}: {reason}")
        self._stage = ""

    def detail(self, line: str) -> None:
        """Show the latest output of the running stage, replacing the previous line."""
        if self._status is not None and line.strip():
            self._status.update(f"{self._stage}: [dim]{line.strip()[:100]}[/dim]")

    def _finish_stage(self) -> None:
        if self._stage and not self.quiet:
            took = time.monotonic() - self._started
            self.console.print(f"[green]✓[/green] {self._stage} ({took:.1f} s)")
        self._stage = ""

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self._finish_stage()
        if self._status is not None:
            self._status.stop()
            self._status = None


def recipe_dir() -> Path:
    """kvctl/recipe/: package data, so that `pip install .` can build the image too."""
    path = Path(kvctl.__file__).resolve().parent / "recipe"
    if not (path / "Dockerfile").is_file():
        raise ImageError(f"the image recipe is missing from {path}: reinstall kvctl")
    return path


def debian_release(os_release: Path = Path("/etc/os-release")) -> str:
    """The machine's own Debian release, whose mirror is configured; bookworm elsewhere."""
    fields: dict[str, str] = {}
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key] = value.strip().strip('"')
    if fields.get("ID") == "debian" and fields.get("VERSION_CODENAME"):
        return fields["VERSION_CODENAME"]
    return DEFAULT_RELEASE


def base_tag(packages: tuple[str, ...] = ()) -> str:
    """kvbase:RELEASE for kvctl's own nodes; kvbase:RELEASE-HASH for a variant with more
    packages, HASH naming the packages and the recipe that bootstraps them."""
    if not packages:
        return f"{BASE_REPOSITORY}:{debian_release()}"
    return f"{BASE_REPOSITORY}:{debian_release()}-{base_recipe_digest(packages)[:12]}"


def base_recipe_digest(packages: tuple[str, ...]) -> str:
    """A digest of what a base variant is bootstrapped from: the scripts and the packages."""
    sha = hashlib.sha256(",".join(packages).encode())
    for name in ("base.sh", "aptsources.py"):
        sha.update(b"\0" + (recipe_dir() / name).read_bytes())
    return sha.hexdigest()


def ensure_base(
    client: DockerClient, progress: BuildProgress, rebuild: bool, packages: tuple[str, ...] = ()
) -> str:
    """The base to build on, bootstrapping one only when there is no other way.

    KVCTL_BASE_IMAGE, when set, is used if it is present or can be pulled; otherwise our
    kvbase:RELEASE if present. `rebuild` bootstraps a fresh kvbase regardless. A variant with
    `packages` is always ours (a configured base would lack them).
    """
    if packages:
        tag = base_tag(packages)
        if not rebuild and _present(client, tag):
            return tag
        return bootstrap_base(client, progress, packages)
    configured = os.environ.get("KVCTL_BASE_IMAGE", "")
    if not rebuild:
        if configured and (_present(client, configured) or _pulled(client, configured, progress)):
            return configured
        if _present(client, base_tag()):
            return base_tag()
    return bootstrap_base(client, progress)


def _present(client: DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
    except ImageNotFound:
        return False
    return True


def _pulled(client: DockerClient, reference: str, progress: BuildProgress) -> bool:
    progress.stage(f"pulling base image {reference}")
    try:
        client.images.pull(reference)
    except DockerException as err:
        progress.fail(str(getattr(err, "explanation", None) or err))
        return False
    return True


def bootstrap_base(
    client: DockerClient, progress: BuildProgress, packages: tuple[str, ...] = ()
) -> str:
    """Run recipe/base.sh (mmdebstrap) into a temporary tar and import it as base_tag(packages).

    The tar goes to a file rather than a pipe so that a half-finished bootstrap can never be
    imported as an image.
    """
    release, tag = debian_release(), base_tag(packages)
    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "building the base image needs mmdebstrap, which is not installed: "
            "apt-get install mmdebstrap (or set KVCTL_BASE_IMAGE to a base image you have)"
        )
    with tempfile.TemporaryDirectory(prefix="kvbase-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        with_packages = f" with {', '.join(packages)}" if packages else ""
        progress.stage(f"bootstrapping Debian {release}{with_packages} with mmdebstrap")
        argv = ["bash", str(recipe_dir() / "base.sh"), release, str(rootfs)]
        _run_streamed(argv + ([",".join(packages)] if packages else []), progress)
        progress.stage(f"importing {tag}")
        try:
            client.api.import_image_from_file(
                str(rootfs),
                repository=BASE_REPOSITORY,
                tag=tag.partition(":")[2],
                changes=["ENV LANG=C.UTF-8", f"LABEL {KIND_LABEL}=base", 'CMD ["/bin/bash"]'],
            )
        except APIError as err:
            raise ImageError(
                f"the engine refused to import the base image: {err.explanation}"
            ) from err
    if not _present(client, tag):
        raise ImageError(f"the base image was imported but {tag} is not there")
    return tag


def _run_streamed(argv: list[str], progress: BuildProgress) -> None:
    """Run a command, showing each output line as a detail; fail with its last lines."""
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            progress.detail(line)
    if proc.returncode != 0:
        raise ImageError(
            f"{' '.join(argv[:2])} failed (exit {proc.returncode}); its last lines:\n"
            + "\n".join(tail)
        )


def package_files() -> list[tuple[str, Path]]:
    """(name under kvctl/, file) for every file of the package: what a node runs. Compiled
    files are left out: they are built for the host's Python, and a node never runs the
    checker, the one part that has any (its search runs in Python without them)."""
    package = Path(kvctl.__file__).resolve().parent
    return [
        (f"kvctl/{path.relative_to(package).as_posix()}", path)
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".so")
    ]


def context_files() -> list[tuple[str, Path]]:
    """(name in the build context, file) for the Dockerfile, bin/ and the kvctl package."""
    recipe = recipe_dir()
    files = [("Dockerfile", recipe / "Dockerfile")]
    files += [(f"bin/{p.name}", p) for p in sorted((recipe / "bin").iterdir()) if p.is_file()]
    return files + package_files()


def digest(files: list[tuple[str, Path]], base_id: str, source: str = "") -> str:
    """A digest of what the node image is made of: its files (names, modes, bytes), its base,
    and the checkout it is built from."""
    sha = hashlib.sha256(f"{base_id}\0{source}".encode())
    for name, path in files:
        sha.update(f"\0{name}\0{_mode(name, path):o}\0".encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _mode(name: str, path: Path) -> int:
    """A file's mode in the build context: bin/ is executable whatever the installed copy
    says (a wheel need not keep x bits); anything else keeps its own."""
    return 0o755 if name.startswith("bin/") else path.stat().st_mode & 0o777


def build_context(files: list[tuple[str, Path]]) -> io.BytesIO:
    """The build context as an in-memory tar (a few hundred KiB), with normalized owners."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in files:
            info = tar.gettarinfo(str(path), arcname=name)
            info.mode = _mode(name, path)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    buffer.seek(0)
    return buffer


def ensure_node_image(
    client: DockerClient,
    progress: BuildProgress | None = None,
    rebuild: bool = False,
    db: str = "kvctl",
) -> str:
    """The tag of an up-to-date node image for store `db` (kvctl/db), building what is
    missing (everything if rebuild)."""
    from kvctl.db import DBError, get_db  # the stores' client libraries load only when asked

    try:
        packages = get_db(db).packages
    except DBError as err:
        raise ImageError(str(err)) from err
    progress = progress or BuildProgress(quiet=True)
    base = ensure_base(client, progress, rebuild, packages)
    files = context_files()
    # Each checkout has images of its own, so that one never removes another's (below).
    source = str(recipe_dir().parent)
    base_id = client.images.get(base).id or base
    tag = node_tag(db, digest(files, base_id, source))
    if rebuild or not _present(client, tag):
        progress.stage(f"building {tag} on {base}")
        _build(client, files, {"BASE": base, "SOURCE": source}, tag, progress)
        _remove_stale(client, keep=tag, source=source)
    return tag


def node_tag(db: str, content_digest: str) -> str:
    """kvctl-node:DIGEST for kvctl's own store, kvctl-node:DB-DIGEST for another's."""
    prefix = "" if db == "kvctl" else f"{db}-"
    return f"{NODE_REPOSITORY}:{prefix}{content_digest[:12]}"


def _variant(tag: str) -> str:
    """The store a node image tag is for (digests are hex, so a '-' sets a store apart)."""
    version = tag.partition(":")[2]
    return version.rpartition("-")[0] or "kvctl"


def _build(
    client: DockerClient,
    files: list[tuple[str, Path]],
    buildargs: dict[str, str],
    tag: str,
    progress: BuildProgress,
) -> None:
    """Build through the classic builder, never pulling: FROM names the local base."""
    tail: deque[str] = deque(maxlen=15)
    try:
        for event in client.api.build(
            fileobj=build_context(files),
            custom_context=True,
            tag=tag,
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
            buildargs=buildargs,
        ):
            for line in _event_lines(event):
                tail.append(line)
                progress.detail(line)
            if "error" in event:
                log = "\n".join(tail)
                raise ImageError(f"building {tag} failed: {event['error'].strip()}\n{log}")
    except APIError as err:
        raise ImageError(f"building {tag} failed: {err.explanation}") from err


def _event_lines(event: dict[str, Any]) -> Iterator[str]:
    """The text lines of one build event, without the colour codes the engine adds."""
    text = ANSI_ESCAPE.sub("", str(event.get("stream") or event.get("status") or ""))
    yield from (line for line in text.splitlines() if line.strip())


def _remove_stale(client: DockerClient, keep: str, source: str) -> None:
    """Drop the images of this checkout's older code for the same store; one used by a
    container stays."""
    labels = [f"{KIND_LABEL}=node", f"{SOURCE_LABEL}={source}"]
    for image in client.images.list(filters={"label": labels}):
        for tag in image.tags:
            if (tag != keep and tag.startswith(f"{NODE_REPOSITORY}:")
                    and _variant(tag) == _variant(keep)):
                with contextlib.suppress(APIError):
                    client.images.remove(tag)
