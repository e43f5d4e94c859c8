"""Several faults as one nemesis: one action at a time, every action recorded, a final heal.

Actions are serialized (Jepsen's nemesis is one process too), so faults that share nodes see
each other's effects in order; after each action every fault re-asserts its state on nodes
that came back. Backend calls block, so they run in a worker thread with a time limit, and a
failed action is recorded with its error instead of stopping the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from kvctl.control.backend import BackendError
from kvctl.nemesis.fault import Fault, NemesisError, Value

ACTION_TIMEOUT = 60.0

Record = Callable[[str, Value], None]


class Nemesis:
    """The faults of one run, composed."""

    def __init__(self, faults: Sequence[Fault], record: Record, notes: Sequence[str] = ()) -> None:
        self.faults = list(faults)
        self.record = record
        self.notes = list(notes)  # faults left out of `all`, and why
        self.active: dict[str, str] = {}  # fault name -> what it is doing now
        self._lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.faults]

    async def act(self, fault: Fault, verb: str, record: bool = True) -> Value:
        """Run `verb` (start, stop or heal) of one fault and record it as `<verb>-<name>`."""
        async with self._lock:
            try:
                value = await asyncio.wait_for(
                    asyncio.to_thread(self._run, fault, verb), ACTION_TIMEOUT
                )
            except (NemesisError, BackendError) as exc:
                value = {"error": str(exc), "summary": f"{verb} {fault.name} failed: {exc}"}
            except TimeoutError:
                value = {
                    "error": f"no answer in {ACTION_TIMEOUT:.0f} s",
                    "summary": f"{verb} {fault.name} timed out",
                }
            if verb == "start" and "error" not in value:
                self.active[fault.name] = str(value.get("summary", fault.name))
            elif verb != "start":
                self.active.pop(fault.name, None)
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

    def _run(self, fault: Fault, verb: str) -> Value:
        value: Value = getattr(fault, verb)()
        for other in self.faults:
            other.refresh()
        return value
