"""The fault menu of the simulator, all drawn from the world's seeded generator.

Besides clean splits it builds the three partial-connectivity cases of the Omni-Paxos paper:
quorum-loss and constrained election (only one node, the hub, reaches a majority) and the
chained case (a line: the middle node reaches both ends, the ends not each other).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise, permutations

from kvctl.sim.world import DiskConditions, World

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
    """Every `period` ms or so: change the partition, loss or delays, crash, cut power to or
    restart nodes, slow a disk down, or reconfigure a group (`ACTIONS`)."""

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
        """End of the fault phase: a clean network, healthy disks and every node up."""
        self.active = False
        net = self.world.net
        net.blocked = set()
        net.loss = net.duplicate = net.long_tail = 0.0
        for node in self.world.nodes.values():
            node.disk = DiskConditions()
            node.cut_in_next_fsync = None
            if not node.up:
                node.start()
        self.world.log("heal: all links up, healthy disks, all nodes running, no loss")

    def _step(self) -> None:
        if not self.active:
            return
        rng = self.world.rng
        action = rng.choices(list(ACTIONS), [weight for weight, _ in ACTIONS.values()])[0]
        detail = ACTIONS[action][1](self)
        self.world.log(f"nemesis {action} {detail}")
        self.world.after(rng.randint(self.period_ms // 2, self.period_ms * 2), self._step)

    # -- the network ------------------------------------------------------------------------

    def _split(self) -> str:
        nodes = self.world.nodes_all
        side = self.world.rng.sample(nodes, self.world.rng.randint(1, len(nodes) // 2))
        self.world.net.blocked = split(nodes, side)
        return f"minority {side}"

    def _isolate(self) -> str:
        victim = self.world.rng.choice(self.world.nodes_all)
        self.world.net.blocked = split(self.world.nodes_all, [victim])
        return victim

    def _quorum_loss(self, isolate_one: bool = False) -> str:
        rng, nodes = self.world.rng, self.world.nodes_all
        hub = rng.choice(nodes)
        isolated = [rng.choice([n for n in nodes if n != hub])] if isolate_one else []
        self.world.net.blocked = star(nodes, hub, isolated)
        return f"hub {hub}, isolated {isolated}"

    def _constrained(self) -> str:
        return self._quorum_loss(isolate_one=True)

    def _chain(self) -> str:
        order = self.world.rng.sample(self.world.nodes_all, len(self.world.nodes_all))
        self.world.net.blocked = chain(order)
        return "-".join(order)

    def _heal_net(self) -> str:
        self.world.net.blocked = set()
        return ""

    def _loss(self) -> str:
        """Loss, duplication, and a long tail of delays that outlive restarts."""
        rng, net = self.world.rng, self.world.net
        net.loss = rng.choice([0.0, 0.05, 0.2])
        net.duplicate = rng.choice([0.0, 0.05])
        net.long_tail = rng.choice([0.0, 0.0, 0.005, 0.03])
        return f"loss {net.loss}, duplicate {net.duplicate}, long delays {net.long_tail}"

    # -- nodes and disks --------------------------------------------------------------------

    def _up(self) -> list[str]:
        return [n for n in self.world.nodes_all if self.world.nodes[n].up]

    def _crash(self) -> str:
        """The process dies; the page cache keeps what it wrote."""
        up = self._up()
        victim = self.world.rng.choice(up) if up else None
        if victim:
            self.world.nodes[victim].crash()
        return str(victim)

    def _power_cut(self) -> str:
        """One machine loses power: unsynced writes are lost, or torn half the time."""
        up = self._up()
        victim = self.world.rng.choice(up) if up else None
        if victim:
            torn = self.world.rng.random() < 0.5
            self.world.nodes[victim].power_cut(torn)
            return f"{victim} torn {torn}"
        return "no node up"

    def _power_cut_all(self) -> str:
        """Every machine loses power at once (a rack, a data centre)."""
        up = self._up()
        for name in up:
            self.world.nodes[name].power_cut(torn=self.world.rng.random() < 0.5)
        if up:
            self.world.counts.cluster_power_cuts += 1
        return ",".join(up)

    def _cut_in_fsync(self) -> str:
        """Slow a node's disk and arm it to lose power at some moment before its next fsync
        returns, after that batch sent messages that did not wait for it: the others heard
        of writes it will not have. The victim leads a group half the time."""
        rng = self.world.rng
        leaders = [name for name in self._up() if self.world.nodes[name].leads_a_group]
        victim = rng.choice(leaders if leaders and rng.random() < 0.5 else self.world.nodes_all)
        node = self.world.nodes[victim]
        node.disk = DiskConditions(5, 60)
        node.cut_in_next_fsync = rng.random() < 0.5
        return victim

    def _restart(self) -> str:
        down = [n for n in self.world.nodes_all if not self.world.nodes[n].up]
        for name in down:
            self.world.nodes[name].start()
        return ",".join(down)

    def _slow_disk(self) -> str:
        """One node's fsyncs become healthy again, slow (tens of ms) or prone to stalls."""
        rng = self.world.rng
        victim = rng.choice(self.world.nodes_all)
        disk = rng.choice(
            [DiskConditions(), DiskConditions(5, 60), DiskConditions(0, 2, stall=0.05)]
        )
        self.world.nodes[victim].disk = disk
        return f"{victim} {disk}"


# Each action of the nemesis: how often it is picked (a relative weight), and what it does.
ACTIONS: dict[str, tuple[int, Callable[[Nemesis], str]]] = {
    "reconfigure": (3, Nemesis._reconfigure),
    "split": (2, Nemesis._split),
    "isolate": (2, Nemesis._isolate),
    "quorum-loss": (2, Nemesis._quorum_loss),
    "constrained": (2, Nemesis._constrained),
    "chain": (2, Nemesis._chain),
    "heal-net": (2, Nemesis._heal_net),
    "loss": (2, Nemesis._loss),
    "crash": (2, Nemesis._crash),
    "power-cut": (3, Nemesis._power_cut),
    "power-cut-all": (1, Nemesis._power_cut_all),
    "cut-in-fsync": (2, Nemesis._cut_in_fsync),
    "restart": (3, Nemesis._restart),
    "slow-disk": (2, Nemesis._slow_disk),
}
