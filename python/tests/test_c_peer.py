# SPDX-License-Identifier: MIT
"""Python <-> C: the C peer (peer.c, built by CMake) echoes what Python sends, over
shm, unix and tcp, and by name through a private ferryd; fds both ways."""

import os
import subprocess

import pytest

import ferry
from conftest import c_env


def run_peer(peer_bin, *args):
    return subprocess.Popen([peer_bin] + list(args), env=c_env())


def exchange(ch):
    for i in range(30):
        payload = os.urandom(i * 131)
        ch.send(payload, type=i % 4, timeout=30)
        m = ch.recv(timeout=30)
        assert m.data == b"c:" + payload and m.type == i % 4 and m.fds == ()
    # an fd to C and back: C sends back its duplicate of our pipe's write end
    r, w = os.pipe()
    ch.send(b"fd", type=5, fds=[w], timeout=30)
    os.close(w)
    with ch.recv(timeout=30) as m:
        assert m.data == b"c:fd" and m.type == 5 and len(m.fds) == 1
        os.write(m.fds[0], b"round-trip")
    assert os.read(r, 100) == b"round-trip"
    os.close(r)
    # an fd made by C
    ch.send(b"", type=99, timeout=30)
    with ch.recv(type_filter=99, timeout=30) as m:
        assert m.data == b"pipe" and len(m.fds) == 1
        assert os.read(m.fds[0], 100) == b"from-c"


@pytest.mark.parametrize("scheme", ["shm", "unix", "tcp"])
def test_c_peer_by_url(scheme, tmpdir700, peer_bin):
    url = "tcp://127.0.0.1:0" if scheme == "tcp" else "%s://%s/c.sock" % (scheme, tmpdir700)
    with ferry.listen(url) as lis:
        p = run_peer(peer_bin, "open", lis.url)
        try:
            with lis.accept(timeout=30) as ch:
                if scheme == "tcp":
                    # tcp carries no fds: data and types only
                    for i in range(30):
                        ch.send(b"t%d" % i, type=i, timeout=30)
                        m = ch.recv(timeout=30)
                        assert m.data == b"c:t%d" % i and m.type == i
                    with pytest.raises(ferry.Error):
                        ch.send(b"x", fds=[0], timeout=30)
                else:
                    exchange(ch)
        finally:
            assert p.wait(30) == 0


def test_c_peer_by_name(broker, peer_bin):
    with ferry.register("org.pytest.cpeer") as lis:
        p = run_peer(peer_bin, "connect", "org.pytest.cpeer")
        try:
            with lis.accept(timeout=30) as ch:
                uid, gid, pid = ch.peer()
                assert pid == p.pid and uid == os.geteuid()
                exchange(ch)
        finally:
            assert p.wait(30) == 0


def test_c_peer_kill9_gives_broken_pipe(tmpdir700, peer_bin):
    import signal
    with ferry.listen("shm://%s/k.sock" % tmpdir700) as lis:
        p = run_peer(peer_bin, "open", lis.url)
        with lis.accept(timeout=30) as ch:
            ch.send(b"x", timeout=30)
            assert ch.recv(timeout=30).data == b"c:x"
            p.send_signal(signal.SIGKILL)
            p.wait(30)
            with pytest.raises(BrokenPipeError) as ei:
                ch.recv(timeout=30)
            assert ei.value.errno == 32
