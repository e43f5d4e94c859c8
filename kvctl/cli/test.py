"""`kvctl test` (one Jepsen-style run), `kvctl partition`, `kvctl heal` and `kvctl serve`.

The node image runs `kvctl` with click and msgpack only, so what the harness alone needs
(rich, jinja2, the checker) is imported inside the commands.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kvctl import nemesis, store
from kvctl.cli.cluster import backend_of, current_spec
from kvctl.control import BACKENDS
from kvctl.db import DATABASES, DEFAULT_DB, READ_MODES
from kvctl.nemesis.grudge import complete
from kvctl.nemesis.netem import Netem
from kvctl.nemesis.partition import Partition, show

if TYPE_CHECKING:
    from rich.live import Live

    from kvctl.runner import Finished, Status

PLAIN_EVERY = 10.0  # seconds between progress lines when the output is not a terminal


class Display:
    """The live progress line on a terminal; a line every few seconds elsewhere (CI logs)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False, soft_wrap=True)
        self.live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> Display:
        if self.console.is_terminal:
            from rich.live import Live
            from rich.text import Text

            self.live = Live(Text(""), console=self.console, refresh_per_second=4,
                             transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def show(self, status: Status) -> None:
        c = status.counts
        faults = "; ".join(status.faults.values()) or "none"
        left = status.doing if status.left is None else f"{status.left:4.0f} s left"
        line = f"{left}   ok {c['ok']}  fail {c['fail']}  info {c['info']}   faults: {faults}"
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(line))
        elif status.left is not None and time.monotonic() - self._last >= PLAIN_EVERY:
            self._last = time.monotonic()
            self.say(line)


@click.command()
@click.option("--nodes", type=click.IntRange(min=1), help="Nodes of a new cluster [default: 5].")
@click.option("--nemesis", "faults", default="partition", show_default=True, metavar="LIST",
              help="Comma list: partition (or partition-halves, -one, -leader, -ring, -bridge; "
                   "by name only: -quorum-loss, -constrained, -chained), kill, pause, netem, "
                   "membership, power, corrupt, all, none.")
@click.option("--nemesis-interval", "interval", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, help="Mean seconds between a fault's start and stop.")
@click.option("--time-limit", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds of workload and faults.")
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True,
              help="Logical client processes.")
@click.option("--ops-per-key", type=click.IntRange(min=1), default=100, show_default=True,
              help="Operations on a key before the workload moves to a fresh one.")
@click.option("--processes-per-key", "per_key", type=click.IntRange(min=1), default=2,
              show_default=True, help="Processes that share a key: each group of them works "
              "on a key of its own, so a key that cannot be served stalls only its group.")
@click.option("--op-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds a client gives one operation; then its outcome is unknown (info).")
@click.option("--rate", type=click.FloatRange(min=0.1), help="Operations per second, in all.")
@click.option("--db", type=click.Choice(DATABASES), default=DEFAULT_DB, show_default=True,
              help="The store under test: kvctl's own, or etcd, Redis (with Sentinel), NATS.")
@click.option("--read-mode", type=click.Choice(READ_MODES),
              help="Reads of a new cluster [default: the store's first: linearizable for "
                   "kvctl and etcd, direct for nats, primary for redis].")
@click.option("--backend", type=click.Choice(BACKENDS),
              help="Where a new cluster runs [default: docker if an engine answers].")
@click.option("--name", default="register", show_default=True, help="The test's name in the store.")
@click.option("--cluster-name", "cluster", default="kvctl", show_default=True,
              help="The name of a cluster this test starts.")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path),
              default=store.ROOT, show_default=True, help="Where runs are kept.")
@click.option("--check-budget", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds the checker may spend on one key before it is unknown.")
@click.option("--keep-cluster", is_flag=True, help="Leave running a cluster this test started.")
@click.option("--seed", type=int, help="Seed of the random choices (faults, operations).")
def test(nodes: int | None, faults: str, interval: float, time_limit: float, concurrency: int,
         ops_per_key: int, per_key: int, op_timeout: float, rate: float | None,
         db: str, read_mode: str | None, backend: str | None,
         name: str, cluster: str, store_dir: Path, check_budget: float, keep_cluster: bool,
         seed: int | None) -> None:
    """Run the register workload against a cluster while injecting faults, check the history
    for linearizability, and store the run with an HTML report.

    Uses the cluster of this directory ($KVCTL_HOME) if one runs, else starts one (and takes
    it down afterwards unless --keep-cluster).

    Exit status: 0 valid, 1 invalid, 2 unknown, 255 no verdict (the test could not run).
    """
    from kvctl.runner import Refused, TestOptions, run_test

    options = TestOptions(
        name=name, cluster=cluster, nodes=nodes, backend=backend, read_mode=read_mode, db=db,
        nemesis=faults,
        interval=interval, time_limit=time_limit, concurrency=concurrency,
        ops_per_key=ops_per_key, per_key=per_key, op_timeout=op_timeout, rate=rate,
        check_budget=check_budget,
        keep_cluster=keep_cluster, seed=seed, store=store_dir,
    )
    display = Display()
    try:
        with display, _sigterm_as_interrupt():
            finished = run_test(options, display.say, display.show)
    except Refused as exc:
        click.echo(f"kvctl test: {exc}", err=True)
        sys.exit(255)
    _print_outcome(display, finished)
    sys.exit(finished.exit_code)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job's timeout, `timeout`, a supervisor) stops a test as Ctrl-C does: the
    faults healed, a cluster it started taken down, what was recorded kept and checked.
    Python's default would end the process on the spot and leave the cluster running. It is
    passed on as SIGINT, so that whoever handles Ctrl-C at that moment handles it (inside
    asyncio.run, the runner cancels its main task cleanly). A process forked meanwhile (the
    checker's pool workers, which pool.terminate() ends with SIGTERM) gets the kernel's
    default back as it starts: SIGTERM must end it outright, even deep in a lock wait."""
    previous = signal.signal(signal.SIGTERM, _pass_on_as_sigint)
    active = [True]

    def default_in_child() -> None:
        if active[0]:
            signal.signal(signal.SIGTERM, previous)

    os.register_at_fork(after_in_child=default_in_child)
    try:
        yield
    finally:
        active[0] = False
        signal.signal(signal.SIGTERM, previous)


def _pass_on_as_sigint(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)


def _print_outcome(display: Display, finished: Finished) -> None:
    from kvctl.report import verdict

    r = finished.results
    say = display.say
    if "counts" in r:
        c = r["counts"]["all"]
        lat = r.get("latency_ms", {}).get("all", {})
        say(f"operations: {r['operations']} ({c['ok']} ok, {c['fail']} fail, {c['info']} info), "
            f"{r['ok_per_second']} ok/s; latency of ok ops p50 {lat.get('p50', '-')} ms, "
            f"p99 {lat.get('p99', '-')} ms")
        keys = len(r.get("keys", [])) + r.get("unchecked_keys", 0)
        say(f"checked {keys} keys in {r['check_seconds']} s")
    say(f"verdict: {verdict(finished.valid)['word']}")
    if r.get("explanation"):
        for line in str(r["explanation"]).splitlines()[:5]:
            say(f"  {line}")
    if r.get("availability"):
        _print_availability(say, r["availability"])
    say(f"report: {finished.run.file('index.html')}")


def _print_availability(say: Callable[[str], None], table: dict[str, Any]) -> None:
    """The availability table, and each liveness defect in words."""
    from kvctl.report import availability

    rows = availability.from_json(table)
    if not rows:
        return
    say("availability under faults:")
    for line in availability.lines(rows):
        say(f"  {line}")
    found = availability.defects(rows)
    for defect in found:
        say(f"LIVENESS DEFECT: {defect}")
    if not found:
        say(f"no liveness defect: every group that kept a connected majority served within "
            f"{availability.LIVENESS_BOUND:g} s")


@click.command()
@click.argument("components", nargs=-1, required=True)
def partition(components: tuple[str, ...]) -> None:
    """Cut the network into COMPONENTS (comma lists of nodes: `n1,n2 n3,n4,n5`); nodes not
    named form one more component. Replaces any earlier partition; `kvctl heal` ends it."""
    spec = current_spec()
    ctx = _manual_context("partition")
    names = {n.name for n in spec.nodes}
    groups = [[n for n in c.split(",") if n] for c in components]
    seen: set[str] = set()
    for group in groups:
        for node in group:
            if node not in names:
                raise click.BadParameter(f"no node {node!r} (nodes: {', '.join(sorted(names))})")
            if node in seen:
                raise click.BadParameter(f"{node} is in two components")
            seen.add(node)
    grudge = complete(groups, ctx.nodes)
    fault = Partition(ctx)
    try:
        fault.check()  # refuses nodes that share a host: a rule for one would cut the others
    except nemesis.NemesisError as exc:
        raise click.ClickException(str(exc)) from exc
    missed = fault.apply(grudge)
    for problem in missed:
        click.echo(f"not applied: {problem}", err=True)
    click.echo(f"partitioned: {show(grudge)}")
    if missed:
        sys.exit(1)


@click.command()
def heal() -> None:
    """End every partition and netem fault on every node (only kvctl's own rules go)."""
    ctx = _manual_context("heal")
    failed = False
    for fault in (Partition(ctx), Netem(ctx)):
        try:
            click.echo(fault.heal()["summary"])
        except nemesis.NemesisError as exc:
            click.echo(f"{fault.name}: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def _manual_context(verb: str) -> nemesis.Context:
    spec = current_spec()
    if spec.backend == "local":
        raise click.ClickException(
            f"nothing to {verb} on the local backend: its nodes share this machine's network "
            "(partitions need --backend docker or ssh)"
        )
    return nemesis.Context(spec, backend_of(spec))


@click.command()
@click.option("--port", default=8080, show_default=True, help="TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path),
              default=store.ROOT, show_default=True)
def serve(port: int, host: str, store_dir: Path) -> None:
    """Browse the stored runs and their reports in a web browser."""
    from kvctl.web import serve as serve_store

    try:
        serve_store(store_dir, host, port, click.echo)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc

