"""The `kvctl` command: one click group whose subcommands are imported only when used.

A node runs `kvctl node` with nothing but msgpack and click installed (in the image, on SSH
hosts), so no other command's imports (docker, networkx, jinja2, rich) may stand in its way.
Each area of the tool lists its commands in COMMANDS: name -> "module:attribute".
"""

from __future__ import annotations

import importlib

import click

from kvctl import __version__

COMMANDS = {
    # the store
    "node": "kvctl.cli.node:node",
    "up": "kvctl.cli.cluster:up",
    "down": "kvctl.cli.cluster:down",
    "status": "kvctl.cli.cluster:status",
    "kill": "kvctl.cli.cluster:kill",
    "start": "kvctl.cli.cluster:start",
    "pause": "kvctl.cli.cluster:pause",
    "resume": "kvctl.cli.cluster:resume",
    "logs": "kvctl.cli.cluster:logs",
    "get": "kvctl.cli.cluster:get",
    "put": "kvctl.cli.cluster:put",
    "cas": "kvctl.cli.cluster:cas",
    "client": "kvctl.cli.cluster:client",
    "add-node": "kvctl.cli.membership:add_node",
    "remove-node": "kvctl.cli.membership:remove_node",
    "replace-node": "kvctl.cli.membership:replace_node",
    "supervise": "kvctl.cli.supervise:supervise",
    "image": "kvctl.cli.image:image",
    "sim": "kvctl.cli.sim:sim",
    "bench": "kvctl.cli.bench:bench",
    # the test system
    "test": "kvctl.cli.test:test",
    "partition": "kvctl.cli.test:partition",
    "heal": "kvctl.cli.test:heal",
    "serve": "kvctl.cli.test:serve",
    "check": "kvctl.cli.check:check",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvctl")
def main() -> None:
    """kvctl: a linearizable Sequence Paxos key-value store, and a Jepsen-style tester for it."""
