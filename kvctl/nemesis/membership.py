"""The membership fault: groups change configuration while the workload runs.

Start takes one member out of every group it belongs to: it is replaced by a running node
that belongs to no group, if there is one, or else its replicas move to the least loaded
other nodes. Stop brings every running non-member back in, with its fair share of replicas.
Over a run that adds, removes and replaces nodes, each change a StopSign in each group's log.
The node taken out keeps running (it is not killed), so kill and pause compose with this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from kvctl.client import Client, ClientError
from kvctl.control.membership import (
    Configs,
    Plan,
    apply_plan,
    current_configs,
    plan_add,
    plan_remove,
    plan_replace,
    views,
)
from kvctl.nemesis.fault import Context, NemesisError, Value

T = TypeVar("T")


class Membership:
    name: ClassVar[str] = "membership"
    stage: ClassVar[int] = 2  # healed last: moving groups needs the nodes up and connected

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = ctx.rng_for(self.name)

    def check(self) -> None:
        if len(self.ctx.nodes) <= self.ctx.spec.replication:
            raise NemesisError(
                f"membership needs more nodes than the replication factor "
                f"({len(self.ctx.nodes)} <= {self.ctx.spec.replication}) so that a group "
                "can move to a node outside it: use --nodes 5"
            )

    def start(self) -> Value:
        configs, reachable = survey(self.ctx)
        members = sorted({m for _, ms in configs.values() for m in ms})
        free = [n for n in self.ctx.free() if n in reachable]
        leaving = [n for n in members if n in free]
        if not leaving:
            raise NemesisError("no member is free to take out: other faults hold them all")
        node = self.rng.choice(leaving)
        spares = [n for n in free if n not in members]
        if spares:
            spare = self.rng.choice(spares)
            plan, summary = plan_replace(configs, node, spare), f"replace {node} by {spare}"
        else:
            others = [n for n in free if n != node]
            plan, summary = plan_remove(configs, node, others), f"remove {node}"
        apply(self.ctx, plan)
        return {"node": node, "plan": show(plan), "summary": summary}

    def stop(self) -> Value:
        configs, reachable = survey(self.ctx)
        members = {m for _, ms in configs.values() for m in ms}
        joining = [n for n in self.ctx.free() if n in reachable and n not in members]
        plan: Plan = []
        for node in joining:
            step = plan_add(configs, node, sorted(members))
            for group, new in step:
                configs[group] = (configs[group][0] + 1, new)
            members.add(node)
            plan += step
        apply(self.ctx, plan)
        return {"nodes": joining, "plan": show(plan), "summary": f"add {','.join(joining)}"}

    def heal(self) -> Value:
        """Bring every running node that belongs to no group back in."""
        return self.stop()

    def refresh(self) -> None:
        """Nothing to re-assert: a configuration, once decided, stays."""



def survey(ctx: Context) -> tuple[Configs, set[str]]:
    """The groups' current configurations, and the nodes that answered."""

    async def ask(client: Client) -> tuple[Configs, set[str]]:
        found = await views(client, ctx.nodes)
        if not found:
            raise NemesisError("no node answers: membership cannot change now")
        return current_configs(found.values()), set(found)

    return _with_client(ctx, ask)


def apply(ctx: Context, plan: Plan) -> None:
    """Reconfigure the groups of `plan`, each until its new configuration serves."""
    addresses = _addresses(ctx)

    async def act(client: Client) -> None:
        await apply_plan(client, plan, addresses, timeout=30)

    _with_client(ctx, act)


def move_out(ctx: Context, node: str, candidates: list[str]) -> Plan:
    """Move every replica of `node` to the least loaded of `candidates` (a node that is gone
    for good: the groups get back to full strength without it); the plan carried out."""
    configs, _ = survey(ctx)
    plan = plan_remove(configs, node, candidates)
    apply(ctx, plan)
    return plan


def _addresses(ctx: Context) -> dict[str, str]:
    return {n.name: n.address for n in ctx.spec.nodes}


def _with_client(ctx: Context, action: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Client(_addresses(ctx), timeout=10) as client:
            return await action(client)

    try:
        return asyncio.run(main())
    except ClientError as exc:
        raise NemesisError(f"membership change failed: {exc}") from exc


def show(plan: Plan) -> list[list[object]]:
    return [[group, members] for group, members in plan]
