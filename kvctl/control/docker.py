"""The Docker backend: each node a container on a bridge network of its cluster's own.

Everything goes through the Docker SDK. A cluster NAME is a network NAME with a fixed subnet,
containers NAME-n1.. at fixed addresses (so the host and the nodes reach each other directly,
and a restarted node keeps its address), and a volume NAME-n1-data per node that outlives the
containers: `down` keeps it, `down --purge` removes it. Every object is labelled `kvctl=NAME`,
which is how `down` finds them and how a name taken by someone else is told from our own.
Containers get NET_ADMIN (for the nemesis's iptables and tc), never --privileged. A cluster
whose spec asks for the lazy filesystem (extra["lazyfs"], for the power and corrupt faults)
also gets /dev/fuse and SYS_ADMIN, which mounting it takes; `up` sets extra["lazyfs"] to the
mount point, the node's data directory.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

from docker.client import DockerClient, from_env
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from kvctl.control.backend import (
    DEFAULT_PORT,
    IDEMPOTENT,
    BackendError,
    ClusterSpec,
    ExecResult,
    NodeSpec,
    NodeStatus,
    kvctl_home,
)
from kvctl.control.image import BuildProgress, ensure_node_image
from kvctl.db import db_of

CLUSTER_LABEL = "kvctl"  # value: the cluster's name
NODE_LABEL = "kvctl.node"
CONFIG_LABEL = "kvctl.config"  # digest of what a container was created with
SUBNET_LABEL = "kvctl.subnet"  # on volumes: the subnet to come back to after `down`
HOME_LABEL = "kvctl.home"  # on the network: the $KVCTL_HOME whose cluster it is
DATA_DIR = "/data"
LAZY_DISK = "/disk"  # where the volume goes when the lazy filesystem serves DATA_DIR/db
SUBNET_POOL = ipaddress.ip_network("172.30.0.0/16")
FIRST_HOST = 11  # n1 is x.x.x.11: low addresses stay free for the gateway
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def engine_available() -> bool:
    """True when a Docker engine answers (the CLI then makes docker the default backend)."""
    try:
        from_env(timeout=5).ping()
    except DockerException:
        return False
    return True


def connect() -> DockerClient:
    """A client of the engine that DOCKER_HOST names (or the local socket), or a clear error."""
    try:
        client = from_env(timeout=120)
        client.ping()
    except DockerException as err:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise BackendError(
            f"no Docker engine answers at {where} ({err}): start one, or point DOCKER_HOST "
            "at one (`kvctl up --backend local` runs nodes without Docker)"
        ) from err
    return client


class DockerBackend:
    """Start, stop and fault a cluster's containers (see the module docstring)."""

    name = "docker"
    idempotent = IDEMPOTENT

    def __init__(self, client: DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def exec_places(self, spec: ClusterSpec) -> dict[str, str]:
        """Each node's `exec` runs in its own container, in its own network namespace."""
        return {node.name: f"container {container_name(spec, node.name)}" for node in spec.nodes}

    # -- up / down ------------------------------------------------------------------------

    def up(self, spec: ClusterSpec) -> ClusterSpec:
        """Build the image if needed, then create what is missing and start every node."""
        spec, subnet = self._place(spec)
        self._remove_extra_nodes(spec)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: self._run_node(spec, n, subnet), spec.nodes))
        return spec

    def add(self, spec: ClusterSpec, node: str) -> ClusterSpec:
        """Create and start one joining node; the other containers are left as they are."""
        spec, subnet = self._place(spec)
        self._run_node(spec, spec.node(node), subnet)
        return spec

    def _place(self, spec: ClusterSpec) -> tuple[ClusterSpec, str]:
        """The image, the network, and every node's fixed address on it."""
        check_name(spec.name)
        with BuildProgress() as progress:
            image = ensure_node_image(self.client, progress, db=db_of(spec).name)
        network = self._network(spec)
        subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
        if subnet.num_addresses < FIRST_HOST + len(spec.nodes) + 1:
            raise BackendError(f"subnet {subnet} of network {network.name} is too small")
        nodes = [
            replace(
                n,
                host=str(subnet.network_address + FIRST_HOST + i),
                port=DEFAULT_PORT,
                extra={**n.extra, "container": container_name(spec, n.name)},
            )
            for i, n in enumerate(spec.nodes)
        ]
        spec = replace(
            spec,
            backend=self.name,
            nodes=nodes,
            extra={**spec.extra, "image": image, "network": str(network.name)},
        )
        if spec.extra.get("lazyfs"):
            spec.extra["lazyfs"] = f"{DATA_DIR}/db"
        return spec, str(subnet)

    def down(self, spec: ClusterSpec, purge: bool = False) -> None:
        """Remove the containers and the network; the volumes too if `purge`."""
        check_name(spec.name)
        owned = _owned(spec)
        containers = self.client.containers.list(all=True, filters=owned)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: c.remove(force=True), containers))
        for network in self.client.networks.list(filters=owned):
            try:
                network.remove()
            except APIError as err:
                raise BackendError(
                    f"cannot remove network {network.name}: {err.explanation} (a container "
                    "kvctl did not start is attached to it)"
                ) from err
        if purge:
            for volume in self.client.volumes.list(filters=owned):
                volume.remove(force=True)

    def _network(self, spec: ClusterSpec) -> Network:
        """The cluster's network: ours if it exists, else a new one on a free subnet."""
        try:
            network = self.client.networks.get(spec.name)
        except NotFound:
            return self._create_network(spec)
        labels = network.attrs.get("Labels") or {}
        self._check_owned(labels, spec, f"a Docker network named {network.name}")
        home = labels.get(HOME_LABEL)
        if home and home != str(kvctl_home()):
            raise BackendError(
                f"a cluster named {spec.name!r} already runs from {home}: give this one "
                "another name with --name, or use that directory (or `kvctl down` there)"
            )
        return network

    def _create_network(self, spec: ClusterSpec) -> Network:
        """A subnet asked for in spec.extra["subnet"] is that one or an error; otherwise the
        one the cluster had before, or the first free /24 of SUBNET_POOL."""
        wanted = spec.extra.get("subnet", "")
        candidates: Iterable[Subnet] = (
            [parse_subnet(wanted)]
            if wanted
            else chain(self._remembered_subnet(spec), self._free_subnets())
        )
        for subnet in candidates:
            try:
                return self.client.networks.create(
                    spec.name,
                    driver="bridge",
                    labels={CLUSTER_LABEL: spec.name, HOME_LABEL: str(kvctl_home())},
                    ipam=IPAMConfig(
                        pool_configs=[
                            IPAMPool(subnet=str(subnet), gateway=str(subnet.network_address + 1))
                        ]
                    ),
                )
            except APIError as err:
                overlap = "overlap" in str(err.explanation)
                if not overlap or wanted:
                    reason = "is taken" if overlap else "cannot be used"
                    raise BackendError(
                        f"subnet {subnet} {reason}: {err.explanation} (choose another subnet, "
                        "or leave it to kvctl)"
                    ) from err
        raise BackendError(f"no free /24 subnet left in {SUBNET_POOL} for cluster {spec.name}")

    def _remembered_subnet(self, spec: ClusterSpec) -> list[Subnet]:
        """The subnet the cluster had before `down`, if free: its nodes come back at their
        old addresses."""
        owned = _owned(spec)
        for volume in self.client.volumes.list(filters=owned):
            subnet = (volume.attrs.get("Labels") or {}).get(SUBNET_LABEL)
            if subnet and not overlaps(parse_subnet(subnet), self._taken_subnets()):
                return [parse_subnet(subnet)]
        return []

    def _free_subnets(self) -> Iterator[Subnet]:
        taken = self._taken_subnets()
        for subnet in SUBNET_POOL.subnets(new_prefix=24):
            if not overlaps(subnet, taken):
                yield subnet

    def _taken_subnets(self) -> list[Subnet]:
        """Subnets of the machine's routes and of every Docker network."""
        taken: list[Subnet] = list(host_routes())
        for network in self.client.networks.list():
            for pool in (network.attrs.get("IPAM") or {}).get("Config") or []:
                if pool.get("Subnet"):
                    taken.append(ipaddress.ip_network(pool["Subnet"], strict=False))
        return taken

    # -- one node ------------------------------------------------------------------------

    def _run_node(self, spec: ClusterSpec, node: NodeSpec, subnet: str) -> None:
        """Leave a container that runs as configured alone; start or recreate any other."""
        volume = self._volume(spec, node, subnet)
        command = db_of(spec).command(spec, node, f"{DATA_DIR}/db")
        # The image tag is itself a digest of the code, so equal configs run equal nodes.
        lazy = ("lazyfs",) if spec.extra.get("lazyfs") else ()
        config = repr((spec.extra["image"], command, node.host, spec.name, *lazy))
        config = hashlib.sha256(config.encode()).hexdigest()
        name = container_name(spec, node.name)
        try:
            container = self.client.containers.get(name)
        except NotFound:
            container = None
        if container is not None:
            self._check_owned(container.labels, spec, f"a container named {name}")
            if container.labels.get(CONFIG_LABEL) == config:
                if container.status == "paused":
                    container.unpause()
                elif container.status != "running":
                    container.start()
                return
            container.remove(force=True)
        network = spec.extra["network"]
        try:  # create, not run: run would try to pull a missing image from a registry
            self.client.containers.create(
                spec.extra["image"],
                name=name,
                hostname=node.name,
                init=True,
                labels={CLUSTER_LABEL: spec.name, NODE_LABEL: node.name, CONFIG_LABEL: config},
                network=network,
                networking_config={
                    network: self.client.api.create_endpoint_config(ipv4_address=node.host)
                },
                **node_process(command, volume, bool(lazy)),
            ).start()
        except APIError as err:
            raise BackendError(f"cannot start container {name}: {err.explanation}") from err

    def _volume(self, spec: ClusterSpec, node: NodeSpec, subnet: str) -> str:
        name = f"{container_name(spec, node.name)}-data"
        try:
            volume = self.client.volumes.get(name)
        except NotFound:
            labels = {
                CLUSTER_LABEL: spec.name,
                NODE_LABEL: node.name,
                SUBNET_LABEL: subnet,
            }
            self.client.volumes.create(name, labels=labels)
            return name
        self._check_owned(volume.attrs.get("Labels") or {}, spec, f"a volume named {name}")
        return name

    def _remove_extra_nodes(self, spec: ClusterSpec) -> None:
        """Containers of this cluster beyond its current nodes (after `up` with fewer)."""
        wanted = {container_name(spec, n.name) for n in spec.nodes}
        owned = _owned(spec)
        for container in self.client.containers.list(all=True, filters=owned):
            if container.name not in wanted:
                container.remove(force=True)

    @staticmethod
    def _check_owned(labels: dict[str, str], spec: ClusterSpec, what: str) -> None:
        if labels.get(CLUSTER_LABEL) != spec.name:
            raise BackendError(
                f"{what} already exists and is not kvctl's cluster {spec.name!r}: "
                "choose another name with --name, or remove it"
            )

    def _container(self, spec: ClusterSpec, node: str) -> Container:
        try:
            spec.node(node)
        except KeyError as err:
            raise BackendError(err.args[0]) from err
        name = container_name(spec, node)
        try:
            return self.client.containers.get(name)
        except NotFound as err:
            raise BackendError(
                f"node {node} has no container {name}: is the cluster up? (kvctl up)"
            ) from err

    # -- status and faults ----------------------------------------------------------------

    def status(self, spec: ClusterSpec) -> list[NodeStatus]:
        result = []
        for node in spec.nodes:
            try:
                container = self.client.containers.get(container_name(spec, node.name))
            except NotFound:
                result.append(NodeStatus(node.name, node.address, False, detail="no container"))
                continue
            state = container.attrs["State"]
            detail = state["Status"]
            if state["Status"] == "exited":
                detail = f"exited ({state['ExitCode']})"
            result.append(
                NodeStatus(
                    node.name,
                    node.address,
                    running=bool(state["Running"]),
                    paused=bool(state["Paused"]),
                    detail=detail,
                )
            )
        return result

    def kill(self, spec: ClusterSpec, node: str) -> None:
        """SIGKILL the container: the node dies mid-flight, its volume stays. A container
        that is not running is left as it is."""
        if self._container(spec, node).status in ("running", "paused"):
            self._act(spec, node, "kill")

    def start(self, spec: ClusterSpec, node: str) -> None:
        container = self._container(spec, node)
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            self._act(spec, node, "start")

    def pause(self, spec: ClusterSpec, node: str) -> None:
        """Freeze every process of the node (cgroup freezer): a process that stops answering."""
        if self._running_status(spec, node) != "paused":
            self._act(spec, node, "pause")

    def resume(self, spec: ClusterSpec, node: str) -> None:
        if self._running_status(spec, node) == "paused":
            self._act(spec, node, "unpause")

    def _running_status(self, spec: ClusterSpec, node: str) -> str:
        """"running" or "paused"; BackendError if the node's container is not running."""
        status = self._container(spec, node).status
        if status not in ("running", "paused"):
            raise BackendError(f"{node} is not running (its container is {status})")
        return status

    def _act(self, spec: ClusterSpec, node: str, action: str) -> None:
        container = self._container(spec, node)
        try:
            getattr(container, action)()
        except APIError as err:
            raise BackendError(f"cannot {action} {node}: {err.explanation}") from err

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        container = self._container(spec, node)
        try:
            code, output = container.exec_run(argv)  # not streamed: an exit code and bytes
        except APIError as err:
            raise BackendError(f"cannot run {argv[0]} on {node}: {err.explanation}") from err
        if code is None or not isinstance(output, bytes):
            raise BackendError(f"cannot run {argv[0]} on {node}: the engine gave no exit code")
        return ExecResult(code, output.decode(errors="replace"))

    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]:
        """The node's output, line by line; with `follow`, until the container stops or the
        caller closes the iterator (which closes the engine's stream)."""
        stream = self._container(spec, node).logs(stream=True, follow=follow)
        pending = b""
        try:
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
        finally:
            stream.close()
        if pending:
            yield pending.decode(errors="replace")


def node_process(command: list[str], volume: str, lazy: bool) -> dict[str, Any]:
    """How a node's container runs `command` (its store's, kvctl/db): with which capabilities,
    devices and mounts. On the lazy
    filesystem (kvctl.lazyfs) the volume holds its backing directory and the node's data
    directory is the FUSE mount over it, which takes /dev/fuse and SYS_ADMIN (mount(2));
    otherwise NET_ADMIN alone."""
    if not lazy:
        return {
            "command": command,
            "cap_add": ["NET_ADMIN"],
            "volumes": {volume: {"bind": DATA_DIR, "mode": "rw"}},
        }
    lazyfs = ["python3", "-m", "kvctl.lazyfs", "run", f"{LAZY_DISK}/db", f"{DATA_DIR}/db", "--"]
    return {
        "command": [*lazyfs, *command],
        "cap_add": ["NET_ADMIN", "SYS_ADMIN"],
        "devices": ["/dev/fuse:/dev/fuse:rwm"],
        "environment": {"KVCTL_LOG": f"{LAZY_DISK}/node.log"},  # beside the data, not in it
        "volumes": {volume: {"bind": LAZY_DISK, "mode": "rw"}},
    }


def _owned(spec: ClusterSpec) -> dict[str, str | list[str] | bool]:
    """The engine's filter for the objects of `spec`'s cluster."""
    return {"label": f"{CLUSTER_LABEL}={spec.name}"}


def container_name(spec: ClusterSpec, node: str) -> str:
    return f"{spec.name}-{node}"


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise BackendError(
            f"cluster name {name!r} cannot name Docker objects: use letters, digits, '_', '.' "
            "and '-', starting with a letter or digit"
        )


def parse_subnet(text: str) -> Subnet:
    try:
        return ipaddress.ip_network(text)
    except ValueError as err:
        raise BackendError(f"{text!r} is not a subnet: {err}") from err


def overlaps(subnet: Subnet, taken: list[Subnet]) -> bool:
    return any(subnet.overlaps(other) for other in taken if other.version == subnet.version)


def host_routes(
    table: Path = Path("/proc/net/route"),
) -> Iterator[ipaddress.IPv4Network]:
    """The machine's IPv4 routes other than the default: a subnet there is not free for us."""
    if not table.is_file():
        return
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        destination, mask = (struct.pack("<I", int(f, 16)) for f in (fields[1], fields[7]))
        if mask != b"\0\0\0\0":
            yield ipaddress.IPv4Network(
                f"{socket.inet_ntoa(destination)}/{socket.inet_ntoa(mask)}", strict=False
            )
