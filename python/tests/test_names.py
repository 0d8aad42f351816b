# SPDX-License-Identifier: MIT
"""The naming service through a private ferryd: ls() and lookup() as data, watch() as
an iterator and a pollable fd, publish() of every shared object and X.open(name) in
another process, inboxes with send_to, and the layout check of the records the library
fills."""

import ctypes
import os
import selectors
import time

import pytest

import ferry
from ferry import _lib
from conftest import fork, wait_ok


def test_ls_and_lookup_as_data(broker):
    with ferry.register("org.pytest.ls.b"), ferry.Semaphore() as s, \
            s.publish_as("org.pytest.ls.a", mode=0o640):
        names = ferry.ls()
        assert [n.name for n in names] == ["org.pytest.ls.a", "org.pytest.ls.b"]
        a, b = names
        assert isinstance(a, ferry.NameInfo) and a._fields == (
            "name", "uid", "gid", "pid", "mode", "connects", "kind", "since_ns")
        assert (a.uid, a.pid, a.mode, a.kind) == (os.getuid(), os.getpid(), 0o640,
                                                  ferry.OBJ_SEM)
        assert (b.kind, b.mode, b.connects) == (0, 0o600, 0)
        assert ferry.lookup("org.pytest.ls.b") == b
        with pytest.raises(FileNotFoundError) as ei:
            ferry.lookup("org.pytest.ls.none")
        assert ei.value.errno == 2 and isinstance(ei.value, ferry.Error)
    assert ferry.ls() == []


def test_ls_pages(broker):
    lis = [ferry.register("org.pytest.page.%03d" % i) for i in range(70)]  # > one page
    try:
        assert [n.name for n in ferry.ls()] == ["org.pytest.page.%03d" % i for i in range(70)]
    finally:
        for x in lis:
            x.close()


def test_watch_iterates_and_polls(broker):
    with ferry.watch("org.pytest.w.*") as w, selectors.DefaultSelector() as sel:
        sel.register(w, selectors.EVENT_READ)
        assert sel.select(0) == []
        lis = ferry.register("org.pytest.w.one")
        ferry.register("org.pytest.other").close()  # not matched
        assert len(sel.select(10)) == 1
        ev = next(w)
        assert ev.kind == ferry.EV_OWNED and ev.info.name == "org.pytest.w.one"
        assert ev.info.pid == os.getpid()
        lis.close()
        assert w.next(timeout=10).kind == ferry.EV_RELEASED

        pid = fork(lambda: (ferry.register("org.pytest.w.two"), os.kill(os.getpid(), 9)))
        os.waitpid(pid, 0)
        kinds = []
        for ev in w:  # an iterator: runs until we stop
            assert ev.info.name == "org.pytest.w.two" and ev.info.pid == pid
            kinds.append(ev.kind)
            if ev.kind != ferry.EV_OWNED:
                break
        assert kinds == [ferry.EV_OWNED, ferry.EV_DIED]
        with pytest.raises(BlockingIOError):
            w.next(timeout=0)
        with pytest.raises(TimeoutError):
            w.next(timeout=0.2)
        sel.unregister(w)


def _open_and_use(cls, name, use):
    def child():
        with cls.open(name, timeout=30) as obj:
            use(obj)
    return fork(child)


def test_publish_and_open_every_kind(broker):
    with ferry.Semaphore(0) as s, s.publish_as("org.pytest.o.sem"):
        wait_ok(_open_and_use(ferry.Semaphore, "org.pytest.o.sem", lambda o: o.post()))
        s.acquire(timeout=30)
    with ferry.Mutex(fair=True) as m, m.publish_as("org.pytest.o.mutex", mode=0o666):
        wait_ok(_open_and_use(ferry.Mutex, "org.pytest.o.mutex",
                              lambda o: (o.lock(timeout=30), o.unlock())))
    with ferry.Barrier(2) as b, b.publish_as("org.pytest.o.barrier"):
        pid = _open_and_use(ferry.Barrier, "org.pytest.o.barrier", lambda o: o.wait(30))
        b.wait(timeout=30)
        wait_ok(pid)
    with ferry.Event() as e, e.publish_as("org.pytest.o.event"):
        wait_ok(_open_and_use(ferry.Event, "org.pytest.o.event", lambda o: o.post(42)))
        assert e.next(timeout=30) == 42
    with ferry.Mailbox() as mb, ferry.publish("org.pytest.o.mailbox", mb):
        wait_ok(_open_and_use(ferry.Mailbox, "org.pytest.o.mailbox",
                              lambda o: o.send(b"mail", type=4)))
        assert mb.recv(timeout=30) == (b"mail", 4)
    with ferry.Broadcast() as bc, bc.publish_as("org.pytest.o.bcast"):
        def sub(o):
            with o.subscribe() as s:
                assert [m.data for m in s] == [b"1", b"2"]
        pid = _open_and_use(ferry.Broadcast, "org.pytest.o.bcast", sub)
        deadline = time.monotonic() + 30
        while bc.subscribers < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        bc.publish(b"1")
        bc.publish(b"2")
        bc.end()
        wait_ok(pid)


def test_publish_errors(broker):
    with ferry.Semaphore() as s, s.publish_as("org.pytest.e.sem") as pub:
        assert pub.name == "org.pytest.e.sem"
        with pytest.raises(FileExistsError) as ei:
            s.publish_as("org.pytest.e.sem")
        assert ei.value.errno == 17
        with pytest.raises(ferry.Error) as ei:
            ferry.Mutex.open("org.pytest.e.sem")
        assert ei.value.errno == 91  # EPROTOTYPE: a semaphore, not a mutex
    with pytest.raises(FileNotFoundError):
        ferry.Semaphore.open("org.pytest.e.sem")  # the name went with the Publication
    with ferry.Mutex() as m:  # a plain mutex another uid could open
        with pytest.raises(PermissionError) as ei:
            m.publish_as("org.pytest.e.mutex", mode=0o666)
        assert ei.value.errno == 1
        m.publish_as("org.pytest.e.mutex", mode=0o666, trusted_sharers=True).close()
    with pytest.raises(TypeError):
        ferry.publish("org.pytest.e.x", object())


def test_inbox_and_send_to(broker):
    with ferry.inbox("org.pytest.inbox") as ib:
        r, w = os.pipe()

        def child():
            ferry.send_to("org.pytest.inbox", b"hello", type=3, fds=[w], timeout=30)
            ferry.send_to("org.pytest.inbox", b"x" * 100000, timeout=30)  # grows the buffer

        pid = fork(child)
        with ib.recv(timeout=30) as m:
            assert (m.data, m.type, m.sender[2]) == (b"hello", 3, pid)
            assert m.sender[:2] == (os.getuid(), os.getgid())
            os.write(m.fds[0], b"!")
        assert os.read(r, 1) == b"!"
        assert ib.recv(timeout=30).data == b"x" * 100000
        wait_ok(pid)
        with pytest.raises(FileNotFoundError):
            ib.recv(sender="org.pytest.nobody", timeout=1)
        with pytest.raises(BlockingIOError):
            ib.recv(timeout=0)
        os.close(r)
        os.close(w)
    with pytest.raises(FileNotFoundError):
        ferry.send_to("org.pytest.inbox", b"late", timeout=5)


def _mismatched(delta):
    """NameInfo with delta reserved words more (or fewer) than the library's."""
    fields = [(n, t) for n, t in _lib.NameInfo._fields_ if n != "reserved"]
    return type("NameInfo", (ctypes.Structure,),
                {"_fields_": fields + [("reserved", ctypes.c_uint64 * (8 + delta))]})


@pytest.mark.parametrize("delta", [-1, 1])
def test_record_layout_mismatch_is_refused(broker, monkeypatch, delta):
    with ferry.register("org.pytest.layout"):
        assert ferry.ls()[0].name == "org.pytest.layout"
        monkeypatch.setattr(_lib, "NameInfo", _mismatched(delta))
        with pytest.raises(RuntimeError, match="lays out NameInfo differently"):
            ferry.ls()
        with pytest.raises(RuntimeError):
            ferry.lookup("org.pytest.layout")


@pytest.mark.parametrize("delta", [-1, 1])
def test_watch_event_layout_mismatch_is_refused(broker, monkeypatch, delta):
    fields = [(n, t) for n, t in _lib.WatchEvent._fields_ if n != "reserved2"]
    wrong = type("WatchEvent", (ctypes.Structure,),
                 {"_fields_": fields + [("reserved2", ctypes.c_uint64 * (4 + delta))]})
    with ferry.watch("org.pytest.wl") as w, ferry.register("org.pytest.wl"):
        monkeypatch.setattr(_lib, "WatchEvent", wrong)
        with pytest.raises(RuntimeError, match="lays out WatchEvent differently"):
            w.next(timeout=10)
