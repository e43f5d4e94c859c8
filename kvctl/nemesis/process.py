"""Faults that take whole nodes out: kill (SIGKILL, restart later) and pause (freeze, resume).

Both are one shape, a pair of Backend verbs, so they are two values of one class. Targets are
drawn from the nodes no other fault holds: a frozen container cannot be killed and resumed
cleanly, and a dead one cannot be frozen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from kvctl.control.backend import BackendError, ClusterSpec, NodeStatus
from kvctl.nemesis.fault import Context, NemesisError, Value


class NodeFault:
    """Take nodes out with `take` on start and bring them back with `give` on stop."""

    stage: ClassVar[int] = 0

    def __init__(
        self,
        ctx: Context,
        name: str,
        take: str,
        give: str,
        out: Callable[[NodeStatus], bool],
    ) -> None:
        self.ctx = ctx
        self.name = name
        self.rng = ctx.rng_for(name)
        self._take = take
        self._give = give
        self._out = out  # whether a node's status shows it out in this fault's way
        self.victims: list[str] = []

    def check(self) -> None:
        if len(self.ctx.nodes) < 2:
            raise NemesisError(f"{self.name} needs at least two nodes (one must stay up)")

    def start(self) -> Value:
        how, nodes = self.ctx.pick(self.ctx.free(), self.rng)
        if not nodes:
            raise NemesisError(f"no node free to {self.name}: other faults hold them all")
        done: list[str] = []
        for node in nodes:
            try:
                self._call(self._take, node)
            except BackendError as exc:
                self._release(done)
                raise NemesisError(f"{self._take} {node}: {exc}") from exc
            self.ctx.held[node] = self.name
            done.append(node)
        self.victims = done
        return {"targets": how, "nodes": done, "summary": f"{self.name} {','.join(done)}"}

    def stop(self) -> Value:
        nodes, self.victims = self.victims, []
        failed = self._release(nodes)
        if failed:
            raise NemesisError(f"{self._give} failed on {'; '.join(failed)}")
        return {"nodes": nodes, "summary": f"{self._give} {','.join(nodes) or 'nothing'}"}

    def heal(self) -> Value:
        """Bring back every node that is out in this fault's way, ours or not."""
        try:
            statuses = self.ctx.backend.status(self.ctx.spec)
        except BackendError as exc:
            raise NemesisError(f"cannot read the nodes' status: {exc}") from exc
        out = [s.name for s in statuses if self._out(s)]
        self.victims = []
        failed = self._release(out)
        if failed:
            raise NemesisError(f"{self._give} failed on {'; '.join(failed)}")
        return {"nodes": out, "summary": f"{self._give}: {','.join(out) or 'nothing to do'}"}

    def refresh(self) -> None:
        """Nothing to re-assert: a node out stays out until stop."""

    def _release(self, nodes: list[str]) -> list[str]:
        failed = []
        for node in nodes:
            try:
                self._call(self._give, node)
            except BackendError as exc:
                failed.append(f"{node}: {exc}")
                continue
            self.ctx.held.pop(node, None)
            self.ctx.came_back(node)
        return failed

    def _call(self, verb: str, node: str) -> None:
        action: Callable[[ClusterSpec, str], None] = getattr(self.ctx.backend, verb)
        action(self.ctx.spec, node)


def kill(ctx: Context) -> NodeFault:
    """SIGKILL a node; restart it from its data on stop."""
    return NodeFault(ctx, "kill", "kill", "start", lambda s: not s.running)


def pause(ctx: Context) -> NodeFault:
    """Freeze a node (SIGSTOP, or docker's cgroup freezer); resume it on stop."""
    return NodeFault(ctx, "pause", "pause", "resume", lambda s: s.running and s.paused)
