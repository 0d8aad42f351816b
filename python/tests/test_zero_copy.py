# SPDX-License-Identifier: MIT
"""loan and peek: the views work in their with block and are dead after it, also when
the handle is closed inside the block (the view dies with it, never dangles)."""

import pytest

import ferry
from conftest import fork, wait_ok


def test_loan_commits_and_invalidates():
    a, b = ferry.pair()
    with a, b:
        with a.loan(5, type=4) as buf:
            assert not buf.readonly and len(buf) == 5
            buf[:] = b"hello"
        with pytest.raises(ValueError):
            buf[0] = 1
        with pytest.raises(ValueError):
            bytes(buf)
        m = b.recv(timeout=5)
        assert m.data == b"hello" and m.type == 4


def test_peek_is_read_only_and_invalidated():
    a, b = ferry.pair()
    with a, b:
        a.send(b"peekaboo", type=2)
        with b.peek() as m:
            v = m.data
            assert v.readonly and bytes(v) == b"peekaboo" and m.type == 2
            with pytest.raises(TypeError):
                v[0] = 1
        with pytest.raises(ValueError):
            v[0]
        with pytest.raises(BlockingIOError):
            b.recv(timeout=0)  # released: the message was taken


def test_loan_exception_sends_nothing_and_keeps_reservation():
    a, b = ferry.pair()
    with a, b:
        with pytest.raises(RuntimeError):
            with a.loan(8) as buf:
                buf[:4] = b"half"
                raise RuntimeError("boom")
        with pytest.raises(BlockingIOError):
            b.recv(timeout=0)
        with a.loan(6) as buf:  # reuses the reservation
            buf[:] = b"second"
        assert b.recv(timeout=5).data == b"second"


def test_escaped_slice_is_refused_not_dangling():
    a, b = ferry.pair()
    a.send(b"abcdef")
    with pytest.raises(BufferError):
        with b.peek() as m:
            sl = m.data[1:3]
    assert bytes(sl) == b"bc"  # still valid: the memory stays pinned
    with pytest.raises(BufferError):
        b.close()  # the channel must not unmap memory a live view refers to
    del sl
    b.close()
    a.close()


def test_peek_across_processes():
    a, b = ferry.pair()

    def child():
        a.close()
        for i in range(20):
            with b.loan(1000) as buf:
                buf[:] = bytes([i]) * 1000
        b.recv(timeout=30)

    pid = fork(child)
    b.close()
    with a:
        for i in range(20):
            with a.peek(timeout=30) as m:
                assert bytes(m.data) == bytes([i]) * 1000
        a.send(b"bye")
        wait_ok(pid)


def _in_child(fn):
    """fn in a forked child (a view over unmapped memory kills the child, not pytest)."""
    wait_ok(fork(fn))


def test_close_inside_peek_kills_the_view():
    def child():
        a, b = ferry.pair()
        a.send(b"abcdef")
        with b.peek() as m:
            b.close()  # the ring is unmapped: the view must die first
            with pytest.raises(ValueError):
                bytes(m.data)  # was a read of unmapped memory (SIGSEGV)
        assert b.closed  # the block's end needs no open channel
        a.close()
    _in_child(child)


def test_close_inside_loan_kills_the_view():
    def child():
        a, b = ferry.pair()
        with pytest.raises(ValueError, match="closed"):  # nothing was committed
            with a.loan(16) as buf:
                a.close()
                with pytest.raises(ValueError):
                    buf[0] = 1  # was a write into unmapped memory (SIGSEGV)
        with pytest.raises(BrokenPipeError):
            b.recv(timeout=0)  # nothing came before the end
        b.close()
    _in_child(child)


def test_close_inside_block_with_a_slice_is_refused():
    a, b = ferry.pair()
    a.send(b"abcdef")
    with pytest.raises(BufferError):
        with b.peek() as m:
            sl = m.data[1:3]
            with pytest.raises(BufferError):
                b.close()  # a slice of the live view: the channel stays open
            assert not b.closed and bytes(sl) == b"bc"
    del sl, m
    b.close()
    a.close()


def test_bcast_close_inside_loan_and_sub_peek():
    def child():
        b = ferry.Broadcast(slots=4, max_msg=256)
        s = b.subscribe()
        b.publish(b"one", timeout=5)
        with s.peek(timeout=5) as m:
            s.close()
            with pytest.raises(ValueError):
                bytes(m.data)
        with pytest.raises(ValueError, match="closed"):
            with b.loan(8) as buf:
                b.close()
                with pytest.raises(ValueError):
                    buf[0] = 1
    _in_child(child)
