# SPDX-License-Identifier: MIT
"""Relayed identities (docs/security.md "Relays", ferry_chan_peer_remote) from Python:
relay_for on a joining end, trust_relay_uid on a creating end, Channel.peer_remote() and
Message.remote in serve() handlers, with their exact errors; and serve() reporting a
reply that ferry_reply refused (fds to a client that takes none, more than max_msg)
through sys.unraisablehook, then serving on.

The trusted relay uid is the test's own (every joiner here runs as it); "another uid" is
one the test does not run as, so that the same identity from this uid is not believed."""

import asyncio
import errno
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import ferry

ME = os.getuid()
OTHER = 61831 if ME != 61831 else 61832


def in_thread(fn):
    """Run fn() in a thread; the returned join() gives its result or raises its error."""
    box = {}

    def run():
        try:
            box["r"] = fn()
        except BaseException as e:  # noqa: B902 — handed to join()
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()

    def join():
        t.join(60)
        assert not t.is_alive(), "the thread did not finish"
        if "e" in box:
            raise box["e"]
        return box["r"]
    return join


def joined(lis, join_fn, timeout=30):
    """Accept on lis while a thread joins with join_fn(); returns (accepted, joined)."""
    j = in_thread(join_fn)
    ch = lis.accept(timeout=timeout)
    return ch, j()


def first_message(acc, joiner):
    """The joiner's handshake is read at the accepting end's first receive: make one."""
    joiner.send(b"hi", timeout=30)
    assert acc.recv(timeout=30).data == b"hi"


def remote_of(acc, joiner):
    first_message(acc, joiner)
    return acc.peer_remote()


def expect(err, fn, cls=ferry.Error):
    with pytest.raises(cls) as ei:
        fn()
    assert isinstance(ei.value, ferry.Error) and ei.value.errno == err, ei.value
    return ei.value


def test_peer_remote_on_a_trusting_listener(tmpdir700):
    url = "unix://" + os.path.join(tmpdir700, "r.sock")
    longest = "".join(chr(0x21 + i % 94) for i in range(ferry.REMOTE_ID_MAX))
    with ferry.listen(url, trust_relay_uid=ME) as lis:
        for name in ("hostb", longest):
            acc, j = joined(lis, lambda: ferry.open(url, timeout=30, relay_for=name))
            with acc, j:
                assert remote_of(acc, j) == name
                assert acc.peer_remote() == name  # asked again: the same
                # the joining end: its creator names nobody
                expect(errno.ENOENT, j.peer_remote, FileNotFoundError)
                assert acc.peer()[0] == ME  # the kernel's word stands beside it
        # a joiner that named nobody
        acc, j = joined(lis, lambda: ferry.open(url, timeout=30))
        with acc, j:
            first_message(acc, j)
            expect(errno.ENOENT, acc.peer_remote, FileNotFoundError)
        # bytes work as well as str
        acc, j = joined(lis, lambda: ferry.open(url, timeout=30, relay_for=b"hostc"))
        with acc, j:
            assert remote_of(acc, j) == "hostc"
        # before the joiner's handshake has come: EAGAIN, without waiting
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(os.path.join(tmpdir700, "r.sock"))
            with lis.accept(timeout=30) as acc:
                expect(errno.EAGAIN, acc.peer_remote, BlockingIOError)
        finally:
            s.close()


def test_peer_remote_not_believed(tmpdir700):
    """The identity is believed only from the trusted uid, and only with trust_relay_uid:
    else ENOENT, as for a joiner that named none."""
    for i, opts in enumerate(({"trust_relay_uid": OTHER}, {})):
        path = os.path.join(tmpdir700, "n%d.sock" % i)
        url = "unix://" + path
        with ferry.listen(url, **opts) as lis:
            acc, j = joined(lis, lambda: ferry.open(url, timeout=30, relay_for="hostb"))
            with acc, j:
                first_message(acc, j)
                expect(errno.ENOENT, acc.peer_remote, FileNotFoundError)


def test_peer_remote_by_name_and_shm(broker):
    with ferry.register("org.pytest.relay", trust_relay_uid=ME) as lis:
        acc, j = joined(lis, lambda: ferry.connect("org.pytest.relay", ferry.KIND_UNIX,
                                                   timeout=30, relay_for="hostb"))
        with acc, j:
            assert remote_of(acc, j) == "hostb"
        # shm has no identities: EOPNOTSUPP, also when the joiner named one
        acc, j = joined(lis, lambda: ferry.connect("org.pytest.relay", ferry.KIND_SHM,
                                                   timeout=30, relay_for="hostb"))
        with acc, j:
            first_message(acc, j)
            expect(errno.EOPNOTSUPP, acc.peer_remote)
            expect(errno.EOPNOTSUPP, j.peer_remote)
    a, b = ferry.pair()
    with a, b:
        expect(errno.EOPNOTSUPP, a.peer_remote)
    with pytest.raises(ValueError):
        a.peer_remote()  # closed


@pytest.mark.parametrize("bad", ["x" * (ferry.REMOTE_ID_MAX + 1), "", "host b", "a\0b",
                                 "h\u00e9", b"\x7f"])
def test_relay_for_invalid(tmpdir700, bad):
    """What the library refuses (length, characters) and a NUL, which could not reach
    it: ferry.Error EINVAL, as ferry_chan_open / ferry_connect say."""
    url = "unix://" + os.path.join(tmpdir700, "none.sock")
    e = expect(errno.EINVAL, lambda: ferry.open(url, timeout=1, relay_for=bad))
    assert type(e) is ferry.Error
    expect(errno.EINVAL, lambda: ferry.listen(url, relay_for=bad))


def test_trust_relay_uid_invalid(tmpdir700):
    url = "unix://" + os.path.join(tmpdir700, "none.sock")
    for uid in (-1, 1 << 32, 0xFFFFFFFF, True):
        with pytest.raises(ValueError):
            ferry.listen(url, trust_relay_uid=uid)


def test_message_remote_is_none_elsewhere():
    assert ferry.Message(b"x").remote is None
    a, b = ferry.pair()
    with a, b:
        a.send(b"x")
        assert b.recv(timeout=5).remote is None


def test_serve_handler_sees_remote(broker):
    def handler(m):
        return b"-" if m.remote is None else m.remote.encode()

    name = "org.pytest.relay.rpc"
    with ferry.serve(name, handler, threads=2, trust_relay_uid=ME):
        for kind, rf, want in ((ferry.KIND_UNIX, "hostb", b"hostb"),
                               (ferry.KIND_UNIX, None, b"-"),
                               (ferry.KIND_SHM, "hostb", b"-")):  # shm: none
            with ferry.rpc_connect(name, kind, timeout=30, relay_for=rf) as c:
                assert c.call(b"who", timeout=30).data == want
    with ferry.serve(name, handler):  # not trusting: nobody's word is taken
        with ferry.rpc_connect(name, ferry.KIND_UNIX, timeout=30, relay_for="hostb") as c:
            assert c.call(b"who", timeout=30).data == b"-"


def test_serve_reports_refused_reply(broker, monkeypatch):
    """A reply ferry_reply refuses goes to sys.unraisablehook as a ferry.Error with its
    errno (before: dropped without a word); the caller gets nothing (its call is
    cancelled here), and the service answers the next request."""
    reports = []
    seen = threading.Event()

    def hook(u):
        if str(getattr(u, "err_msg", "")).startswith("ferry.serve"):
            reports.append(u)
            seen.set()

    monkeypatch.setattr(sys, "unraisablehook", hook)
    made = []

    def handler(m):
        if m.data == b"fd":
            r, w = os.pipe()
            os.close(w)
            made.append(r)
            return (b"with an fd", [r])
        if m.data == b"big":
            return b"x" * 8192
        return b"re:" + m.data

    async def refused(c, req):
        seen.clear()
        t = asyncio.ensure_future(c.call_async(req))
        deadline = time.monotonic() + 60
        while not seen.is_set():
            assert not t.done(), "the refused reply arrived: %r" % (t.result(),)
            assert time.monotonic() < deadline, "no report"
            await asyncio.sleep(0.005)
        assert not t.done()
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return (await c.call_async(b"next")).data  # served on

    name = "org.pytest.relay.reply"
    try:
        with ferry.serve(name, handler, threads=2, max_msg=4096):
            with ferry.rpc_connect(name, ferry.KIND_UNIX, timeout=30, no_fds=True) as c:
                assert asyncio.run(refused(c, b"fd")) == b"re:next"
                assert asyncio.run(refused(c, b"big")) == b"re:next"
                assert c.call(b"again", timeout=30).data == b"re:again"
    finally:
        for fd in made:
            os.close(fd)
    assert len(reports) == 2, reports
    e = reports[0].exc_value
    assert isinstance(e, ferry.Error) and e.errno == errno.EOPNOTSUPP, e
    assert "1 fds" in str(e) and "takes none" in str(e), e
    assert reports[0].err_msg == "ferry.serve reply" and reports[0].object is handler
    e = reports[1].exc_value
    assert isinstance(e, ferry.Error) and e.errno == errno.EMSGSIZE, e
    assert "8192 bytes" in str(e) and "max_msg" in str(e), e


_DEFAULT_HOOK = r"""
import sys, ferry
def handler(m):
    if m.data == b"raise":
        raise KeyError("boom")
    return b"re:" + m.data
with ferry.serve("org.pytest.relay.hook", handler):
    with ferry.rpc_connect("org.pytest.relay.hook", timeout=30) as c:
        assert c.call(b"raise", timeout=30).data == b""  # the empty reply still goes
        assert c.call(b"next", timeout=30).data == b"re:next"
print("done")
"""


def test_serve_reports_with_the_default_hook(broker):
    """Outside pytest (whose hook takes any object) sys.unraisablehook is the
    interpreter's, which takes only its own UnraisableHookArgs: the report is printed as
    it would print it, and the handler's request still gets its empty reply (before, the
    report raised TypeError inside the C callback and no reply was sent)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(ferry.__file__))
    r = subprocess.run([sys.executable, "-c", _DEFAULT_HOOK], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "done\n", (r.stdout, r.stderr)
    assert "ferry.serve handler: <function handler" in r.stderr, r.stderr
    assert "KeyError: 'boom'" in r.stderr and "TypeError" not in r.stderr, r.stderr
