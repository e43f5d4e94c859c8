"""The kvctl client: async, pipelined, and honest about what it does not know.

Every operation ends in one of three ways, the three a linearizability checker needs:
a result (it happened), `Failed` (it definitely did not happen: no node proposed it) or
`Indeterminate` (it may or may not have happened: a timeout, a lost connection or a leader
change after it was sent). The outcome follows from the error codes of `kvctl.node.errors`,
never from their text. Before giving up, an operation is retried while its error is
retryable, with the same (client id, seq), on the leader the nodes point to; the servers apply
it at most once. Once an attempt may have been sent, only an ok settles the outcome: a later
definite refusal does not undo an earlier attempt, so the outcome is then indeterminate.

One `Client` shares one connection per node among any number of concurrent operations;
each operation borrows a session (client id, next seq) that has nothing else outstanding.
A client with a `home` node (a test's worker, bound to a node as Jepsen binds them) sends
every operation there first; only what its home cannot serve goes on to other nodes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from kvctl.node import errors
from kvctl.node.errors import ErrorCode
from kvctl.node.placement import Placement
from kvctl.node.wire import CLIENT_FRAME_LIMIT, FrameDecoder, FrameError, frame

T = TypeVar("T")


class ClientError(Exception):
    """Base of the outcomes that are not results; `code` is the store's last error, if any."""

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class Failed(ClientError):
    """The operation did not take effect, and never will."""


class Indeterminate(ClientError):
    """The operation may or may not have taken effect."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.decoder = FrameDecoder(CLIENT_FRAME_LIMIT)
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self.outbox: list[tuple[Any, ...]] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(frame(("client",)))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            self._fail_all(ConnectionError(f"bad frame from server: {exc}"))
            return
        for batch in frames:
            for response in batch:
                future = self.pending.pop(response[0], None)
                if future is not None and not future.done():
                    future.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(ConnectionError("connection lost"))

    def _fail_all(self, exc: Exception) -> None:
        self.closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(exc)
        self.pending.clear()
        if self.transport is not None:
            self.transport.close()

    def request(self, request: tuple[Any, ...]) -> asyncio.Future[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        self.pending[request[0]] = future
        if not self.outbox:
            loop.call_soon(self._flush)
        self.outbox.append(request)
        return future

    def _flush(self) -> None:
        batch, self.outbox = self.outbox, []
        if self.transport is not None and not self.closed and batch:
            self.transport.write(frame(batch))


class Client:
    """Talks to a cluster given its nodes' addresses: {name: "host:port"}."""

    def __init__(
        self,
        addresses: dict[str, str],
        *,
        timeout: float = 5.0,
        attempt_timeout: float = 1.0,
        home: str | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("no node addresses given")
        if home is not None and home not in addresses:
            raise ValueError(f"home node {home!r} is not among the addresses given")
        self.addresses = dict(addresses)
        self.home = home
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self._conns: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Task[_Connection]] = {}
        self._placement: Placement | None = None
        self._leaders: dict[int, str] = {}
        self._free_sessions: list[list[int]] = []
        self._req_ids = itertools.count(1)
        self._rotation = itertools.cycle(sorted(self.addresses))

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for conn in self._conns.values():
            if conn.transport is not None:
                conn.transport.close()
        self._conns.clear()

    # -- operations -------------------------------------------------------------------------

    async def read(self, key: Any) -> Any:
        return await self._op("r", key, None, None)

    async def write(self, key: Any, value: Any) -> None:
        await self._op("w", key, value, None)

    async def cas(self, key: Any, old: Any, new: Any) -> bool:
        """Set key to `new` if it holds `old`; True if it swapped."""
        return bool(await self._op("c", key, old, new))

    async def reconfigure(self, group: int, members: list[str], addresses: dict[str, str]) -> None:
        """Move `group` to a new configuration: a StopSign decided in its log, then the
        new members carry on from the state after it."""
        pairs = tuple((m, addresses[m]) for m in members)
        await self._op("reconfigure", group, tuple(members), pairs, group=group)

    async def topology(self, node: str | None = None) -> dict[str, Any]:
        """The cluster as one node (any, or `node`) sees it: nodes, groups, leaders."""
        names = [node] if node else self._candidates()
        last: Exception | None = None
        for name in names:
            try:
                conn = await self._connection(name)
                request = (next(self._req_ids), "topology")
                response = await asyncio.wait_for(conn.request(request), self.attempt_timeout)
            except (OSError, ConnectionError, TimeoutError) as exc:
                last = exc
                continue
            return response[2]
        raise Failed(f"no node answered: {last}")

    # -- machinery --------------------------------------------------------------------------

    async def _op(self, op: str, key: Any, a: Any, b: Any, group: int | None = None) -> Any:
        session = self._free_sessions.pop() if self._free_sessions else [_new_client_id(), 0]
        session[1] += 1
        try:
            return await self._attempts(op, key, a, b, session[0], session[1], group)
        finally:
            self._free_sessions.append(session)

    async def _attempts(
        self, op: str, key: Any, a: Any, b: Any, cid: int, seq: int, group: int | None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        maybe_sent, first_try = False, True
        last_error = "no node reachable"
        last_code: ErrorCode | None = None  # of the last answer, if the last attempt had one
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise (Indeterminate if maybe_sent else Failed)(last_error, last_code)
            if group is None:
                try:
                    group = await self._group_of(key)
                except Failed as exc:  # no node answers yet: keep trying until the deadline
                    last_error, last_code = str(exc), None
                    await asyncio.sleep(min(0.1, remaining))
                    continue
            node = self.home if self.home and first_try else self._pick(group)
            first_try = False
            try:
                conn = await self._connection(node)
            except (OSError, TimeoutError) as exc:
                last_error, last_code = f"{node}: {_describe(exc)}", None
                if self._leaders.get(group) == node:
                    del self._leaders[group]
                await asyncio.sleep(min(0.05, remaining))
                continue
            request = (next(self._req_ids), op, key, a, b, cid, seq)
            try:
                response = await _within(
                    conn.request(request), min(self.attempt_timeout, remaining)
                )
            except (TimeoutError, ConnectionError) as exc:
                maybe_sent = True
                last_error, last_code = f"{node}: {_describe(exc)}", None
                self._leaders.pop(group, None)
                continue
            _, status, value, leader = response
            if leader:
                self._leaders[group] = leader
            if status == "ok":
                return value
            error, text = _error_of(value)
            maybe_sent = maybe_sent or not error.definite
            if not error.retryable:
                raise (Indeterminate if maybe_sent else Failed)(text, error)
            last_error, last_code = f"{node}: {text}", error
            if not leader:
                self._leaders.pop(group, None)
            await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))

    async def _group_of(self, key: Any) -> int:
        if self._placement is None:
            topo = await self.topology()
            self._placement = Placement(tuple(topo["nodes"]), topo["groups"], topo["replication"])
            self._leaders.update({g: n for g, n in topo["leaders"].items() if n})
        return self._placement.group_of(key)

    def _pick(self, group: int) -> str:
        leader = self._leaders.get(group)
        if leader in self.addresses:
            return leader
        return next(self._rotation)

    def _candidates(self) -> list[str]:
        """Every node, starting at the next in rotation."""
        names = sorted(self.addresses)
        start = next(self._rotation)
        i = names.index(start)
        return names[i:] + names[:i]

    async def _connection(self, name: str) -> _Connection:
        conn = self._conns.get(name)
        if conn is not None and not conn.closed:
            return conn
        task = self._connecting.get(name)
        if task is None:
            task = asyncio.ensure_future(self._connect(name))
            self._connecting[name] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._connecting.pop(name, None)

    async def _connect(self, name: str) -> _Connection:
        host, _, port = self.addresses[name].rpartition(":")
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(_Connection, host, int(port)), self.attempt_timeout
        )
        self._conns[name] = conn
        return conn


async def _within(future: asyncio.Future[T], timeout: float) -> T:
    """asyncio.wait_for for a bare future, the per-operation hot path: one timer, and no
    waiter future or callbacks around it. TimeoutError when it expires."""
    timer = future.get_loop().call_later(timeout, _expire, future)
    try:
        return await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _error_of(value: Any) -> tuple[ErrorCode, str]:
    """A node's error value is (code, text); anything else is an unknown, indefinite error."""
    if isinstance(value, tuple | list) and len(value) == 2:
        code, text = value
        return errors.lookup(code), str(text)
    return errors.UNKNOWN_CODE, f"unreadable error {value!r}"


def _describe(exc: BaseException) -> str:
    """A timeout's message is empty: say what happened instead."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _new_client_id() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 2


def run_sync(addresses: dict[str, str], action: Callable[[Client], Awaitable[T]]) -> T:
    """For the CLI: run one client action to completion in a fresh event loop."""

    async def main() -> T:
        async with Client(addresses) as client:
            return await action(client)

    return asyncio.run(main())
