"""A power run's summary, with a cluster that runs nothing: results.json and the lines the run
says name how often each node lost power (and any that never did), and how many keys the
final reads reached."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kvctl import runner
from kvctl.control.backend import ClusterSpec
from tests.harness.fakes import spec_of
from tests.lazyfs.test_faults import MOUNT, LazyBackend


class LoggedLazyBackend(LazyBackend):
    def logs(self, spec: ClusterSpec, node: str, follow: bool = False) -> Iterator[str]:
        yield f"{node} was here"


@pytest.fixture
def lazy_run(kvctl_home, monkeypatch: pytest.MonkeyPatch) -> LazyBackend:
    """Runs on three fake nodes on the lazy filesystem; no client calls anything."""
    backend = LoggedLazyBackend()
    spec = spec_of(3, "fake")
    spec.extra["lazyfs"] = MOUNT
    monkeypatch.setattr(runner, "provision", lambda *args, **kwargs: (spec, True))
    monkeypatch.setattr(runner, "get_backend", lambda name: backend)
    monkeypatch.setattr(runner, "_take_down", lambda *args: None)

    async def nothing(self, deadline: float) -> list[str]:
        return []

    monkeypatch.setattr(runner.RegisterWorkload, "run", nothing)
    monkeypatch.setattr(runner.RegisterWorkload, "final_reads", nothing)
    return backend


def power_run(seed: int) -> tuple[runner.Finished, list[str]]:
    said: list[str] = []
    options = runner.TestOptions(backend="docker", nemesis="power", time_limit=1.0,
                                 interval=0.1, concurrency=2, recovery=0.3, check_budget=5.0,
                                 seed=seed)
    return runner.run_test(options, said.append), said


def test_a_power_run_says_how_often_each_node_lost_power(lazy_run: LazyBackend) -> None:
    finished, said = power_run(seed=5)
    stored = json.loads(finished.run.file("results.json").read_text())
    coverage = stored["power"]
    assert coverage["never"] == [] and set(coverage["losses"]) == {"n1", "n2", "n3"}
    cuts = sum(1 for _, argv in lazy_run.argvs if "crash" in argv)
    assert sum(coverage["losses"].values()) == cuts > 0
    assert any("every node lost power at least once" in line for line in said)
    assert "final reads: 1 of 1 keys read after the heal" in said
    assert "every node lost power at least once" in finished.run.file("index.html").read_text()


def test_a_node_whose_power_was_never_cut_is_named(lazy_run: LazyBackend) -> None:
    lazy_run.broken.add("n2")  # its lazy filesystem never answers
    finished, said = power_run(seed=5)
    assert finished.results["power"]["never"] == ["n2"]
    assert any(line.endswith("NEVER lost power: n2") for line in said)
