#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh — the long runs behind docs/reliability.md (issue 10):
#  1. every libFuzzer harness (tests/fuzz/fuzz_*.c that this tree builds) for
#     SOAK_FUZZ_RUNS executions (default 10,000,000), from its seed corpus, two at a time;
#     then the corpus it grew is replayed by a clang source-based coverage build and
#     `llvm-cov report` prints the coverage of the harness's target file;
#  2. the kill -9 soak (tests/soak/soak.c) for SOAK_ROUNDS rounds (default 10,000) per
#     transport: shm, unix, tcp, fifo, pipe.
# SOAK_ONLY=fuzz or SOAK_ONLY=kill runs one half; SOAK_FUZZERS="stream adopt" runs only
# those harnesses; SOAK_FUZZ_SECONDS=N stops each harness after N seconds if it has not
# done its executions by then (the report says how many it did). Builds go to
# build-soak/. Exits non-zero if any harness or any round failed. Takes hours at the
# defaults on 2 cores (the slower harnesses do a few hundred executions a second).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${SOAK_FUZZ_RUNS:-10000000}
rounds=${SOAK_ROUNDS:-10000}
only=${SOAK_ONLY:-}
b=build-soak
# The harnesses and the file each one targets (its coverage is reported).
fuzzers=${SOAK_FUZZERS:-"frame broker stream adopt shm_ring shm_setup"}
limit=${SOAK_FUZZ_SECONDS:+-max_total_time=$SOAK_FUZZ_SECONDS}
declare -A target=(
    [frame]=src/core/frame.c [broker]=src/broker/proto.c [stream]=src/transport/fdchan.c
    [adopt]="src/sync/event.c src/bcast/bcast.c src/mailbox/mailbox.c"
    [shm_ring]=src/transport/shm_rx.c
    [shm_setup]="src/transport/shm.c src/transport/shm_link.c")
rc=0

# llvm-cov-14 / llvm-profdata-14 (or unversioned), installed when missing.
llvm_tool() {
    for t in "$1-14" "$1"; do command -v "$t" >/dev/null && { echo "$t"; return; }; done
    sudo -n apt-get install -y llvm-14 >/dev/null 2>&1 || apt-get install -y llvm-14 >/dev/null
    echo "$1-14"
}

if [ "$only" != kill ]; then
    echo "== libFuzzer: each harness for $runs executions, two at a time"
    cmake -S . -B $b/fuzz -DCMAKE_C_COMPILER=clang -DFERRY_FUZZ=ON >/dev/null
    targets=$(cmake --build $b/fuzz --target help | sed -n 's/^\.\.\. \(fuzz_[a-z_]*\)$/\1/p')
    run=""
    for h in $fuzzers; do grep -qx "fuzz_$h" <<<"$targets" && run="$run $h"; done
    cmake --build $b/fuzz -j2 --target $(for h in $run; do echo "fuzz_$h"; done) >/dev/null
    fuzz() {
        rm -rf "$b/corpus-$1" && mkdir -p "$b/corpus-$1"
        if [ -d "tests/fuzz/corpus/$1" ]; then cp "tests/fuzz/corpus/$1"/* "$b/corpus-$1/"; fi
        # shellcheck disable=SC2086
        "$b/fuzz/tests/fuzz/fuzz_$1" -runs="$runs" $limit -timeout=30 -print_final_stats=1 \
            -artifact_prefix="$b/fuzz-$1-" "$b/corpus-$1" >"$b/fuzz-$1.log" 2>&1
    }
    for h in $run; do
        while [ "$(jobs -pr | wc -l)" -ge 2 ]; do sleep 1; done
        (set +e; fuzz "$h"; echo $? >"$b/rc-$h") &
    done
    wait

    # Coverage: the same harnesses, built with -fprofile-instr-generate
    # -fcoverage-mapping and replay_main.c, replay the corpora grown above.
    profdata=$(llvm_tool llvm-profdata)
    cov=$(llvm_tool llvm-cov)
    cmake -S . -B $b/cov -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" \
        -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
    for h in $run; do
        if ! cmake --build $b/cov -j2 --target "fuzz_${h}_replay" >/dev/null 2>&1; then
            echo "fuzz_$h: no replay target for coverage"
            continue
        fi
        LLVM_PROFILE_FILE="$b/cov/$h.profraw" "$b/cov/tests/fuzz/fuzz_${h}_replay" \
            "$b/corpus-$h" >/dev/null 2>&1 || true
        "$profdata" merge -sparse "$b/cov/$h.profraw" -o "$b/cov/$h.profdata"
        echo "fuzz_$h: $(grep -E '^stat::number_of_executed_units' "$b/fuzz-$h.log" | tr -s ' ')" \
            "corpus $(ls "$b/corpus-$h" | wc -l) inputs, exit $(cat "$b/rc-$h")"
        # shellcheck disable=SC2086
        "$cov" report "$b/cov/tests/fuzz/fuzz_${h}_replay" -instr-profile="$b/cov/$h.profdata" \
            $(for f in ${target[$h]}; do echo "$PWD/$f"; done) | sed 's/^/    /'
        [ "$(cat "$b/rc-$h")" = 0 ] || { tail -30 "$b/fuzz-$h.log"; rc=1; }
    done
fi

if [ "$only" != fuzz ]; then
    echo "== kill -9 soak: $rounds rounds per transport"
    cmake -S . -B $b/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build $b/plain -j2 --target ferry_soak >/dev/null
    for t in shm unix tcp fifo pipe; do
        "$b/plain/tests/soak/ferry_soak" "$t" "$rounds" || rc=1
    done
fi
exit $rc
