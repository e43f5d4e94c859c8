"""The SSH backend: nodes as daemons on real hosts, reached with paramiko (Jepsen's setting).

`kvctl up --backend ssh --hosts FILE` reads one host a line (`address [user [port [key]]]`),
uploads the `kvctl` package to `~/.kvctl/CLUSTER/lib` on each host and starts every node
there as a daemon (its own session, so it outlives the SSH connection). A node's pid, log and
data live in `~/.kvctl/CLUSTER/NODE/`. Every later command (kill, pause, exec, logs, ...) runs
over SSH too. Host keys are checked against known_hosts and never accepted blindly: an
unknown key is an error that says how to check and add it.

Nodes are spread over the hosts in turn; when there are more nodes than hosts, the extra
nodes on a host listen on the next ports (7401, ...). Such nodes share their host's network,
so `exec_places` names one place for them and the network faults refuse that cluster.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from kvctl.control.backend import (
    DEFAULT_PORT,
    IDEMPOTENT,
    BackendError,
    ClusterSpec,
    ExecResult,
    NodeSpec,
    NodeStatus,
)
from kvctl.control.image import package_files

REMOTE_ROOT = ".kvctl"  # under the login's home directory
DEFAULT_USER = "root"  # faults need root: iptables, tc
CONNECT_TIMEOUT = 10.0

# Shell prelude of every remote command. pid_of prints a node's pid only if that process is
# still this node (its command line names it), so a stale pid file, whose number the system
# may have handed to another process since, is never signalled.
PRELUDE = """
pid_of() {
    p=$(cat "$1/node.pid" 2>/dev/null) || return 1
    tr '\\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "--name $1 " && echo "$p"
}
"""
START = """
if p=$(pid_of "$NODE"); then kill -CONT "$p"; exit 0; fi
mkdir -p "$NODE"
PYTHONPATH="$PWD/lib" nohup setsid sh -c 'echo $$ >"$0/node.pid"; exec python3 -m kvctl "$@"' \
    "$NODE" "$@" >>"$NODE/node.log" 2>&1 </dev/null &
"""
STATE = """
p=$(pid_of "$NODE") || { echo stopped; exit 0; }
case $(ps -o stat= -p "$p") in T*) echo paused ;; *) echo running ;; esac
"""
SIGNAL = """
p=$(pid_of "$NODE") || { [ -n "$STOPPED_OK" ] && exit 0; echo "$NODE is not running" >&2; exit 3; }
kill -"$SIG" "$p"
"""
STOP = """
p=$(pid_of "$NODE") || exit 0
kill -CONT "$p"; kill -TERM "$p"
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL "$p"
"""
# Run after the upload: exactly the imports a node makes, with the host's own Python.
CHECK_NODE = (
    "python3 -c 'import sys; assert sys.version_info >= (3, 11), \"python3 < 3.11\"' && "
    'PYTHONPATH="$PWD/lib" python3 -m kvctl node --help >/dev/null'
)


@dataclass(frozen=True)
class Host:
    """One line of the hosts file: where to log in, as whom, with which key."""

    address: str
    user: str = DEFAULT_USER
    port: int = 22
    key_file: str = ""  # empty: the SSH agent and ~/.ssh/id_*

    @property
    def label(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def read_hosts(path: Path) -> list[Host]:
    """Parse a hosts file: `address [user [port [key_file]]]` a line, `-` for a default."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise BackendError(f"cannot read the hosts file {path}: {err.strerror}") from err
    hosts = []
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) > 4:
            raise BackendError(f"{where}: expected `address [user [port [key_file]]]`")
        address, user, port, key = [*fields, "-", "-", "-"][:4]
        host = Host(address)
        if user != "-":
            host = replace(host, user=user)
        if port != "-":
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise BackendError(f"{where}: {port!r} is not a port number")
            host = replace(host, port=int(port))
        if key != "-":
            key_path = (path.parent / Path(key).expanduser()).resolve()
            if not key_path.is_file():
                raise BackendError(f"{where}: no key file {key_path}")
            host = replace(host, key_file=str(key_path))
        hosts.append(host)
    if not hosts:
        raise BackendError(f"the hosts file {path} names no host")
    return hosts


def host_of(node: NodeSpec) -> Host:
    """The host a node runs on, from what `up` recorded in the node's spec."""
    extra = node.extra
    return Host(node.host, extra["ssh_user"], int(extra["ssh_port"]), extra.get("ssh_key", ""))


def package_archive() -> bytes:
    """The `kvctl` package as a gzipped tar, as it is uploaded to every host."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in package_files():
            tar.add(str(path), arcname=name)
    return buffer.getvalue()


class SshBackend:
    """Start, stop and fault nodes on hosts reached over SSH (see the module docstring)."""

    name = "ssh"
    idempotent = IDEMPOTENT

    def __init__(self) -> None:
        self._clients: dict[Host, paramiko.SSHClient] = {}
        self._lock = threading.Lock()

    def exec_places(self, spec: ClusterSpec) -> dict[str, str]:
        """A node's `exec` runs on its host, which it shares with the nodes placed there."""
        return {node.name: f"host {node.host}" for node in spec.nodes}

    def up(self, spec: ClusterSpec) -> ClusterSpec:
        """Assign nodes to hosts, upload the code to each host, start every node."""
        spec, used = self._place(spec)
        archive = package_archive()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda host: self._install(spec, host, archive), used))
            list(pool.map(lambda node: self.start(spec, node.name), spec.nodes))
        return spec

    def add(self, spec: ClusterSpec, node: str) -> ClusterSpec:
        """Upload the code to the joining node's host and start it there alone."""
        spec, _ = self._place(spec)
        self._install(spec, host_of(spec.node(node)), package_archive())
        self.start(spec, node)
        return spec

    def _place(self, spec: ClusterSpec) -> tuple[ClusterSpec, list[Host]]:
        """Every node's host and port (nodes go round the hosts in turn); the hosts used."""
        if "hosts_file" not in spec.extra:
            raise BackendError("the ssh backend needs --hosts FILE (one host a line)")
        hosts_file = Path(spec.extra["hosts_file"]).resolve()  # later commands may run elsewhere
        hosts = read_hosts(hosts_file)
        nodes = []
        for i, node in enumerate(spec.nodes):
            host = hosts[i % len(hosts)]
            extra = {"ssh_user": host.user, "ssh_port": str(host.port)}
            if host.key_file:
                extra["ssh_key"] = host.key_file
            nodes.append(
                replace(node, host=host.address, port=DEFAULT_PORT + i // len(hosts), extra=extra)
            )
        extra = {**spec.extra, "hosts_file": str(hosts_file)}
        spec = replace(spec, backend=self.name, nodes=nodes, extra=extra)
        return spec, list(dict.fromkeys(hosts[: len(nodes)]))

    def _install(self, spec: ClusterSpec, host: Host, archive: bytes) -> None:
        """Unpack the package into ~/.kvctl/CLUSTER/lib; check that a node can start there."""
        directory = f"{REMOTE_ROOT}/{spec.name}"
        self._run_checked(host, f"mkdir -p {shlex.quote(directory)}")
        with self._client(host).open_sftp() as sftp:
            sftp.putfo(io.BytesIO(archive), f"{directory}/kvctl.tar.gz")
        self._run_checked(
            host,
            f"cd {shlex.quote(directory)} && rm -rf lib.new && mkdir lib.new && "
            "tar -xzf kvctl.tar.gz -C lib.new && rm -rf lib kvctl.tar.gz && mv lib.new lib",
        )
        check = self._run(host, f"cd {shlex.quote(directory)} && {CHECK_NODE}")
        if check.exit_code != 0:
            lines = check.output.strip().splitlines() or ["python3 is missing"]
            raise BackendError(
                f"{host.label}: a node cannot start there ({lines[-1]}); it needs python3 "
                ">= 3.11 with msgpack and click (Debian: apt-get install python3-msgpack "
                "python3-click)"
            )

    def down(self, spec: ClusterSpec, purge: bool = False) -> None:
        """Stop every node (TERM, then KILL after 5 s); with purge, delete its directory."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda node: self._node_script(spec, node.name, STOP), spec.nodes))
        if purge:
            for host in dict.fromkeys(host_of(n) for n in spec.nodes):
                self._run_checked(host, f"rm -rf {shlex.quote(f'{REMOTE_ROOT}/{spec.name}')}")
        self.close()

    def status(self, spec: ClusterSpec) -> list[NodeStatus]:
        result = []
        for node in spec.nodes:
            try:
                state = self._node_script(spec, node.name, STATE).output.strip()
            except BackendError as err:
                result.append(NodeStatus(node.name, node.address, False, detail=str(err)))
                continue
            running = state in ("running", "paused")
            result.append(
                NodeStatus(node.name, node.address, running, state == "paused", detail=state)
            )
        return result

    def kill(self, spec: ClusterSpec, node: str) -> None:
        self._node_script(spec, node, SIGNAL, env={"SIG": "KILL", "STOPPED_OK": "1"})

    def start(self, spec: ClusterSpec, node: str) -> None:
        target = spec.node(node)
        argv = spec.node_argv(target, f"{target.name}/db")
        self._node_script(spec, node, START, args=argv)

    def pause(self, spec: ClusterSpec, node: str) -> None:
        self._node_script(spec, node, SIGNAL, env={"SIG": "STOP"})

    def resume(self, spec: ClusterSpec, node: str) -> None:
        self._node_script(spec, node, SIGNAL, env={"SIG": "CONT"})

    def exec(self, spec: ClusterSpec, node: str, argv: list[str]) -> ExecResult:
        return self._run(self._host(spec, node), shlex.join(argv))

    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]:
        """The node's log file, from the start; with `follow`, as it grows (tail -F)."""
        host = self._host(spec, node)
        path = shlex.quote(f"{REMOTE_ROOT}/{spec.name}/{node}/node.log")
        command = f"tail -n +1 {'-F' if follow else ''} {path}"
        channel = self._client(host).get_transport().open_session()  # type: ignore[union-attr]
        try:
            channel.exec_command(command)
            with channel.makefile("rb") as output:
                for line in output:
                    yield line.decode(errors="replace").rstrip("\n")
        finally:
            channel.close()

    def close(self) -> None:
        """Close the SSH connections (they are otherwise kept for the backend's lifetime)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    # -- plumbing ---------------------------------------------------------------------------

    def _host(self, spec: ClusterSpec, node: str) -> Host:
        try:
            return host_of(spec.node(node))
        except KeyError as err:
            raise BackendError(err.args[0]) from err

    def _node_script(
        self,
        spec: ClusterSpec,
        node: str,
        script: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run one of the scripts above in ~/.kvctl/CLUSTER with NODE set; fail on exit != 0."""
        variables = {"NODE": node, **(env or {})}
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        body = f"cd {shlex.quote(f'{REMOTE_ROOT}/{spec.name}')} || exit 4\n{PRELUDE}{script}"
        command = f"{assignments} sh -c {shlex.quote(body)} sh {shlex.join(args or [])}"
        return self._run_checked(self._host(spec, node), command)

    def _run_checked(self, host: Host, command: str) -> ExecResult:
        result = self._run(host, command)
        if result.exit_code != 0:
            raise BackendError(f"{host.label}: {result.output.strip() or 'failed'}")
        return result

    def _run(self, host: Host, command: str) -> ExecResult:
        """Run a shell command on the host; its stdout and stderr together, and exit status."""
        try:
            channel = self._client(host).get_transport().open_session()  # type: ignore[union-attr]
            channel.set_combine_stderr(True)
            channel.exec_command(command)
            with channel.makefile("rb") as output:
                text = output.read().decode(errors="replace")
            return ExecResult(channel.recv_exit_status(), text)
        except (paramiko.SSHException, OSError) as err:
            raise BackendError(f"{host.label}: the SSH session failed: {err}") from err

    def _client(self, host: Host) -> paramiko.SSHClient:
        with self._lock:
            client = self._clients.get(host)
            if client is None or not client.get_transport():
                client = self._clients[host] = connect(host)
            return client


def connect(host: Host) -> paramiko.SSHClient:
    """An authenticated connection, or a BackendError that says what to fix.

    Host keys are checked against ~/.ssh/known_hosts; an unknown host is refused, as `ssh`
    with StrictHostKeyChecking does, rather than trusted on first use.
    """
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=host.key_file or None,
            look_for_keys=not host.key_file,
            timeout=CONNECT_TIMEOUT,
            banner_timeout=CONNECT_TIMEOUT,
            auth_timeout=CONNECT_TIMEOUT,
        )
    except paramiko.BadHostKeyException as err:
        raise BackendError(
            f"{host.label}: the host key does not match the one in known_hosts: the host "
            "was reinstalled, or someone is in the middle; check it before removing the old key"
        ) from err
    except paramiko.AuthenticationException as err:
        key = host.key_file or "the SSH agent and ~/.ssh/id_*"
        raise BackendError(
            f"{host.label}: authentication failed with {key}: check the user and key in the "
            "hosts file, and the host's authorized_keys"
        ) from err
    except paramiko.SSHException as err:
        if "not found in known_hosts" in str(err):
            raise BackendError(
                f"{host.label}: unknown host key; check the host's fingerprint, then add it: "
                f"ssh-keyscan -p {host.port} {host.address} >> ~/.ssh/known_hosts"
            ) from err
        raise BackendError(f"{host.label}: SSH failed: {err}") from err
    except OSError as err:  # refused, unreachable, timed out
        raise BackendError(f"{host.label}: cannot connect: {err}") from err
    return client
