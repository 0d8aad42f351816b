#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench.py — 64-byte round trips between two Python processes, p50/p99 in µs, as CSV
(name,size,n,p50_us,p99_us): py-ferry-shm (the package), py-ferry-ctypes-bare (the C
calls through ctypes with no wrapper), py-mp-pipe (multiprocessing.Pipe). Same run, same
machine: compare rows with each other, not across runs.

    FERRY_LIBRARY=build/libferry.so /usr/bin/python3 python/bench.py [N]
"""

import ctypes
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferry  # noqa: E402
from ferry._lib import lib as C  # noqa: E402

SIZE = 64
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
WARM = 1000


def stats(name, ts):
    ts.sort()
    print("%s,%d,%d,%.2f,%.2f" % (name, SIZE, len(ts), ts[len(ts) // 2] / 1e3,
                                 ts[int(len(ts) * 0.99)] / 1e3), flush=True)


def run(name, child, parent):
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    parent()
    os.waitpid(pid, 0)


def bench_ferry():
    a, b = ferry.pair()
    data = b"x" * SIZE

    def child():
        a.close()
        for _ in range(N + WARM):
            b.send(b.recv().data)

    def parent():
        b.close()
        ts = []
        clock = time.perf_counter_ns
        for i in range(N + WARM):
            t0 = clock()
            a.send(data)
            a.recv()
            if i >= WARM:
                ts.append(clock() - t0)
        a.close()
        stats("py-ferry-shm", ts)

    run("ferry", child, parent)


def bench_bare():
    a, b = ctypes.c_void_p(), ctypes.c_void_p()
    assert C.ferry_pair(None, ctypes.byref(a), ctypes.byref(b)) == 0
    send, recvmsg = C.ferry_send, C.ferry_recvmsg
    buf = ctypes.create_string_buffer(4096)

    def child():
        C.ferry_chan_close(a)
        m = ferry._lib.Msg()
        m.data, m.cap = ctypes.addressof(buf), 4096
        for _ in range(N + WARM):
            n = recvmsg(b, ctypes.byref(m), 0, -1)
            send(b, buf, n, -1)

    def parent():
        C.ferry_chan_close(b)
        m = ferry._lib.Msg()
        m.data, m.cap = ctypes.addressof(buf), 4096
        data = b"x" * SIZE
        ts = []
        clock = time.perf_counter_ns
        for i in range(N + WARM):
            t0 = clock()
            send(a, data, SIZE, -1)
            recvmsg(a, ctypes.byref(m), 0, -1)
            if i >= WARM:
                ts.append(clock() - t0)
        C.ferry_chan_close(a)
        stats("py-ferry-ctypes-bare", ts)

    run("bare", child, parent)


def bench_pipe():
    a, b = mp.Pipe()
    data = b"x" * SIZE

    def child():
        a.close()
        for _ in range(N + WARM):
            b.send_bytes(b.recv_bytes())

    def parent():
        b.close()
        ts = []
        clock = time.perf_counter_ns
        for i in range(N + WARM):
            t0 = clock()
            a.send_bytes(data)
            a.recv_bytes()
            if i >= WARM:
                ts.append(clock() - t0)
        a.close()
        stats("py-mp-pipe", ts)

    run("pipe", child, parent)


if __name__ == "__main__":
    print("name,size,n,p50_us,p99_us")
    bench_ferry()
    bench_bare()
    bench_pipe()
