"""Redis 7 with Sentinel (Debian's redis-server and redis-sentinel): expected to lose writes.

The first node starts as the primary and the others as its replicas; every node also runs a
Sentinel, and a majority of them fails the primary over when it stops answering. Replication
is asynchronous, so a primary cut off with a minority keeps acknowledging writes that the new
primary never had: Jepsen showed in 2013 that they are lost at failover.

The client follows the Sentinels (its own node's first) to the current primary through
redis-py's asyncio API and keeps that address until an error, when it asks again. Every
operation goes to the primary; CAS is a Lua script, which Redis runs atomically. A node uses
two ports: Redis on the node's port, its Sentinel on the next.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kvctl.client import ClientError
from kvctl.control.backend import ClusterSpec, NodeSpec
from kvctl.db import DB, LAZYFS_UNTRIED, TIMEOUT_S, NodePlan, decode, encode, fail
from kvctl.node import errors

SERVICE = "kv"  # the name the Sentinels monitor the primary under
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 6000
CONNECT_TIMEOUT_S = 1.0
# '' stands for "absent": an encoded value is JSON, never empty.
CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and not current) or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
NO_RETRY = Retry(NoBackoff(), 0)  # a resent write could apply twice: never retry by itself


def sentinel_port(node: NodeSpec) -> int:
    return node.port + 1


def quorum(nodes: int) -> int:
    """Sentinels that must agree the primary is down: a majority, so a minority never
    elects a second primary on its own."""
    return nodes // 2 + 1


def redis_conf(spec: ClusterSpec, node: NodeSpec, data_dir: str) -> str:
    primary = spec.nodes[0]
    lines = [
        f"bind {node.host}",
        f"port {node.port}",
        "protected-mode no",
        f"dir {data_dir}/redis",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        'logfile ""',
    ]
    if node.name != primary.name:
        lines.append(f"replicaof {primary.host} {primary.port}")
    return "\n".join(lines) + "\n"


def sentinel_conf(spec: ClusterSpec, node: NodeSpec, data_dir: str) -> str:
    primary = spec.nodes[0]
    return "\n".join([
        f"bind {node.host}",
        f"port {sentinel_port(node)}",
        "protected-mode no",
        f"dir {data_dir}/sentinel",
        'logfile ""',
        f"sentinel monitor {SERVICE} {primary.host} {primary.port} {quorum(len(spec.nodes))}",
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {SERVICE} 1",
    ]) + "\n"


class RedisClient:
    """read/write/cas on the primary the Sentinels name."""

    def __init__(self, sentinels: list[tuple[str, int]], timeout: float = TIMEOUT_S) -> None:
        self.timeout = timeout
        connect = min(timeout, CONNECT_TIMEOUT_S)
        self.sentinel = Sentinel(
            sentinels, socket_timeout=connect, socket_connect_timeout=connect, retry=NO_RETRY
        )
        self._pools: dict[tuple[str, int], ConnectionPool] = {}
        self._primary: tuple[str, int] | None = None

    async def read(self, key: Any) -> Any:
        return decode(await self._call("read", "GET", str(key)))

    async def write(self, key: Any, value: Any) -> None:
        await self._call("write", "SET", str(key), encode(value))

    async def cas(self, key: Any, old: Any, new: Any) -> bool:
        expected = b"" if old is None else encode(old)
        return bool(await self._call("cas", "EVAL", CAS_SCRIPT, 1, str(key), expected, encode(new)))

    async def primary(self) -> tuple[str, int]:
        """The primary's address as the Sentinels say it (cached until an error)."""
        if self._primary is None:
            host, port = await self.sentinel.discover_master(SERVICE)
            self._primary = (str(host), int(port))
        return self._primary

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()
        for sentinel in self.sentinel.sentinels:
            await sentinel.aclose()

    async def _call(self, op: str, *command: Any) -> Any:
        """Run one command on the primary: no primary or no connection is definite (nothing
        was sent); an error after sending is not, unless Redis refused it."""
        connection = await self._connect(op)
        pool = self._pools[(connection.host, connection.port)]
        try:
            await connection.send_command(*command)
            return await connection.read_response()
        except ResponseError as exc:  # refused (READONLY, NOREPLICAS, ...): not applied
            self._primary = None
            fail(op, errors.ABORT, str(exc))
        except RedisTimeoutError as exc:
            await self._forget(connection)
            fail(op, errors.TIMEOUT, str(exc))
        except (RedisError, OSError) as exc:
            await self._forget(connection)
            fail(op, errors.CRASH, str(exc) or type(exc).__name__)
        finally:
            await pool.release(connection)

    async def _connect(self, op: str) -> Connection:
        try:
            address = await self.primary()
            pool = self._pools.get(address)
            if pool is None:
                pool = self._pools[address] = ConnectionPool(
                    host=address[0],
                    port=address[1],
                    socket_timeout=self.timeout,
                    socket_connect_timeout=min(self.timeout, CONNECT_TIMEOUT_S),
                    retry=NO_RETRY,
                )
            connection: Connection = await pool.get_connection()
            return connection
        except MasterNotFoundError as exc:
            fail(op, errors.TEMPORARILY_UNAVAILABLE, f"no Sentinel names a primary: {exc}")
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            primary, self._primary = self._primary, None
            fail(op, errors.TEMPORARILY_UNAVAILABLE, f"primary {primary}: {exc}")

    async def _forget(self, connection: Connection) -> None:
        """After a lost answer, ask the Sentinels again, and never reuse what the connection
        may still receive (the late answer would be taken for the next command's)."""
        self._primary = None
        await connection.disconnect()


class Redis(DB):
    """One primary, replicas, a Sentinel on every node."""

    name = "redis"
    packages = ("redis-server", "redis-sentinel")
    read_modes = ("primary",)
    refused = {
        "membership": "kvctl does not add or remove Redis replicas and Sentinels",
        **LAZYFS_UNTRIED,
    }

    def plan(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> NodePlan:
        server, sentinel = f"{data_dir}/redis/redis.conf", f"{data_dir}/sentinel/sentinel.conf"
        return NodePlan(
            files={
                server: redis_conf(spec, node, data_dir),
                sentinel: sentinel_conf(spec, node, data_dir),
            },
            processes=[["redis-server", server], ["redis-sentinel", sentinel]],
        )

    def client(self, spec: ClusterSpec, node: str, timeout: float = TIMEOUT_S) -> RedisClient:
        own = spec.node(node)
        others = [n for n in spec.nodes if n.name != node]
        return RedisClient([(n.host, sentinel_port(n)) for n in [own, *others]], timeout)

    async def setup(self, spec: ClusterSpec, timeout: float) -> None:
        """Wait until every Sentinel knows the others and the primary has every replica."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "not asked yet"
        while loop.time() < deadline:
            last = await _not_ready(spec)
            if not last:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"Redis did not form in time: {last}")

    async def primaries(self, spec: ClusterSpec) -> list[str]:
        """Every node some answering Sentinel names as the primary (two during a split)."""
        by_address = {(n.host, n.port): n.name for n in spec.nodes}
        named: set[str] = set()
        for node in spec.nodes:
            client = RedisClient([(node.host, sentinel_port(node))], timeout=1.0)
            try:
                named.add(by_address.get(await client.primary(), "?"))
            except (RedisError, OSError):
                continue
            finally:
                await client.close()
        return sorted(named - {"?"})


async def _not_ready(spec: ClusterSpec) -> str:
    """What the cluster still lacks before a test may start; '' once it has it all."""
    others = len(spec.nodes) - 1
    for node in spec.nodes:
        client = RedisClient([(node.host, sentinel_port(node))], timeout=1.0)
        try:
            sentinel = client.sentinel.sentinels[0]
            peers = cast(list[dict[str, Any]], await sentinel.sentinel_sentinels(SERVICE))
            if len(peers) < others:
                return f"{node.name}'s Sentinel knows {len(peers)} of {others} others"
            primary = cast(dict[str, Any], await sentinel.sentinel_master(SERVICE))
            if int(primary.get("num-slaves", 0)) < others:
                return f"{node.name}'s Sentinel sees {primary.get('num-slaves')} replicas"
            await client.read("kvctl-probe")
        except (RedisError, OSError, ClientError) as exc:
            return f"{node.name}: {exc}"
        finally:
            await client.close()
    return ""


STORE = Redis()
