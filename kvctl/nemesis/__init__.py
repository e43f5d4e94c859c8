"""Faults and their schedule: which faults exist, where each can run, and why not elsewhere.

`--nemesis` takes a comma list of fault names: `partition` (any shape) or one shape
(`partition-halves`, `-one`, `-leader`, `-ring`, `-bridge`, or one of the Omni-Paxos paper's
scenarios, by name only: `-quorum-loss`, `-constrained`, `-chained`), `kill`, `pause`, `netem`,
`membership` (nodes leave, join and replace each other), `power` (power loss: unsynced writes
forgotten) and `corrupt` (a data file damaged at rest), or `all` (every fault this cluster
supports, except the disk faults, which need the nodes on a lazy filesystem) and `none`.
`clock` is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kvctl.nemesis.compose import Nemesis, Record
from kvctl.nemesis.corrupt import Corrupt
from kvctl.nemesis.fault import Context, Fault, NemesisError
from kvctl.nemesis.membership import Membership
from kvctl.nemesis.netem import Netem
from kvctl.nemesis.partition import KINDS, Partition
from kvctl.nemesis.partition import SHAPES as PARTITION_SHAPES
from kvctl.nemesis.power import Power
from kvctl.nemesis.process import kill, pause

__all__ = [
    "Context",
    "Fault",
    "Faults",
    "Nemesis",
    "NemesisError",
    "Selection",
    "build",
    "for_local",
    "needs_lazyfs",
    "parse",
]

FAULTS: dict[str, Callable[[Context], Fault]] = {
    "partition": Partition,
    "kill": kill,
    "pause": pause,
    "netem": Netem,
    "membership": Membership,
    "power": Power,
    "corrupt": Corrupt,
}
NETWORK = {"partition", "netem"}
DISK = {"power", "corrupt"}  # need the nodes' data on kvctl.lazyfs: asked for by name only
SHAPES = {f"partition-{kind}": kind for kind in PARTITION_SHAPES}


@dataclass
class Selection:
    """What `--nemesis` asked for: fault name -> whether it may be left out (from `all`)."""

    faults: dict[str, bool] = field(default_factory=dict)
    shapes: list[str] = field(default_factory=list)  # partition shapes (empty: every shape)

    @property
    def names(self) -> list[str]:
        return list(self.faults)


CLOCK = (
    "clock faults are not offered: kvctl's nodes run in containers or as local processes, "
    "and they all share the host kernel's one clock. Setting the time inside a node needs "
    "CAP_SYS_TIME and would move the clock of the whole machine, every node and the host's "
    "own services at once: a host fault, not a node fault (Jepsen users lost runs to exactly "
    "this, jepsen-io/jepsen#568). Linearizable reads here go through the Paxos log, not "
    "through time-based leases, so clocks affect only how fast leaders are elected."
)
LOCAL_NETWORK = (
    "the local backend runs every node on 127.0.0.1 in this machine's own network, so there "
    "is no per-node network to cut or slow (and kvctl will not touch the host's firewall): "
    "use --backend docker, or leave {fault} out of --nemesis (kill and pause work here)"
)

DISK_BACKEND = (
    "{fault} runs on the docker backend only: it cuts a node's power through a lazy FUSE "
    "filesystem (kvctl.lazyfs) under the node's data, which kvctl mounts inside each "
    "container (with /dev/fuse and SYS_ADMIN); the {backend} backend does not mount it"
)


def for_local(text: str) -> tuple[str, str | None]:
    """A `--nemesis` value for local processes, when local was not asked for but is all there
    is (no Docker engine): network faults become kill and pause, and the note says so."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    network = [w for w in words if w in NETWORK or w in SHAPES]
    if not network:
        return text, None
    kept = [w for w in words if w not in network]
    kept += [w for w in ("kill", "pause") if w not in kept]
    note = (
        f"no Docker engine answers, so the nodes run as local processes, which share this "
        f"machine's network: {', '.join(network)} cannot run here and is replaced by kill "
        f"and pause (with Docker, or --backend ssh, the network faults run too)"
    )
    return ",".join(kept), note


def parse(text: str, backend: str) -> Selection:
    """The faults a `--nemesis` value asks for.

    Faults that come from `all` are optional: those that cannot run here are left out with a
    note. Named ones that cannot run here are refused (NemesisError with the reason).
    """
    chosen = Selection()
    for word in (w.strip().lower() for w in text.split(",")):
        if word in ("", "none"):
            continue
        if word == "clock":
            raise NemesisError(CLOCK)
        if word == "all":
            for name in FAULTS:
                if not (backend == "local" and name in NETWORK) and name not in DISK:
                    chosen.faults.setdefault(name, True)
            continue
        name = "partition" if word in SHAPES else word
        if name not in FAULTS:
            known = ", ".join([*FAULTS, *SHAPES, "all", "none"])
            raise NemesisError(f"unknown fault {word!r}: choose from {known}")
        if backend == "local" and name in NETWORK:
            raise NemesisError(LOCAL_NETWORK.format(fault=word))
        if backend != "docker" and name in DISK:
            raise NemesisError(DISK_BACKEND.format(fault=word, backend=backend))
        chosen.faults[name] = False
        if name == "partition":
            shapes = [SHAPES[word]] if word in SHAPES else list(KINDS)
            chosen.shapes = list(dict.fromkeys([*chosen.shapes, *shapes]))
    return chosen


def needs_lazyfs(chosen: Selection) -> bool:
    """Whether the run's nodes must keep their data on the lazy filesystem."""
    return bool(DISK & set(chosen.names))


@dataclass
class Faults:
    """The faults that can run on this cluster, and why any that `all` offered were left out."""

    faults: list[Fault]
    notes: list[str]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.faults]

    def compose(self, record: Record) -> Nemesis:
        """One nemesis of these faults, recording each action with `record`."""
        return Nemesis(self.faults, record, self.notes)


def build(chosen: Selection, ctx: Context) -> Faults:
    """Make the faults and check each on the cluster (NemesisError if a named one cannot
    run here): nothing has acted yet, so a refusal costs nothing."""
    faults: list[Fault] = []
    notes = []
    for name, optional in chosen.faults.items():
        if name == "partition" and chosen.shapes:
            fault: Fault = Partition(ctx, chosen.shapes)
        else:
            fault = FAULTS[name](ctx)
        try:
            fault.check()
        except NemesisError as exc:
            if not optional:
                raise
            notes.append(f"{name} left out: {exc}")
            continue
        faults.append(fault)
    return Faults(faults, notes)
