"""`kvctl add-node`, `remove-node`, `replace-node`: change membership at run time."""

from __future__ import annotations

import click

from kvctl.cli.cluster import addresses, backend_of, current_spec, run_client
from kvctl.client import Client, Failed
from kvctl.control.backend import BackendError, ClusterSpec
from kvctl.control.membership import (
    Plan,
    apply_plan,
    current_configs,
    next_name,
    plan_add,
    plan_remove,
    plan_replace,
    start_node,
    views,
)


def _start_new_node(spec: ClusterSpec, name: str | None) -> tuple[ClusterSpec, str]:
    name = name or next_name(spec)
    try:
        spec = start_node(spec, backend_of(spec), name)
    except (BackendError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"started {name} at {spec.node(name).address}")
    return spec, name


def _run(spec: ClusterSpec, plan: Plan) -> None:
    for group, members in plan:
        click.echo(f"  group {group} -> {','.join(members)}")

    async def action(client: Client) -> None:
        await apply_plan(client, plan, addresses(spec))

    run_client(spec, action)


def _configs(spec: ClusterSpec) -> dict[int, tuple[int, list[str]]]:
    async def action(client: Client) -> dict[int, tuple[int, list[str]]]:
        found = await views(client, [n.name for n in spec.nodes])
        if not found:
            raise Failed("no node of the cluster answers")
        return current_configs(found.values())

    return run_client(spec, action)


@click.command("add-node")
@click.option("--name", help="The new node's name (default: the next n<N>).")
def add_node(name: str | None) -> None:
    """Start a new node and move a fair share of replicas onto it."""
    spec = current_spec()
    configs = _configs(spec)
    members = sorted({m for _, ms in configs.values() for m in ms})
    spec, name = _start_new_node(spec, name)
    plan = plan_add(configs, name, members)
    click.echo(f"moving {len(plan)} replica(s) to {name}:")
    _run(spec, plan)
    click.echo(f"{name} is a member of {len(plan)} group(s)")


@click.command("remove-node")
@click.argument("node")
def remove_node(node: str) -> None:
    """Move NODE's replicas to other nodes, then stop it."""
    spec = current_spec()
    spec.node(node)
    configs = _configs(spec)
    running = {s.name for s in backend_of(spec).status(spec) if s.running}
    try:
        plan = plan_remove(configs, node, sorted(running - {node}))
    except ValueError as exc:
        raise click.ClickException(f"cannot remove {node}: {exc}") from exc
    click.echo(f"moving {len(plan)} replica(s) off {node}:")
    _run(spec, plan)
    if node in running:
        backend_of(spec).kill(spec, node)
    click.echo(f"{node} removed and stopped (its data is kept)")


@click.command("replace-node")
@click.argument("node")
@click.option("--name", help="The replacement's name (default: the next n<N>).")
def replace_node(node: str, name: str | None) -> None:
    """Replace a dead NODE by a new node in every group it belonged to."""
    spec = current_spec()
    spec.node(node)
    configs = _configs(spec)
    spec, name = _start_new_node(spec, name)
    plan = plan_replace(configs, node, name)
    click.echo(f"replacing {node} by {name} in {len(plan)} group(s):")
    _run(spec, plan)
