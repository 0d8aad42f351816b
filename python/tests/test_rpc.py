# SPDX-License-Identifier: MIT
"""RPC: serve() in Python (ferry's pool threads) and Client.call / call_async from
another process; timeouts cancel; a dead server is BrokenPipeError."""

import asyncio
import os
import signal
import time

import pytest

import ferry
from conftest import fork, wait_ok


def test_serve_and_call_across_processes(broker):
    made = []

    def handler(m):
        if m.data == b"fd":
            r, w = os.pipe()
            os.write(w, b"served")
            os.close(w)
            for fd in m.fds:
                os.close(fd)
            made.append(r)  # the handler keeps its fd (the client gets a duplicate)
            return (b"here", [r])
        return b"re:" + m.data

    # The client is forked before serve() starts its threads: a fork of a process whose
    # other threads may hold a lock (the allocator's, under ASan) can leave the child
    # stuck on it.
    r, w = os.pipe()

    def child():
        os.close(w)
        assert os.read(r, 1) == b"g"  # the service is up
        with ferry.rpc_connect("org.pytest.rpc", timeout=30) as c:
            for i in range(50):
                assert c.call(b"%d" % i, timeout=30).data == b"re:%d" % i
            with c.call(b"fd", timeout=30) as m:
                assert m.data == b"here" and os.read(m.fds[0], 10) == b"served"

    pid = fork(child)
    os.close(r)
    with ferry.serve("org.pytest.rpc", handler, threads=2):
        os.write(w, b"g")
        os.close(w)
        wait_ok(pid)
    for fd in made:
        os.close(fd)


def test_call_async_concurrent(broker):
    def handler(m):
        time.sleep(0.01)
        return m.data[::-1]

    with ferry.serve("org.pytest.rpc2", handler, threads=4):
        with ferry.rpc_connect("org.pytest.rpc2", timeout=30) as c:
            async def main():
                rs = await asyncio.gather(*(c.call_async(b"abc%d" % i) for i in range(100)))
                return [r.data for r in rs]

            assert asyncio.run(main()) == [(b"abc%d" % i)[::-1] for i in range(100)]


def test_call_timeout_and_dead_server(broker):
    started = []

    def child():
        def slow(m):
            time.sleep(60)
        with ferry.serve("org.pytest.slow", slow):
            os.write(w, b"x")
            time.sleep(60)

    r, w = os.pipe()
    pid = fork(child)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    with ferry.rpc_connect("org.pytest.slow", timeout=30) as c:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as ei:
            c.call(b"q", timeout=0.3)
        assert ei.value.errno == 110 and time.monotonic() - t0 < 10
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with pytest.raises(BrokenPipeError) as ei:
            c.call(b"q", timeout=30)
        assert ei.value.errno == 32
    del started
