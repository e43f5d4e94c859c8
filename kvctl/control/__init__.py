"""Where nodes run: one Backend protocol, several backends (local, docker, ssh)."""
