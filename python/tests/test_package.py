# SPDX-License-Identifier: MIT
"""The package itself: pip installs it without network or compiler, and the import-time
layout check refuses a library whose structs differ from the binding's."""

import ctypes
import os
import subprocess
import sys

import pytest

import ferry
from ferry import _lib

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pip_install_no_network(scratch):
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      capture_output=True).returncode != 0:
        pytest.skip("no pip for %s" % sys.executable)
    import shutil
    src = scratch / "src"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                            "__pycache__"))
    target = scratch / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-deps", "--no-index", "--target", str(target), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c",
                        "import ferry; a, b = ferry.pair(); a.send(b'ok'); "
                        "print(ferry.__file__, b.recv().data.decode())"],
                       env=dict(os.environ, PYTHONPATH=str(target),
                                FERRY_LIBRARY=os.path.abspath(_lib.path) if "/" in _lib.path
                                else _lib.path), capture_output=True,
                       text=True, cwd=str(scratch))
    assert r.returncode == 0, r.stderr
    f, word = r.stdout.split()
    assert f.startswith(str(target)) and word == "ok"


class FakeLib:
    """A libferry whose ferry_chan_opts puts fields elsewhere (as a library built from
    another ferry.h would): capacity written 8 bytes later than the binding expects."""

    def __init__(self, shift_opts=False, small_counters=False, shift_bcast_opts=False,
                 small_bcast_counters=False):
        self.shift_opts, self.small_counters = shift_opts, small_counters
        self.shift_bcast_opts = shift_bcast_opts
        self.small_bcast_counters = small_bcast_counters
        self._real = _lib.lib

    def __getattr__(self, name):  # everything else: the real library's
        return getattr(self._real, name)

    def ferry_bcast_opts_init_sized(self, buf, size):
        self._real.ferry_bcast_opts_init_sized(buf, size)
        if self.shift_bcast_opts:
            buf[8:12], buf[12:16] = buf[12:16], buf[8:12]  # slots and max_subs swapped

    def ferry_bcast_stats(self, b, st):
        rc = self._real.ferry_bcast_stats(b, st)
        if self.small_bcast_counters:
            ctypes.memmove(st, ctypes.byref(ctypes.c_size_t(24)), 8)
        return rc

    def ferry_chan_opts_init_sized(self, buf, size):
        self._real.ferry_chan_opts_init_sized(buf, size)
        if self.shift_opts:
            b = (ctypes.c_char * 4096).from_buffer(buf) if not isinstance(buf, ctypes.Array) \
                else buf
            b[16:64] = b[8:56]  # every field after size moved by 8 bytes

    def ferry_chan_stats(self, ch, st):
        rc = self._real.ferry_chan_stats(ch, st)
        if self.small_counters:
            ctypes.memmove(st, ctypes.byref(ctypes.c_size_t(16)), 8)
        return rc


def test_layout_check_refuses_moved_fields():
    _lib._check_layout(FakeLib(), "real")  # the real layout passes
    with pytest.raises(ImportError, match="ferry_chan_opts"):
        _lib._check_layout(FakeLib(shift_opts=True), "fake")


def test_layout_check_refuses_smaller_counters():
    with pytest.raises(ImportError, match="ferry_chan_counters"):
        _lib._check_layout(FakeLib(small_counters=True), "fake")


def test_layout_check_refuses_moved_bcast_fields():
    with pytest.raises(ImportError, match="ferry_bcast_opts"):
        _lib._check_layout(FakeLib(shift_bcast_opts=True), "fake")


def test_layout_check_refuses_smaller_bcast_counters():
    with pytest.raises(ImportError, match="ferry_bcast_counters"):
        _lib._check_layout(FakeLib(small_bcast_counters=True), "fake")


def test_version_and_path():
    assert ferry._library_path
    assert ferry.strerror(32).startswith("EPIPE")
