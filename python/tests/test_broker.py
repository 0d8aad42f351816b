# SPDX-License-Identifier: MIT
"""By name through a private ferryd: register/connect between Python processes,
unix kind, the policy mode."""

import os

import pytest

import ferry
from conftest import fork, wait_ok


@pytest.mark.parametrize("kind", [ferry.KIND_SHM, ferry.KIND_UNIX])
def test_register_connect_across_processes(broker, kind):
    with ferry.register("org.pytest.echo", mode=0o600) as lis:
        def child():
            with ferry.connect("org.pytest.echo", kind=kind, timeout=30) as ch:
                for i in range(20):
                    ch.send(b"q%d" % i, timeout=30)
                    assert ch.recv(timeout=30).data == b"a:q%d" % i

        pid = fork(child)
        with lis.accept(timeout=30) as ch:
            assert ch.peer()[2] == pid
            for i in range(20):
                m = ch.recv(timeout=30)
                ch.send(b"a:" + m.data, timeout=30)
        wait_ok(pid)


def test_connect_unknown_name(broker):
    with pytest.raises(FileNotFoundError) as ei:
        ferry.connect("org.pytest.nobody", timeout=5)
    assert ei.value.errno == 2 and isinstance(ei.value, ferry.Error)


def test_no_broker_is_connection_refused(tmpdir700, monkeypatch):
    monkeypatch.setenv("FERRY_BROKER", os.path.join(tmpdir700, "none.sock"))
    monkeypatch.setenv("FERRY_NO_AUTOSPAWN", "1")
    with pytest.raises(ConnectionRefusedError) as ei:
        ferry.connect("org.pytest.x", timeout=5)
    assert ei.value.errno == 111
