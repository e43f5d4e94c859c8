"""Slow and lossy links with tc netem, where the kernel has netem.

A container cannot load `sch_netem`, and many kernels lack it (WSL2, Docker Desktop, minimal
cloud kernels: docker-base-image.md §7), so `check` probes once and refuses with the reason.
Only a root qdisc that is netem is ever removed: other shaping on the node is left alone.
"""

from __future__ import annotations

import shlex
from typing import ClassVar

from kvctl.nemesis.fault import Context, NemesisError, Value, require_own_network

BEHAVIOURS = {
    "delay": "delay 50ms 10ms distribution normal",
    "loss": "loss 20% 75%",
}


class Netem:
    """Delay or drop a share of the packets a few nodes send."""

    name: ClassVar[str] = "netem"
    stage: ClassVar[int] = 1

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = ctx.rng_for(self.name)
        self._device: dict[str, str] = {}
        self.shaped: list[str] = []
        self.behind: set[str] = set()  # nodes still shaped that should not be

    def check(self) -> None:
        require_own_network(self.ctx, self.name)
        node = self.ctx.nodes[0]
        dev = self.device(node)
        out = self.ctx.sh(
            node, f"tc qdisc add dev {dev} root netem delay 1ms && tc qdisc del dev {dev} root"
        )
        if out.exit_code == 0:
            return
        if "qdisc kind is unknown" in out.output:
            raise NemesisError(
                "netem is not available: this host's kernel has no sch_netem module "
                f"({node}: {out.output.strip()}), and a container cannot load one. Run on a "
                "kernel with CONFIG_NET_SCH_NETEM (the stock Debian and Ubuntu kernels have "
                "it; elsewhere install the kernel's extra modules), or leave netem out of "
                "--nemesis"
            )
        raise NemesisError(f"netem cannot shape traffic on {node}: {out.output.strip()}")

    def start(self) -> Value:
        how, nodes = self.ctx.pick(self.ctx.free(), self.rng)
        behaviour = self.rng.choice(sorted(BEHAVIOURS))
        done, missed = [], []
        for node in nodes:
            try:
                out = self.ctx.sh(
                    node,
                    f"tc qdisc replace dev {self.device(node)} root netem {BEHAVIOURS[behaviour]}",
                )
            except NemesisError as exc:
                missed.append(str(exc))
                continue
            if out.exit_code:
                missed.append(f"{node}: {out.output.strip()}")
            else:
                done.append(node)
        self.shaped = done
        return {
            "targets": how,
            "nodes": done,
            "behaviour": BEHAVIOURS[behaviour],
            "missed": missed,
            "summary": f"{behaviour} on {','.join(done) or 'no node'}",
        }

    def stop(self) -> Value:
        nodes, self.shaped = self.shaped, []
        self.behind.update(nodes)
        self.refresh()
        return {"nodes": nodes, "missed": sorted(self.behind), "summary": "links fast again"}

    def heal(self) -> Value:
        self.shaped = []
        self.behind = set(self.ctx.nodes)
        self.refresh()
        if self.behind:
            raise NemesisError(f"could not remove netem on {', '.join(sorted(self.behind))}")
        return {"summary": "no netem on any node"}

    def refresh(self) -> None:
        for node in sorted(self.behind):
            try:
                dev = self.device(node)
                out = self.ctx.sh(
                    node,
                    f"if tc qdisc show dev {dev} root | grep -q netem; "
                    f"then tc qdisc del dev {dev} root; fi",
                )
            except NemesisError:
                continue
            if out.exit_code == 0:
                self.behind.discard(node)

    def device(self, node: str) -> str:
        """The node's first network device other than loopback (probed once)."""
        if node not in self._device:
            out = self.ctx.sh(node, "ip -o link show")
            names = [
                line.split(":")[1].strip().split("@")[0]
                for line in out.output.splitlines()
                if line.count(":") >= 2
            ]
            devices = [n for n in names if n != "lo"]
            if out.exit_code or not devices:
                raise NemesisError(f"{node}: no network device but loopback ({out.output.strip()})")
            self._device[node] = shlex.quote(devices[0])
        return self._device[node]
