"""`kvctl supervise`: the automatic-repair loop that `kvctl up --auto-replace` starts."""

from __future__ import annotations

import contextlib
import time

import click

from kvctl.control.supervisor import supervise as run_supervisor


@click.command()
@click.option(
    "--auto-replace",
    "after",
    type=float,
    required=True,
    metavar="SECONDS",
    help="Replace a member unreachable for this long.",
)
def supervise(after: float) -> None:
    """Watch this directory's cluster; replace members that stay unreachable."""
    if after <= 0:
        raise click.BadParameter("must be positive", param_hint="--auto-replace")

    def say(text: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {text}", err=True)

    say(f"supervising: members unreachable for {after:g} s are replaced")
    with contextlib.suppress(KeyboardInterrupt):
        run_supervisor(after, say)
