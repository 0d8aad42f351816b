#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh — build ferry and show it: the ping-pong example, two processes meeting by name
# through ferryd (named_echo), then the benchmark table —
# ferry's shared-memory channel against the physical and kernel floors, the raw kernel
# mechanisms (unix, tcp, fifo, POSIX and System V queues, eventfd) and the peer libraries
# (ZeroMQ, NNG, iceoryx), all measured now on this machine — and the same as a chart,
# build/ferry-bench.svg (and .png when rsvg-convert is there).
# Usage: ./scripts/demo.sh [extra ferry-bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export FERRY_FERRYD="$PWD/build/ferryd" # the library and `ferry bench` start this build's ferryd
echo "== examples/pingpong"
./build/examples/pingpong
echo
echo "== examples/named_echo: two processes meet by name through ferryd"
./build/examples/named_echo
echo
echo "== ferry bench --quick --plot build/ferry-bench.svg"
./build/tools/ferry/ferry bench --quick --plot build/ferry-bench.svg "$@"
if command -v rsvg-convert >/dev/null 2>&1; then
  rsvg-convert build/ferry-bench.svg -o build/ferry-bench.png
  echo "chart: build/ferry-bench.svg, build/ferry-bench.png"
else
  echo "chart: build/ferry-bench.svg"
fi
