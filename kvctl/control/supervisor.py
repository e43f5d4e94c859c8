"""Automatic repair: replace a member that stays unreachable, before its groups lose more.

Opt-in (`kvctl up --auto-replace SECONDS`): a small process beside the cluster asks every
member for its topology once a second. A member that has not answered for SECONDS is
replaced, one at a time, by a new node that takes its place in every group (a StopSign per
group, so the groups keep their majority throughout). A replaced node stays stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kvctl.client import Client, ClientError
from kvctl.control import get_backend
from kvctl.control.backend import BackendError, kvctl_home, load_spec
from kvctl.control.membership import (
    apply_plan,
    current_configs,
    plan_replace,
    start_node,
    views,
)

PID_FILE = "supervisor.pid"


async def _reachable(addresses: dict[str, str]) -> dict[str, dict[str, Any]]:
    async with Client(addresses, attempt_timeout=1.0) as client:
        return await views(client, list(addresses))


def supervise(
    after: float, say: Callable[[str], None], done: Callable[[], bool] = lambda: False
) -> None:
    """Watch the cluster of $KVCTL_HOME; replace members unreachable for `after` seconds,
    until the cluster is gone or `done()`."""
    silent_since: dict[str, float] = {}
    while not done():
        spec = load_spec()
        if spec is None:
            say("no cluster any more: stopping")
            return
        addresses = {n.name: n.address for n in spec.nodes}
        answered = asyncio.run(_reachable(addresses))
        if not answered:
            time.sleep(1)
            continue
        configs = current_configs(answered.values())
        members = sorted({m for _, ms in configs.values() for m in ms})
        now = time.monotonic()
        for name in members:
            if name in answered:
                silent_since.pop(name, None)
                continue
            since = silent_since.setdefault(name, now)
            if now - since >= after:
                say(f"{name} unreachable for {now - since:.0f} s: replacing it")
                _replace(name, configs, say)
                silent_since.pop(name, None)
                break
        time.sleep(1)


def _replace(
    dead: str, configs: dict[int, tuple[int, list[str]]], say: Callable[[str], None]
) -> None:
    spec = load_spec()
    assert spec is not None
    try:
        spec = start_node(spec, get_backend(spec.backend))
    except (BackendError, ValueError) as exc:
        say(f"cannot start a replacement: {exc}")
        return
    new = spec.nodes[-1].name
    plan = plan_replace(configs, dead, new)
    addresses = {n.name: n.address for n in spec.nodes}

    async def run() -> None:
        async with Client(addresses, timeout=20) as client:
            await apply_plan(client, plan, addresses)

    try:
        asyncio.run(run())
    except ClientError as exc:
        say(f"replacing {dead} by {new} did not finish: {exc}")
        return
    say(f"replaced {dead} by {new} in {len(plan)} group(s)")


def spawn(after: float) -> int:
    """Start the supervisor in the background for the cluster of $KVCTL_HOME."""
    home = kvctl_home()
    log = open(home / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "kvctl", "supervise", "--auto-replace", str(after)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "KVCTL_HOME": str(home)},
    )
    (home / PID_FILE).write_text(str(process.pid))
    return process.pid


def stop() -> None:
    """Stop the supervisor of $KVCTL_HOME, if one runs."""
    path: Path = kvctl_home() / PID_FILE
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"supervise" in cmdline:
            os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    path.unlink(missing_ok=True)
