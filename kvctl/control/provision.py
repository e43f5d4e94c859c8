"""Bring up this directory's cluster, or a new one, and wait until it serves.

Shared by `kvctl up` and `kvctl test`: the cluster lives in $KVCTL_HOME, so a test reuses the
cluster `kvctl up` started, and `kvctl status` sees the one a test started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from kvctl.control import get_backend
from kvctl.control.backend import BackendError, ClusterSpec, load_spec, save_spec
from kvctl.db import db_of


def provision(
    new: Callable[[], ClusterSpec],
    *,
    backend: str | None,
    timeout: float,
    say: Callable[[str], None],
    nodes: int | None = None,
    read_mode: str | None = None,
    lazyfs: bool | None = None,
    db: str | None = None,
) -> tuple[ClusterSpec, bool]:
    """Start the saved cluster (or `new()` when there is none); True if it is a new one.

    `backend`, `nodes`, `read_mode` and `db` (the store, kvctl/db), when given, must match a
    saved cluster: changing
    them under a running cluster is `kvctl down --purge` and a new `kvctl up`. `lazyfs` puts
    the nodes' data on the lazy filesystem (True, for the power and corrupt faults) or on a
    plain disk (False), restarting the nodes whose disk changes; None keeps what they have.
    """
    spec = load_spec()
    created = spec is None
    if spec is None:
        spec = new()
    else:
        wanted = {"backend": backend, "nodes": nodes, "read mode": read_mode, "store": db}
        actual = {"backend": spec.backend, "nodes": len(spec.nodes), "read mode": spec.read_mode,
                  "store": db_of(spec).name}
        for what, value in wanted.items():
            if value is not None and value != actual[what]:
                raise BackendError(
                    f"this directory's cluster {spec.name!r} has {what} {actual[what]}, not "
                    f"{value}: `kvctl down --purge` it first (or set $KVCTL_HOME elsewhere)"
                )
    if lazyfs is not None:
        extra = {k: v for k, v in spec.extra.items() if k != "lazyfs"}
        spec = replace(spec, extra={**extra, "lazyfs": "on"} if lazyfs else extra)
    say(f"starting {len(spec.nodes)} nodes on the {spec.backend} backend ...")
    spec = get_backend(spec.backend).up(spec)
    save_spec(spec)
    try:
        asyncio.run(db_of(spec).setup(spec, timeout))
    except TimeoutError as exc:
        raise BackendError(f"{exc}; see `kvctl status` and `kvctl logs NODE`") from exc
    return spec, created
