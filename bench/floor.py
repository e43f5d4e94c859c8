"""The floor under a durable replicated operation on this machine, with no kvctl code in it.

A client sends one operation at a time to a leader process over loopback TCP. A write goes on
to two follower processes, each of which pwrites and fdatasyncs it before it answers; the
leader answers the client at the first follower's answer (with itself, a majority of three).
A read goes to one follower and back, with no disk. Every process runs the event loop the node
runs (uvloop when installed), and does nothing else: this is what 4 hops and 1 fsync cost here,
the least any store with kvctl's message pattern can take, before its own code.

The leader either fsyncs the write itself too, at once, as kvctl's node does (`inline`), or
not at all (`none`). Printed: p50 and p90 of reads, writes and the 50/50 mix, in ms, and one
fdatasync alone.

    python3 bench/floor.py [--ops 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path

from kvctl.node.server import event_loop

FILE_BYTES = 1 << 20
RECORD = 256  # bytes per write, as a small batch of the node's WAL


def _open_log(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, FILE_BYTES)
    os.fsync(fd)
    return fd


class _Log:
    """A preallocated file written round and round, one fdatasync per record."""

    def __init__(self, path: Path) -> None:
        self.fd = _open_log(path)
        self.offset = 0

    def append(self, data: bytes) -> None:
        os.pwrite(self.fd, data.ljust(RECORD, b"\0"), self.offset)
        self.offset = (self.offset + RECORD) % FILE_BYTES
        os.fdatasync(self.fd)


def _serve(port: int, protocol: type[asyncio.Protocol]) -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port)
        await asyncio.Event().wait()

    with event_loop() as runner:
        runner.run(main())


def follower(port: int, path: Path) -> None:
    log = _Log(path)

    class Follower(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if data[:1] == b"w":
                log.append(data)
            self.transport.write(data)  # type: ignore[attr-defined]

    _serve(port, Follower)


def leader(port: int, followers: list[int], path: Path, own_fsync: bool) -> None:
    log = _Log(path)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        client: list[asyncio.Transport] = []
        waiting = [False]

        class Up(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                if waiting[0]:  # the first answer makes the majority
                    waiting[0] = False
                    client[0].write(data)

        ups = [(await loop.create_connection(Up, "127.0.0.1", p))[0] for p in followers]

        class Leader(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                client[:] = [transport]  # type: ignore[list-item]

            def data_received(self, data: bytes) -> None:
                waiting[0] = True
                if data[:1] == b"w":
                    for up in ups:
                        up.write(data)
                    if own_fsync:
                        log.append(data)
                else:
                    ups[0].write(data)

        await loop.create_server(Leader, "127.0.0.1", port)
        await asyncio.Event().wait()

    with event_loop() as runner:
        runner.run(main())


async def _client(port: int, kind: str, ops: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_connection(Client, "127.0.0.1", port)
    times = []
    for i in range(ops):
        op = kind if kind != "mix" else "wr"[i % 2]
        began = time.perf_counter()
        transport.write(op.encode() * 40)
        await answers.get()
        times.append(time.perf_counter() - began)
    transport.close()
    times.sort()
    return times[len(times) // 2] * 1e3, times[len(times) * 9 // 10] * 1e3


def _wait_listening(port: int, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _fsync_alone(path: Path, ops: int) -> float:
    log = _Log(path)
    times = []
    for _ in range(ops):
        began = time.perf_counter()
        log.append(b"x")
        times.append(time.perf_counter() - began)
    os.close(log.fd)
    return sorted(times)[ops // 2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=9501, help="the first of 4 ports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvctl-floor-") as home:
        root = Path(home)
        ports = {"f1": args.port, "f2": args.port + 1, "inline": args.port + 2,
                 "none": args.port + 3}
        followers = [ports["f1"], ports["f2"]]
        processes = [
            multiprocessing.Process(target=follower, args=(ports[f], root / f), daemon=True)
            for f in ("f1", "f2")
        ]
        for process in processes:
            process.start()
        for port in followers:
            _wait_listening(port)
        for mode in ("inline", "none"):
            process = multiprocessing.Process(
                target=leader,
                args=(ports[mode], followers, root / mode, mode == "inline"),
                daemon=True,
            )
            process.start()
            processes.append(process)
            _wait_listening(ports[mode])
        print(f"one fdatasync of {RECORD} bytes alone: p50 "
              f"{_fsync_alone(root / 'alone', args.ops // 4):.3f} ms; load {os.getloadavg()}")
        for round_no in range(1, args.rounds + 1):
            for mode in ("inline", "none"):
                cells = []
                for kind in ("r", "w", "mix"):
                    with event_loop() as runner:
                        p50, p90 = runner.run(_client(ports[mode], kind, args.ops))
                    cells.append(f"{ {'r': 'read', 'w': 'write'}.get(kind, kind)} "
                                 f"{p50:.3f} / {p90:.3f}")
                print(f"round {round_no}, leader fsync {mode:6}: " + ", ".join(cells)
                      + " (p50 / p90 ms)")
        for process in processes:
            process.kill()


if __name__ == "__main__":
    main()
