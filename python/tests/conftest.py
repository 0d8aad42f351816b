# SPDX-License-Identifier: MIT
"""Fixtures of the ferry Python tests: the package from this source tree (python/), a
private ferryd (a 0700 directory, $FERRY_BROKER in it, no autospawn: as
tests/common/brokerutil.h), the C peer, forked children, and fd counting.

Run by CTest as python_tests (FERRY_LIBRARY, FERRY_PY_PEER and FERRY_FERRYD_BIN set by
python/CMakeLists.txt); by hand: FERRY_LIBRARY=build/libferry.so
FERRY_PY_PEER=build/python/ferry_py_peer FERRY_FERRYD_BIN=build/ferryd
/usr/bin/python3 -m pytest python/tests
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ferry  # noqa: E402


def c_env():
    """The environment for the C programs the tests start (ferryd, the C peer): without
    LD_PRELOAD, which under the sanitizer run (python/CMakeLists.txt) holds the shared
    ASan runtime that /usr/bin/python3 needs for an ASan libferry, and which clashes
    with the static runtime those programs carry."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def broker():
    """A private ferryd; yields its socket path, stops it (SIGTERM, exit 0) after."""
    exe = os.environ.get("FERRY_FERRYD_BIN") or os.environ.get("FERRY_FERRYD")
    if not exe:
        pytest.fail("FERRY_FERRYD_BIN (the built ferryd) is not set")
    d = tempfile.mkdtemp(prefix="ferry-pytest-")
    os.chmod(d, 0o700)
    sock = os.path.join(d, "ferryd.sock")
    old = {k: os.environ.get(k) for k in ("FERRY_BROKER", "FERRY_NO_AUTOSPAWN")}
    os.environ["FERRY_BROKER"] = sock
    os.environ["FERRY_NO_AUTOSPAWN"] = "1"
    def die_with_parent():  # a killed test run takes its ferryd along (PR_SET_PDEATHSIG)
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)

    p = subprocess.Popen([exe, "--foreground", "--socket", sock, "--policy",
                          os.path.join(d, "policy.conf")], preexec_fn=die_with_parent,
                         env=c_env())
    try:
        for _ in range(500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                s.connect(sock)
                break
            except OSError:
                time.sleep(0.01)
            finally:
                s.close()
        else:
            pytest.fail("ferryd did not start")
        yield sock
    finally:
        rc = None
        try:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(30)
        finally:
            if rc is None:
                p.kill()
                p.wait()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(d, ignore_errors=True)
        assert rc == 0, "ferryd exited %d" % rc


@pytest.fixture
def peer_bin():
    p = os.environ.get("FERRY_PY_PEER")
    if not p:
        pytest.fail("FERRY_PY_PEER (the built C peer) is not set")
    return p


@pytest.fixture
def tmpdir700():
    d = tempfile.mkdtemp(prefix="ferry-pytest-")
    os.chmod(d, 0o700)
    yield d
    left = os.listdir(d)
    shutil.rmtree(d, ignore_errors=True)
    assert not left, "left in the test directory: %r" % left


@pytest.fixture
def scratch():
    """A scratch directory (a pathlib.Path), removed with all in it after the test
    (pytest's own tmp_path keeps the last runs' directories in /tmp)."""
    import pathlib
    d = tempfile.mkdtemp(prefix="ferry-pytest-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def fork(fn):
    """Run fn() in a forked child; its exit status is 0 if fn returns, 1 if it raises.
    Returns the pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_ok(pid, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        r, st = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            assert os.waitstatus_to_exitcode(st) == 0, "child failed: %d" % st
            return
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("child did not finish")
        time.sleep(0.01)


@pytest.fixture(autouse=True, scope="session")
def link_watcher():
    """The library keeps one descriptor for the process's lifetime once a shm channel end
    has slept: its link watcher's epoll set (src/shm/watch.h). Make it before the first
    test counts descriptors, by a receive that sleeps (it spins first, then sleeps)."""
    a, b = ferry.pair()
    with a, b:
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.05)


@pytest.fixture(autouse=True)
def no_leftovers(link_watcher):
    """Every test: no fd more after it than before. (ferry's shared memory is memfds,
    never named in /dev/shm; socket files live in tmpdir700, checked empty at its end.)"""
    fds = fd_count()
    yield
    import gc
    gc.collect()
    assert fd_count() == fds, "fds leaked: %d -> %d" % (fds, fd_count())
