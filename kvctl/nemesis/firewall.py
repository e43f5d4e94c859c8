"""Grudges enforced with iptables, in a chain of our own on each receiving node.

Everything kvctl adds lives in the chain `KVCTL`, reached by one jump from INPUT. Healing
removes that jump and that chain and nothing else, so the rules of Docker, Kubernetes or an
administrator survive (Jepsen's `iptables -F` does not: jepsen-io/jepsen#600). Only INPUT is
filtered: a cut link looks to both ends like a silent network, never like a refused send.

Which iptables works depends on the host kernel, not on the image (docker-base-image.md §6):
each node is probed once, nf_tables first, then legacy, and the two are never mixed.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from kvctl.nemesis.fault import Context, NemesisError

CHAIN = "KVCTL"
BINARIES = ("iptables", "iptables-legacy")


class Firewall:
    """Applies and removes our chain on the nodes of one cluster."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._binary: dict[str, str] = {}

    def binary(self, node: str) -> str:
        """The iptables that works on `node` (probed once)."""
        if node not in self._binary:
            problems = []
            for candidate in BINARIES:
                out = self.ctx.sh(node, f"{candidate} -w -n -L INPUT")
                if out.exit_code == 0:
                    self._binary[node] = candidate
                    break
                problems.append(f"{candidate}: {out.output.strip()}")
            else:
                raise NemesisError(
                    f"no working iptables on {node} ({'; '.join(problems)}); the node needs "
                    "iptables and the NET_ADMIN capability"
                )
        return self._binary[node]

    def drop_from(self, node: str, sources: Iterable[str]) -> None:
        """Make `node` drop every packet from `sources` (node names); replaces earlier rules."""
        ipt = self.binary(node)
        addresses = ",".join(sorted(self.ctx.spec.node(s).host for s in sources))
        script = [
            f"{ipt} -w -N {CHAIN} 2>/dev/null || {ipt} -w -F {CHAIN}",
            f"{ipt} -w -C INPUT -j {CHAIN} 2>/dev/null || {ipt} -w -I INPUT -j {CHAIN}",
        ]
        if addresses:
            script.append(f"{ipt} -w -A {CHAIN} -s {shlex.quote(addresses)} -j DROP")
        self._must(node, " && ".join(f"{{ {line}; }}" for line in script))

    def heal(self, node: str) -> None:
        """Remove our jump and our chain from `node`; a node without them is left as it is."""
        ipt = self.binary(node)
        self._must(
            node,
            f"while {ipt} -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done; "
            f"if {ipt} -w -n -L {CHAIN} >/dev/null 2>&1; then "
            f"{ipt} -w -F {CHAIN} && {ipt} -w -X {CHAIN}; fi",
        )

    def _must(self, node: str, script: str) -> None:
        out = self.ctx.sh(node, script)
        if out.exit_code:
            raise NemesisError(f"{node}: {out.output.strip() or f'exit {out.exit_code}'}")
