"""`kvctl bench`: start a fresh cluster, measure it at several client counts, tear it down."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import click

from kvctl.bench import BenchResult, measure_store, run_bench
from kvctl.control import BACKENDS, get_backend
from kvctl.control.backend import BackendError, ClusterSpec, NodeSpec
from kvctl.db import DATABASES, DEFAULT_DB, get_db


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a list of numbers like 1,16,64") from exc
    if not counts or min(counts) < 1:
        raise click.BadParameter("client counts must be at least 1")
    return counts


@click.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--nodes", default=3, show_default=True)
@click.option(
    "--clients",
    default="1,16,64,256",
    show_default=True,
    help="Concurrent clients; a comma-separated list runs each in turn.",
)
@click.option("--duration", default=10.0, show_default=True, help="Seconds per client count.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--db", type=click.Choice(DATABASES), default=DEFAULT_DB, show_default=True,
              help="The store to measure (each through its own client, one per node).")
def bench(backend: str, nodes: int, clients: str, duration: float, as_json: bool,
          db: str) -> None:
    """Measure ops/s and latency of a durable (fsync) cluster under a read/write/cas mix."""
    counts = _parse_counts(clients)
    with tempfile.TemporaryDirectory(prefix="kvctl-bench-") as home:
        previous = os.environ.get("KVCTL_HOME")
        os.environ["KVCTL_HOME"] = str(Path(home) / ".kvctl")
        spec = ClusterSpec(
            f"bench{os.getpid()}", backend, [NodeSpec(f"n{i}", "", 0) for i in range(1, nodes + 1)],
            extra={"db": db},
        )
        store = get_db(db)
        runner = get_backend(backend)
        try:
            spec = runner.up(spec)
            addresses = {n.name: n.address for n in spec.nodes}
            asyncio.run(store.setup(spec, 60))
            if not as_json:
                click.echo(f"{nodes} {db} nodes on {backend}, {duration:.0f} s per row")
                click.echo(f"{'clients':>8} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for count in counts:
                if db == DEFAULT_DB:
                    _show(run_bench(addresses, count, duration), as_json)
                else:
                    _show(asyncio.run(measure_store(store, spec, count, duration)), as_json)
        except (BackendError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            runner.down(spec, purge=True)
            if previous is None:
                os.environ.pop("KVCTL_HOME", None)
            else:
                os.environ["KVCTL_HOME"] = previous


def _show(result: BenchResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo(
            f"{result.clients:>8} {result.ops_per_s:>9.0f} {result.p50_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.errors:>7}"
        )
