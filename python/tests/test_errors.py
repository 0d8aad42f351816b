# SPDX-License-Identifier: MIT
"""Each error class: the exact exception type, errno and ferry's message."""

import errno
import os
import subprocess
import sys

import pytest

import ferry


def check(ei, cls, err):
    e = ei.value
    assert type(e).__mro__[1:3] == (ferry.Error, cls) or cls is ferry.Error
    assert isinstance(e, ferry.Error) and isinstance(e, cls) and isinstance(e, OSError)
    assert e.errno == err
    assert ferry.strerror(err) in e.strerror


def test_timeout_error():
    a, b = ferry.pair()
    with a, b, pytest.raises(TimeoutError) as ei:
        b.recv(timeout=0.25)
    check(ei, TimeoutError, errno.ETIMEDOUT)


def test_timeout_is_honoured_across_slices():
    import time
    a, b = ferry.pair()
    with a, b:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.35)
        assert 0.3 <= time.monotonic() - t0 < 5


def test_blocking_io_error():
    a, b = ferry.pair()
    with a, b, pytest.raises(BlockingIOError) as ei:
        b.recv(timeout=0)
    check(ei, BlockingIOError, errno.EAGAIN)


def test_broken_pipe_error():
    a, b = ferry.pair()
    a.close()
    with b, pytest.raises(BrokenPipeError) as ei:
        b.recv()
    check(ei, BrokenPipeError, errno.EPIPE)


def test_file_not_found_error(tmpdir700):
    with pytest.raises(FileNotFoundError) as ei:
        ferry.open("unix://%s/nobody" % tmpdir700, timeout=5)
    check(ei, FileNotFoundError, errno.ENOENT)


def test_connection_refused_error(tmpdir700):
    import socket
    p = "%s/dead" % tmpdir700
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(p)
    s.close()  # a socket file nobody listens on
    try:
        with pytest.raises(ConnectionRefusedError) as ei:
            ferry.open("unix://" + p, timeout=5)
        check(ei, ConnectionRefusedError, errno.ECONNREFUSED)
    finally:
        os.unlink(p)


def test_permission_error(tmpdir700):
    if os.geteuid() == 0:
        pytest.skip("root is not refused by file permissions")
    d = os.path.join(tmpdir700, "locked")
    os.mkdir(d, 0o500)
    try:
        with pytest.raises(PermissionError) as ei:
            ferry.listen("unix://%s/s.sock" % d)
        check(ei, PermissionError, errno.EACCES)
    finally:
        os.rmdir(d)


def test_permission_error_fifo(tmpdir700):
    # fifo: a path that is not a FIFO (here regular files): -EACCES (ferry.h,
    # ferry_chan_open), for root too.
    base = os.path.join(tmpdir700, "x")
    for suffix in (".c2s", ".s2c"):
        with open(base + suffix, "w"):
            pass
    try:
        with pytest.raises(PermissionError) as ei:
            ferry.open("fifo://" + base, timeout=5)
        check(ei, PermissionError, errno.EACCES)
    finally:
        for suffix in (".c2s", ".s2c"):
            os.unlink(base + suffix)


def test_file_exists_error(broker):
    with ferry.register("org.pytest.taken"):
        with pytest.raises(FileExistsError) as ei:
            ferry.register("org.pytest.taken")
        check(ei, FileExistsError, errno.EEXIST)


def test_address_in_use(tmpdir700):
    with ferry.listen("unix://%s/s.sock" % tmpdir700):
        with pytest.raises(ferry.Error) as ei:
            ferry.listen("unix://%s/s.sock" % tmpdir700)
        assert ei.value.errno == errno.EADDRINUSE and type(ei.value) is ferry.Error


def test_message_too_long():
    a, b = ferry.pair()
    with a, b, pytest.raises(ferry.Error) as ei:
        a.send(b"x" * (a.max_msg + 1))
    assert ei.value.errno == errno.EMSGSIZE and type(ei.value) is ferry.Error


def test_bad_url():
    with pytest.raises(ferry.Error) as ei:
        ferry.listen("nosuch://x")
    assert ei.value.errno == errno.EPROTONOSUPPORT


def test_invalid_name(broker):
    with pytest.raises(ferry.Error) as ei:
        ferry.connect("bad name!")
    assert ei.value.errno == errno.EINVAL


def test_negative_timeout():
    a, b = ferry.pair()
    with a, b, pytest.raises(ValueError):
        b.recv(timeout=-1)


PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wrong_library_refused_at_import(scratch):
    """A library that is not libferry (here libc) is an ImportError naming what is
    missing, never a crash."""
    import ctypes.util
    libc = ctypes.util.find_library("c")
    env = dict(os.environ, FERRY_LIBRARY=libc, PYTHONPATH=PKG)
    r = subprocess.run([sys.executable, "-c", "import ferry"], env=env, capture_output=True,
                       text=True, cwd=str(scratch))
    assert r.returncode != 0
    assert "ImportError: ferry:" in r.stderr and "missing ferry_strerror" in r.stderr


def test_missing_library_refused_at_import(scratch):
    env = dict(os.environ, FERRY_LIBRARY=str(scratch / "nope.so"), PYTHONPATH=PKG)
    r = subprocess.run([sys.executable, "-c", "import ferry"], env=env, capture_output=True,
                       text=True, cwd=str(scratch))
    assert r.returncode != 0 and "cannot load libferry" in r.stderr
