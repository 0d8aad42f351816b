# SPDX-License-Identifier: MIT
"""ferry.Region and ferry.State across processes: fork, descriptors, names (ferryd),
persistent files; read-only handles refused by the kernel; growth, notify and wait;
the lifetime rule of map() views."""

import asyncio
import errno
import hashlib
import os
import struct
import subprocess
import sys
import time

import pytest

import ferry
from conftest import fork, wait_ok

PAGE = 4096


def test_region_written_across_fork_seen_after_notify():
    with ferry.Region(3 * PAGE) as r:
        assert r.size == 3 * PAGE and r.version == 0 and r.writable
        mv = r.map()
        assert len(mv) == 3 * PAGE and not mv.readonly and mv[0] == 0

        def child():
            m = r.map()
            payload = os.urandom(3 * PAGE - 32)
            m[32:] = payload
            m[:32] = hashlib.sha256(payload).digest()
            r.notify()

        pid = fork(child)
        assert r.wait(0, timeout=30) == 1
        wait_ok(pid)
        assert bytes(mv[:32]) == hashlib.sha256(bytes(mv[32:])).digest()
        assert any(mv[32:])
        mv.release()


def test_readonly_handle_refuses_writes():
    with ferry.Region(PAGE, growable=True) as r:
        r.map()[:4] = b"abcd"
        fd = r.readonly_fd()
        try:
            with ferry.Region.adopt(fd) as ro:
                assert not ro.writable
                m = ro.map()
                assert m.readonly and bytes(m[:4]) == b"abcd"
                with pytest.raises(TypeError):
                    m[0] = 1
                for call in (ro.notify, lambda: ro.map(write=True), lambda: ro.resize(2 * PAGE)):
                    with pytest.raises(PermissionError) as ei:
                        call()
                    assert ei.value.errno == errno.EACCES
                    assert isinstance(ei.value, ferry.Error)

                # In another process holding only the read-only descriptor, the kernel
                # refuses a writable shared mapping of it too.
                def child():
                    import mmap
                    with ferry.Region.adopt(fd) as h:
                        with pytest.raises(PermissionError) as e:
                            h.notify()
                        assert e.value.errno == errno.EACCES
                        assert bytes(h.map()[:4]) == b"abcd"
                    with pytest.raises(PermissionError):
                        mmap.mmap(fd, 2 * PAGE, mmap.MAP_SHARED, mmap.PROT_WRITE)

                wait_ok(fork(child))
                assert ro.version == 0
        finally:
            os.close(fd)


def test_grow_seen_by_another_process():
    with ferry.Region(PAGE, growable=True) as r:
        first = r.map()

        def child():
            with ferry.Region.adopt(r.fd) as h:
                h.resize(4 * PAGE)  # notifies
                m = h.map()
                m[-5:] = b"grown"
                h.notify()

        v0 = r.version
        pid = fork(child)
        deadline = time.monotonic() + 30
        v = v0
        while r.version < v0 + 2:
            v = r.wait(v, timeout=max(0.0, deadline - time.monotonic()))
        wait_ok(pid)
        assert r.size == 4 * PAGE
        assert len(first) == PAGE  # a view keeps the length it was made with
        assert bytes(r.map()[-5:]) == b"grown"
        r.resize(PAGE)  # never shrinks: a no-op
        assert r.size == 4 * PAGE
    with ferry.Region(PAGE) as fixed:
        with pytest.raises(PermissionError) as ei:
            fixed.resize(2 * PAGE)
        assert ei.value.errno == errno.EPERM


def test_notify_wakes_a_waiting_process_and_timeouts():
    with ferry.Region(PAGE) as r:
        rd, wr = os.pipe()

        def child():
            os.close(rd)
            v = r.version
            os.write(wr, b"r")
            assert r.wait(v, timeout=60) == v + 1
            assert r.map()[0] == 42

        pid = fork(child)
        os.close(wr)
        assert os.read(rd, 1) == b"r"
        os.close(rd)
        time.sleep(0.05)
        r.map()[0] = 42
        r.notify()
        wait_ok(pid)
        v = r.version
        with pytest.raises(BlockingIOError):
            r.wait(v, timeout=0)
        t = time.monotonic()
        with pytest.raises(TimeoutError) as ei:
            r.wait(v, timeout=0.3)
        assert ei.value.errno == errno.ETIMEDOUT
        assert time.monotonic() - t >= 0.29


def test_ctrl_c_during_region_and_state_wait():
    import signal
    with ferry.Region(PAGE) as r, ferry.State(16) as s:
        for wait in (lambda: r.wait(0, timeout=None), lambda: s.wait(0, timeout=20)):
            pid = os.getpid()
            cpid = fork(lambda: (time.sleep(0.3), os.kill(pid, signal.SIGINT)))
            t0 = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                wait()
            assert time.monotonic() - t0 < 5
            wait_ok(cpid)
        r.notify()
        assert r.wait(0, timeout=5) == 1


def test_poll_fd_and_wait_async():
    import select
    with ferry.Region(PAGE) as r:
        fd = r.fileno()
        assert r.fileno() == fd
        r.ack()
        assert select.select([fd], [], [], 0)[0] == []

        def child():
            time.sleep(0.1)
            r.notify()

        pid = fork(child)
        v = asyncio.run(asyncio.wait_for(r.wait_async(0), 30))
        wait_ok(pid)
        assert v == 1
        r.notify()
        assert select.select([r], [], [], 30)[0] == [r]
        r.ack()
        assert r.version == 2


def test_views_pin_the_mapping():
    r = ferry.Region(PAGE)
    mv = r.map()
    part = mv[10:20]  # a slice shares the mapping
    with pytest.raises(BufferError):
        r.close()
    assert not r.closed  # still open: the slice stays valid (the view it came from
    part[0] = 7           # was released by the close)
    with pytest.raises(ValueError):
        mv[0]
    assert r.map()[10] == 7
    del part
    r.close()
    # Released views are unmapped at the next map(): no mapping piles up.
    with ferry.Region(PAGE) as r:
        for _ in range(200):
            with r.map() as m:
                m[0] = 1
        r.map().release()
        assert len(r._views) == 1


def test_persistent_region_in_another_process(tmpdir700):
    path = os.path.join(tmpdir700, "region")
    try:
        with ferry.Region(2 * PAGE, path=path, mode=0o600) as r:
            m = r.map()
            m[:5] = b"saved"
            r.sync()
            m.release()
        assert os.stat(path).st_mode & 0o777 == 0o600
        with pytest.raises(FileExistsError) as ei:
            ferry.Region(2 * PAGE, path=path, excl=True)
        assert ei.value.errno == errno.EEXIST
        # A fresh interpreter opens the file (size 0: whatever it has), read-only.
        code = ("import ferry, sys\n"
                "r = ferry.Region(0, path=sys.argv[1], readonly=True)\n"
                "m = r.map()\n"
                "assert m.readonly and r.size == %d\n"
                "try:\n    r.notify()\nexcept PermissionError as e:\n"
                "    assert e.errno == 13\nelse:\n    raise SystemExit('notify worked')\n"
                "sys.stdout.write(bytes(m[:5]).decode())\n" % (2 * PAGE))
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True,
                             timeout=60, env=os.environ)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout == b"saved"
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_persistent_region_wrong_size_is_ebadmsg(tmpdir700):
    path = os.path.join(tmpdir700, "r")
    try:
        ferry.Region(PAGE, path=path).close()
        with pytest.raises(ferry.Error) as ei:
            ferry.Region(2 * PAGE, path=path)
        assert ei.value.errno == errno.EBADMSG
        with pytest.raises(FileNotFoundError):
            ferry.Region(PAGE, path=path + "-none", readonly=True)
    finally:
        os.unlink(path)


def _stamped(i):
    body = struct.pack("<I", i) * (1 + i % 300)
    return hashlib.sha256(body).digest() + body


def test_state_across_processes_is_never_torn():
    n = 2000
    with ferry.State(32 + 4 * 300) as s:
        assert s.read() == (b"", 0)

        def child():
            for i in range(1, n + 1):
                s.write(_stamped(i))

        pid = fork(child)
        last = 0
        seen = 0
        deadline = time.monotonic() + 60
        while last < n and time.monotonic() < deadline:
            try:
                val, ver = s.read()
            except BlockingIOError:
                continue
            if ver == 0:
                continue
            assert hashlib.sha256(val[32:]).digest() == val[:32], "torn read"
            (i,) = struct.unpack_from("<I", val, 32)
            assert i == ver and ver >= last
            if ver != last:
                seen += 1
            last = ver
        wait_ok(pid)
        assert s.read() == (_stamped(n), n) and s.version == n
        assert seen >= 1
        with pytest.raises(ferry.Error) as ei:
            s.write(b"x" * (s.max_len + 1))
        assert ei.value.errno == errno.EMSGSIZE


def test_state_readonly_wait_and_async():
    with ferry.State(64) as s:
        fd = s.readonly_fd()
        try:
            with ferry.State.adopt(fd) as ro:
                with pytest.raises(PermissionError) as ei:
                    ro.write(b"no")
                assert ei.value.errno == errno.EACCES

                def child():
                    time.sleep(0.1)
                    s.write(b"one")
                    time.sleep(0.1)
                    s.write(bytearray(b"two"))

                pid = fork(child)
                assert ro.wait(0, timeout=30) >= 1
                v = asyncio.run(asyncio.wait_for(ro.wait_async(1), 30))
                wait_ok(pid)
                assert v == 2 and ro.read() == (b"two", 2)
                with pytest.raises(BlockingIOError):
                    ro.wait(2, timeout=0)
        finally:
            os.close(fd)


def _as_nobody(fn):
    """Run fn in a forked child as uid/gid 65534."""
    def child():
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        fn()
    return fork(child)


def test_publish_region_with_write_rights(broker):
    os.chmod(os.path.dirname(broker), 0o711)  # let uid 65534 reach the private ferryd
    with ferry.Region(PAGE) as r:
        r.map()[:2] = b"hi"
        with r.publish_as("py.region.rw", mode=0o606, write_uids=[65534]) as pub:
            assert pub.name == "py.region.rw"
            info = ferry.lookup("py.region.rw")
            assert info.kind == ferry.OBJ_REGION

            def writer():
                with ferry.Region.open("py.region.rw", write=True) as w:
                    w.map()[:2] = b"HI"
                    w.notify()

            wait_ok(_as_nobody(writer))
            assert bytes(r.map()[:2]) == b"HI" and r.version == 1
        with r.publish_as("py.region.ro", mode=0o606) as pub:
            def reader():
                with ferry.Region.open("py.region.ro") as h:
                    m = h.map()
                    assert m.readonly and bytes(m[:2]) == b"HI"
                    with pytest.raises(TypeError):
                        m[0] = 0
                    m.release()
                with pytest.raises(PermissionError) as ei:
                    ferry.Region.open("py.region.ro", write=True)
                assert ei.value.errno == errno.EACCES

            wait_ok(_as_nobody(reader))
        with r.publish_as("py.region.any", mode=0o606, write_anyone=True):
            def anyone():
                with ferry.Region.open("py.region.any", write=True) as h:
                    h.notify()

            wait_ok(_as_nobody(anyone))
            assert r.version == 2
        with r.publish_as("py.region.hidden"):
            def hidden():
                with pytest.raises(FileNotFoundError):
                    ferry.Region.open("py.region.hidden")

            wait_ok(_as_nobody(hidden))


def test_publish_state_and_open(broker):
    with ferry.State(128) as s:
        s.write(b"v1")
        with s.publish_as("py.state.one", mode=0o600):
            with ferry.State.open("py.state.one") as rd:
                assert rd.read() == (b"v1", 1)
                s.write(b"v2")
                assert rd.wait(1, timeout=30) == 2 and rd.read() == (b"v2", 2)
                with pytest.raises(PermissionError):
                    rd.write(b"no")
            with pytest.raises(ferry.Error) as ei:
                ferry.Region.open("py.state.one")
            assert ei.value.errno == errno.EPROTOTYPE
        # Write rights on a state (one writer: its creator) are refused by ferryd.
        with pytest.raises(ferry.Error) as ei:
            ferry._region._publish("py.state.bad", s.fd, ferry.OBJ_STATE, 0o600, (), (),
                                   (1,), (), False, False, 5.0)
        assert ei.value.errno == errno.EINVAL


def test_region_and_tls_opts_layout_checked():
    import ctypes
    from ferry import _lib
    real = _lib.lib

    def bad(what):
        raise ImportError(what)

    class Shifted:
        """The real library, with ferry_region_opts' fields 4 bytes later than ours."""
        ferry_tls_opts_init_sized = staticmethod(real.ferry_tls_opts_init_sized)

        @staticmethod
        def ferry_region_opts_init_sized(buf, n):
            real.ferry_region_opts_init_sized(buf, n)
            raw = bytes(buf)
            ctypes.memmove(buf, raw[:8] + b"\0" * 4 + raw[8:n - 4], n)

    _lib._check_region_tls(real, bad)  # the real layout passes
    with pytest.raises(ImportError, match="RegionOpts"):
        _lib._check_region_tls(Shifted(), bad)
