"""`kvctl node`: run one KV server in the foreground (what every container runs)."""

from __future__ import annotations

from pathlib import Path

import click

from kvctl.node.placement import LEADER_POLICIES
from kvctl.node.server import NodeConfig, serve


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host, int(port)


def parse_cluster(text: str) -> dict[str, tuple[str, int]]:
    nodes: dict[str, tuple[str, int]] = {}
    for item in filter(None, text.split(",")):
        name, sep, addr = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=HOST:PORT")
        nodes[name] = parse_address(addr)
    return nodes


@click.command("node")
@click.option(
    "--name", required=True, help="This node's name; one not in --cluster joins groups later."
)
@click.option("--listen", default="0.0.0.0:7400", show_default=True, help="HOST:PORT to serve.")
@click.option("--data-dir", required=True, type=click.Path(path_type=Path))
@click.option("--cluster", "cluster", required=True, help="The founding nodes: n1=HOST:PORT,n2=...")
@click.option("--peers", default="", help="Nodes that joined later: n4=HOST:PORT,...")
@click.option("--groups", default=0, help="Replication groups (0: one per node).")
@click.option("--replication", default=3, show_default=True, help="Replicas per group.")
@click.option(
    "--read-mode",
    type=click.Choice(["linearizable", "stale"]),
    default="linearizable",
    show_default=True,
    help="stale: serve reads from the local replica, NOT linearizable.",
)
@click.option(
    "--leaders",
    type=click.Choice(LEADER_POLICIES),
    default="spread",
    show_default=True,
    help="Which member each group prefers to lead: its first (spread), or the first node of "
    "--cluster in it, the same for every group (pack: best when the nodes share a machine).",
)
def node(
    name: str,
    listen: str,
    data_dir: Path,
    cluster: str,
    peers: str,
    groups: int,
    replication: int,
    read_mode: str,
    leaders: str,
) -> None:
    """Run one KV server in the foreground until SIGTERM."""
    founders = parse_cluster(cluster)
    others = parse_cluster(peers)
    if not founders:
        raise click.BadParameter("--cluster names no node")
    host, port = parse_address(listen)
    config = NodeConfig(
        name=name,
        listen_host=host,
        listen_port=port,
        founders=founders,
        others=others,
        data_dir=data_dir,
        groups=groups or len(founders),
        replication=replication,
        read_mode=read_mode,
        leaders=leaders,
    )
    try:
        serve(config)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {listen}: {exc.strerror or exc}") from exc
