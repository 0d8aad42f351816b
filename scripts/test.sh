#!/usr/bin/env bash
# test.sh — the whole test suite: the normal build and every CTest test; the same under
# ASan+UBSan; the ring and channel tests under TSan; and the frame decoder and the broker
# protocol codec under libFuzzer for FERRY_FUZZ_SECONDS (default 60) each, the two
# harnesses side by side. Each build has its own directory under
# build-test/. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
jobs=$(nproc)
fuzz_seconds=${FERRY_FUZZ_SECONDS:-60}
b=build-test
started=$(mktemp)  # what the tests leave is what is newer than this
trap 'rm -f "$started"' EXIT

step() { echo; echo "== $*"; }

step "build and test (gcc, RelWithDebInfo)"
cmake -S . -B $b/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build $b/plain -j"$jobs"
scripts/check-layers.sh $b/plain # layers run one way: includes, and calls read from the objects
ctest --test-dir $b/plain --output-on-failure -j"$jobs"

step "ASan + UBSan (clang)"
cmake -S . -B $b/asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=address >/dev/null
cmake --build $b/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir $b/asan --output-on-failure -j"$jobs" -E '^bench_'

step "TSan (clang): rings, growth, channels, synchronization objects, RPC, mailboxes, broadcast"
cmake -S . -B $b/tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=thread >/dev/null
cmake --build $b/tsan -j"$jobs"
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $b/tsan --output-on-failure -j"$jobs" -R 'ring|grow|chan|sem|mutex|barrier|event|rpc|bcast|mailbox'

step "libFuzzer: frame decoder and broker protocol, ${fuzz_seconds}s each, side by side"
cmake -S . -B $b/fuzz -DCMAKE_C_COMPILER=clang -DFERRY_FUZZ=ON >/dev/null
cmake --build $b/fuzz -j"$jobs" --target fuzz_frame fuzz_broker
# fuzz NAME: run the harness NAME on a copy of its seed corpus (libFuzzer adds to it).
fuzz() {
    rm -rf "$b/fuzz/corpus-$1" && mkdir -p "$b/fuzz/corpus-$1"
    cp "tests/fuzz/corpus/$1"/* "$b/fuzz/corpus-$1/"
    "$b/fuzz/tests/fuzz/fuzz_$1" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
        "$b/fuzz/corpus-$1" >"$b/fuzz/fuzz-$1.log" 2>&1
}
fuzz frame & frame_pid=$!
fuzz broker & broker_pid=$!
wait $frame_pid && frame_rc=0 || frame_rc=$?
wait $broker_pid && broker_rc=0 || broker_rc=$?
for h in frame broker; do
    rc=$frame_rc
    [ "$h" = broker ] && rc=$broker_rc
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$h:" && tail -5 "$b/fuzz/fuzz-$h.log"
    else
        echo "fuzz_$h FAILED:" && tail -50 "$b/fuzz/fuzz-$h.log"
    fi
done
[ "$frame_rc" -eq 0 ] && [ "$broker_rc" -eq 0 ] || exit 1

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
