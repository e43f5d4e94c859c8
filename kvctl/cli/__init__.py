"""The `kvctl` command: one click group; each area of the tool adds its commands here."""

from __future__ import annotations

import click

from kvctl import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvctl")
def main() -> None:
    """kvctl: a linearizable Sequence Paxos key-value store, and a Jepsen-style tester for it."""

from kvctl.cli.image import image  # noqa: E402  (commands register after `main` exists)

main.add_command(image)

from kvctl.cli.node import node  # noqa: E402

main.add_command(node)

from kvctl.cli.cluster import COMMANDS as CLUSTER_COMMANDS  # noqa: E402

for _command in CLUSTER_COMMANDS:
    main.add_command(_command)

from kvctl.cli.sim import sim  # noqa: E402

main.add_command(sim)

from kvctl.cli.check import check  # noqa: E402

main.add_command(check)

from kvctl.cli.bench import bench  # noqa: E402

main.add_command(bench)

from kvctl.cli.test import COMMANDS as TEST_COMMANDS  # noqa: E402

for _command in TEST_COMMANDS:
    main.add_command(_command)
