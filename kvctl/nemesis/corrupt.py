"""Corruption at rest: while a node is down, bits flip in its data file or its tail is cut off.

On one node (or a group's leader), the fault freezes the lazy filesystem (nothing
is lost: the disk keeps what the page cache held), damages one data file beneath it, kills the
node and, on stop, restarts it. Unlike a torn write, this damages data that was synced and may
have been acknowledged, so a store must notice it and refuse to start rather than serve from a
silently shortened log. Stop says which restarted nodes refused, and repairs the cluster as
the README tells a user to: each refused node's replicas move to the other nodes through
reconfiguration (kvctl's store is the one whose files this fault knows), so its groups are back
at full strength and a later fault cannot take their majority by cutting one more node.
"""

from __future__ import annotations

import socket
import time
from typing import ClassVar

from kvctl.control.backend import BackendError
from kvctl.nemesis.fault import Context, NemesisError, Value
from kvctl.nemesis.membership import move_out
from kvctl.nemesis.power import DiskFault, lazyfs

MODES = ("flip", "truncate")
DATA_FILES = ("wal.log",)  # kvctl's own store; a store's module will name its own files
STARTED_TIMEOUT = 15.0


class Corrupt(DiskFault):
    """Flip bits in, or cut the tail of, one data file of each victim while it is down."""

    # Healed after partitions (1): a repair that failed while the network was cut is tried
    # again then, with every other node reachable.
    stage: ClassVar[int] = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, "corrupt")
        self.unrepaired: list[str] = []

    def targets(self) -> tuple[str, list[str]]:
        """One node (a random one or a group's leader), and only while the cluster can lose
        it for good: a node whose data is damaged refuses to start and stays out. Two at once,
        or one before the last is repaired, could be a majority of one group's replicas (on a
        ring of five with three replicas every two nodes share a group), which no store
        survives; and the nodes lost over the whole run stay a minority."""
        lost = sum(1 for fault in self.ctx.held.values() if fault == self.name)
        if lost >= (len(self.ctx.nodes) - 1) // 2:
            raise NemesisError(
                f"{lost} of {len(self.ctx.nodes)} nodes already lost to corruption: another "
                "would leave no majority to repair the cluster with"
            )
        if self.unrepaired:
            raise NemesisError(
                f"{', '.join(self.unrepaired)} not repaired yet: another damaged node could be "
                "a majority of one group's replicas"
            )
        how, nodes = self.ctx.pick(self.ctx.free(), self.rng)
        return ("one", nodes[:1]) if how == "minority" else (how, nodes)

    def disk_command(self, node: str) -> list[str]:
        files = [arg for name in DATA_FILES for arg in ("--file", name)]
        mode, seed = self.rng.choice(MODES), self.rng.randrange(1 << 31)
        return lazyfs("corrupt", "--mode", mode, "--seed", str(seed), *files, self.mount)

    def summarize(self, nodes: list[str], disks: dict[str, Value]) -> str:
        done = [
            f"{node} {disk['file']} ({_what(disk)})"
            for node, disk in disks.items()
            if "file" in disk
        ]
        return f"corrupt {', '.join(done) or 'nothing'}"

    def stop(self) -> Value:
        value = super().stop()
        refused = self._refused(value["nodes"])
        for node in refused:  # out for the rest of the run: other faults leave it alone
            self.ctx.held[node] = self.name
        if refused:
            value["refused"] = refused
            value["summary"] += f"; refused to start: {', '.join(refused)}"
            self._repair_all(refused, value)
        return value

    def heal(self) -> Value:
        """Restart what is down, and try again the repairs that failed."""
        value = super().heal()
        if self.unrepaired:
            self._repair_all(self.unrepaired, value)
        return value

    def _repair_all(self, nodes: list[str], value: Value) -> None:
        value["repaired"] = {node: self._repair(node) for node in nodes}
        value["summary"] += "".join(
            f"; {node}'s replicas {how}" for node, how in value["repaired"].items()
        )

    def _repair(self, node: str) -> str:
        """Move `node`'s replicas to the nodes no fault holds; what happened, in words."""
        if node in self.unrepaired:
            self.unrepaired.remove(node)
        try:
            plan = move_out(self.ctx, node, self.ctx.free())
        except (NemesisError, ValueError) as exc:
            self.unrepaired.append(node)
            return f"could not be moved (tried again at the heal): {exc}"
        moved = ", ".join(f"group {group} to {','.join(members)}" for group, members in plan)
        return f"moved ({moved or 'it had none'})"

    def _refused(self, nodes: list[str]) -> list[str]:
        """The restarted nodes that exited instead of listening (waits until each does one)."""
        waiting, refused = set(nodes), []
        deadline = time.monotonic() + STARTED_TIMEOUT
        while waiting and time.monotonic() < deadline:
            try:
                statuses = {s.name: s for s in self.ctx.backend.status(self.ctx.spec)}
            except BackendError:
                break
            for node in sorted(waiting):
                if not statuses[node].running:
                    refused.append(node)
                    waiting.discard(node)
                elif _listening(self.ctx.spec.node(node).host, self.ctx.spec.node(node).port):
                    waiting.discard(node)
            if waiting:
                time.sleep(0.2)
        return refused


def _what(disk: Value) -> str:
    if disk.get("mode") == "flip":
        return f"{len(disk.get('offsets', []))} bits flipped"
    return f"cut from {disk.get('size')} to {disk.get('cut_to')} bytes"


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
