"""`kvctl sim`: run the deterministic simulator over many seeds, or replay one."""

from __future__ import annotations

import time

import click

from kvctl.sim.run import SimResult, run_seed


def _report_failure(result: SimResult) -> None:
    click.echo(f"seed {result.seed} FAILED ({result.config}):", err=True)
    for violation in result.violations:
        click.echo(f"  {violation}", err=True)
    click.echo("last events:", err=True)
    for line in result.trace:
        click.echo(f"  {line}", err=True)
    click.echo(f"replay exactly with: kvctl sim --seed {result.seed}", err=True)


@click.command()
@click.option("--seeds", default=100, show_default=True, help="How many seeds to run.")
@click.option("--start", default=0, show_default=True, help="The first seed.")
@click.option("--seed", type=int, help="Replay this one seed (prints its trace).")
def sim(seeds: int, start: int, seed: int | None) -> None:
    """Simulate clusters under loss, partitions and crashes; exit 1 on the first violation.

    Each seed draws a cluster (3-5 nodes, groups, replication), clients and a fault
    schedule, runs the real node cores on a virtual clock, then checks agreement, validity,
    integrity, liveness after healing, and linearizability of the clients' history.
    """
    chosen = [seed] if seed is not None else range(start, start + seeds)
    began = time.monotonic()
    ok_ops = info_ops = reconfigurations = 0
    for s in chosen:
        result = run_seed(s)
        if not result.ok:
            _report_failure(result)
            raise SystemExit(1)
        ok_ops += result.ops_ok
        info_ops += result.ops_info
        reconfigurations += result.reconfigurations
        if seed is not None:
            click.echo("\n".join(result.trace))
    click.echo(
        f"{len(chosen)} seed(s) clean: {ok_ops} operations ok, {info_ops} indeterminate, "
        f"{reconfigurations} reconfigurations, in {time.monotonic() - began:.1f} s"
    )
