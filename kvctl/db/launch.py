"""Carry out one node's plan: write its files, run its processes, and die with any of them.

Usage: python3 -m kvctl.db.launch PLAN   (PLAN as `NodePlan.to_arg` makes it)

Why one launcher: a node of some stores is several processes (Redis and its Sentinel), and a
node must live and die as one, so that a kill, a pause or a crash of any part is a fault of
the whole node, which is what the nemesis and the checker assume. SIGTERM and SIGINT are
passed on to every process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from kvctl.db import NodePlan

POLL_S = 0.1


def write_files(files: dict[str, str]) -> None:
    """Write each file that is missing (parents too); leave any that exists as it is."""
    for name, text in files.items():
        path = Path(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def run(plan: NodePlan) -> int:
    """Run the processes until one ends; stop the rest; its exit code."""
    write_files(plan.files)
    processes = [subprocess.Popen(argv) for argv in plan.processes]

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(process.poll() is None for process in processes):
        time.sleep(POLL_S)
    ended, argv = next((p, argv) for p, argv in zip(processes, plan.processes, strict=True)
                       if p.returncode is not None)
    print(f"kvctl.db.launch: {argv[0]} ended (exit {ended.returncode})", flush=True)
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    code = ended.returncode
    return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 64
    return run(NodePlan.from_arg(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
