#!/usr/bin/env bash
# Bootstrap the node image's Debian base as a root filesystem tarball, from Debian packages only.
#
# Why not `FROM debian`: there may be no registry to pull from; the machine's apt mirror is all
# we can count on. kvctl imports the tarball once as `kvbase:RELEASE` and reuses it while it
# exists (see kvctl/control/image.py); this script is also usable by hand:
#
#   bash kvctl/recipe/base.sh bookworm /tmp/rootfs.tar && docker import /tmp/rootfs.tar kvbase:bookworm
#
# A store under test other than kvctl's own (kvctl/db) names its Debian packages as a third
# argument, comma-separated (e.g. etcd-server): its image variant is bootstrapped with them.
#
# The node itself needs python3 with msgpack and click (taken from Debian, so nothing is
# fetched from PyPI inside the image); iptables, iproute2 (tc) and procps serve the nemesis;
# openssh-server lets the same image stand in for a real host in the SSH backend's tests;
# python3-pyfuse3 and fuse3 run the lazy filesystem (kvctl.lazyfs) under a node's data for the
# power and corrupt faults.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 RELEASE OUTPUT.tar [EXTRA,PACKAGES]" >&2
    exit 64
fi
release=$1
output=$2
extra=${3:-}
here=$(cd "$(dirname "$0")" && pwd)

command -v mmdebstrap >/dev/null || {
    echo "mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
    exit 69
}
mapfile -t mirrors < <(python3 "$here/aptsources.py" "$release")
[ "${#mirrors[@]}" -gt 0 ] || exit 2

packages=python3,python3-msgpack,python3-click,iptables,iproute2,procps,openssh-server,python3-pyfuse3,fuse3
[ -z "$extra" ] || packages="$packages,$extra"

# merged-usr hook: otherwise apt picks `usrmerge`, which drags perl in (226 MiB instead of 133).
# Host keys made at build time would be shared by every container: drop them (kvctl-sshd
# makes fresh ones at start).
exec mmdebstrap --variant=minbase --include="$packages" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    "$release" "$output" "${mirrors[@]}"
