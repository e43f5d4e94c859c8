"""Several faults as one nemesis: one action at a time, every action recorded, a final heal.

Actions are serialized (Jepsen's nemesis is one process too), so faults that share nodes see
each other's effects in order; after each action every fault re-asserts its state on nodes
that came back. Backend calls block, so they run in a worker thread with a time limit, and a
failed action is recorded with its error instead of stopping the test. A thread cannot be
stopped: an action that overstays its limit is recorded as timed out, shown as still running,
and the next action waits for it (again within the limit, or is skipped and says why), so two
actions never run at once. When it does return, its outcome is recorded too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvctl.control.backend import BackendError
from kvctl.nemesis.fault import Fault, NemesisError, Value

ACTION_TIMEOUT = 60.0

Record = Callable[[str, Value], None]


@dataclass
class _Straggler:
    """An action that overstayed its time limit and may still be running."""

    task: asyncio.Future[Value]
    fault: Fault
    verb: str


class Nemesis:
    """The faults of one run, composed."""

    def __init__(self, faults: Sequence[Fault], record: Record, notes: Sequence[str] = ()) -> None:
        self.faults = list(faults)
        self.record = record
        self.notes = list(notes)  # faults left out of `all`, and why
        self.active: dict[str, str] = {}  # fault name -> what it is doing now
        self._lock = asyncio.Lock()
        self._straggler: _Straggler | None = None
        self.heal_errors: list[str] = []  # of the heal on leaving `async with`

    async def __aenter__(self) -> Nemesis:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Faults act only inside `async with`: leaving it heals, recorded, exactly once,
        however the block ends (its end, an error, a cancellation)."""
        self.heal_errors = await self.heal()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.faults]

    async def act(self, fault: Fault, verb: str, record: bool = True) -> Value:
        """Run `verb` (start, stop or heal) of one fault and record it as `<verb>-<name>`."""
        async with self._lock:
            blocker = await self._wait_for_straggler(record)
            if blocker is not None:
                what = f"{blocker.verb} {blocker.fault.name}"
                value: Value = {"error": f"skipped: {what} has not returned",
                                "summary": f"{verb} {fault.name} skipped: {what} still runs"}
            else:
                began = asyncio.get_running_loop().time()
                value = await self._run_limited(fault, verb)
                # recorded when it returns: how long it took says when it began to act
                value["seconds"] = round(asyncio.get_running_loop().time() - began, 3)
            self._show(fault, verb, value)
            if record:
                self.record(f"{verb}-{fault.name}", value)
            return value

    async def heal(self, record: bool = True) -> list[str]:
        """Undo everything, nodes first, then the network; the errors, if any.

        Unrecorded, it is the setup: clearing what an earlier run that crashed left behind.
        """
        errors = []
        for fault in sorted(self.faults, key=lambda f: f.stage):
            value = await self.act(fault, "heal", record)
            if "error" in value:
                errors.append(f"{fault.name}: {value['error']}")
        return errors

    async def _run_limited(self, fault: Fault, verb: str) -> Value:
        task = asyncio.ensure_future(asyncio.to_thread(self._run, fault, verb))
        try:
            done, _ = await asyncio.wait({task}, timeout=ACTION_TIMEOUT)
        except asyncio.CancelledError:  # the thread runs on: the heal must wait for it
            self._straggler = _Straggler(task, fault, verb)
            raise
        if not done:
            self._straggler = _Straggler(task, fault, verb)
            return {"error": f"no answer in {ACTION_TIMEOUT:.0f} s", "timed_out": True,
                    "summary": f"{verb} {fault.name} timed out; it may still be running"}
        return _outcome(task, fault, verb)

    async def _wait_for_straggler(self, record: bool) -> _Straggler | None:
        """Wait (within the limit) for an action that timed out, and record how it ended;
        the action if it still runs."""
        late = self._straggler
        if late is None:
            return None
        done, _ = await asyncio.wait({late.task}, timeout=ACTION_TIMEOUT)
        if not done:
            return late
        self._straggler = None
        value = {**_outcome(late.task, late.fault, late.verb), "late": True}
        self._show(late.fault, late.verb, value)
        if record:
            self.record(f"{late.verb}-{late.fault.name}", value)
        return None

    def _show(self, fault: Fault, verb: str, value: Value) -> None:
        """Keep `active` true to what the faults are doing, timed-out actions included."""
        if value.get("timed_out"):
            self.active[fault.name] = f"{verb} timed out, still running"
        elif verb == "start" and "error" not in value:
            self.active[fault.name] = str(value.get("summary", fault.name))
        elif verb != "start" or value.get("late"):
            self.active.pop(fault.name, None)

    def _run(self, fault: Fault, verb: str) -> Value:
        value: Value = getattr(fault, verb)()
        for other in self.faults:
            other.refresh()
        return value


def _outcome(task: asyncio.Future[Value], fault: Fault, verb: str) -> Value:
    """A finished action's value, or its error as a value."""
    try:
        return task.result()
    except (NemesisError, BackendError) as exc:
        return {"error": str(exc), "summary": f"{verb} {fault.name} failed: {exc}"}
