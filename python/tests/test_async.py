# SPDX-License-Identifier: MIT
"""asyncio: recv_async on the poll fd (no threads)."""

import asyncio
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
