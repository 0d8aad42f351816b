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
