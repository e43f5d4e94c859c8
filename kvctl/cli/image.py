"""`kvctl image build`: make the node image ahead of time (`kvctl up` also does it on demand)."""

from __future__ import annotations

import click

from kvctl.control.backend import BackendError
from kvctl.db import DATABASES, DEFAULT_DB


@click.group()
def image() -> None:
    """The node image: Debian base from the machine's apt mirror, plus this project."""


@image.command()
@click.option(
    "--rebuild", is_flag=True, help="Bootstrap the Debian base again and rebuild on top of it."
)
@click.option(
    "--db",
    type=click.Choice(DATABASES),
    default=DEFAULT_DB,
    show_default=True,
    help="The store its nodes run: another store's Debian packages join the base.",
)
def build(rebuild: bool, db: str) -> None:
    """Build the node image (no registry needed); reuse what is already up to date."""
    # Imported here so that `kvctl` starts without the Docker SDK (e.g. inside the image).
    from kvctl.control.docker import connect
    from kvctl.control.image import BuildProgress, ensure_node_image

    try:
        client = connect()
        with BuildProgress() as progress:
            tag = ensure_node_image(client, progress, rebuild=rebuild, db=db)
    except BackendError as err:
        raise click.ClickException(str(err)) from err
    click.echo(tag)
