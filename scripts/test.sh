#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh — the whole test suite: every path the docs cite exists, the man pages are
# complete and render cleanly (check-man.sh), and every C file is formatted; the normal
# build (warnings are errors here: FERRY_WERROR) and every CTest
# test (unit, conformance, integration and security with a real ferryd, corpus replays,
# the kill -9 soak at 300 rounds per transport); the layer check; the ABI check (exports,
# abidiff), an install used by tests/consumer three ways, and the Release, dpkg-buildflags
# and clang builds without warnings (scripts/check-abi.sh, check-consumer.sh,
# check-builds.sh); the Debian packages built, lintian-clean, installed, used and purged
# (check-deb.sh); the core and shm unit tests under valgrind; everything again under ASan+UBSan; the ring, channel and
# synchronization tests under TSan; and every libFuzzer harness (the list `fuzzers`
# below) for FERRY_FUZZ_SECONDS (default 60) each, two at a time. Each build has its own
# directory under build-test/. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
jobs=$(nproc)
fuzz_seconds=${FERRY_FUZZ_SECONDS:-60}
b=build-test
started=$(mktemp)  # what the tests leave is what is newer than this
trap 'rm -f "$started"' EXIT

step() { echo; echo "== $*"; }

step "docs and format: cited paths exist; man pages; clang-format-14 on scripts/format-files.txt"
scripts/check-docs.sh # every path a doc or file header cites exists (a second)
scripts/check-man.sh # every public function has a man page; every page renders cleanly
scripts/check-format.sh # the files of scripts/format-files.txt are clang-format-14 clean

step "build and test (gcc, RelWithDebInfo)"
cmake -S . -B $b/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON >/dev/null
cmake --build $b/plain -j"$jobs"
scripts/check-layers.sh $b/plain # layers run one way: includes, and calls read from the objects
ctest --test-dir $b/plain --output-on-failure -j"$jobs"

step "ABI, install and consumers, release builds"
scripts/check-abi.sh $b/plain # exports = ferry.h's FERRY_API; abidiff against the last v* tag
scripts/check-consumer.sh $b # an install in a temp prefix, used three ways (about 20 s)
scripts/check-builds.sh $b # Release, dpkg-buildflags and clang builds: no warnings (about 2 min)
scripts/check-deb.sh # debian/: dpkg-buildpackage, lintian, install + use + purge (about 1 min)

step "valgrind memcheck: the core and shm unit tests (the plain build's binaries)"
# Every test of tests/unit/core and tests/unit/shm (none execs; forked children are
# checked too), except the two that bound a latency (test_shm_limits: kill -9 to -EPIPE
# within 15 ms; test_shm_hangup: a hang-up seen within 5 ms), which valgrind's ~20x
# slowdown breaks. About 45 s of CPU, most of it test_crc32c and test_ring_stress.
vg_failed=0
for t in $b/plain/tests/unit/core/test_* $b/plain/tests/unit/shm/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    case ${t##*/} in test_shm_limits | test_shm_hangup) continue ;; esac
    echo "$t"
done | xargs -P"$jobs" -I{} sh -c 'valgrind -q --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect "{}" >"{}.valgrind.log" 2>&1 ||
    { echo "valgrind: {} FAILED:"; cat "{}.valgrind.log"; exit 1; }' || vg_failed=1
[ "$vg_failed" -eq 0 ] || exit 1
echo "valgrind: clean"

step "ASan + UBSan (clang)"
cmake -S . -B $b/asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=address -DFERRY_WERROR=ON >/dev/null
cmake --build $b/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir $b/asan --output-on-failure -j"$jobs" -E '^bench_'

step "TSan (clang): rings, growth, channels, synchronization objects, RPC, mailboxes, broadcast, tls"
cmake -S . -B $b/tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=thread -DFERRY_WERROR=ON >/dev/null
cmake --build $b/tsan -j"$jobs"
# die_after_fork=0: a process that used a shm channel has a thread (the link watcher,
# src/shm/watch.h), and a fork child that sleeps on a channel starts its own; TSan
# refuses new threads after a multi-threaded fork unless told (glibc supports it).
TSAN_OPTIONS=halt_on_error=1:die_after_fork=0 ctest --test-dir $b/tsan --output-on-failure -j"$jobs" -R 'ring|grow|chan|sem|mutex|barrier|event|rpc|bcast|mailbox|region|state_|tls'

# The libFuzzer harnesses (tests/fuzz/fuzz_NAME.c, seeds in tests/fuzz/corpus/NAME): add a
# name here to run a new one. Names without a target in this tree are skipped.
fuzzers="frame broker stream adopt shm_ring shm_setup region"
step "libFuzzer: each harness for ${fuzz_seconds}s, two at a time"
cmake -S . -B $b/fuzz -DCMAKE_C_COMPILER=clang -DFERRY_FUZZ=ON -DFERRY_WERROR=ON >/dev/null
targets=$(cmake --build $b/fuzz --target help | sed -n 's/^\.\.\. \(fuzz_[a-z_]*\)$/\1/p')
run=""
for h in $fuzzers; do
    if grep -qx "fuzz_$h" <<<"$targets"; then run="$run $h"; else echo "(no target fuzz_$h)"; fi
done
cmake --build $b/fuzz -j"$jobs" --target $(for h in $run; do echo "fuzz_$h"; done)
# fuzz NAME: run the harness NAME on a copy of its seed corpus (libFuzzer adds to it).
fuzz() {
    rm -rf "$b/fuzz/corpus-$1" && mkdir -p "$b/fuzz/corpus-$1"
    if [ -d "tests/fuzz/corpus/$1" ]; then cp "tests/fuzz/corpus/$1"/* "$b/fuzz/corpus-$1/"; fi
    "$b/fuzz/tests/fuzz/fuzz_$1" -max_total_time="$fuzz_seconds" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$b/fuzz/fuzz-$1-" "$b/fuzz/corpus-$1" >"$b/fuzz/fuzz-$1.log" 2>&1
}
for h in $run; do
    while [ "$(jobs -pr | wc -l)" -ge 2 ]; do sleep 1; done
    (set +e; fuzz "$h"; echo $? >"$b/fuzz/rc-$h") &
done
wait
failed=""
for h in $run; do
    if [ "$(cat "$b/fuzz/rc-$h")" = 0 ]; then
        echo "fuzz_$h:" && grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' \
            "$b/fuzz/fuzz-$h.log"
    else
        echo "fuzz_$h FAILED:" && tail -50 "$b/fuzz/fuzz-$h.log"
        failed="$failed $h"
    fi
done
[ -z "$failed" ] || exit 1

step "no ferry objects left behind"
left=$( (ls /dev/shm; ls /dev/mqueue 2>/dev/null) | grep -ci ferry || true)
[ "$left" -eq 0 ] || { echo "ferry objects left in /dev/shm or /dev/mqueue"; exit 1; }
# Tests run their ferryd in /tmp/ferry-test-*: none may still run, no directory may stay.
# (/proc by hand: procps, hence pgrep, is not on every fresh machine)
# ([f]: so that the grep does not find itself)
stray=$(for c in /proc/[0-9]*/cmdline; do tr '\0' ' ' <"$c"; echo; done 2>/dev/null |
  grep '[f]erryd.*/tmp/ferry-test-' || true)
[ -z "$stray" ] || { echo "a test left ferryd running: $stray"; exit 1; }
left_dirs=$(find /tmp -maxdepth 1 -name 'ferry-test-*' -newer "$started")
if [ -n "$left_dirs" ]; then
  echo "a test left its directory:"; echo "$left_dirs"; exit 1
fi
echo "all tests passed"
