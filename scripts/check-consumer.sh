#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-consumer.sh — ferry as another project gets it. Builds the library and ferryd
# for an install prefix in a fresh temporary directory (multiarch LIBDIR where
# dpkg-architecture knows it), then:
#  - the install writes nothing outside the prefix (a DESTDIR staging is checked), and
#    puts every file where GNUInstallDirs says;
#  - the installed libferry.so holds no path of its build tree, and holds the prefix's
#    ferryd (its built-in autospawn path follows the prefix);
#  - tests/consumer is built three ways and run, each binary shared and static:
#    pkg-config + Makefile, find_package(ferry X.Y) of the project version (the minor
#    versions around it and 1.0 are refused), and
#    add_subdirectory of this source tree (which builds no ferryd, no tests and installs
#    nothing). Each run meets a forked server by name through a ferryd autospawned on a
#    private socket: the installed one when FERRY_FERRYD is unset (checked through
#    /proc/PID/exe), the one $FERRY_FERRYD names otherwise (a wrapper leaves a mark).
# Everything is removed at the end, ferryds stopped. About 40 s on 2 cores.
# Usage: scripts/check-consumer.sh [TMPDIR-like parent directory]
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
parent=${1:-${TMPDIR:-/tmp}}
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/ferry-consumer.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
unset FERRY_FERRYD FERRY_BROKER FERRY_NO_AUTOSPAWN FERRY_BROKER_UID
jobs=$(nproc)

# stop_ferryd SOCKET: stop the ferryd serving SOCKET (its pid is in SOCKET.lock).
stop_ferryd() {
    local pid
    pid=$(cat "$1.lock" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
}
cleanup() {
    for s in "$tmp"/broker-*/ferryd.sock; do [ -e "$s.lock" ] && stop_ferryd "$s"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "check-consumer: FAILED: $*" >&2; exit 1; }

prefix=$tmp/prefix
libdir=lib
# The project version (CMakeLists.txt), its major.minor, and the minor versions around it.
version=$(sed -n 's/^project(ferry VERSION \([0-9.]*\) .*/\1/p' CMakeLists.txt)
[ -n "$version" ] || fail "no project version in CMakeLists.txt"
want=${version%.*}
minor=${want#*.}
others="${want%%.*}.$((minor - 1)) ${want%%.*}.$((minor + 1)) 1.0"
if command -v dpkg-architecture >/dev/null 2>&1; then
    libdir=lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
fi

echo "check-consumer: build and install into $prefix (LIBDIR $libdir)"
cmake -S . -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR="$libdir" -DFERRY_WERROR=ON -DFERRY_BUILD_TESTS=OFF \
    -DFERRY_BUILD_TOOLS=OFF -DFERRY_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$tmp/build" -j"$jobs" >/dev/null

# Nothing outside the prefix: stage with DESTDIR and look at what lands where.
DESTDIR="$tmp/stage" cmake --install "$tmp/build" >/dev/null
outside=$(cd "$tmp/stage" && find . \( -type f -o -type l \) | sed 's|^\.||' | grep -v "^$prefix/" || true)
[ -z "$outside" ] || fail "the install writes outside the prefix: $outside"
cmake --install "$tmp/build" >/dev/null
for f in bin/ferryd include/ferry/ferry.h "$libdir/libferry.so" "$libdir/libferry.so.0" \
    "$libdir/libferry.so.$version" "$libdir/libferry.a" "$libdir/pkgconfig/ferry.pc" \
    "$libdir/cmake/ferry/ferryConfig.cmake" "$libdir/cmake/ferry/ferryConfigVersion.cmake" \
    "$libdir/cmake/ferry/ferryTargets.cmake"; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done

# The installed library never looks into its build tree (debug info aside: stripped).
objcopy --strip-debug "$prefix/$libdir/libferry.so.$version" "$tmp/lib-stripped.so"
! grep -aqF "$tmp/build" "$tmp/lib-stripped.so" || fail "libferry.so names its build tree"
grep -aqF "$prefix/bin/ferryd" "$tmp/lib-stripped.so" ||
    fail "libferry.so does not name the prefix's ferryd"

# A wrapper for FERRY_FERRYD: leaves a mark, then runs the installed ferryd.
printf '#!/bin/sh\ntouch "%s/wrapper-ran"\nexec "%s/bin/ferryd" "$@"\n' "$tmp" "$prefix" >"$tmp/ferryd-wrapper"
chmod +x "$tmp/ferryd-wrapper"

# run LABEL BINARY [FERRY_FERRYD]: run a consumer on a private broker socket; without a
# FERRY_FERRYD the ferryd it starts must be the installed one.
run() {
    local label=$1 bin=$2 ferryd=${3:-} dir=$tmp/broker-$1
    mkdir -m 0700 "$dir"
    rm -f "$tmp/wrapper-ran"
    if [ -n "$ferryd" ]; then
        FERRY_BROKER=$dir/ferryd.sock FERRY_FERRYD=$ferryd "$bin" >"$tmp/out" 2>&1 ||
            { cat "$tmp/out"; fail "$label"; }
    else
        FERRY_BROKER=$dir/ferryd.sock "$bin" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "$label"; }
    fi
    grep -qx 'consumer: ok' "$tmp/out" || { cat "$tmp/out"; fail "$label: no 'consumer: ok'"; }
    local pid exe
    pid=$(cat "$dir/ferryd.sock.lock" 2>/dev/null || true)
    [ -n "$pid" ] || fail "$label: no ferryd was started"
    exe=$(readlink "/proc/$pid/exe" || true)
    if [ -z "$ferryd" ]; then
        [ "$exe" = "$prefix/bin/ferryd" ] || fail "$label: started $exe, not the installed ferryd"
    elif [ "$ferryd" = "$tmp/ferryd-wrapper" ]; then
        [ -e "$tmp/wrapper-ran" ] || fail "$label: \$FERRY_FERRYD was not used"
    fi
    stop_ferryd "$dir/ferryd.sock"
    echo "check-consumer: $label: ok (ferryd: ${exe:-?})"
}

echo "check-consumer: pkg-config + Makefile"
mkdir "$tmp/mk"
cp tests/consumer/consumer.c tests/consumer/Makefile "$tmp/mk/"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" make -s -C "$tmp/mk" consumer consumer_static >/dev/null
run pkgconfig-shared "$tmp/mk/consumer"
run pkgconfig-static "$tmp/mk/consumer_static" "$tmp/ferryd-wrapper"

echo "check-consumer: find_package(ferry $want)"
cmake -S tests/consumer -B "$tmp/pkg" -DCMAKE_PREFIX_PATH="$prefix" -DFERRY_CONSUMER_WANT="$want" >/dev/null
cmake --build "$tmp/pkg" -j"$jobs" >/dev/null
run package-shared "$tmp/pkg/consumer"
run package-static "$tmp/pkg/consumer_static"
for other in $others; do
    if cmake -S tests/consumer -B "$tmp/pkg-$other" -DCMAKE_PREFIX_PATH="$prefix" \
        -DFERRY_CONSUMER_WANT="$other" >/dev/null 2>&1; then
        fail "find_package(ferry $other) accepted ferry $version"
    fi
done
echo "check-consumer: find_package(ferry ${others// / \/ }) refused: ok"

echo "check-consumer: add_subdirectory"
cmake -S tests/consumer -B "$tmp/sub" -DFERRY_CONSUMER_MODE=subdir -DFERRY_SOURCE_DIR="$src" >/dev/null
cmake --build "$tmp/sub" -j"$jobs" >/dev/null
[ ! -e "$tmp/sub/ferry/ferryd" ] || fail "add_subdirectory: ferry built ferryd"
ctest --test-dir "$tmp/sub" -N | grep -q 'Total Tests: 0' || fail "add_subdirectory: ferry added tests"
cmake --install "$tmp/sub" --prefix "$tmp/sub-install" >/dev/null
[ ! -e "$tmp/sub-install" ] || fail "add_subdirectory: ferry installed $(cd "$tmp/sub-install" && find . -type f)"
run subdir-shared "$tmp/sub/consumer" "$prefix/bin/ferryd"
run subdir-static "$tmp/sub/consumer_static" "$prefix/bin/ferryd"
echo "check-consumer: all ok"
