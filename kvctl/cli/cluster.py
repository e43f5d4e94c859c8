"""Cluster commands: up, down, status, kill, start, pause, resume, logs, get, put, cas, client.

They act on the cluster that `kvctl up` started from the same $KVCTL_HOME (default `.kvctl/`).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from kvctl.client import Client, Failed, Indeterminate, run_sync
from kvctl.control import BACKENDS, default_backend, get_backend, supervisor
from kvctl.control.backend import (
    Backend,
    BackendError,
    ClusterSpec,
    NodeSpec,
    forget_spec,
    kvctl_home,
    load_spec,
)
from kvctl.control.membership import current_configs, views
from kvctl.control.provision import provision
from kvctl.db import DATABASES, DEFAULT_DB, READ_MODES, DBError, KVClient, db_of, get_db
from kvctl.node.placement import LEADER_POLICIES

T = TypeVar("T")


def current_spec() -> ClusterSpec:
    spec = load_spec()
    if spec is None:
        raise click.ClickException(
            f"no cluster in {kvctl_home()}: start one with `kvctl up` "
            "(or point $KVCTL_HOME at the directory of a running one)"
        )
    return spec


def backend_of(spec: ClusterSpec) -> Backend:
    try:
        return get_backend(spec.backend)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc


def addresses(spec: ClusterSpec) -> dict[str, str]:
    return {node.name: node.address for node in spec.nodes}


def run_client(spec: ClusterSpec, action: Callable[[Client], Awaitable[T]]) -> T:
    """Run one kvctl client action; map the two non-results to clear messages and exit
    codes."""
    with _reported():
        return run_sync(addresses(spec), action)


def run_store_client(spec: ClusterSpec, action: Callable[[KVClient], Awaitable[T]]) -> T:
    """Run a read, write or cas on the store the cluster runs (kvctl/db), reported alike."""
    if db_of(spec).name == DEFAULT_DB:
        return run_client(spec, action)
    with _reported():
        return asyncio.run(_on_store(spec, action))


@contextmanager
def _reported() -> Iterator[None]:
    """The two non-results as clear messages and exit codes."""
    try:
        yield
    except Indeterminate as exc:
        click.echo(f"outcome unknown (it may or may not have happened): {exc}", err=True)
        raise SystemExit(3) from exc
    except Failed as exc:
        click.echo(f"failed: {exc}", err=True)
        raise SystemExit(2) from exc


async def _on_store(spec: ClusterSpec, action: Callable[[KVClient], Awaitable[T]]) -> T:
    """`action` through a client of another store (kvctl/db), on the first node."""
    client = db_of(spec).client(spec, spec.nodes[0].name)
    try:
        return await action(client)
    finally:
        await client.close()


@click.command()
@click.option("--nodes", "count", default=5, show_default=True, help="How many nodes.")
@click.option("--replication", default=3, show_default=True, help="Replicas per group.")
@click.option("--groups", default=0, help="Replication groups (default: one per node).")
@click.option("--name", default="kvctl", show_default=True, help="The cluster's name.")
@click.option(
    "--backend", type=click.Choice(BACKENDS), help="Default: docker if an engine answers."
)
@click.option(
    "--hosts",
    "hosts_file",
    type=click.Path(exists=True, dir_okay=False),
    help="ssh backend: a file with one host a line.",
)
@click.option(
    "--db",
    type=click.Choice(DATABASES),
    help="The store its nodes run [default: this directory's cluster's, or kvctl].",
)
@click.option(
    "--read-mode",
    type=click.Choice(READ_MODES),
    help="Reads of a new cluster [default: the store's first].",
)
@click.option(
    "--leaders",
    type=click.Choice(LEADER_POLICIES),
    help="kvctl: which member each group of a new cluster prefers to lead [default: pack, one "
    "node for every group it is in, where the nodes share this machine; spread, each group's "
    "first member, over ssh hosts].",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for service.")
@click.option(
    "--auto-replace",
    type=float,
    metavar="SECONDS",
    help="Replace a member unreachable this long by a new node (runs a supervisor).",
)
def up(
    count: int,
    replication: int,
    groups: int,
    name: str,
    backend: str | None,
    hosts_file: str | None,
    db: str | None,
    read_mode: str | None,
    leaders: str | None,
    timeout: float,
    auto_replace: float | None,
) -> None:
    """Start a cluster (or restart the stopped nodes of this one) and wait until it serves."""
    started = time.monotonic()
    if count < 1:
        raise click.BadParameter("at least one node", param_hint="--nodes")
    store = get_db(db or DEFAULT_DB)
    if read_mode is not None:
        try:
            store.check_read_mode(read_mode)
        except DBError as exc:
            raise click.BadParameter(str(exc), param_hint="--read-mode") from exc

    def new() -> ClusterSpec:
        spec = ClusterSpec(
            name=name,
            backend=backend or default_backend(),
            nodes=[NodeSpec(f"n{i}", "", 0) for i in range(1, count + 1)],
            replication=replication,
            groups=groups,
            read_mode=read_mode or store.read_modes[0],
            extra={"db": store.name},
            leaders=leaders or "",
        )
        if hosts_file:
            spec.extra["hosts_file"] = str(hosts_file)
        return spec

    try:
        spec, _ = provision(new, backend=backend, timeout=timeout, say=click.echo, db=db)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc
    for node in spec.nodes:
        click.echo(f"  {node.name}  {node.address}")
    click.echo(f"cluster {spec.name!r} serving in {time.monotonic() - started:.1f} s")
    if auto_replace:
        supervisor.stop()
        pid = supervisor.spawn(auto_replace)
        click.echo(
            f"supervisor {pid} replaces members unreachable for {auto_replace:g} s "
            f"(log: {kvctl_home() / 'supervisor.log'})"
        )


@click.command()
@click.option("--purge", is_flag=True, help="Delete the nodes' data too.")
def down(purge: bool) -> None:
    """Stop every node; keep their data unless --purge."""
    spec = current_spec()
    supervisor.stop()
    try:
        backend_of(spec).down(spec, purge=purge)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc
    if purge:
        forget_spec()
    click.echo(f"cluster {spec.name!r} stopped" + (", data deleted" if purge else ", data kept"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def status(as_json: bool) -> None:
    """Each node, its address, whether it runs, and each group's leader."""
    spec = current_spec()
    try:
        nodes = backend_of(spec).status(spec)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc
    leaders, answered = _leaders(spec, [n.name for n in nodes if n.running and not n.paused])
    doc: dict[str, Any] = {
        "name": spec.name,
        "backend": spec.backend,
        "replication": spec.replication,
        "nodes": [
            {
                "name": n.name,
                "address": n.address,
                "up": n.running and not n.paused,
                "running": n.running,
                "paused": n.paused,
                "answers": n.name in answered,
                "member": any(n.name in g["members"] for g in leaders),
            }
            for n in nodes
        ],
        "groups": leaders,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"cluster {spec.name!r} on {spec.backend}")
    for n in doc["nodes"]:
        state = "paused" if n["paused"] else ("up" if n["running"] else "down")
        answers = "" if n["answers"] or state != "up" else " (not answering)"
        member = "" if n["member"] else "  (member of no group)"
        click.echo(f"  {n['name']:<6} {n['address']:<22} {state}{answers}{member}")
    for group in leaders:
        members = ",".join(group["members"])
        click.echo(
            f"  group {group['group']}: leader {group['leader'] or '-'}  ({members})"
            f"  config {group['config']}"
        )


def _leaders(spec: ClusterSpec, names: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ask every running node for its view; a group's leader is the one its members name."""

    found = run_sync(addresses(spec), lambda client: views(client, names)) if names else {}
    configs = current_configs(found.values())
    groups: list[dict[str, Any]] = []
    for g, (cid, members) in sorted(configs.items()):
        named = [v["leaders"].get(g) for v in found.values() if v["configs"][g][0] == cid]
        leader = max(set(filter(None, named)), key=named.count, default=None)
        groups.append({"group": g, "config": cid, "leader": leader, "members": members})
    return groups, found


def _node_action(verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("node")
    def command(node: str) -> None:
        spec = current_spec()
        try:
            getattr(backend_of(spec), verb)(spec, node)
        except KeyError as exc:
            raise click.ClickException(exc.args[0]) from exc
        except BackendError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{node}: {verb} done")

    return command


kill = _node_action("kill", "SIGKILL a node (its data stays; `kvctl start` brings it back).")
start = _node_action("start", "Start a stopped or killed node from its data.")
pause = _node_action("pause", "Freeze a node (SIGSTOP / docker pause).")
resume = _node_action("resume", "Unfreeze a paused node.")


@click.command()
@click.argument("node")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(node: str, follow: bool) -> None:
    """Print a node's log."""
    spec = current_spec()
    try:
        for line in backend_of(spec).logs(spec, node, follow=follow):
            click.echo(line)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from exc
    except BackendError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("key")
def get(key: str) -> None:
    """Print KEY's value (exit 1 if it has none)."""
    value = run_store_client(current_spec(), lambda c: c.read(key))
    if value is None:
        click.echo(f"{key} has no value", err=True)
        raise SystemExit(1)
    click.echo(value)


@click.command()
@click.argument("key")
@click.argument("value")
def put(key: str, value: str) -> None:
    """Set KEY to VALUE."""
    run_store_client(current_spec(), lambda c: c.write(key, value))
    click.echo("ok")


@click.command()
@click.argument("key")
@click.argument("old")
@click.argument("new")
def cas(key: str, old: str, new: str) -> None:
    """Set KEY to NEW if it holds OLD: exit 0 if it swapped, 1 if the value differs."""
    swapped = run_store_client(current_spec(), lambda c: c.cas(key, old, new))
    click.echo("swapped" if swapped else "not swapped: the current value differs")
    raise SystemExit(0 if swapped else 1)


CONSOLE_HELP = """commands:
  get KEY            print KEY's value
  put KEY VALUE      set KEY to VALUE
  cas KEY OLD NEW    set KEY to NEW if it holds OLD
  help               this text
  quit               leave (or Ctrl-D)"""


@click.command()
def client() -> None:
    """An interactive prompt: get, put, cas, help, quit."""
    spec = current_spec()
    click.echo(f"connected to cluster {spec.name!r} ({len(spec.nodes)} nodes); type help")
    asyncio.run(_console(spec))


async def _console(spec: ClusterSpec) -> None:
    loop = asyncio.get_running_loop()
    async with Client(addresses(spec)) as conn:
        while True:
            try:
                line = await loop.run_in_executor(None, input, "kvctl> ")
            except (EOFError, KeyboardInterrupt):
                click.echo()
                return
            try:
                words = shlex.split(line)
            except ValueError as exc:
                click.echo(f"cannot parse that line: {exc}")
                continue
            if not words:
                continue
            if words[0] in ("quit", "exit"):
                return
            click.echo(await _console_command(conn, words))


async def _console_command(conn: Client, words: list[str]) -> str:
    verb, args = words[0], words[1:]
    try:
        if verb == "get" and len(args) == 1:
            value = await conn.read(args[0])
            return "(no value)" if value is None else str(value)
        if verb == "put" and len(args) == 2:
            await conn.write(args[0], args[1])
            return "ok"
        if verb == "cas" and len(args) == 3:
            swapped = await conn.cas(*args)
            return "swapped" if swapped else "not swapped: the current value differs"
    except Indeterminate as exc:
        return f"outcome unknown (it may or may not have happened): {exc}"
    except Failed as exc:
        return f"failed: {exc}"
    return CONSOLE_HELP
