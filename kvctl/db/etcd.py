"""etcd 3.4 (Debian's etcd-server): a Raft store, and the one expected to pass.

The client speaks etcd's v3 JSON gateway through httpx: `/v3/kv/range` to read (linearizable,
or `serializable: true` in the `stale` read mode, which a minority member answers from its own
copy), `/v3/kv/put` to write, and `/v3/kv/txn` for compare-and-swap on the value (on the
create revision being 0 for "absent"). Keys and values travel base64-encoded.

A node uses two ports: the client port and the next one for its peers.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx

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

CONNECT_TIMEOUT_S = 1.0
PROBE_KEY = "kvctl-probe"
# gRPC status codes (the gateway's "code") to error kinds. etcd answers UNAVAILABLE for a
# proposal that timed out or lost its leader, which may still commit: a timeout, not a refusal.
GRPC_KINDS = {
    3: errors.MALFORMED_REQUEST,  # INVALID_ARGUMENT
    4: errors.TIMEOUT,  # DEADLINE_EXCEEDED
    5: errors.KEY_DOES_NOT_EXIST,  # NOT_FOUND
    8: errors.TEMPORARILY_UNAVAILABLE,  # RESOURCE_EXHAUSTED: too many requests, refused unread
    9: errors.PRECONDITION_FAILED,  # FAILED_PRECONDITION
    11: errors.ABORT,  # OUT_OF_RANGE: a compacted revision
    14: errors.TIMEOUT,  # UNAVAILABLE
}


def client_url(node: NodeSpec) -> str:
    return f"http://{node.host}:{node.port}"


def peer_url(node: NodeSpec) -> str:
    return f"http://{node.host}:{node.port + 1}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class EtcdClient:
    """read/write/cas against one member's JSON gateway."""

    def __init__(self, url: str, serializable: bool = False,
                 timeout: float = TIMEOUT_S) -> None:
        self.serializable = serializable
        self.http = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=512),
        )

    async def read(self, key: Any) -> Any:
        body: dict[str, Any] = {"key": b64(str(key).encode())}
        if self.serializable:
            body["serializable"] = True
        reply = await self._call("read", "/v3/kv/range", body)
        kvs = reply.get("kvs") or []
        return decode(base64.b64decode(kvs[0]["value"])) if kvs and "value" in kvs[0] else None

    async def write(self, key: Any, value: Any) -> None:
        body = {"key": b64(str(key).encode()), "value": b64(encode(value))}
        await self._call("write", "/v3/kv/put", body)

    async def cas(self, key: Any, old: Any, new: Any) -> bool:
        """One transaction: if the value is `old` (or the key was never created, for None),
        put `new`. etcd leaves `succeeded` out of the reply when it is false."""
        name = b64(str(key).encode())
        if old is None:
            compare = {"key": name, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            compare = {"key": name, "target": "VALUE", "result": "EQUAL", "value": b64(encode(old))}
        body = {
            "compare": [compare],
            "success": [{"request_put": {"key": name, "value": b64(encode(new))}}],
        }
        reply = await self._call("cas", "/v3/kv/txn", body)
        return bool(reply.get("succeeded", False))

    async def status(self) -> dict[str, Any]:
        """The member's own status: its id and the leader's (to find the primaries)."""
        return await self._call("read", "/v3/maintenance/status", {})

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, op: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST and classify: refused before sending is definite, lost after it is not."""
        try:
            response = await self.http.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            fail(op, errors.TEMPORARILY_UNAVAILABLE, describe(exc))
        except httpx.TimeoutException as exc:
            fail(op, errors.TIMEOUT, describe(exc))
        except httpx.TransportError as exc:
            fail(op, errors.CRASH, describe(exc))
        try:
            reply: dict[str, Any] = response.json()
        except ValueError:
            fail(op, errors.CRASH, f"HTTP {response.status_code}: {response.text[:200]!r}")
        if response.status_code != httpx.codes.OK:
            kind = GRPC_KINDS.get(int(reply.get("code", -1)), errors.CRASH)
            fail(op, kind, str(reply.get("error") or reply.get("message") or reply))
        return reply


class Etcd(DB):
    """etcd members started together as one new cluster (the spec's nodes)."""

    name = "etcd"
    packages = ("etcd-server",)
    read_modes = ("linearizable", "stale")
    refused = {
        "membership": "kvctl does not change etcd's membership (etcdctl member add/remove)",
        **KVCTL_FILES_ONLY,
    }

    def plan(self, spec: ClusterSpec, node: NodeSpec, data_dir: str) -> NodePlan:
        members = ",".join(f"{n.name}={peer_url(n)}" for n in spec.nodes)
        return NodePlan(processes=[[
            "etcd",
            "--name", node.name,
            "--data-dir", f"{data_dir}/etcd",
            "--listen-client-urls", client_url(node),
            "--advertise-client-urls", client_url(node),
            "--listen-peer-urls", peer_url(node),
            "--initial-advertise-peer-urls", peer_url(node),
            "--initial-cluster", members,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", spec.name,
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]])

    def client(self, spec: ClusterSpec, node: str, timeout: float = TIMEOUT_S) -> EtcdClient:
        serializable = spec.read_mode == "stale"
        return EtcdClient(client_url(spec.node(node)), serializable, timeout)

    async def setup(self, spec: ClusterSpec, timeout: float) -> None:
        """Wait until every member answers a linearizable read (a leader commits)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for node in spec.nodes:
            client = EtcdClient(client_url(node), timeout=1.0)
            try:
                await _until_read(client, deadline, node.name)
            finally:
                await client.close()

    async def primaries(self, spec: ClusterSpec) -> list[str]:
        """The member every answering member names as leader (by the status's member ids)."""
        ids: dict[str, str] = {}
        leaders: set[str] = set()
        for node in spec.nodes:
            client = EtcdClient(client_url(node), timeout=1.0)
            try:
                status = await client.status()
            except ClientError:  # a member that does not answer names no one
                continue
            finally:
                await client.close()
            ids[str(status["header"]["member_id"])] = node.name
            leaders.add(str(status.get("leader", "")))
        return sorted(ids[leader] for leader in leaders if leader in ids)


async def _until_read(client: EtcdClient, deadline: float, node: str) -> None:
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    while loop.time() < deadline:
        try:
            await client.read(PROBE_KEY)
            return
        except ClientError as exc:  # Failed while the cluster forms
            last = exc
        await asyncio.sleep(0.2)
    raise TimeoutError(f"etcd member {node} did not serve in time (last error: {last})")


STORE = Etcd()
