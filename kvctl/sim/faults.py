"""The fault menu of the simulator, all drawn from the world's seeded generator.

Besides clean splits it builds the three partial-connectivity cases of the Omni-Paxos paper:
quorum-loss and constrained election (only one node, the hub, reaches a majority) and the
chained case (a line: the middle node reaches both ends, the ends not each other).
"""

from __future__ import annotations

from itertools import pairwise, permutations

from kvctl.sim.world import World

ADMIN_CLIENT = 1  # the operator's client id; workload clients draw 62-bit random ids


def _only_links(nodes: list[str], links: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every directed link cut except `links` (both directions) and self-links."""
    keep = {(a, b) for a, b in links} | {(b, a) for a, b in links}
    return {(a, b) for a, b in permutations(nodes, 2) if (a, b) not in keep}


def split(nodes: list[str], side: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in permutations(nodes, 2) if (a in side) != (b in side)}


def star(nodes: list[str], hub: str, isolated: list[str]) -> set[tuple[str, str]]:
    """Only hub-leaf links survive (quorum-loss); `isolated` leaves lose the hub too."""
    return _only_links(nodes, [(hub, n) for n in nodes if n != hub and n not in isolated])


def chain(nodes: list[str]) -> set[tuple[str, str]]:
    """A line through the nodes in this order."""
    return _only_links(nodes, list(pairwise(nodes)))


class Nemesis:
    """Every `period` ms: change the partition, crash or restart a node, or change loss."""

    def __init__(self, world: World, proposed: set[tuple[int, int]], period_ms: int = 250) -> None:
        self.world = world
        self.proposed = proposed  # (client id, seq) of every request sent, for validity
        self.admin_seq = 0
        self.period_ms = period_ms
        self.active = True

    def start(self) -> None:
        self.world.after(self.period_ms, self._step)

    def _reconfigure(self) -> str:
        """Replace one member of a random group by a node outside it (an admin request)."""
        rng = self.world.rng
        group = rng.randrange(self.world.placement.groups)
        views = [n.core.configs[group] for n in self.world.nodes.values() if n.core]
        if not views:
            return "no node up"
        config = max(views, key=lambda c: c.id)
        outside = [n for n in self.world.nodes_all if n not in config.members]
        if not outside:
            return "no node outside the group"
        members = list(config.members)
        members[rng.randrange(len(members))] = rng.choice(outside)
        self.admin_seq += 1
        self.proposed.add((ADMIN_CLIENT, self.admin_seq))
        request = (
            -self.admin_seq,
            "reconfigure",
            group,
            tuple(members),
            tuple((m, m) for m in members),
            ADMIN_CLIENT,
            self.admin_seq,
        )
        self.world.request(ADMIN_CLIENT, rng.choice(self.world.nodes_all), request)
        return f"group {group} config {config.id} {list(config.members)} -> {members}"

    def heal(self) -> None:
        """End of the fault phase: a clean network and every node up."""
        self.active = False
        net = self.world.net
        net.blocked = set()
        net.loss = net.duplicate = 0.0
        for node in self.world.nodes.values():
            if not node.up:
                node.start()
        self.world.log("heal: all links up, all nodes running, no loss")

    def _step(self) -> None:
        if not self.active:
            return
        rng = self.world.rng
        nodes = list(self.world.nodes_all)
        net = self.world.net
        action = rng.choice(
            [
                "reconfigure",
                "split",
                "isolate",
                "quorum-loss",
                "constrained",
                "chain",
                "heal-net",
                "crash",
                "restart",
                "loss",
                "crash",
            ]
        )
        if action == "split":
            side = rng.sample(nodes, rng.randint(1, len(nodes) // 2))
            net.blocked = split(nodes, side)
            detail = f"minority {side}"
        elif action == "isolate":
            victim = rng.choice(nodes)
            net.blocked = split(nodes, [victim])
            detail = victim
        elif action in ("quorum-loss", "constrained"):
            hub = rng.choice(nodes)
            others = [n for n in nodes if n != hub]
            isolated = [rng.choice(others)] if action == "constrained" else []
            net.blocked = star(nodes, hub, isolated)
            detail = f"hub {hub}, isolated {isolated}"
        elif action == "chain":
            order = rng.sample(nodes, len(nodes))
            net.blocked = chain(order)
            detail = "-".join(order)
        elif action == "heal-net":
            net.blocked = set()
            detail = ""
        elif action == "crash":
            up = [n for n in nodes if self.world.nodes[n].up]
            victim = rng.choice(up) if up else None
            if victim:
                self.world.nodes[victim].power_cut(torn=rng.random() < 0.5)
            detail = str(victim)
        elif action == "restart":
            down = [n for n in nodes if not self.world.nodes[n].up]
            for name in down:
                self.world.nodes[name].start()
            detail = ",".join(down)
        elif action == "reconfigure":
            detail = self._reconfigure()
        else:
            net.loss = rng.choice([0.0, 0.05, 0.2])
            net.duplicate = rng.choice([0.0, 0.05])
            detail = f"loss {net.loss}, duplicate {net.duplicate}"
        self.world.log(f"nemesis {action} {detail}")
        self.world.after(rng.randint(self.period_ms // 2, self.period_ms * 2), self._step)
