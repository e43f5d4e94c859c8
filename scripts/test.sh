#!/usr/bin/env bash
# The README's test command: install what the tests need, then run the whole suite.
# Usage: bash scripts/test.sh [pytest args...]   (e.g. -m "not slow" for the fast set)
set -euo pipefail
cd "$(dirname "$0")/.."
# mmdebstrap bootstraps the node image's Debian base (tests/docker); chromium opens the HTML
# report (tests/harness); fuse3, libfuse3-dev and pkg-config build and mount the lazy
# filesystem (tests/lazyfs); etcd, Redis with Sentinel and NATS serve the store clients'
# tests (tests/db). Skipped once all are installed.
if ! command -v mmdebstrap >/dev/null || ! command -v chromium >/dev/null \
    || ! command -v fusermount3 >/dev/null || ! pkg-config --exists fuse3 2>/dev/null \
    || ! command -v etcd >/dev/null || ! command -v redis-sentinel >/dev/null \
    || ! command -v nats-server >/dev/null; then
    sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap chromium \
        fuse3 libfuse3-dev pkg-config etcd-server redis-server redis-sentinel nats-server \
        >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check .
python3 -m mypy kvctl
# The node image, built before the tests (about 35 s from nothing) so its progress is in the log;
# if it cannot be built, the container tests fail and say why.
python3 -m kvctl image build || true
python3 -m pytest -q "$@"
