# SPDX-License-Identifier: MIT
"""asyncio: recv_async on the poll fd (no threads)."""

import asyncio
import os
import signal
import threading

import ferry
from conftest import fork, wait_ok


def test_recv_async_many_channels():
    pairs = [ferry.pair() for _ in range(20)]
    threads = threading.active_count()

    async def main():
        async def one(i, a, b):
            await asyncio.sleep(0.01 * (i % 5))
            a.send(b"m%d" % i)
            m = await b.recv_async()
            assert m.data == b"m%d" % i

        await asyncio.gather(*(one(i, a, b) for i, (a, b) in enumerate(pairs)))
        assert threading.active_count() == threads

    asyncio.run(main())
    for a, b in pairs:
        a.close()
        b.close()


def test_recv_async_from_other_process():
    a, b = ferry.pair()

    def child():
        a.close()
        import time
        time.sleep(0.2)
        for i in range(10):
            b.send(b"%d" % i, type=1 + i % 2)

    pid = fork(child)
    b.close()

    async def main():
        got = [await a.recv_async(type_filter=2) for _ in range(5)]
        got += [await a.recv_async() for _ in range(5)]
        return [m.data for m in got]

    with a:
        assert asyncio.run(main()) == [b"1", b"3", b"5", b"7", b"9", b"0", b"2", b"4", b"6",
                                       b"8"]
    wait_ok(pid)


def test_asyncio_server_100_clients(tmpdir700):
    """An asyncio server (accept_async, recv_async) in this process, 100 clients of a
    forked process talking to it at once."""
    url = "shm://%s/srv.sock" % tmpdir700
    with ferry.listen(url) as lis:
        def child():
            lis._h = None  # the parent's

            async def client(i):
                with ferry.open(url, timeout=30) as ch:
                    for j in range(5):
                        ch.send(b"%d:%d" % (i, j), timeout=30)
                        m = await ch.recv_async()
                        assert m.data == b"ok %d:%d" % (i, j)

            async def main():
                await asyncio.gather(*(client(i) for i in range(100)))

            asyncio.run(main())

        pid = fork(child)

        async def serve_one(ch):
            with ch:
                while True:
                    try:
                        m = await ch.recv_async()
                    except BrokenPipeError:
                        return
                    ch.send(b"ok " + m.data, timeout=30)

        async def server():
            tasks = []
            for _ in range(100):
                tasks.append(asyncio.ensure_future(serve_one(await lis.accept_async())))
            await asyncio.gather(*tasks)

        asyncio.run(asyncio.wait_for(server(), 120))
        wait_ok(pid)


def test_subscriber_and_watch_and_inbox_async(broker):
    threads = threading.active_count()

    async def main():
        with ferry.Broadcast() as b, b.subscribe() as s, \
                ferry.watch("org.pytest.aw.*") as w, ferry.inbox("org.pytest.aw.in") as ib:
            assert (await w.next_async()).info.name == "org.pytest.aw.in"
            task = asyncio.ensure_future(s.recv_async())
            await asyncio.sleep(0.05)
            assert not task.done()
            b.publish(b"async")
            assert (await asyncio.wait_for(task, 30)).data == b"async"
            pid = fork(lambda: ferry.send_to("org.pytest.aw.in", b"to-inbox", timeout=30))
            m = await asyncio.wait_for(ib.recv_async(), 30)
            assert (m.data, m.sender[2]) == (b"to-inbox", pid)
            wait_ok(pid)
            assert threading.active_count() == threads

    asyncio.run(main())


def test_asyncio_server_with_100_concurrent_clients(tmpdir700):
    """An asyncio echo server (accept_async, a task per connection, recv_async) serving
    100 clients at once: 100 connections from a forked process whose own asyncio loop
    keeps them all in flight together."""
    n_clients, rounds = 100, 5
    url = "shm://%s/srv.sock" % tmpdir700
    with ferry.listen(url, ring_bytes=8192) as lis:
        def client():
            lis._h = None  # the parent's listener

            async def main():
                chans = [ferry.open(url, timeout=30) for _ in range(n_clients)]
                go = asyncio.Event()

                async def one(i, ch):
                    await go.wait()  # all 100 connected before any round trip
                    for r in range(rounds):
                        ch.send(b"c%d.%d" % (i, r))
                        m = await ch.recv_async()
                        assert m.data == b"echo:c%d.%d" % (i, r)

                tasks = [asyncio.ensure_future(one(i, ch)) for i, ch in enumerate(chans)]
                go.set()
                await asyncio.wait_for(asyncio.gather(*tasks), 60)
                for ch in chans:
                    ch.close()

            asyncio.run(main())

        pid = fork(client)

        async def server():
            conns = []
            peak = [0, 0]  # connections open now, most at once

            async def serve(ch):
                peak[0] += 1
                peak[1] = max(peak[1], peak[0])
                with ch:
                    for _ in range(rounds):
                        m = await ch.recv_async()
                        ch.send(b"echo:" + m.data)
                peak[0] -= 1

            for _ in range(n_clients):
                ch = await asyncio.wait_for(lis.accept_async(), 60)
                conns.append(asyncio.ensure_future(serve(ch)))
            await asyncio.wait_for(asyncio.gather(*conns), 60)
            return peak[1]

        threads = threading.active_count()
        try:
            assert asyncio.run(server()) == n_clients  # all were served at the same time
        except BaseException:
            os.kill(pid, signal.SIGKILL)  # not left behind, holding the test's output open
            os.waitpid(pid, 0)
            raise
        assert threading.active_count() == threads
        wait_ok(pid)
