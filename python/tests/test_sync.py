# SPDX-License-Identifier: MIT
"""Semaphore, Event and Mailbox shared with a forked process (and passed by fd)."""

import os
import time

import pytest

import ferry
from conftest import fork, wait_ok


def test_semaphore_across_fork():
    with ferry.Semaphore(0) as s:
        def child():
            for _ in range(5):
                s.post()

        pid = fork(child)
        for _ in range(5):
            s.acquire(timeout=30)
        wait_ok(pid)
        assert s.value == 0
        with pytest.raises(BlockingIOError):
            s.acquire(timeout=0)
        with pytest.raises(TimeoutError):
            s.acquire(timeout=0.2)


def test_semaphore_undo_returns_dead_holders_units():
    with ferry.Semaphore(1, undo=True) as s:
        pid = fork(lambda: (s.acquire(), os._exit(0)))
        os.waitpid(pid, 0)
        s.acquire(timeout=30)  # given back by the undo


def test_semaphore_adopt_fd():
    with ferry.Semaphore(2) as s, ferry.Semaphore.adopt(s.fd) as t:
        t.acquire(timeout=5)
        assert s.value == 1


def test_event_across_fork():
    with ferry.Event() as e:
        pid = fork(lambda: [e.post(i) for i in (7, 8, 9)])
        assert [e.next(timeout=30) for _ in range(3)] == [7, 8, 9]
        wait_ok(pid)
        with pytest.raises(BlockingIOError):
            e.next(timeout=0)


def test_event_poll_fd():
    import select
    with ferry.Event() as e:
        e.post(1)
        assert select.select([e], [], [], 5)[0] == [e]
        assert e.next(timeout=0) == 1


def test_mailbox_across_fork():
    with ferry.Mailbox(capacity=8, max_msg=256) as mb:
        def child():
            for i in range(20):
                mb.send(b"m%d" % i, type=1 + i % 2, timeout=30)

        pid = fork(child)
        got = [mb.recv(timeout=30) for _ in range(20)]
        wait_ok(pid)
        assert sorted(got) == sorted((b"m%d" % i, 1 + i % 2) for i in range(20))
        with pytest.raises(ferry.Error) as ei:
            mb.send(b"x" * 257)
        assert ei.value.errno == 90  # EMSGSIZE


def test_mutex_across_fork_and_errors():
    with ferry.Mutex() as m:
        r, w = os.pipe()

        def child():
            assert m.lock(timeout=30) is True
            os.write(w, b"L")
            time.sleep(0.5)
            m.unlock()

        pid = fork(child)
        assert os.read(r, 1) == b"L"
        with pytest.raises(BlockingIOError) as ei:
            m.lock(timeout=0)
        assert ei.value.errno == 11
        with pytest.raises(TimeoutError) as ei:
            m.lock(timeout=0.1)
        assert ei.value.errno == 110 and isinstance(ei.value, ferry.Error)
        with m.hold(timeout=30) as ok:  # waits for the child's unlock
            assert ok is True
            with pytest.raises(ferry.Error) as ei:
                m.lock(timeout=1)
            assert ei.value.errno == 35  # EDEADLK: this thread holds it
        with pytest.raises(PermissionError) as ei:
            m.unlock()
        assert ei.value.errno == 1
        wait_ok(pid)
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("fair", [False, True])
def test_mutex_owner_died(fair):
    with ferry.Mutex(fair=fair) as m:
        pid = fork(lambda: (m.lock(), os._exit(0)))
        os.waitpid(pid, 0)
        assert m.lock(timeout=30) is False  # held now, state to repair
        m.consistent()
        m.unlock()
        assert m.lock(timeout=5) is True
        m.unlock()


def test_mutex_not_consistent_is_not_recoverable():
    with ferry.Mutex() as m:
        pid = fork(lambda: (m.lock(), os._exit(0)))
        os.waitpid(pid, 0)
        assert m.lock(timeout=30) is False
        m.unlock()  # without consistent(): unusable for everyone from now on
        with pytest.raises(ferry.Error) as ei:
            m.lock(timeout=1)
        assert ei.value.errno == 131  # ENOTRECOVERABLE


def test_mutex_adopt_fd():
    with ferry.Mutex(fair=True) as m, ferry.Mutex.adopt(m.fd) as n:
        assert n.lock(timeout=5)
        with pytest.raises(BlockingIOError):
            threading_lock_from_other_thread(m)
        n.unlock()


def threading_lock_from_other_thread(m):
    import threading
    out = []

    def run():
        try:
            m.lock(timeout=0)
        except BaseException as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    raise out[0]


def test_barrier_across_fork():
    with ferry.Barrier(3) as b:
        r, w = os.pipe()

        def child():
            serial = b.wait(timeout=30)
            os.write(w, b"1" if serial else b"0")

        pids = [fork(child) for _ in range(2)]
        got = [b.wait(timeout=30)]
        for p in pids:
            wait_ok(p)
        got += [os.read(r, 1) == b"1" for _ in range(2)]
        assert sorted(got) == [False, False, True]  # exactly one serial party
        with pytest.raises(TimeoutError):
            b.wait(timeout=0.2)  # withdrawn: the next round still needs 3
        with pytest.raises(BlockingIOError):
            b.wait(timeout=0)
        os.close(r)
        os.close(w)


def test_barrier_wait_sliced_keeps_arrival():
    # A wait longer than one 100 ms slice: withdrawn and re-arrived between slices,
    # the round still completes.
    with ferry.Barrier(2) as b:
        pid = fork(lambda: (time.sleep(0.5), b.wait(timeout=30)))
        b.wait(timeout=30)
        wait_ok(pid)


def test_barrier_bad_count():
    with pytest.raises(ferry.Error) as ei:
        ferry.Barrier(0)
    assert ei.value.errno == 22
