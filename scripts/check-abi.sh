#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-abi.sh — the ABI of a built libferry.so (docs/abi.md):
#  1. exports: `nm -D --defined-only` lists exactly the FERRY_API functions of
#     include/ferry/ferry.h (compared both ways), each with the symbol version FERRY_0.x
#     of cmake/ferry.map, and nothing else (no ferry__ internals, no test hooks);
#  2. the library (debug info stripped) names no path of its build directory;
#  3. abidiff against the previous release: the newest tag v* that HEAD's parent
#     reaches (or the git ref in $FERRY_ABI_BASE) is built in a temporary directory and
#     compared, with the public headers of each. An incompatible change under the same
#     SONAME fails (bump FERRY_SOVERSION in CMakeLists.txt); additions are reported. No
#     such tag: "abidiff: no earlier release tag; skipped". Needs abidiff (Debian
#     abigail-tools) and a build with debug info (RelWithDebInfo).
# Usage: scripts/check-abi.sh BUILD_DIR [--exports-only]   (--exports-only: 1 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/check-abi.sh BUILD_DIR [--exports-only]}
mode=${2:-}
build=$(cd "$build" && pwd -P)
lib=$build/libferry.so
[ -e "$lib" ] || { echo "check-abi: no $lib"; exit 1; }
lib=$(readlink -f "$lib")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-abi: FAILED: $*" >&2; exit 1; }

# 1. The FERRY_API names of ferry.h against the library's dynamic symbols.
grep -E '^FERRY_API ' include/ferry/ferry.h | sed -E 's/\(.*//; s/.*[^A-Za-z0-9_]//' |
    sort -u >"$tmp/api"
[ -s "$tmp/api" ] || fail "no FERRY_API function found in ferry.h"
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' >"$tmp/nm"
sed -E 's/@.*//' "$tmp/nm" | sort -u >"$tmp/exported"
missing=$(comm -23 "$tmp/api" "$tmp/exported")
extra=$(comm -13 "$tmp/api" "$tmp/exported")
[ -z "$missing" ] || fail "FERRY_API functions libferry.so does not export: $missing"
[ -z "$extra" ] || fail "libferry.so exports names outside the API: $extra"
unversioned=$(grep -v '@@FERRY_0\.[0-9]*$' "$tmp/nm" || true)
[ -z "$unversioned" ] || fail "exported without a FERRY_0.x version: $unversioned"
echo "check-abi: exports: the $(wc -l <"$tmp/api") FERRY_API functions of ferry.h, nothing else"

# 2. No path of the build tree (debug info aside).
objcopy --strip-debug "$lib" "$tmp/stripped.so"
! grep -aqF "$build" "$tmp/stripped.so" || fail "libferry.so names its build directory $build"
echo "check-abi: libferry.so names no path of its build directory"

[ "$mode" = "--exports-only" ] && exit 0

# 3. abidiff against the previous release.
base=${FERRY_ABI_BASE:-}
if [ -z "$base" ]; then
    base=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD^ 2>/dev/null || true)
fi
if [ -z "$base" ]; then
    echo "abidiff: no earlier release tag; skipped"
    exit 0
fi
command -v abidiff >/dev/null || fail "abidiff not found (Debian: abigail-tools; scripts/deps.sh)"
echo "check-abi: building the ABI of $base"
mkdir "$tmp/src"
git archive "$base" | tar -x -C "$tmp/src"
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_BUILD_TESTS=OFF \
    -DFERRY_BUILD_TOOLS=OFF -DFERRY_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$tmp/build" -j"$(nproc)" --target ferry >/dev/null
old=$(readlink -f "$tmp/build/libferry.so")
soname() { readelf -d "$1" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'; }
set +e
abidiff --headers-dir1 "$tmp/src/include" --headers-dir2 include "$old" "$lib" >"$tmp/report"
rc=$?
set -e
if [ $((rc & 3)) -ne 0 ]; then
    cat "$tmp/report"
    fail "abidiff could not compare (status $rc)"
fi
if [ $((rc & 8)) -ne 0 ]; then
    cat "$tmp/report"
    [ "$(soname "$old")" != "$(soname "$lib")" ] ||
        fail "an incompatible ABI change against $base under the same SONAME $(soname "$lib"): bump FERRY_SOVERSION (docs/abi.md)"
    echo "abidiff: incompatible changes against $base, with a new SONAME $(soname "$lib"): ok"
elif [ $((rc & 4)) -ne 0 ]; then
    cat "$tmp/report"
    echo "abidiff: compatible changes (additions) against $base: ok"
else
    echo "abidiff: no ABI change against $base"
fi
