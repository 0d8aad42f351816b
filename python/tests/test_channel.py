# SPDX-License-Identifier: MIT
"""Channels between Python processes: pair() over fork, listen/open over shm, unix and
tcp 127.0.0.1; typed receive; fds both ways; kill -9 of the peer; fd growth."""

import ctypes
import errno
import os
import signal
import time

import pytest

import ferry
from conftest import fd_count, fork, wait_ok


def echo_server(ch, n):
    for _ in range(n):
        m = ch.recv(timeout=30)
        ch.send(b"echo:" + m.data, type=m.type, fds=m.fds, timeout=30)
        m.close_fds()


def test_pair_across_fork():
    a, b = ferry.pair()
    with a, b:
        pid = fork(lambda: (a.close(), echo_server(b, 100)))
        b.close()
        for i in range(100):
            a.send(b"x%d" % i, timeout=30)
            m = a.recv(timeout=30)
            assert m.data == b"echo:x%d" % i and m.type == 0 and m.fds == ()
        wait_ok(pid)


def url_for(scheme, d):
    if scheme == "tcp":
        return "tcp://127.0.0.1:0"
    return "%s://%s/s.sock" % (scheme, d)


@pytest.mark.parametrize("scheme", ["shm", "unix", "tcp"])
def test_listen_open_across_processes(scheme, tmpdir700):
    with ferry.listen(url_for(scheme, tmpdir700)) as lis:
        url = lis.url

        def child():
            lis._h = None  # the parent's listener: not this process's to close
            with ferry.open(url, timeout=30) as ch:
                echo_server(ch, 50)
                with pytest.raises(BrokenPipeError):
                    ch.recv(timeout=30)

        pid = fork(child)
        with lis.accept(timeout=30) as ch:
            for i in range(50):
                payload = os.urandom(i * 97)
                ch.send(payload, type=i % 3, timeout=30)
                m = ch.recv(timeout=30)
                assert m.data == b"echo:" + payload and m.type == i % 3
        wait_ok(pid)


def test_typed_receive():
    a, b = ferry.pair()
    with a, b:
        for t in (3, 1, 2, 1):
            a.send(b"t%d" % t, type=t)
        assert b.recv(type_filter=2).data == b"t2"
        assert b.recv(type_filter=-2).data == b"t1"  # lowest type <= 2: the first 1
        assert b.recv().data == b"t3"                # skipped ones keep their order
        assert b.recv().data == b"t1"
        with pytest.raises(BlockingIOError):
            b.recv(type_filter=7, timeout=0)


@pytest.mark.parametrize("scheme", ["shm", "unix"])
def test_fds_both_ways(scheme, tmpdir700):
    with ferry.listen(url_for(scheme, tmpdir700)) as lis:
        url = lis.url

        def child():
            lis._h = None
            with ferry.open(url, timeout=30) as ch:
                m = ch.recv(timeout=30)  # a pipe's write end from the parent
                assert m.data == b"w" and len(m.fds) == 1
                os.write(m.fds[0], b"child-was-here")
                m.close_fds()
                r, w = os.pipe()
                os.write(w, b"from-child")
                os.close(w)
                ch.send(b"r", fds=[r], timeout=30)
                os.close(r)
                ch.recv(timeout=30)  # wait for the parent's go-ahead before closing

        pid = fork(child)
        with lis.accept(timeout=30) as ch:
            r, w = os.pipe()
            ch.send(b"w", fds=[w], timeout=30)
            os.close(w)
            m = ch.recv(timeout=30)
            assert m.data == b"r" and len(m.fds) == 1
            with m:
                assert os.read(m.fds[0], 100) == b"from-child"
            assert os.read(r, 100) == b"child-was-here"
            os.close(r)
            ch.send(b"done", timeout=30)
        wait_ok(pid)


def test_fd_objects_accepted():
    a, b = ferry.pair()
    with a, b, open("/dev/null", "rb") as f:
        a.send(b"", fds=[f])
        m = b.recv()
        with m:
            assert os.path.samestat(os.fstat(m.fds[0]), os.fstat(f.fileno()))


@pytest.mark.parametrize("scheme", ["pair", "unix"])
def test_no_fds_refuses_the_peers_fds(scheme, tmpdir700):
    """no_fds=True on the creating end: the peer's send with fds is EOPNOTSUPP, nothing
    sent, the channel goes on; the creator's own fds still go."""
    if scheme == "pair":
        mine, peer = ferry.pair(no_fds=True)
    else:
        import threading
        with ferry.listen(url_for("unix", tmpdir700), no_fds=True) as lis:
            got = []
            t = threading.Thread(target=lambda: got.append(ferry.open(lis.url, timeout=10)))
            t.start()
            mine = lis.accept(timeout=10)
            t.join()
            peer, = got
    with mine, peer, open("/dev/null", "rb") as f:
        base = fd_count()
        with pytest.raises(ferry.Error) as ei:
            peer.send(b"x", fds=[f], timeout=5)
        assert ei.value.errno == errno.EOPNOTSUPP
        with pytest.raises(BlockingIOError):
            mine.recv(timeout=0)  # nothing was sent
        peer.send(b"plain", timeout=5)
        m = mine.recv(timeout=5)
        assert m.data == b"plain" and m.fds == () and fd_count() == base
        mine.send(b"back", fds=[f], timeout=5)
        with peer.recv(timeout=5) as m:
            assert len(m.fds) == 1


def _in_memfd(addr):
    """Is addr inside a mapping of a memfd (a channel's shared segment)?"""
    with open("/proc/self/maps") as f:
        for line in f:
            if "/memfd:" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= addr < hi:
                    return True
    return False


@pytest.mark.parametrize("private", [False, True])
def test_peek_private_is_a_copy(private):
    """peek_private=True: the peeked bytes are this end's own copy, not the shared ring
    the peer can still write; without it, peek is in place."""
    a, b = ferry.pair(peek_private=private)
    with a, b:
        a.send(b"private", type=3)
        with b.peek(timeout=5) as m:
            assert bytes(m.data) == b"private" and m.type == 3
            assert _in_memfd(ctypes.addressof(m.data.obj)) != private


def test_kill9_peer_gives_broken_pipe():
    a, b = ferry.pair()
    with a:
        def child():
            a.close()
            b.send(b"ready")
            time.sleep(60)

        pid = fork(child)
        b.close()
        assert a.recv(timeout=30).data == b"ready"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        t0 = time.monotonic()
        with pytest.raises(BrokenPipeError) as ei:
            a.recv(timeout=30)
        assert ei.value.errno == 32 and isinstance(ei.value, ferry.Error)
        assert time.monotonic() - t0 < 10
        with pytest.raises(BrokenPipeError):
            a.send(b"x", timeout=30)


def _traffic(a, b, bc, sub, mb, r, i):
    """One message of a mix that takes every path: the hot send/recv path mostly, typed
    and bytearray sends, fds (every 1000th), loan and peek (every 10th), broadcast and
    mailbox (every 10th)."""
    if i % 1000 == 0:
        a.send(b"f", fds=[r])
        b.recv().close_fds()
    elif i % 10 == 0:
        with a.loan(64, type=3) as buf:
            buf[:2] = b"zz"
        with b.peek() as m:
            assert m.type == 3
        bc.publish(b"b" * 32)
        sub.recv()
        mb.send(b"m" * 16, type=1)
        mb.recv()
    elif i % 10 == 5:
        a.send(bytearray(b"x" * 64), type=i % 5)
        b.recv(type_filter=-5)
    else:
        a.send(b"x" * 64)
        b.recv()


def test_no_fd_or_memory_growth_over_100000_messages():
    """100,000 messages: the fds of the process (/proc/self/fd) and the memory Python
    traces (tracemalloc) are the same after the last 90,000 as after the first 10,000
    (the first make what is made once: buffers, poll fds, type caches)."""
    import tracemalloc
    r, w = os.pipe()
    a, b = ferry.pair()
    with a, b, ferry.Broadcast(slots=4) as bc, bc.subscribe() as sub, ferry.Mailbox() as mb:
        tracemalloc.start(1)
        try:
            for i in range(10000):
                _traffic(a, b, bc, sub, mb, r, i)
            fds = fd_count()
            base = tracemalloc.get_traced_memory()[0]
            for i in range(10000, 100000):
                _traffic(a, b, bc, sub, mb, r, i)
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert fd_count() == fds, "fds grew: %d -> %d" % (fds, fd_count())
        # 90,000 messages: a leak of one byte per message would be 90 KB
        assert grown < 16 * 1024, "traced memory grew by %d bytes" % grown
        assert sub.lost == 0
    os.close(r)
    os.close(w)


def test_large_message_grows_receive_buffer():
    a, b = ferry.pair(max_msg=1 << 20, ring_bytes=4 << 20)
    with a, b:
        big = os.urandom(1 << 20)
        a.send(big)
        assert b.recv().data == big


def test_send_accepts_bytes_like():
    a, b = ferry.pair()
    with a, b:
        a.send(bytearray(b"ba"), type=1)
        a.send(memoryview(b"xmvx")[1:3])
        import array
        a.send(array.array("B", [1, 2, 3]))
        assert b.recv().data == b"ba"
        assert b.recv().data == b"mv"
        assert b.recv().data == bytes([1, 2, 3])


def test_ctrl_c_interrupts_blocking_recv():
    a, b = ferry.pair()
    with a, b:
        pid = os.getpid()

        def child():
            time.sleep(0.3)
            os.kill(pid, signal.SIGINT)

        cpid = fork(child)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            b.recv(timeout=20)  # TimeoutError after 20 s if the wait were not sliced
        assert time.monotonic() - t0 < 5
        wait_ok(cpid)
        a.send(b"still works")
        assert b.recv(timeout=5).data == b"still works"


def test_fileno_polls():
    import selectors
    a, b = ferry.pair()
    with a, b, selectors.DefaultSelector() as sel:
        sel.register(b, selectors.EVENT_READ)
        assert sel.select(0) == []
        a.send(b"x")
        assert len(sel.select(5)) == 1
        b.recv()
        sel.unregister(b)


def test_closed_channel():
    a, b = ferry.pair()
    a.close()
    a.close()  # idempotent
    assert a.closed
    with pytest.raises(ValueError):
        a.send(b"x")
    with pytest.raises(BrokenPipeError):
        b.recv(timeout=5)
    b.close()


def test_general_send_does_not_move_the_receive_buffer():
    # The general send path (a type, fds, a bytearray) and the receive path once shared
    # one message record: a send moved the receive buffer onto its own data, so the
    # next recv wrote there and returned stale bytes.
    a, b = ferry.pair()
    with a, b:
        b.send(b"first")
        assert a.recv().data == b"first"
        a.send(b"q", type=1)
        a.send(bytearray(b"w"))
        b.send(b"y" * 1000, type=2)
        m = a.recv()
        assert (m.data, m.type) == (b"y" * 1000, 2)
        assert b.recv().data == b"q" and b.recv().data == b"w"
