#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deps.sh — install what ferry needs on Debian, only when missing. Sourced:
#   . scripts/deps.sh        building and testing (test.sh): compilers, cmake, sanitizer
#                            runtimes, clang-format-14 (the format check), valgrind,
#                            python3 and libuv (for tests and examples), scdoc and
#                            man-db (the man pages and their check), libssl-dev and
#                            openssl (tls://)
#   . scripts/deps.sh demo   the same, plus what the demo compares ferry with (demo.sh):
#                            ZeroMQ, NNG, iceoryx and sd-bus (libsystemd-dev; with dbus
#                            for dbus-daemon) for their `ferry bench` rows, pkg-config to
#                            find them, and rsvg-convert to turn the chart into a PNG
# Needs root (or sudo) only when something is missing. The build works without the demo
# packages: `ferry bench` then leaves those rows out and says so.
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v clang >/dev/null 2>&1 || need+=(clang)
# test.sh checks the format with this exact version (another formats differently).
command -v clang-format-14 >/dev/null 2>&1 || need+=(clang-format-14)
command -v python3 >/dev/null 2>&1 || need+=(python3) # test_ls.sh checks `ferry ls --json` parses
# python_tests: the Python binding's pytest suite, with Debian's /usr/bin/python3.
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || need+=(python3-pytest)
# ... and its check that `pip install ./python` works offline (pip + setuptools, no network).
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
/usr/bin/python3 -c 'import setuptools' >/dev/null 2>&1 || need+=(python3-setuptools)
# examples/libuv_echo (ferry in a libuv loop) is built and run by the tests.
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg-query -W -f='${Status}' libuv1-dev 2>/dev/null | grep -q 'ok installed' || need+=(libuv1-dev)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind) # test.sh's memcheck step
# tls:// (an optional build dependency: OpenSSL 3), and the openssl tool for making
# certificates by hand (docs/cluster.md; the tests make theirs with the library).
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'ok installed' || need+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The man pages (man/*.scd) are built with scdoc and checked with man -l (check-man.sh).
command -v scdoc >/dev/null 2>&1 || need+=(scdoc)
command -v man >/dev/null 2>&1 || need+=(man-db)
# check-builds.sh (dpkg-buildflags), check-consumer.sh (dpkg-architecture), check-abi.sh (abidiff).
command -v dpkg-buildflags >/dev/null 2>&1 || need+=(dpkg-dev)
command -v abidiff >/dev/null 2>&1 || need+=(abigail-tools)
# check-deb.sh: debian/ built with dpkg-buildpackage (debhelper), checked with lintian.
command -v dh >/dev/null 2>&1 || need+=(debhelper)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v fakeroot >/dev/null 2>&1 || need+=(fakeroot)
command -v dh_python3 >/dev/null 2>&1 || need+=(dh-python) # python3-ferry's packaging
# tests/cluster and ferry-bridge (names across hosts, docs/cluster.md): the NATS server the
# tests start in network namespaces, the C client the bridge is built with (FERRY_NATS=AUTO:
# without it the bridge and its tests are left out), iproute2 for `ip netns`.
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
dpkg-query -W -f='${Status}' libnats-dev 2>/dev/null | grep -q 'ok installed' || need+=(libnats-dev)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The clang runtimes for the sanitizers and libFuzzer.
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  need+=(libclang-rt-14-dev)
if [ "${1:-}" = demo ]; then
  # dpkg-query: installed, whatever the state of PATH or pkg-config.
  # python3-zmq: the py-zmq row of python/bench.py.
  for pkg in pkg-config libzmq3-dev libnng-dev iceoryx libiceoryx-binding-c-dev \
    libiceoryx-posh-dev libiceoryx-hoofs-dev libsystemd-dev dbus librsvg2-bin python3-zmq; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
