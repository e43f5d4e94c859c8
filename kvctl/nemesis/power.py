"""Power loss: nodes are SIGKILLed and lose what their disk had not synced; they restart later.

A SIGKILL alone loses nothing a process wrote, because the kernel's page cache outlives it, so
a store that acknowledges before it fsyncs looks correct under `kill`. Here each node's data
directory is a lazy filesystem (kvctl.lazyfs) and the fault first tells it, through
`Backend.exec`, to forget every unsynced write and directory entry (or, torn, to keep a random
prefix of them), and only then kills the node. A minority, a majority or every node loses power
at once; stop restarts them. The disk faults share this shape: `corrupt` is the other one.

Every node should lose power at least once a run, and random victims leave some node untouched
in a short run, so the cuts are spread: the schedule says how many starts power will get, each
cut takes nodes not yet cut before the others, and takes enough of them (a larger share, never
a mislabelled one) that the starts left can still reach the rest. The run's results say which
nodes lost power how often, and name any that never did (another fault held it, a cut failed).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kvctl.control.backend import BackendError
from kvctl.nemesis.fault import Context, NemesisError, Value
from kvctl.nemesis.process import NodeFault

SHARES = ("minority", "majority", "all")
MOUNT_WAIT = 30.0  # a node restarted a moment ago may still be mounting its filesystem


def lazyfs(command: str, *args: str) -> list[str]:
    """The argv of a lazyfs command on a node."""
    return ["python3", "-m", "kvctl.lazyfs", command, "--wait", f"{MOUNT_WAIT:g}", *args]


def lazyfs_mount(ctx: Context, fault: str) -> str:
    """Where the nodes' lazy filesystem is mounted; NemesisError if they run on a plain disk."""
    mount = ctx.spec.extra.get("lazyfs", "")
    if not mount.startswith("/"):
        raise NemesisError(
            f"{fault} needs each node's data on the lazy filesystem, and cluster "
            f"{ctx.spec.name!r} runs on a plain disk: `kvctl test --nemesis {fault}` starts "
            "its nodes that way on the docker backend (the containers then get /dev/fuse and "
            "SYS_ADMIN to mount it); other backends cannot run it yet"
        )
    return mount


class DiskFault(NodeFault, ABC):
    """Nodes lose (or damage) their disk through the lazy filesystem, then are SIGKILLed;
    stop restarts them (NodeFault's stop and heal)."""

    def __init__(self, ctx: Context, name: str) -> None:
        super().__init__(ctx, name, "kill", "start", lambda s: not s.running)
        self.mount = ""

    def check(self) -> None:
        self.mount = lazyfs_mount(self.ctx, self.name)

    @abstractmethod
    def targets(self) -> tuple[str, list[str]]:
        """How the victims were chosen, and who they are."""

    @abstractmethod
    def disk_command(self, node: str) -> list[str]:
        """The lazyfs command that takes `node`'s disk."""

    def start(self) -> Value:
        how, nodes = self.targets()
        if not nodes:
            raise NemesisError(f"no node free for {self.name}: other faults hold them all")
        commands = {node: self.disk_command(node) for node in nodes}
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:  # as close to at once as we can
            disks = dict(zip(nodes, pool.map(self._run, nodes, commands.values()), strict=True))
        errors = {node: disk["error"] for node, disk in disks.items() if "error" in disk}
        for node in nodes:
            problem = self._power_off(node)
            if problem:
                errors[node] = problem
            self.ctx.held[node] = self.name
        self.victims = list(nodes)
        summary = self.summarize(nodes, disks)
        value: Value = {"targets": how, "nodes": nodes, "disks": disks, "summary": summary}
        if errors:
            value["errors"] = errors
            value["summary"] += f" (failed on {', '.join(sorted(errors))})"
        return value

    @abstractmethod
    def summarize(self, nodes: list[str], disks: dict[str, Value]) -> str:
        """One line for people: what the fault did to the nodes' disks."""

    def _power_off(self, node: str) -> str | None:
        """SIGKILL the node; why not, if it still runs. A node often stops on its own first,
        at its next write to the dead disk, and may do so while it is being killed."""
        try:
            self._call("kill", node)
            return None
        except BackendError as exc:
            try:
                running = {s.name: s.running for s in self.ctx.backend.status(self.ctx.spec)}
            except BackendError:
                running = {}
            return f"kill: {exc}" if running.get(node, True) else None

    def _run(self, node: str, argv: list[str]) -> Value:
        """Run a lazyfs command on a node; its JSON answer, or {"error": why}."""
        try:
            result = self.ctx.backend.exec(self.ctx.spec, node, argv)
        except BackendError as exc:
            return {"error": str(exc)}
        # The answer counts whatever the exit status: once the disk is gone the node stops,
        # its container with it, and the command is killed (137) just after it answered.
        lines = result.output.strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if lines else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return {"error": f"exit {result.exit_code}: {result.output.strip()[-300:]}"}
        return answer


def share_sizes(share: str, total: int) -> tuple[int, int]:
    """How many of `total` nodes a share may take, at the least and at the most."""
    if share == "minority":
        return 1, max(1, (total - 1) // 2)
    if share == "majority":
        return total // 2 + 1, total
    return total, total


class Power(DiskFault):
    """A minority, a majority or every node loses power; unsynced writes are forgotten or, half
    the time, torn (a random prefix survives). Nodes not yet cut go first."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, "power")
        self.losses: Counter[str] = Counter()  # node -> times it lost power this run
        self.starts_left: int | None = None  # starts the schedule still holds, once told

    def planned(self, starts: int) -> None:
        """The schedule will start this fault `starts` times (see kvctl.nemesis.schedule)."""
        self.starts_left = starts

    def targets(self) -> tuple[str, list[str]]:
        free, total = self.ctx.free(), len(self.ctx.nodes)
        need = self._need()
        if self.starts_left:
            self.starts_left -= 1
        drawn = SHARES.index(self.rng.choice(SHARES))
        # the drawn share, or the next larger one that can take what the remaining starts need
        share = next(s for s in SHARES[drawn:] if share_sizes(s, total)[1] >= need)
        low, high = share_sizes(share, total)
        size = self.rng.randint(max(low, need), high)
        fresh = [node for node in free if not self.losses[node]]
        cut = [node for node in free if self.losses[node]]
        order = self.rng.sample(fresh, len(fresh)) + self.rng.sample(cut, len(cut))
        return share, sorted(order[:size])

    def _need(self) -> int:
        """Nodes this cut must take so that the starts left (this one too) can each take as
        many and reach every node not cut yet; 0 when the schedule did not say."""
        if not self.starts_left:
            return 0
        uncut = sum(1 for node in self.ctx.nodes if not self.losses[node])
        return -(-uncut // self.starts_left)

    def start(self) -> Value:
        value = super().start()
        failed = value.get("errors", {})
        self.losses.update(node for node in value["nodes"] if node not in failed)
        return value

    def coverage(self) -> Value:
        """Which nodes lost power how many times this run, and which never did."""
        nodes = list(dict.fromkeys([*self.ctx.nodes, *self.losses]))
        return {"losses": {node: self.losses[node] for node in nodes},
                "never": [node for node in nodes if not self.losses[node]]}

    def disk_command(self, node: str) -> list[str]:
        if self.rng.random() < 0.5:
            return lazyfs("crash", self.mount)
        return lazyfs("crash", "--torn", "--seed", str(self.rng.randrange(1 << 31)), self.mount)

    def summarize(self, nodes: list[str], disks: dict[str, Value]) -> str:
        lost = sum(d.get("lost_bytes", 0) for d in disks.values())
        undone = sum(d.get("undone_entries", 0) for d in disks.values())
        torn = [n for n, d in disks.items() if d.get("torn")]
        text = f"power cut {','.join(nodes)}: {lost} unsynced bytes and {undone} entries lost"
        return text + (f", torn on {','.join(torn)}" if torn else "")


def coverage_line(coverage: Value) -> str:
    """The coverage in words, for the run's summary: a node that never lost power is named."""
    counts = ", ".join(f"{node} {times}x" for node, times in coverage["losses"].items())
    if coverage["never"]:
        return f"power lost: {counts}; NEVER lost power: {', '.join(coverage['never'])}"
    return f"power lost: {counts}; every node lost power at least once"
