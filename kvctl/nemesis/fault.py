"""What every fault is: a start/stop pair over one cluster, plus a heal that assumes nothing.

A fault is a value; the nemesis composes several (see `compose`). Each verb returns the JSON
value that goes into the history, with a one-line `summary` for people. Faults share a
`Context`: the cluster, its backend, the run's seed, and which nodes another fault has taken
down or frozen, so that two faults never fight over one node. Each fault draws from its own
generator (`Context.rng_for`), so what one fault draws does not depend on when the others
acted: the same seed gives the same faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvctl.client import Client, ClientError
from kvctl.control.backend import Backend, BackendError, ClusterSpec, ExecResult
from kvctl.db import DEFAULT_DB, db_of

Value = dict[str, Any]


class NemesisError(Exception):
    """A fault that cannot run here, or an action that failed; the message says why."""


class Fault(Protocol):
    """One kind of fault (Jepsen's nemesis): inject, undo, and undo-whatever-is-left."""

    @property
    def name(self) -> str:
        """The `--nemesis` word, and the suffix of its history events (`start-<name>`)."""

    @property
    def stage(self) -> int:
        """Heal order: nodes back (0), then the network (1), then membership (2)."""

    def check(self) -> None:
        """Raise NemesisError if this fault cannot run on this cluster."""

    def start(self) -> Value:
        """Inject the fault; describe what was done."""

    def stop(self) -> Value:
        """Undo what `start` did."""

    def heal(self) -> Value:
        """Undo anything of this kind on every node, whether this run did it or not."""

    def refresh(self) -> None:
        """Re-assert this fault's state on nodes that came back since it last acted."""


def require_own_network(ctx: Context, fault: str) -> None:
    """Refuse a network fault when two nodes run commands in one place (an SSH host holding
    several nodes): a rule set for one of them would cut or slow the others as well."""
    places: dict[str, list[str]] = {}
    for node, place in ctx.backend.exec_places(ctx.spec).items():
        places.setdefault(place, []).append(node)
    shared = [f"{', '.join(nodes)} share {place}" for place, nodes in places.items()
              if len(nodes) > 1]
    if shared:
        raise NemesisError(
            f"{fault} needs each node in a network of its own, but {'; '.join(shared)}: "
            f"a rule for one would hit the others too (give every node its own host, or "
            f"leave {fault} out of --nemesis)"
        )


@dataclass
class Context:
    """The cluster the faults act on, shared by every fault of one nemesis."""

    spec: ClusterSpec
    backend: Backend
    seed: int = 0
    held: dict[str, str] = field(default_factory=dict)  # node -> fault that has it
    returns: dict[str, int] = field(default_factory=dict)  # node -> times it came back

    def rng_for(self, fault: str) -> random.Random:
        """`fault`'s own generator, derived from the seed and its name alone."""
        return random.Random(f"{self.seed}/{fault}")

    def came_back(self, node: str) -> None:
        """A node restarted or resumed: faults that set state on it may need to set it again
        (a restarted container has a fresh, empty firewall)."""
        self.returns[node] = self.returns.get(node, 0) + 1

    @property
    def nodes(self) -> list[str]:
        return [n.name for n in self.spec.nodes]

    def free(self) -> list[str]:
        """Nodes no fault has taken down or frozen."""
        return [n for n in self.nodes if n not in self.held]

    def sh(self, node: str, script: str) -> ExecResult:
        """Run a shell line on a node; NemesisError if the node cannot run anything now."""
        try:
            return self.backend.exec(self.spec, node, ["sh", "-c", script])
        except BackendError as exc:
            raise NemesisError(f"{node}: {exc}") from exc

    def topology(self) -> dict[str, Any]:
        """The cluster as a node reports it: groups, leaders, configurations ({} if none
        answers; {} for another store, which has no kvctl groups). Blocking."""
        if db_of(self.spec).name != DEFAULT_DB:
            return {}
        addresses = {n.name: n.address for n in self.spec.nodes}

        async def ask() -> dict[str, Any]:
            async with Client(addresses, timeout=2.0, attempt_timeout=0.5) as client:
                try:
                    return await client.topology()
                except ClientError:
                    return {}

        return asyncio.run(ask())

    def leaders(self) -> dict[int, str]:
        """Each group's leader as the nodes report it ({} if none answers); another store's
        leaders as it names them (kvctl/db), numbered. Blocking."""
        db = db_of(self.spec)
        if db.name != DEFAULT_DB:
            return dict(enumerate(asyncio.run(db.primaries(self.spec))))
        return {int(g): n for g, n in self.topology().get("leaders", {}).items() if n}

    def pick(self, among: list[str], rng: random.Random) -> tuple[str, list[str]]:
        """Targets for a node fault, drawn from the fault's `rng`: one node, a minority, or a
        group's leader. Returns how they were chosen and the nodes (none when `among` is empty).
        """
        if not among:
            return "none", []
        how = rng.choice(["one", "minority", "leader"])
        if how == "leader":
            leaders = [n for n in set(self.leaders().values()) if n in among]
            if leaders:
                return how, [rng.choice(sorted(leaders))]
            how = "one"
        if how == "minority":
            size = rng.randint(1, max(1, (len(self.nodes) - 1) // 2))
            return how, sorted(rng.sample(among, min(size, len(among))))
        return how, [rng.choice(among)]
