#!/usr/bin/env bash
# demo.sh — build ferry and show it: the benchmark table (ferry's shared-memory channel
# against the physical and kernel floors, measured now on this machine) and the
# ping-pong example. Usage: ./scripts/demo.sh [extra ferry-bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "== examples/pingpong"
./build/examples/pingpong
echo
echo "== ferry bench --quick"
./build/tools/ferry/ferry bench --quick "$@"
