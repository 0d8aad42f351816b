#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-deb.sh — the Debian packages: builds them from a copy of this tree with
# `dpkg-buildpackage -b -us -uc` (debian/), checks them with lintian (no errors), then
# installs them, runs `ferry ls` against a private ferryd, builds and runs
# tests/consumer with `pkg-config --cflags --libs ferry`, imports the Python module from
# python3-ferry with /usr/bin/python3 (a round trip and ls()), and purges them again, so the
# machine is left as it was. Skips, saying so, when the packaging tools are missing or
# ferry's packages were installed before it started (it would not remove those).
# Needs root for the install part. Usage: scripts/check-deb.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "check-deb: $tool not found (Debian: devscripts debhelper lintian); skipped"; exit 0; }
done
pkgs="libferry0 libferry-dev ferry-tools python3-ferry"
for p in $pkgs; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        echo "check-deb: $p is installed already; skipped (it would be removed)"; exit 0
    fi
done
work=$(mktemp -d "${1:-/tmp}/ferry-deb.XXXXXX")
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then dpkg --purge $pkgs >/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The tree as git sees it (tracked files, with their changes): no build directories. Its
# directory is named for the version of debian/changelog's first entry.
src="$work/ferry-$(sed -n '1s/^ferry (\([^)]*\)).*/\1/p' debian/changelog)"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
(cd "$src" && dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
    { tail -60 "$work/build.log"; echo "check-deb: dpkg-buildpackage failed"; exit 1; }
ls "$work"/*.deb
lintian --fail-on error "$work"/*.changes ||
    { echo "check-deb: lintian reported errors"; exit 1; }

# Install, use, purge. The installed ferryd serves a private socket (and is stopped
# before the purge); the consumer and `ferry ls` reach it through $FERRY_BROKER.
installed=1
dpkg -i "$work"/libferry0_*.deb "$work"/libferry-dev_*.deb "$work"/ferry-tools_*.deb \
    "$work"/python3-ferry_*.deb >/dev/null
export FERRY_BROKER="$work/ferryd.sock" FERRY_NO_AUTOSPAWN=1
/usr/bin/ferryd --foreground --socket "$FERRY_BROKER" &
ferryd_pid=$!
trap 'kill "$ferryd_pid" 2>/dev/null || true; wait "$ferryd_pid" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do [ -S "$FERRY_BROKER" ] && break; sleep 0.05; done
/usr/bin/ferry ls
cc -std=c11 -o "$work/consumer" tests/consumer/consumer.c $(pkg-config --cflags --libs ferry)
"$work/consumer"
# The installed module, not this tree's: outside the tree, no PYTHONPATH, the installed
# libferry.so.0 (no FERRY_LIBRARY).
(cd "$work" && env -u PYTHONPATH -u FERRY_LIBRARY /usr/bin/python3 -c '
import ferry
assert ferry.__file__.startswith("/usr/lib/python3/dist-packages/ferry/"), ferry.__file__
a, b = ferry.pair()
a.send(b"ping", type=3)
m = b.recv(timeout=5)
assert (m.data, m.type) == (b"ping", 3), m
with ferry.Semaphore() as s, s.publish_as("org.ferry.checkdeb"):
    assert [n.name for n in ferry.ls()] == ["org.ferry.checkdeb"]
print("python3-ferry:", ferry.__file__, "loads", ferry._library_path)
')
echo "check-deb: packages built, lintian clean, installed; ferry ls, a pkg-config consumer and python3-ferry ran"
