"""One test, from cluster to verdict, as nested scopes (Jepsen's `with-*`), each resource
released by the scope that took it:

    run_test
      _plan                     refusals: bad input, faults this backend cannot have
      with _cluster             the running one, or a new one: taken down last (unless kept)
        _faults                 checked on this cluster: refused before the store holds a run
        _open_run               the run's directory, test.json, run.log
        with _node_logs         collected after the history is closed
          with HistoryWriter    closed first: all that was recorded is on disk
            _drive              clients, faults (healed at the deadline), recovery, final reads
      _conclude                 the verdict in results.json, then the report, then `latest`

Nothing late can cost what came early: the history is on disk line by line as the run goes;
node logs, teardown and the report come after it, and their failures are logged, never
fatal; the verdict is stored before the report is rendered.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kvctl import __version__, nemesis, report, store
from kvctl.checker import MODELS, check
from kvctl.client import Client, ClientError
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
from kvctl.db import DEFAULT_DB, DBError, KVClient, db_of, get_db
from kvctl.history import NEMESIS, History, thaw
from kvctl.nemesis import schedule
from kvctl.nemesis.power import Power, coverage_line
from kvctl.report import TIMELINES, availability, stats, timeline
from kvctl.workload import Options as WorkloadOptions
from kvctl.workload import RegisterWorkload

UP_TIMEOUT = 120.0
SHOW_EVERY = 0.5  # seconds between progress updates


class Refused(Exception):
    """The test cannot start: bad input, a fault this cluster cannot have, no cluster."""


@dataclass
class TestOptions:
    """What `kvctl test` was asked to do (saved as test.json)."""

    name: str = "register"
    cluster: str = "kvctl"  # the name of a cluster this test starts (its containers' prefix)
    nodes: int | None = None  # None: the running cluster's, or 5 for a new one
    backend: str | None = None  # None: the running cluster's, or docker if an engine answers
    read_mode: str | None = None  # None: the running cluster's, or the store's first
    db: str = DEFAULT_DB  # the store under test (kvctl/db)
    nemesis: str = "partition"
    interval: float = 10.0
    time_limit: float = 60.0
    concurrency: int = 10
    ops_per_key: int = 100
    per_key: int = 2  # processes that share a key at a time (each group has a key of its own)
    op_timeout: float = 5.0  # seconds a client gives one operation; then its outcome is unknown
    rate: float | None = None
    recovery: float = 30.0  # seconds for the healed cluster to serve again, then for final reads
    check_budget: float = 30.0  # seconds each key may take in the checker
    keep_cluster: bool = False  # leave a cluster this test started running
    seed: int | None = None
    store: Path = store.ROOT


@dataclass
class Status:
    """A snapshot for the live progress display."""

    doing: str
    left: float | None  # seconds of workload left, while it runs
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


class RunLog:
    """Says each line; once the run has a directory, keeps it there too, in run.log, with
    any traceback (which only run.log gets)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.path: Path | None = None
        self._started = time.monotonic()

    def keep_in(self, path: Path) -> None:
        self.path, self._started = path, time.monotonic()

    def __call__(self, text: str, detail: str = "") -> None:
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(f"{time.monotonic() - self._started:8.3f} s  {text}\n{detail}")
        self.say(text)


@dataclass(frozen=True)
class _Plan:
    """What the test will do, once the options passed every check that needs no cluster."""

    options: TestOptions
    backend: str
    selection: nemesis.Selection
    seed: int


@dataclass(frozen=True)
class _Cluster:
    spec: ClusterSpec
    backend: Backend
    created: bool  # by this test, which then takes it down


@dataclass
class _Run:
    """One run's recorded part: where it is stored and what it records into."""

    options: TestOptions
    spec: ClusterSpec
    seed: int  # each fault draws from a generator of its own, derived from it
    dir: store.RunDir
    history: store.HistoryWriter
    faults: nemesis.Faults
    log: RunLog
    show: Callable[[Status], None]

    def record_fault(self, f: str, value: dict[str, Any]) -> None:
        self.history.write(process=NEMESIS, type="info", f=f, value=value)
        self.log(f"nemesis {f}: {value.get('summary', '')}")


def run_test(
    options: TestOptions,
    say: Callable[[str], None] = print,
    show: Callable[[Status], None] = lambda status: None,
) -> Finished:
    """Run one test and store it; raises Refused (before anything runs) on bad input."""
    plan = _plan(options, say)
    log = RunLog(say)
    with _cluster(plan, log) as cluster:
        faults = _faults(plan, cluster)
        run_dir = _open_run(plan, cluster, faults, log)
        with _node_logs(run_dir, cluster, log), store.HistoryWriter(
            run_dir.file(store.HISTORY)
        ) as history:
            run = _Run(options, cluster.spec, plan.seed, run_dir, history, faults, log, show)
            results = _drive_recorded(run)
    return _conclude(run, results)


# -- before anything runs -----------------------------------------------------------------


def _plan(options: TestOptions, say: Callable[[str], None]) -> _Plan:
    """The backend, the faults and the seed; Refused if the options cannot run anywhere."""
    saved = _saved_backend()
    backend = options.backend or saved or default_backend()
    faults = options.nemesis
    if backend == "local" and not (options.backend or saved):
        faults, note = nemesis.for_local(faults)
        if note:
            say(note)
    try:
        selection = nemesis.parse(faults, backend)
        store.check_name(options.name)
        _check_store(options, selection, say)
    except (nemesis.NemesisError, store.StoreError, DBError) as exc:
        raise Refused(str(exc)) from exc
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    return _Plan(options, backend, selection, seed)


def _check_store(options: TestOptions, selection: nemesis.Selection,
                 say: Callable[[str], None]) -> None:
    """DBError for a read mode or a named fault the store cannot take; a fault that came
    from `all` is left out instead, with a note."""
    db = get_db(options.db)
    if options.read_mode is not None:
        db.check_read_mode(options.read_mode)
    for name, optional in list(selection.faults.items()):
        if optional and name in db.refused:
            del selection.faults[name]
            say(f"{name} left out: {db.name} cannot take it ({db.refused[name]})")
    db.check_faults(selection.names)


def _saved_backend() -> str | None:
    spec = load_spec()
    return spec.backend if spec else None


@contextmanager
def _cluster(plan: _Plan, log: RunLog) -> Iterator[_Cluster]:
    """The cluster of this directory, or a new one; a new one is taken down on leaving
    (unless kept), and a failure to do so is logged."""
    o = plan.options

    def new() -> ClusterSpec:
        return ClusterSpec(
            name=o.cluster,
            backend=plan.backend,
            nodes=[NodeSpec(f"n{i}", "", 0) for i in range(1, (o.nodes or 5) + 1)],
            read_mode=o.read_mode or get_db(o.db).read_modes[0],
            extra={"db": o.db},
        )

    try:
        spec, created = provision(new, backend=o.backend, nodes=o.nodes, read_mode=o.read_mode,
                                  db=o.db,
                                  lazyfs=nemesis.needs_lazyfs(plan.selection),
                                  timeout=UP_TIMEOUT, say=log.say)
    except BackendError as exc:
        raise Refused(str(exc)) from exc
    cluster = _Cluster(spec, get_backend(spec.backend), created)
    try:
        yield cluster
    finally:
        if created and not o.keep_cluster:
            problem = _take_down(spec, cluster.backend)
            if problem:
                log(problem)


def _take_down(spec: ClusterSpec, backend: Backend) -> str | None:
    """Remove a cluster and forget it; what went wrong, if anything."""
    try:
        backend.down(spec, purge=True)
        forget_spec()
    except BackendError as exc:
        return f"teardown: {exc} (the cluster may still run: `kvctl down --purge`)"
    return None


def _faults(plan: _Plan, cluster: _Cluster) -> nemesis.Faults:
    """The faults, each checked on this cluster; Refused if a named one cannot run on it."""
    ctx = nemesis.Context(cluster.spec, cluster.backend, plan.seed)
    try:
        return nemesis.build(plan.selection, ctx)
    except nemesis.NemesisError as exc:
        raise Refused(str(exc)) from exc


def _open_run(plan: _Plan, cluster: _Cluster, faults: nemesis.Faults,
              log: RunLog) -> store.RunDir:
    """The run's directory in the store, with test.json: what was asked, and where it ran."""
    run_dir = store.create(plan.options.name, plan.options.store)
    log.keep_in(run_dir.file("run.log"))
    for note in faults.notes:
        log.say(note)
    spec = cluster.spec
    run_dir.write_json("test.json", {
        **{k: v for k, v in asdict(plan.options).items() if k != "store"},
        "nodes": len(spec.nodes),
        "backend": spec.backend,
        "read_mode": spec.read_mode,
        "faults": faults.names,
        "seed": plan.seed,
        "cluster": {n.name: n.address for n in spec.nodes},
        "topology": _topology(spec) if db_of(spec).name == DEFAULT_DB else None,
        "started": datetime.now().isoformat(timespec="seconds"),
        "kvctl": __version__,
    })
    return run_dir


def _topology(spec: ClusterSpec) -> dict[str, Any] | None:
    """Which nodes hold which group, as a node reports it (None if none answers): the
    availability table judges each group's connectivity by it."""
    addresses = {n.name: n.address for n in spec.nodes}

    async def ask() -> dict[str, Any]:
        async with Client(addresses, timeout=5.0, attempt_timeout=1.0) as client:
            return await client.topology()

    try:
        topo = asyncio.run(ask())
    except ClientError:
        return None
    return {k: topo[k] for k in ("nodes", "groups", "replication", "configs")}


@contextmanager
def _node_logs(run_dir: store.RunDir, cluster: _Cluster, log: RunLog) -> Iterator[None]:
    """On leaving, each node's log into the run; one that cannot be read is logged."""
    try:
        yield
    finally:
        for node in cluster.spec.nodes:
            try:
                with open(run_dir.node_log(node.name), "w", encoding="utf-8") as out:
                    for line in cluster.backend.logs(cluster.spec, node.name):
                        out.write(line + "\n")
            except (BackendError, OSError) as exc:
                log(f"could not collect {node.name}'s log: {exc}")


# -- the timed part -----------------------------------------------------------------------


def _drive_recorded(run: _Run) -> dict[str, Any]:
    """The timed part's results; if it stops early (even on Ctrl-C), why, keeping what was
    recorded."""
    try:
        return asyncio.run(_drive(run))
    except BaseException as exc:  # even Ctrl-C: keep what was recorded
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else _first_cause(exc)
        run.log(f"the test stopped: {why} (details in {run.dir.file('run.log')})",
                traceback.format_exc())
        return {"crashed": why}


def _first_cause(exc: BaseException) -> str:
    """The error itself, not the task group that carried it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return "".join(traceback.format_exception_only(exc)).strip()


async def _drive(run: _Run) -> dict[str, Any]:
    """Workload and faults until the deadline, then recovery and final reads."""
    o = run.options
    nem = run.faults.compose(run.record_fault)
    async with _clients(run.spec, o.op_timeout) as clients:
        workload = RegisterWorkload(
            clients,
            run.history.write,
            WorkloadOptions(o.concurrency, o.ops_per_key, o.rate, f"k{secrets.token_hex(2)}-",
                            per_key=o.per_key),
            random.Random(f"{run.seed}/workload"),
        )
        counts, faults = workload.counts, nem.active
        for error in await nem.heal(record=False):  # what a run that crashed left behind
            run.log(f"setup heal: {error}")
        async with _showing(run, "running", counts, faults, o.time_limit):
            await _workload_and_faults(run, workload, nem)
        async with _showing(run, "recovering", counts, faults):
            await _recover(run)
        async with _showing(run, "final reads", counts, faults):
            loop = asyncio.get_running_loop()
            unread = await workload.final_reads(loop.time() + o.recovery)
    used = len(workload.keys.used)
    run.log(f"final reads: {used - len(unread)} of {used} keys read after the heal"
            + (f"; unread: {', '.join(unread)}" if unread else ""))
    return {"heal_errors": nem.heal_errors, "unread_keys": unread, "keys_used": used,
            **_power_coverage(run, nem)}


def _power_coverage(run: _Run, nem: nemesis.Nemesis) -> dict[str, Any]:
    """Which nodes lost power how often ({} in a run without power), said in the summary."""
    for fault in nem.faults:
        if isinstance(fault, Power):
            coverage = fault.coverage()
            run.log(coverage_line(coverage))
            return {"power": coverage}
    return {}


@asynccontextmanager
async def _clients(spec: ClusterSpec, timeout: float) -> AsyncIterator[dict[str, KVClient]]:
    """A client of the cluster's store per node (each process talks to one node), all closed
    on leaving."""
    db = db_of(spec)
    clients: dict[str, KVClient] = {}
    try:
        for node in spec.nodes:
            clients[node.name] = db.client(spec, node.name, timeout)
        yield clients
    finally:
        for client in clients.values():
            await client.close()


async def _workload_and_faults(run: _Run, workload: RegisterWorkload,
                               nem: nemesis.Nemesis) -> None:
    """The clients until the deadline, with the fault schedule beside them."""
    o = run.options
    run.log(f"running for {o.time_limit:g} s: {o.concurrency} clients, faults: "
            f"{', '.join(nem.names) or 'none'}")
    begun = asyncio.get_running_loop().time()
    steps = schedule.plan(nem.names, o.interval, o.time_limit, run.seed)
    async with asyncio.TaskGroup() as group:
        group.create_task(workload.run(begun + o.time_limit))
        group.create_task(_faults_until(nem, steps, begun, begun + o.time_limit))


async def _faults_until(nem: nemesis.Nemesis, steps: list[schedule.Step], begun: float,
                        deadline: float) -> None:
    """The schedule, and the heal when leaving the nemesis: at the deadline, not once the
    clients drain (their last calls may need it), or as soon as the run stops."""
    async with nem:
        await schedule.run(nem, steps, begun)
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


async def _recover(run: _Run) -> None:
    """Wait, within the recovery time, for the healed cluster to serve again."""
    try:
        await db_of(run.spec).setup(run.spec, run.options.recovery)
    except TimeoutError as exc:
        run.log(f"after the heal: {exc}")


@asynccontextmanager
async def _showing(run: _Run, what: str, counts: Counter[str], faults: dict[str, str],
                   seconds: float | None = None) -> AsyncIterator[None]:
    """Show `what` the run does (and the seconds left of `seconds`) while inside."""
    loop = asyncio.get_running_loop()
    until = None if seconds is None else loop.time() + seconds

    async def tick() -> None:
        while True:
            left = None if until is None else max(0.0, until - loop.time())
            run.show(Status(what, left, counts, dict(faults)))
            await asyncio.sleep(SHOW_EVERY)

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()


# -- after the run ------------------------------------------------------------------------


def _conclude(run: _Run, results: dict[str, Any]) -> Finished:
    """Check and store the verdict, then render the report: each failure logged, the verdict
    kept."""
    results = {**results, "notes": run.faults.notes,
               "finished": datetime.now().isoformat(timespec="seconds")}
    if results.get("crashed"):
        results.update(valid="unknown", explanation=f"the test stopped: {results['crashed']}")
    else:
        results.update(analyse(run.history.events, str(run.history.path),
                               run.options.check_budget))
        results["availability"] = _availability(run)
    run.dir.write_json("results.json", results)
    try:
        report.render_run(run.dir)
    except Exception:  # the verdict is already stored
        error = traceback.format_exc()
        run.log("the report could not be rendered: a plain page holds the verdict", error)
        report.fallback(run.dir, results, error)
    try:
        store.link_latest(run.dir, run.options.store)
    except OSError as exc:
        run.log(f"could not update the latest links: {exc}")
    return Finished(run.dir, results)


def _availability(run: _Run) -> dict[str, Any] | None:
    """The availability table of the run; None, logged, if it cannot be made."""
    if db_of(run.spec).name != DEFAULT_DB:  # it judges kvctl's replication groups
        return None
    try:
        return availability.of_run(run.dir.read_json("test.json"), run.history.events,
                                   str(run.history.path))
    except (ValueError, KeyError, TypeError) as exc:
        run.log(f"no availability table: {exc!r}", traceback.format_exc())
        return None


def analyse(events: list[dict[str, Any]], source: str, budget: float) -> dict[str, Any]:
    """The checker's verdict, the invalid keys' linearizations for their timelines, and the
    run's figures: what results.json holds besides the run's own notes."""
    history = History.from_events(events, source=source)
    started = time.monotonic()
    result = check(history, budget=budget, full=True)
    seconds = round(time.monotonic() - started, 3)
    model = next(m for m in MODELS if m.name == result.model)
    keys: list[dict[str, Any]] = []
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
