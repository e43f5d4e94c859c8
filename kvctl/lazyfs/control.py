"""Talking to a running lazy filesystem (its process is `server`): needs no pyfuse3.

The filesystem answers on a Unix socket named after its mount point: one JSON request a
connection, one JSON answer. The socket is abstract (Linux: no file, gone with its process),
because a socket file left by an earlier life of a container, on a filesystem such as
fuse-overlayfs, refused connections to the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ANSWER_LIMIT = 1 << 16
MAX_NAME = 90
TRASH = ".lazyfs-trash"  # at the backing root: removed entries parked until synced (see fs)


class LazyFSError(Exception):
    """The filesystem cannot be reached or refused a command; the message says why."""


def socket_address(mountpoint: Path) -> str:
    """The abstract Unix socket of the filesystem mounted at `mountpoint` (this network
    namespace: a container's own)."""
    name = os.path.abspath(mountpoint)
    if len(name) > MAX_NAME:  # sun_path holds 108 bytes
        name = hashlib.sha256(name.encode()).hexdigest()
    return f"\0kvctl.lazyfs:{name}"


def wait(mountpoint: Path, timeout: float, gone: Callable[[], bool] = lambda: False) -> None:
    """Return once the filesystem at `mountpoint` answers (it may still be mounting, in a
    container that just started); LazyFSError after `timeout` seconds or once `gone()`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ask(mountpoint, {"op": "status"}, timeout=1.0)
            return
        except LazyFSError as exc:
            if gone() or time.monotonic() > deadline:
                raise LazyFSError(f"{exc} (waited {timeout:.0f} s)") from exc
        time.sleep(0.05)


def ask(mountpoint: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the filesystem mounted at `mountpoint`; its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_address(mountpoint))
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(ANSWER_LIMIT)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        raise LazyFSError(
            f"no lazy filesystem answers for {mountpoint} ({exc}): is it mounted with "
            "`python3 -m kvctl.lazyfs mount`?"
        ) from exc
    reply: dict[str, Any] = json.loads(answer)
    if "error" in reply:
        raise LazyFSError(f"{mountpoint}: {reply['error']}")
    return reply

