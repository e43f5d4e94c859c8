"""Where nodes run: one Backend protocol, several backends (local, docker, ssh)."""

from __future__ import annotations

from kvctl.control.backend import Backend, BackendError

BACKENDS = ("docker", "ssh", "local")


def get_backend(name: str) -> Backend:
    """The backend called `name`; imported on demand so that each needs only its own deps."""
    if name == "local":
        from kvctl.control.local import LocalBackend

        return LocalBackend()
    if name == "docker":
        from kvctl.control.docker import DockerBackend

        return DockerBackend()
    if name == "ssh":
        from kvctl.control.ssh import SshBackend

        return SshBackend()
    raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


def default_backend() -> str:
    """docker when an engine answers, local processes otherwise."""
    from kvctl.control.docker import engine_available

    return "docker" if engine_available() else "local"
