"""The lazy filesystem's process: FUSE and its control socket on one trio loop.

The socket (see `control`) takes one JSON request a connection and gives one JSON answer. The
loop runs one thing at a time, so a crash always lands between two whole file operations.
"""

from __future__ import annotations

import functools
import json
import random
import signal
from pathlib import Path
from typing import Any

import pyfuse3
import trio

from kvctl.lazyfs.control import ANSWER_LIMIT, socket_address
from kvctl.lazyfs.fs import LazyFS


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
    await trio.serve_listeners(functools.partial(_answer, fs), [trio.SocketListener(listener)])


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
