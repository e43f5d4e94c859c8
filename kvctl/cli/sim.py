"""`kvctl sim`: run the deterministic simulator over many seeds, or replay one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial

import click

from kvctl.node.placement import LEADER_POLICIES
from kvctl.sim.run import SimResult, run_seed
from kvctl.sim.world import total


def _report_failure(result: SimResult, leaders: str) -> None:
    click.echo(f"seed {result.seed} FAILED ({result.config}):", err=True)
    for violation in result.violations:
        click.echo(f"  {violation}", err=True)
    click.echo("last events:", err=True)
    for line in result.trace:
        click.echo(f"  {line}", err=True)
    policy = "" if leaders == "spread" else f" --leaders {leaders}"
    click.echo(f"replay exactly with: kvctl sim --seed {result.seed}{policy}", err=True)


def _run_without_history(leaders: str, seed: int) -> SimResult:
    """One seed, without its history (it stays in the worker process), and without its
    trace unless it failed."""
    result = run_seed(seed, leaders=leaders)
    return replace(result, history=[], trace=[] if result.ok else result.trace)


def _results(seeds: Iterable[int], jobs: int, leaders: str) -> Iterator[SimResult]:
    """Every seed's result, in seed order, however many processes run them."""
    one = partial(_run_without_history, leaders)
    if jobs <= 1:
        yield from map(one, seeds)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(one, seeds, chunksize=4)


def _run_summary(result: SimResult) -> dict[str, object]:
    return {
        "seed": result.seed,
        "ok": result.ok,
        "config": result.config,
        "ops_ok": result.ops_ok,
        "ops_info": result.ops_info,
        "counts": result.counts,
        "violations": result.violations,
    }


def _as_json(results: list[SimResult], failed: list[int], totals: dict[str, int]) -> str:
    """One JSON object: the totals first, then each run on its own line."""
    runs = ",\n  ".join(json.dumps(_run_summary(r)) for r in results)
    head = {"seeds": len(results), "failed": failed, "total": totals}
    return json.dumps(head)[:-1] + f',\n "runs": [\n  {runs}\n ]\n}}'


@click.command()
@click.option("--seeds", default=100, show_default=True, help="How many seeds to run.")
@click.option("--start", default=0, show_default=True, help="The first seed.")
@click.option("--seed", type=int, help="Replay this one seed (prints its trace).")
@click.option("--jobs", default=1, show_default=True, help="Processes that run seeds.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print every run and the totals as JSON: which fault paths each seed took.",
)
@click.option(
    "--leaders",
    type=click.Choice(LEADER_POLICIES),
    default="spread",
    show_default=True,
    help="The nodes' leader policy (kvctl node --leaders).",
)
def sim(
    seeds: int, start: int, seed: int | None, jobs: int, as_json: bool, leaders: str
) -> None:
    """Simulate clusters under loss, delays, partitions, crashes and power cuts; exit 1 if
    any seed finds a violation (each is reported with its trace and how to replay it).

    Each seed draws a cluster (3-5 nodes, groups, replication, compaction threshold),
    clients and a fault schedule, runs the real node cores on a virtual clock and disks that
    lose unsynced writes, then checks agreement, validity, integrity, liveness after
    healing, and linearizability of the clients' history.
    """
    began = time.monotonic()
    replay = seed is not None
    chosen = (
        [run_seed(seed, leaders=leaders)]
        if seed is not None
        else _results(range(start, start + seeds), jobs, leaders)
    )
    results = []
    for result in chosen:  # failures are reported as they come, in seed order
        results.append(result)
        if not result.ok:
            _report_failure(result, leaders)
        if replay and not as_json:
            click.echo("\n".join(result.trace))
    failed = [r.seed for r in results if not r.ok]
    totals = total([r.counts for r in results])
    if as_json:
        click.echo(_as_json(results, failed, totals))
    else:
        ok_ops = sum(r.ops_ok for r in results)
        info_ops = sum(r.ops_info for r in results)
        paths = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in totals.items())
        verdict = f"{len(failed)} FAILED {failed}" if failed else "clean"
        click.echo(
            f"{len(results)} seed(s) {verdict}: {ok_ops} operations ok, {info_ops} "
            f"indeterminate; {paths}; in {time.monotonic() - began:.1f} s"
        )
    if failed:
        raise SystemExit(1)
