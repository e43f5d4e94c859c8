"""One test, from cluster to verdict: up -> clients + nemesis -> heal -> final reads -> logs ->
check -> store -> report.

The order is chosen so that nothing late can cost what came early: the history is on disk line
by line as the run goes; node logs, teardown and the report come after it and their failures
are logged, never fatal; the verdict is in results.json before the report is rendered.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kvctl import __version__, nemesis, report, store
from kvctl.checker import MODELS, check
from kvctl.client import Client
from kvctl.control import default_backend, get_backend
from kvctl.control.backend import (
    Backend,
    BackendError,
    ClusterSpec,
    NodeSpec,
    forget_spec,
    load_spec,
)
from kvctl.control.provision import provision
from kvctl.control.ready import wait_until_serving
from kvctl.history import NEMESIS, History, thaw
from kvctl.nemesis import schedule
from kvctl.report import TIMELINES, stats, timeline
from kvctl.workload import Options as WorkloadOptions
from kvctl.workload import RegisterWorkload

UP_TIMEOUT = 120.0


class Refused(Exception):
    """The test cannot start: bad input, a fault this cluster cannot have, no cluster."""


@dataclass
class TestOptions:
    """What `kvctl test` was asked to do (saved as test.json)."""

    name: str = "register"
    cluster: str = "kvctl"  # the name of a cluster this test starts (its containers' prefix)
    nodes: int | None = None  # None: the running cluster's, or 5 for a new one
    backend: str | None = None  # None: the running cluster's, or docker if an engine answers
    read_mode: str | None = None  # None: the running cluster's, or linearizable
    nemesis: str = "partition"
    interval: float = 10.0
    time_limit: float = 60.0
    concurrency: int = 10
    ops_per_key: int = 100
    rate: float | None = None
    recovery: float = 30.0  # seconds for the healed cluster to serve again, then for final reads
    check_budget: float = 30.0  # seconds each key may take in the checker
    keep_cluster: bool = False  # leave a cluster this test started running
    seed: int | None = None
    store: Path = store.ROOT


@dataclass
class Status:
    """A snapshot for the live progress display."""

    phase: str
    left: float
    counts: Counter[str]
    faults: dict[str, str]


@dataclass
class Finished:
    """The outcome of `run_test`."""

    run: store.RunDir
    results: dict[str, Any]

    @property
    def valid(self) -> bool | str:
        return self.results["valid"]

    @property
    def exit_code(self) -> int:
        if self.results.get("crashed"):
            return 255
        if self.valid is True:
            return 0
        return 1 if self.valid is False else 2


@dataclass
class _Run:
    """The state of one run, shared by its phases."""

    options: TestOptions
    spec: ClusterSpec
    backend: Backend
    created: bool
    dir: store.RunDir
    history: store.HistoryWriter
    say: Callable[[str], None]
    show: Callable[[Status], None]
    rng: random.Random  # the workload's
    seed: int  # the faults draw from generators of their own, derived from it
    phase: str = "starting"
    deadline: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_test(
    options: TestOptions,
    say: Callable[[str], None] = print,
    show: Callable[[Status], None] = lambda status: None,
) -> Finished:
    """Run one test and store it; raises Refused (before anything runs) on bad input."""
    saved = _saved_backend()
    backend_name = options.backend or saved or default_backend()
    faults = options.nemesis
    if backend_name == "local" and not (options.backend or saved):
        faults, note = nemesis.for_local(faults)
        if note:
            say(note)
    try:
        selection = nemesis.parse(faults, backend_name)
        store.check_name(options.name)
    except (nemesis.NemesisError, store.StoreError) as exc:
        raise Refused(str(exc)) from exc
    seed = options.seed if options.seed is not None else secrets.randbits(32)

    def new() -> ClusterSpec:
        count = options.nodes or 5
        return ClusterSpec(
            name=options.cluster,
            backend=backend_name,
            nodes=[NodeSpec(f"n{i}", "", 0) for i in range(1, count + 1)],
            read_mode=options.read_mode or "linearizable",
        )

    try:
        spec, created = provision(
            new,
            backend=options.backend,
            nodes=options.nodes,
            read_mode=options.read_mode,
            timeout=UP_TIMEOUT,
            say=say,
        )
    except BackendError as exc:
        raise Refused(str(exc)) from exc
    backend = get_backend(spec.backend)
    ctx = nemesis.Context(spec, backend, seed)
    try:  # the faults' actions record into the run made below; none acts before it exists
        nem = nemesis.build(selection, ctx, lambda f, v: _fault_event(run, f, v))
    except nemesis.NemesisError as exc:
        if created and not options.keep_cluster:
            problem = _take_down(spec, backend)
            if problem:
                say(problem)
        raise Refused(str(exc)) from exc
    run_dir = store.create(options.name, options.store)
    history = store.HistoryWriter(run_dir.file(store.HISTORY))
    run = _Run(options, spec, backend, created, run_dir, history, say, show,
               random.Random(f"{seed}/workload"), seed)
    run.notes.extend(nem.notes)
    for note in nem.notes:
        say(note)
    test = {
        **{k: v for k, v in asdict(options).items() if k != "store"},
        "nodes": len(spec.nodes),
        "backend": spec.backend,
        "read_mode": spec.read_mode,
        "faults": nem.names,
        "seed": seed,
        "cluster": {n.name: n.address for n in spec.nodes},
        "started": datetime.now().isoformat(timespec="seconds"),
        "kvctl": __version__,
    }
    run_dir.write_json("test.json", test)
    results: dict[str, Any] = {}
    try:
        asyncio.run(_drive(run, nem, results))
    except BaseException as exc:  # even Ctrl-C: keep what was recorded
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
            "".join(traceback.format_exception_only(exc)).strip())
        results["crashed"] = why
        _log(run, f"the test stopped: {why} (details in {run.dir.file('run.log')})",
             traceback.format_exc())
    finally:
        history.close()
        _collect_logs(run)
        _teardown(run)
    test["finished"] = datetime.now().isoformat(timespec="seconds")
    run_dir.write_json("test.json", test)
    return _conclude(run, results)


def _saved_backend() -> str | None:
    spec = load_spec()
    return spec.backend if spec else None


def _log(run: _Run, text: str, detail: str = "") -> None:
    """Say it, and keep it (with a traceback, if any, for run.log only) in the run's run.log."""
    stamp = f"{run.history.now() / 1e9:8.3f} s"
    with open(run.dir.file("run.log"), "a", encoding="utf-8") as out:
        out.write(f"{stamp}  {text}\n{detail}")
    run.say(text)


def _fault_event(run: _Run, f: str, value: dict[str, Any]) -> None:
    run.history.write(process=NEMESIS, type="info", f=f, value=value)
    _log(run, f"nemesis {f}: {value.get('summary', '')}")


async def _drive(run: _Run, nem: nemesis.Nemesis, results: dict[str, Any]) -> None:
    """The timed part: workload and faults, heal, recovery, final reads."""
    loop = asyncio.get_running_loop()
    o = run.options
    addresses = {n.name: n.address for n in run.spec.nodes}
    prefix = f"k{secrets.token_hex(2)}-"
    clients = {name: Client({name: address}) for name, address in addresses.items()}
    workload = RegisterWorkload(
        clients,
        run.history.write,
        WorkloadOptions(o.concurrency, o.ops_per_key, o.rate, prefix),
        run.rng,
    )

    async def tick() -> None:
        while True:
            left = max(0.0, run.deadline - loop.time()) if run.phase == "running" else 0.0
            run.show(Status(run.phase, left, workload.counts, dict(nem.active)))
            await asyncio.sleep(0.5)

    ticker = asyncio.create_task(tick())
    try:
        for error in await nem.heal(record=False):
            _log(run, f"setup heal: {error}")
        run.phase = "running"
        run.deadline = loop.time() + o.time_limit
        _log(run, f"running for {o.time_limit:g} s: {o.concurrency} clients, faults: "
                  f"{', '.join(nem.names) or 'none'}")
        healed = False

        async def faults() -> None:
            nonlocal healed
            try:
                steps = schedule.plan(nem.names, o.interval, o.time_limit, run.seed)
                await schedule.run(nem, steps, run.deadline - o.time_limit)
                await asyncio.sleep(max(0.0, run.deadline - loop.time()))
            finally:
                # At the deadline, not once the clients drain: their last calls may need it.
                run.phase = "healing"
                results["heal_errors"] = await nem.heal()
                healed = True

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(workload.run(run.deadline))
                group.create_task(faults())
        finally:
            if not healed:
                results["heal_errors"] = await nem.heal()
        run.phase = "recovering"
        try:
            await asyncio.to_thread(wait_until_serving, addresses, o.recovery)
        except TimeoutError as exc:
            _log(run, f"after the heal: {exc}")
        run.phase = "final reads"
        results["unread_keys"] = await workload.final_reads(loop.time() + o.recovery)
        results["keys_used"] = len(workload.keys.used)
    finally:
        ticker.cancel()
        for client in clients.values():
            await client.close()


def _collect_logs(run: _Run) -> None:
    run.phase = "collecting logs"
    for node in run.spec.nodes:
        try:
            with open(run.dir.node_log(node.name), "w", encoding="utf-8") as out:
                for line in run.backend.logs(run.spec, node.name):
                    out.write(line + "\n")
        except (BackendError, OSError) as exc:
            _log(run, f"could not collect {node.name}'s log: {exc}")


def _teardown(run: _Run) -> None:
    """Take down a cluster this test started (unless asked to keep it); log any failure."""
    if run.created and not run.options.keep_cluster:
        problem = _take_down(run.spec, run.backend)
        if problem:
            _log(run, problem)


def _take_down(spec: ClusterSpec, backend: Backend) -> str | None:
    """Remove a cluster and forget it; what went wrong, if anything."""
    try:
        backend.down(spec, purge=True)
        forget_spec()
    except BackendError as exc:
        return f"teardown: {exc} (the cluster may still run: `kvctl down --purge`)"
    return None


def _conclude(run: _Run, results: dict[str, Any]) -> Finished:
    """Check, store the results, render the report: each failure logged, the verdict kept."""
    run.phase = "checking"
    results["notes"] = run.notes
    if results.get("crashed"):
        results.update(valid="unknown", explanation=f"the test stopped: {results['crashed']}")
    else:
        results.update(analyse(run.history.events, str(run.history.path),
                               run.options.check_budget))
    run.dir.write_json("results.json", results)
    try:
        report.render_run(run.dir)
    except Exception:  # the verdict is already stored
        error = traceback.format_exc()
        _log(run, "the report could not be rendered: a plain page holds the verdict", error)
        report.fallback(run.dir, results, error)
    try:
        store.link_latest(run.dir, run.options.store)
    except OSError as exc:
        _log(run, f"could not update the latest links: {exc}")
    return Finished(run.dir, results)


def analyse(events: list[dict[str, Any]], source: str, budget: float) -> dict[str, Any]:
    """The checker's verdict, the invalid keys' linearizations for their timelines, and the
    run's figures: what results.json holds besides the run's own notes."""
    history = History.from_events(events, source=source)
    started = time.monotonic()
    result = check(history, budget=budget, full=True)
    seconds = round(time.monotonic() - started, 3)
    model = next(m for m in MODELS if m.name == result.model)
    keys = []
    for k in result.keys:
        entry = {**asdict(k), "key": thaw(k.key), "seconds": round(k.seconds, 4)}
        if k.valid is not False:
            del entry["order"]  # long, and only an invalid key's timeline draws it
        elif k.blocked is None and sum(e["valid"] is False for e in keys) < TIMELINES:
            entry["order"], entry["blocked"] = timeline.locate(history, k.key, model, budget)
        keys.append(entry)
    return {
        "valid": result.valid,
        "explanation": result.explanation,
        "model": result.model,
        "check_seconds": seconds,
        **stats.summary(history),
        "keys": keys,
        "unchecked_keys": result.unchecked,
    }
