"""Membership changes of a running cluster: which groups move where, and moving them.

A plan is a list of (group, new members) computed from the cluster's current configurations
(the nodes' `topology`). Each change is one StopSign decided in the group's log; the next
configuration starts from the state after it, and a new member catches up from a snapshot.
Changes run one group at a time, and each waits until its new configuration serves, so a
majority of every group stays available throughout.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from kvctl.client import Client, ClientError
from kvctl.control.backend import Backend, ClusterSpec, NodeSpec, save_spec
from kvctl.control.ready import probe_keys
from kvctl.node.placement import Placement

Plan = list[tuple[int, list[str]]]
Configs = dict[int, tuple[int, list[str]]]  # group -> (configuration id, members)


def current_configs(views: Iterable[dict[str, Any]]) -> Configs:
    """The newest configuration of every group among the nodes' views."""
    configs: Configs = {}
    for view in views:
        for group, (cid, members) in view["configs"].items():
            if int(group) not in configs or cid > configs[int(group)][0]:
                configs[int(group)] = (cid, list(members))
    return configs


def _load(configs: Configs, nodes: list[str]) -> Counter[str]:
    load: Counter[str] = Counter({n: 0 for n in nodes})
    for _, members in configs.values():
        load.update(members)
    return load


def plan_add(configs: Configs, new: str, nodes: list[str]) -> Plan:
    """Give `new` its fair share of replicas, taken from the most loaded nodes."""
    load = _load(configs, [*nodes, new])
    share = sum(len(m) for _, m in configs.values()) // len(load)
    plan: Plan = []
    for group, (_, members) in sorted(configs.items()):
        if load[new] >= share:
            break
        if new in members:
            continue
        busiest = max(members, key=lambda m: (load[m], m))
        if load[busiest] <= load[new] + 1:
            continue
        plan.append((group, [new if m == busiest else m for m in members]))
        load[busiest] -= 1
        load[new] += 1
    return plan


def plan_remove(configs: Configs, leaving: str, candidates: list[str]) -> Plan:
    """Move every replica of `leaving` to the least loaded candidate outside the group."""
    load = _load(configs, candidates)
    plan: Plan = []
    for group, (_, members) in sorted(configs.items()):
        if leaving not in members:
            continue
        outside = [c for c in candidates if c not in members and c != leaving]
        if outside:
            target = min(outside, key=lambda c: (load[c], c))
            load[target] += 1
            plan.append((group, [target if m == leaving else m for m in members]))
        elif len(members) > 1:
            plan.append((group, [m for m in members if m != leaving]))  # the group shrinks
        else:
            raise ValueError(f"group {group} has no other node to move to")
    return plan


def plan_replace(configs: Configs, dead: str, new: str) -> Plan:
    return [
        (group, [new if m == dead else m for m in members])
        for group, (_, members) in sorted(configs.items())
        if dead in members
    ]


async def views(client: Client, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Every answering node's topology, by node name (empty if none answers)."""
    found = {}
    for name in nodes:
        try:
            found[name] = await client.topology(name)
        except ClientError:
            continue
    return found


async def apply_plan(
    client: Client, plan: Plan, addresses: dict[str, str], timeout: float = 60.0
) -> None:
    """Reconfigure each group in turn; return once each new configuration serves."""
    for group, members in plan:
        await client.reconfigure(group, members, addresses)
        await _serving(client, group, timeout)


async def _serving(client: Client, group: int, timeout: float) -> None:
    topo = await client.topology()
    placement = Placement(tuple(topo["nodes"]), topo["groups"], topo["replication"])
    key = probe_keys(placement)[group]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.read(key)
            return
        except ClientError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


def next_name(spec: ClusterSpec) -> str:
    numbers = [int(n.name[1:]) for n in spec.nodes if n.name[1:].isdigit()]
    return f"n{max(numbers, default=0) + 1}"


def start_node(spec: ClusterSpec, backend: Backend, name: str | None = None) -> ClusterSpec:
    """Start one more node (a member of no group yet); save and return the grown spec."""
    name = name or next_name(spec)
    if any(n.name == name for n in spec.nodes):
        raise ValueError(f"a node named {name!r} already exists")
    spec.add_node(NodeSpec(name, "", 0))
    spec = backend.add(spec, name)
    save_spec(spec)
    return spec
