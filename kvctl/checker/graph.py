"""The constraint graph: orders every linearization must obey, and their cycles.

Nodes are the operations of one partition; an edge a -> b says a takes effect before b in
every linearization. Real-time order is one source of edges (a returned before b was
invoked: a path through a chain of time points, so it costs O(n) edges, not O(n^2)); the
model's `facts` are the other (read-from, cas chains, version order, for unique values).
Facts may depend on what is already known, so they are asked again until nothing new comes.

A cycle proves that the history is not linearizable, and reads as a short argument. Without a
cycle, the edges between operations tell the search what must come first.

networkx is imported where it is used: it takes a tenth of a second to import, and most
histories (any whose values repeat) never build a graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from kvctl.checker.explain import Words
from kvctl.checker.model import Known
from kvctl.history import Op

if TYPE_CHECKING:
    import networkx as nx

Node = int | tuple[str, int]  # an operation, or ("t", rank): a point in time
_ROUNDS = 20
_SHORTEN = 200


@dataclass
class Constraints:
    """The graph's verdict: a cycle (a function that puts it in words: finding a short one
    takes longer than finding one), or what must come before each operation."""

    cycle: Callable[[], str] | None
    before: list[int]
    edges: int


def constrain(ops: Sequence[Op], model: Any, words: Words) -> Constraints:
    """Build the graph for one partition, asking the model for facts until a fixpoint.

    The first question assumes nothing is known; if the model has nothing to say even then,
    no graph is built at all (for example when values are not unique).
    """
    n = len(ops)
    new = [f for f in model.facts(ops, Known([0] * n, [0] * n)) if f.before != f.after]
    if not new:
        return Constraints(None, [0] * n, 0)
    import networkx as nx

    g = _real_time(ops)
    for _ in range(_ROUNDS):
        for fact in new:
            g.add_edge(fact.before, fact.after, why=fact.why)
        try:
            known = _known(g, n)
        except nx.NetworkXUnfeasible:
            return Constraints(partial(_cycle_text, g, ops, words), [0] * n, g.number_of_edges())
        new = [
            f
            for f in model.facts(ops, known)
            if f.before != f.after and not g.has_edge(f.before, f.after)
        ]
        if not new:
            break
    before = [0] * n
    for a, b in g.edges:
        if isinstance(a, int) and isinstance(b, int):
            before[b] |= 1 << a
    return Constraints(None, before, g.number_of_edges())


def _real_time(ops: Sequence[Op]) -> nx.DiGraph[Node]:
    """a -> t(ret a) -> t(next) -> ... -> t(call b) -> b, exactly when a returned before b began."""
    import networkx as nx

    g: nx.DiGraph[Node] = nx.DiGraph()
    g.add_nodes_from(range(len(ops)))
    ranks = sorted({op.call for op in ops} | {op.ret for op in ops if op.ret is not None})
    nx.add_path(g, [("t", r) for r in ranks])
    for i, op in enumerate(ops):
        g.add_edge(("t", op.call), i)
        if op.ret is not None:
            g.add_edge(i, ("t", op.ret))
    return g


def _known(g: nx.DiGraph[Node], n: int) -> Known:
    """For every operation, bitmasks of the operations after it and before it. Raises on a
    cycle."""
    import networkx as nx

    order = list(nx.topological_sort(g))
    masks = []
    for nodes, neighbours in ((reversed(order), g.successors), (order, g.predecessors)):
        mask: dict[Node, int] = {}
        for node in nodes:
            m = 0
            for other in neighbours(node):
                m |= mask[other] | (1 << other if isinstance(other, int) else 0)
            mask[node] = m
        masks.append([mask[i] for i in range(n)])
    return Known(*masks)


def _cycle_text(g: nx.DiGraph[Node], ops: Sequence[Op], words: Words) -> str:
    cycle = _short_cycle(g)
    steps: list[str] = []
    # Start at an operation, then walk: each hop between operations is one order and reason.
    k, a = next((k, node) for k, node in enumerate(cycle) if isinstance(node, int))
    for node, nxt_node in pairwise(cycle[k:] + cycle[:k] + [a]):
        if not isinstance(nxt_node, int):
            continue
        why: str | None = g.edges[node, nxt_node].get("why") if isinstance(node, int) else None
        if why is None:
            ret = ops[a].ret
            assert ret is not None  # a real-time edge leaves a completed operation
            returned, called = words.apart(ret, ops[nxt_node].call)
            why = f"the first completed at {returned}, before the second was invoked at {called}"
        steps.append(f"{words.op(ops[a])} before {words.op(ops[nxt_node])}: {why}")
        a = nxt_node
    return (
        "These orders cannot all hold, since they form a cycle: "
        + "; ".join(f"({i}) {s}" for i, s in enumerate(steps, 1))
        + "."
    )


def _short_cycle(g: nx.DiGraph[Node]) -> list[Node]:
    """A short cycle: the shortest way back over each fact edge of the first cycle's component."""
    import networkx as nx

    best = [u for u, _ in nx.find_cycle(g)]
    component = g.subgraph(next(c for c in nx.strongly_connected_components(g) if best[0] in c))
    facts = [(u, v) for u, v, why in component.edges(data="why", default="") if why]
    for u, v in facts[:_SHORTEN]:
        cycle = [u, *nx.shortest_path(component, v, u)[:-1]]
        if _hops(cycle) < _hops(best):
            best = cycle
    return best


def _hops(path: Sequence[Node]) -> int:
    return sum(isinstance(node, int) for node in path)
