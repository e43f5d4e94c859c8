"""Running the lazy filesystem, and talking to it while it runs.

The filesystem process serves FUSE and, on the same trio loop, a Unix socket named after its
mount point: one JSON request a connection, one JSON answer. The loop runs one thing at a time,
so a crash always lands between two whole file operations. The socket is abstract (Linux: no
file, gone with its process), because a socket file left by an earlier life of a container, on
a filesystem such as fuse-overlayfs, refused connections to the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyfuse3
import trio

from kvctl.lazyfs.fs import LazyFS

ANSWER_LIMIT = 1 << 16
MAX_NAME = 90


class LazyFSError(Exception):
    """The filesystem cannot be reached or refused a command; the message says why."""


def socket_address(mountpoint: Path) -> str:
    """The abstract Unix socket of the filesystem mounted at `mountpoint` (this network
    namespace: a container's own)."""
    name = os.path.abspath(mountpoint)
    if len(name) > MAX_NAME:  # sun_path holds 108 bytes
        name = hashlib.sha256(name.encode()).hexdigest()
    return f"\0kvctl.lazyfs:{name}"


def serve(backing: Path, mountpoint: Path) -> None:
    """Mount the lazy filesystem of `backing` at `mountpoint` until unmounted or signalled."""
    fs = LazyFS(backing)
    options = set(pyfuse3.default_options) | {"fsname=lazyfs"}
    pyfuse3.init(fs, str(mountpoint), options)
    try:
        trio.run(_main, fs, socket_address(mountpoint))
    finally:
        pyfuse3.close(unmount=True)


async def _main(fs: LazyFS, control: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_control, fs, control)
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _serve_control(fs: LazyFS, address: str) -> None:
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(address)
    listener.listen()
    await trio.serve_listeners(
        lambda stream: _answer(fs, stream), [trio.SocketListener(listener)]
    )


async def _answer(fs: LazyFS, stream: trio.SocketStream) -> None:
    async with stream:
        request = b""
        while not request.endswith(b"\n"):
            chunk = await stream.receive_some(ANSWER_LIMIT)
            if not chunk:
                return
            request += chunk
        try:
            answer = command(fs, json.loads(request))
        except (ValueError, KeyError, OSError) as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        await stream.send_all(json.dumps(answer).encode() + b"\n")


def command(fs: LazyFS, request: dict[str, Any]) -> dict[str, Any]:
    """Do one control request: status, crash (torn: bool, seed) or freeze."""
    op = request["op"]
    if op == "status":
        return status(fs)
    if op == "freeze":
        fs.freeze()
        return {"backing": str(fs.backing)}
    if op == "crash":
        if fs.crashed:
            raise ValueError("the filesystem has already lost power; remount it")
        torn = random.Random(request.get("seed")) if request.get("torn") else None
        return {"torn": torn is not None, **fs.crash(torn).summary()}
    raise ValueError(f"unknown op {op!r}: status, crash or freeze")


def status(fs: LazyFS) -> dict[str, Any]:
    return {
        "backing": str(fs.backing),
        "crashed": fs.crashed,
        "unsynced_bytes": fs.cache.unsynced_bytes(),
        "unsynced_entries": fs.cache.unsynced_entries(),
    }


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

