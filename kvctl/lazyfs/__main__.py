"""`python3 -m kvctl.lazyfs`: mount the lazy filesystem, run a node over it, cut its power.

The harness reaches it through `Backend.exec` inside a node's container; every command that
acts prints one JSON line for the history.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import click

from kvctl.lazyfs import damage
from kvctl.lazyfs.control import TRASH, LazyFSError, ask, wait

MOUNT_TIMEOUT = 30.0


@click.group()
def cli() -> None:
    """A FUSE filesystem that forgets what was not fsynced when its power is cut."""


@cli.command()
@click.argument("backing", type=click.Path(file_okay=False, path_type=Path))
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
def mount(backing: Path, mountpoint: Path) -> None:
    """Serve BACKING at MOUNTPOINT until unmounted (or SIGTERM)."""
    try:
        from kvctl.lazyfs.server import serve
    except ImportError as exc:
        raise click.ClickException(
            f"cannot mount the lazy filesystem: {exc} (it needs pyfuse3 and trio: Debian's "
            "python3-pyfuse3 and fuse3; a node image whose base predates them gets them "
            "from `kvctl image build --rebuild`)"
        ) from exc
    backing.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    serve(backing, mountpoint)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("backing", type=click.Path(file_okay=False, path_type=Path))
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def run(backing: Path, mountpoint: Path, argv: tuple[str, ...]) -> None:
    """Mount BACKING at MOUNTPOINT in the background, then become ARGV (a node's command)."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kvctl.lazyfs", "mount", str(backing), str(mountpoint)]
    )
    wait(mountpoint, MOUNT_TIMEOUT, gone=lambda: daemon.poll() is not None)
    os.execvp(argv[0], list(argv))


@cli.command()
@click.option("--wait", "wait_for", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a filesystem that is still mounting.")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
def status(wait_for: float, mountpoint: Path) -> None:
    """What the filesystem at MOUNTPOINT has not synced yet."""
    wait(mountpoint, wait_for)
    _print(ask(mountpoint, {"op": "status"}))


@cli.command()
@click.option("--torn", is_flag=True, help="Keep a random prefix of the unsynced bytes.")
@click.option("--seed", type=int, default=None, help="Seed of the torn prefix.")
@click.option("--wait", "wait_for", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a filesystem that is still mounting.")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
def crash(torn: bool, seed: int | None, wait_for: float, mountpoint: Path) -> None:
    """Cut the power: forget every unsynced write and entry; the filesystem then fails
    every operation until it is mounted again."""
    wait(mountpoint, wait_for)
    _print(ask(mountpoint, {"op": "crash", "torn": torn, "seed": seed}))


@cli.command()
@click.option("--mode", type=click.Choice(damage.MODES), required=True)
@click.option("--seed", type=int, default=None, help="Seed of the file and damage chosen.")
@click.option("--file", "names", multiple=True, required=True, help="Data file name(s).")
@click.option("--wait", "wait_for", type=float, default=0.0, show_default=True,
              help="Seconds to wait for a filesystem that is still mounting.")
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
def corrupt(
    mode: str, seed: int | None, names: tuple[str, ...], wait_for: float, mountpoint: Path
) -> None:
    """Freeze the filesystem (nothing lost), then damage one data file under it: flip bits
    or cut its tail. The node over it must be restarted to see the damage."""
    wait(mountpoint, wait_for)
    backing = Path(ask(mountpoint, {"op": "status"})["backing"])
    candidates = _data_files(backing, names)
    if not candidates:
        raise click.ClickException(f"no non-empty file named {', '.join(names)} under {mountpoint}")
    ask(mountpoint, {"op": "freeze"})
    rng = random.Random(seed)
    target = rng.choice(candidates)
    plan = damage.plan(target.stat().st_size, mode, rng)
    damage.apply(target, plan)
    _print({"file": str(target.relative_to(backing)), **plan.summary()})


def _data_files(backing: Path, names: tuple[str, ...]) -> list[Path]:
    return [
        path
        for path in sorted(backing.rglob("*"))
        if path.name in names
        and TRASH not in path.relative_to(backing).parts
        and path.is_file()
        and path.stat().st_size > 0
    ]


def _print(value: dict[str, object]) -> None:
    click.echo(json.dumps(value))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except LazyFSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()
