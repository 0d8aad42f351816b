# SPDX-License-Identifier: MIT
"""Broadcast: one publisher, subscribers in other processes, lost counts of drop-oldest
subscribers, zero copy, end of stream, errors, Ctrl-C during a wait."""

import os
import select
import signal
import time

import pytest

import ferry
from conftest import fork, wait_ok


def wait_subscribers(b, n):
    deadline = time.monotonic() + 30
    while b.subscribers < n:
        assert time.monotonic() < deadline, "subscribers did not come"
        time.sleep(0.01)


def test_every_subscriber_gets_every_message_across_fork():
    with ferry.Broadcast(slots=8, max_msg=256) as b:
        r, w = os.pipe()

        def child():
            with b.subscribe() as s:
                got = [(m.data, m.type) for m in s]  # until the end of the stream
            assert got == [(b"m%d" % i, i % 4) for i in range(100)], got
            os.write(w, b"k")

        pids = [fork(child) for _ in range(3)]
        wait_subscribers(b, 3)
        for i in range(100):  # 100 > slots: lossless, the publisher waits for them
            b.publish(b"m%d" % i, type=i % 4, timeout=30)
        b.end()
        for p in pids:
            wait_ok(p)
        assert os.read(r, 3) == b"kkk"
        assert b.stats()["published"] == 100 and b.stats()["ended"] == 1
        with pytest.raises(BrokenPipeError):
            b.publish(b"late")
        os.close(r)
        os.close(w)


def test_drop_oldest_counts_lost_exactly():
    with ferry.Broadcast(slots=4) as b, b.subscribe(drop_oldest=True) as s:
        for i in range(11):
            b.publish(b"%d" % i, timeout=0)  # never waits for a drop-oldest subscriber
        got = [int(s.recv(timeout=0).data) for _ in range(4)]
        assert got == [7, 8, 9, 10]
        assert s.lost == 7
        with pytest.raises(BlockingIOError):
            s.recv(timeout=0)


def test_skip_counts_in_lost_and_seq():
    with ferry.Broadcast(slots=4) as b, b.subscribe() as s, b.subscribe(drop_oldest=True) as d:
        b.publish(b"0")
        b.skip(5)  # numbers 1..5
        b.publish(b"6")
        for sub in (s, d):
            assert sub.recv(timeout=0).data == b"0" and sub.seq == 1
            assert sub.recv(timeout=0).data == b"6" and sub.seq == 7
            assert sub.lost == 5
        assert b.stats()["published"] == 7


def test_blocking_subscriber_holds_publisher():
    with ferry.Broadcast(slots=2) as b, b.subscribe() as s:
        b.publish(b"a")
        b.publish(b"b")
        with pytest.raises(BlockingIOError):
            b.publish(b"c", timeout=0)
        with pytest.raises(TimeoutError):
            b.publish(b"c", timeout=0.2)
        assert b.list_subscribers()[0].lag == 2
        assert s.recv().data == b"a"
        b.publish(b"c", timeout=0)
        assert s.lost == 0


def test_loan_and_peek_zero_copy():
    with ferry.Broadcast(slots=4, max_msg=1 << 16) as b, b.subscribe() as s:
        with b.loan(5, type=9) as buf:
            buf[:] = b"hello"
        with s.peek(timeout=5) as m:
            assert bytes(m.data) == b"hello" and m.type == 9
            view = m.data
            with pytest.raises(TypeError):
                view[0] = 1  # read-only
        with pytest.raises(ValueError):
            view[0]  # released with its block
        with pytest.raises(RuntimeError):
            with b.loan(3) as buf:
                buf[:] = b"xyz"
                raise RuntimeError("nothing published")
        with pytest.raises(BlockingIOError):
            s.recv(timeout=0)
        with b.loan(2) as buf:  # reuses the reservation kept above
            buf[:] = b"ok"
        assert s.recv(timeout=5).data == b"ok"


def test_errors():
    with ferry.Broadcast(max_msg=16) as b, b.subscribe() as s:
        with pytest.raises(ferry.Error) as ei:
            b.publish(b"x" * 17)
        assert ei.value.errno == 90  # EMSGSIZE
        with pytest.raises(ferry.Error) as ei:
            ferry.Broadcast(slots=3)  # not a power of two
        assert ei.value.errno == 22
        b.end()
        with pytest.raises(BrokenPipeError) as ei:
            s.recv(timeout=5)
        assert ei.value.errno == 32
    with pytest.raises(ValueError):
        s.recv()  # closed with its broadcast


def test_max_subs_is_enospc():
    with ferry.Broadcast(max_subs=1) as b, b.subscribe():
        with pytest.raises(ferry.Error) as ei:
            b.subscribe()
        assert ei.value.errno == 28  # ENOSPC


def test_fileno_and_adopt():
    with ferry.Broadcast() as b, ferry.Broadcast.adopt(b.fd) as b2, b2.subscribe() as s:
        assert select.select([s], [], [], 0)[0] == []
        b.publish(b"x")
        assert select.select([s], [], [], 5)[0] == [s]
        assert s.recv(timeout=0).data == b"x"


def test_ctrl_c_during_subscriber_wait():
    with ferry.Broadcast() as b, b.subscribe() as s:
        pid = os.getpid()
        cpid = fork(lambda: (time.sleep(0.3), os.kill(pid, signal.SIGINT)))
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            s.recv(timeout=20)
        assert time.monotonic() - t0 < 5
        wait_ok(cpid)
        b.publish(b"still works")
        assert s.recv(timeout=5).data == b"still works"


def test_subscription_is_not_closed_by_a_fork_child():
    # A fork child inherits the Subscriber object but not the subscription (ferry.h:
    # a ferry_sub is used in the process that made it): its close() or collection must
    # leave the parent's entry alone, and using it there is a ValueError.
    with ferry.Broadcast(slots=4) as b, b.subscribe() as s:
        def child():
            with pytest.raises(ValueError):
                s.recv(timeout=0)
            s.close()

        wait_ok(fork(child))
        assert b.subscribers == 1
        for i in range(4):
            b.publish(b"%d" % i, timeout=0)
        with pytest.raises(BlockingIOError):
            b.publish(b"4", timeout=0)  # the parent's entry still holds the publisher
        assert [s.recv(timeout=5).data for _ in range(4)] == [b"0", b"1", b"2", b"3"]
