"""A test's worker is bound to its home node (issue #13): every operation goes there first,
so a node's own answers (stale reads included) stay in the history; what the home cannot
serve goes on to another node instead of stalling the worker on a key it cannot reach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kvctl.client import Client, Failed
from kvctl.node import errors
from kvctl.node.wire import CLIENT_FRAME_LIMIT, FrameDecoder, frame

TOPOLOGY = {"nodes": ["n1", "n2"], "groups": 1, "replication": 2, "leaders": {0: "n2"}}


class FakeNode:
    """Answers topology; every other request with `answer`, counting them."""

    def __init__(self, name: str, answer: tuple[str, Any, str | None]) -> None:
        self.name, self.answer, self.requests = name, answer, 0

    def reply(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        if request[1] == "topology":
            return (request[0], "ok", TOPOLOGY, "n2")
        self.requests += 1
        return (request[0], *self.answer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(CLIENT_FRAME_LIMIT)
        while data := await reader.read(65536):
            for batch in decoder.feed(data):
                requests = batch[1:] if batch == ("client",) else batch
                writer.write(frame([self.reply(r) for r in requests]))
        writer.close()


UNAVAILABLE = ("fail", (errors.TEMPORARILY_UNAVAILABLE.code, "no leader in reach"), "n2")


def _run(nodes: list[FakeNode], ops: int, home: str | None) -> list[Any]:
    async def main() -> list[Any]:
        servers = [await asyncio.start_server(n.serve, "127.0.0.1", 0) for n in nodes]
        addresses = {
            n.name: f"127.0.0.1:{s.sockets[0].getsockname()[1]}"
            for n, s in zip(nodes, servers, strict=True)
        }
        results: list[Any] = []
        async with Client(addresses, timeout=2.0, home=home) as client:
            for i in range(ops):
                try:
                    results.append(await client.write("k", i))
                except Failed as exc:
                    results.append(exc)
        for server in servers:
            server.close()
        return results

    return asyncio.run(main())


def test_every_operation_goes_home_first_and_what_home_cannot_serve_goes_on():
    home, other = FakeNode("n1", UNAVAILABLE), FakeNode("n2", ("ok", None, "n2"))
    results = _run([home, other], ops=3, home="n1")
    assert results == [None, None, None]
    assert home.requests == 3  # the leader hint n2 never replaces the first try at home
    assert other.requests == 3


def test_a_worker_whose_home_serves_never_leaves_it():
    home, other = FakeNode("n1", ("ok", None, "n2")), FakeNode("n2", ("ok", None, "n2"))
    assert _run([home, other], ops=3, home="n1") == [None, None, None]
    assert (home.requests, other.requests) == (3, 0)


def test_a_home_outside_the_addresses_is_refused():
    with pytest.raises(ValueError, match="home node"):
        Client({"n1": "127.0.0.1:1"}, home="n9")
