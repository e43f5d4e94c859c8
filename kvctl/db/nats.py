"""NATS JetStream key-value (Debian's nats-server 2.9), through nats-py: expected to fail.

Every node runs a JetStream server in one cluster; the store is a bucket replicated on 3 of
them (fewer if the cluster is smaller). Writes go through the stream's Raft leader. Reads in
the default `direct` mode are direct gets, which any replica answers from its own copy, so a
read can miss an acknowledged write (nats-server issue 4710); the `leader` mode creates the
bucket without direct gets, so the stream leader answers every read.

CAS is `update` with the revision the client just read (the value is compared first), and
`create` when the expected value is "absent". A node uses three ports: clients on the node's
port, cluster routes on the next, HTTP monitoring on the one after.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import nats
from nats.aio.client import Client as NatsConnection
from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import (
    APIError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from kvctl.client import ClientError
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import (
    DB,
    KVCTL_FILES_ONLY,
    TIMEOUT_S,
    NodePlan,
    decode,
    describe,
    encode,
    fail,
)
from kvctl.node import errors

BUCKET = "kv"
CLUSTER = "kvctl"
REPLICAS = 3
CONNECT_TIMEOUT_S = 1.0
PROBE_KEY = "kvctl-probe"
# Refused before anything was stored: no server took it, or JetStream said it cannot serve.
DEFINITE = (NoServersError, ConnectionClosedError, NoRespondersError, ServiceUnavailableError)


def url(node: NodeSpec) -> str:
    return f"nats://{node.host}:{node.port}"


def route(node: NodeSpec) -> str:
    return f"nats://{node.host}:{node.port + 1}"


class NatsClient:
    """read/write/cas on the bucket, through one server (connected on first use)."""

    def __init__(self, server: str, timeout: float = TIMEOUT_S) -> None:
        self.server = server
        self.timeout = timeout
        self._connection: NatsConnection | None = None
        self._kv: KeyValue | None = None

    async def read(self, key: Any) -> Any:
        kv = await self._bucket("read")
        try:
            entry = await kv.get(str(key))
        except KeyNotFoundError:
            return None
        except NatsError as exc:
            _fail("read", exc)
        return decode(entry.value)

    async def write(self, key: Any, value: Any) -> None:
        kv = await self._bucket("write")
        try:
            await kv.put(str(key), encode(value))
        except NatsError as exc:
            _fail("write", exc)

    async def cas(self, key: Any, old: Any, new: Any) -> bool:
        kv = await self._bucket("cas")
        try:
            if old is None:
                await kv.create(str(key), encode(new))
                return True
            entry = await kv.get(str(key))
            if entry.value != encode(old):
                return False
            await kv.update(str(key), encode(new), last=entry.revision)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            return False
        except NatsError as exc:
            _fail("cas", exc)
        return True

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = self._kv = None

    async def _bucket(self, op: str) -> KeyValue:
        """The bucket, connecting first if need be: a failure here sent nothing."""
        if self._kv is not None:
            return self._kv
        try:
            self._connection = await connect([self.server], self.timeout)
            js = self._connection.jetstream(timeout=self.timeout)
            self._kv = await js.key_value(BUCKET)
        except (NatsError, OSError, TimeoutError) as exc:
            await self.close()
            fail(op, errors.TEMPORARILY_UNAVAILABLE, f"{self.server}: {describe(exc)}")
        return self._kv


async def connect(servers: list[str], timeout: float) -> NatsConnection:
    """A connection that, once made, reconnects for ever (an operation times out meanwhile);
    nats-py would also retry a first connection for ever, hence the deadline around it."""
    return await asyncio.wait_for(
        nats.connect(
            servers=servers,
            connect_timeout=min(timeout, CONNECT_TIMEOUT_S),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            error_cb=_ignore,
        ),
        timeout,
    )


async def _ignore(error: Exception) -> None:
    """nats-py reports connection trouble here as well as to the operation; the operation's
    own error is the one that counts."""


def _fail(op: str, exc: Exception) -> NoReturn:
    if isinstance(exc, DEFINITE):
        fail(op, errors.TEMPORARILY_UNAVAILABLE, describe(exc))
    if isinstance(exc, NatsTimeoutError):
        fail(op, errors.TIMEOUT, describe(exc))
    if isinstance(exc, APIError):  # JetStream answered with a refusal
        fail(op, errors.ABORT, describe(exc))
    fail(op, errors.CRASH, describe(exc))


class Nats(DB):
    """A JetStream cluster with one replicated key-value bucket."""

    name = "nats"
    packages = ("nats-server",)
    read_modes = ("direct", "leader")
    refused = {
        "membership": "kvctl does not move JetStream peers between servers",
        **KVCTL_FILES_ONLY,
    }

    def plan(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> NodePlan:
        routes = ",".join(route(n) for n in spec.nodes if n.name != node.name)
        return NodePlan(processes=[[
            "nats-server",
            "--name", node.name,
            "--addr", node.host,
            "--port", str(node.port),
            "--cluster_name", CLUSTER,
            "--cluster", route(node),
            "--routes", routes,
            "--http_port", str(node.port + 2),
            "--jetstream",
            "--store_dir", f"{data_dir}/jetstream",
        ]])

    def client(self, spec: ClusterSpec, node: str, timeout: float = TIMEOUT_S) -> NatsClient:
        return NatsClient(url(spec.node(node)), timeout)

    async def setup(self, spec: ClusterSpec, timeout: float) -> None:
        """Create the bucket once JetStream has a meta leader, then wait until every server
        answers a read of it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await _until(deadline, lambda: self._create_bucket(spec), "the bucket was not created")
        for node in spec.nodes:
            client = self.client(spec, node.name, timeout=1.0)
            try:
                await _until(deadline, lambda c=client: c.read(PROBE_KEY),
                             f"{node.name} did not serve the bucket")
            finally:
                await client.close()

    async def _create_bucket(self, spec: ClusterSpec) -> None:
        connection = await connect([url(n) for n in spec.nodes], timeout=2.0)
        try:
            js = connection.jetstream(timeout=2.0)
            await js.create_key_value(
                bucket=BUCKET,
                history=1,
                replicas=min(REPLICAS, len(spec.nodes)),
                direct=spec.read_mode == "direct",
            )
        finally:
            await connection.close()

    async def primaries(self, spec: ClusterSpec) -> list[str]:
        """The bucket stream's Raft leader, as the servers report it."""
        try:
            connection = await connect([url(n) for n in spec.nodes], timeout=2.0)
        except (NatsError, OSError, TimeoutError):
            return []
        try:
            info = await connection.jetstream(timeout=1.0).stream_info(f"KV_{BUCKET}")
        except NatsError:
            return []
        finally:
            await connection.close()
        leader = info.cluster.leader if info.cluster else None
        return [leader] if leader else []


async def _until(deadline: float, attempt: Any, what: str) -> None:
    """Retry `attempt()` until it succeeds; TimeoutError with the last error at `deadline`."""
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    while loop.time() < deadline:
        try:
            await attempt()
            return
        except (NatsError, OSError, TimeoutError, ClientError) as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise TimeoutError(f"NATS: {what} in time (last error: {last})")


STORE = Nats()
