"""The runner's order, with a cluster that runs nothing: the history is closed, then the node
logs are collected, then the cluster is taken down; the verdict is stored before the report
is rendered; the faults are healed exactly once, whether the run ends or stops."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kvctl import runner, store
from kvctl.control.backend import ClusterSpec

from .fakes import FakeBackend, spec_of


@dataclass
class Witness:
    """What the run did, in order."""

    order: list[str] = field(default_factory=list)


class LoggedBackend(FakeBackend):
    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]:
        WITNESS.order.append(f"logs {node}")
        yield f"{node} was here"


WITNESS = Witness()


@pytest.fixture
def witnessed(kvctl_home, monkeypatch) -> Witness:
    WITNESS.order.clear()
    backend = LoggedBackend()
    spec = spec_of(3, "fake")
    monkeypatch.setattr(runner, "provision", lambda *args, **kwargs: (spec, True))
    monkeypatch.setattr(runner, "get_backend", lambda name: backend)
    monkeypatch.setattr(runner, "_take_down",
                        lambda *args: WITNESS.order.append("teardown") or None)
    close = store.HistoryWriter.close
    monkeypatch.setattr(store.HistoryWriter, "close",
                        lambda self: (WITNESS.order.append("history closed"), close(self)))
    render = runner.report.render_run

    def render_run(run_dir: store.RunDir) -> None:
        verdict = json.loads(run_dir.file("results.json").read_text())["valid"]
        WITNESS.order.append(f"report of a stored verdict: {verdict}")
        render(run_dir)

    monkeypatch.setattr(runner.report, "render_run", render_run)

    async def no_final_reads(self, deadline: float) -> list[str]:
        return []  # no node runs: the operations would only wait out their timeouts

    monkeypatch.setattr(runner.RegisterWorkload, "run", no_final_reads)
    monkeypatch.setattr(runner.RegisterWorkload, "final_reads", no_final_reads)
    return WITNESS


def quick(**changes) -> runner.TestOptions:
    """A run of a second of faults, against nodes that do not exist."""
    base = dict(backend="docker", nemesis="kill", time_limit=1.0, interval=0.2,
                concurrency=2, recovery=0.3, check_budget=5.0, seed=5)
    return runner.TestOptions(**{**base, **changes})


def heals(finished: runner.Finished) -> list[str]:
    lines = finished.run.file(store.HISTORY).read_text().splitlines()
    return [e["f"] for e in map(json.loads, lines) if e["f"].startswith("heal-")]


def test_history_then_logs_then_teardown_then_verdict_then_report(witnessed):
    finished = runner.run_test(quick(), lambda text: None)
    assert witnessed.order == [
        "history closed", "logs n1", "logs n2", "logs n3", "teardown",
        "report of a stored verdict: True",
    ]
    assert heals(finished) == ["heal-kill"]
    assert finished.run.node_log("n2").read_text() == "n2 was here\n"


def test_a_run_that_stops_heals_once_and_keeps_the_order(witnessed, monkeypatch):
    async def broken(self, deadline: float) -> None:
        raise RuntimeError("the workload broke")

    monkeypatch.setattr(runner.RegisterWorkload, "run", broken)
    finished = runner.run_test(quick(), lambda text: None)
    assert finished.exit_code == 255 and "the workload broke" in finished.results["crashed"]
    assert heals(finished) == ["heal-kill"]
    assert witnessed.order[:5] == ["history closed", "logs n1", "logs n2", "logs n3", "teardown"]
    assert witnessed.order[5].startswith("report of a stored verdict: unknown")


def test_a_fault_this_cluster_cannot_have_takes_down_what_it_started(witnessed):
    with pytest.raises(runner.Refused, match="membership needs more nodes"):
        runner.run_test(quick(nemesis="membership"), lambda text: None)
    assert witnessed.order == ["teardown"]
    assert not store.ROOT.exists(), "refused before the store holds a run"
