#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-builds.sh — the builds a user or a distribution makes are warning-free: the
# library, ferryd, the tools, the examples and the tests (not run), with FERRY_WERROR=ON,
#   release  gcc, -DCMAKE_BUILD_TYPE=Release (-O3)
#   dpkg     gcc with Debian's flags, as debhelper passes them: CFLAGS+CPPFLAGS and
#            LDFLAGS from dpkg-buildflags (-O2, _FORTIFY_SOURCE=2, -fstack-protector-strong,
#            -Wformat -Werror=format-security, relro), CMAKE_BUILD_TYPE=None
#   clang    clang, -DCMAKE_BUILD_TYPE=Release
# (gcc -O2 and clang -O0 are test.sh's own plain and sanitizer builds). Each build has a
# directory under PARENT (default build-test), removed afterwards. About 2 min on 2 cores.
# Usage: scripts/check-builds.sh [PARENT]
set -euo pipefail
cd "$(dirname "$0")/.."
parent=${1:-build-test}
jobs=$(nproc)
mkdir -p "$parent"
dirs=()
trap 'rm -rf "${dirs[@]}"' EXIT

# build NAME [VAR=VALUE...] -- CMAKE-ARGS...: configure and build with the environment given.
build() {
    local name=$1 dir="$parent/builds-$1" start=$SECONDS
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    dirs+=("$dir")
    rm -rf "$dir"
    if ! env "${envs[@]}" cmake -S . -B "$dir" -DFERRY_WERROR=ON "$@" >"$dir.log" 2>&1 ||
        ! cmake --build "$dir" -j"$jobs" >>"$dir.log" 2>&1; then
        grep -E -A5 'warning:|error:' "$dir.log" | head -80 || tail -40 "$dir.log"
        rm -f "$dir.log"
        echo "check-builds: $name: FAILED" >&2
        exit 1
    fi
    rm -f "$dir.log"
    rm -rf "$dir"
    echo "check-builds: $name: no warnings ($((SECONDS - start)) s)"
}

build release CC=gcc -- -DCMAKE_BUILD_TYPE=Release
if command -v dpkg-buildflags >/dev/null 2>&1; then
    build dpkg CC=gcc \
        CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
        LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" -- -DCMAKE_BUILD_TYPE=None
else
    echo "check-builds: dpkg: no dpkg-buildflags (Debian: dpkg-dev; scripts/deps.sh); skipped"
fi
build clang CC=clang -- -DCMAKE_BUILD_TYPE=Release
