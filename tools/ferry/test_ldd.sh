#!/bin/sh
# SPDX-License-Identifier: MIT
# test_ldd.sh — `ldd ferry` shows libferry and libc only (run by CTest as ferry_ldd): the
# `ferry` command links nothing else (the benchmark, ferry-bench, links the peer
# libraries; bench/). The loader and the vDSO are allowed, and so is what libferry itself
# needs (`ldd libferry`), which is libferry's business, not ferry's.
#   usage: test_ldd.sh PATH/TO/ferry
set -u
FERRY=$1

fail() {
    echo "test_ldd: FAIL: $*" >&2
    exit 1
}

command -v ldd >/dev/null 2>&1 || fail "no ldd here"
# The soname of each library, one per line (the first word of each line of ldd).
libs() { ldd "$1" | awk '{ print $1 }' | sed 's,.*/,,'; }
out=$(libs "$FERRY") || fail "ldd $FERRY failed"
libferry=$(ldd "$FERRY" | awk '$1 ~ /^libferry\.so/ { print $3 }')
[ -n "$libferry" ] && [ -e "$libferry" ] || fail "ferry does not link libferry: $out"
lib_deps=$(libs "$libferry")
bad=""
for l in $out; do
    case $l in
    linux-vdso.so.* | linux-gate.so.* | ld-linux*.so.* | libc.so.* | libferry.so.*) continue ;;
    esac
    echo "$lib_deps" | grep -qxF "$l" && continue
    bad="$bad $l"
done
[ -z "$bad" ] || fail "ferry links more than libferry and libc:$bad"
# And the program itself names only those two (NEEDED), whatever libferry pulls in.
if command -v readelf >/dev/null 2>&1; then
    needed=$(readelf -d "$FERRY" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
    case $needed in
    "libc.so.6 libferry.so."[0-9]*" ") ;;
    *) fail "ferry's NEEDED entries: $needed" ;;
    esac
fi
echo "test_ldd: ok:" $out
