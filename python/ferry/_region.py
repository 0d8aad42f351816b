# SPDX-License-Identifier: MIT
"""ferry._region — shared-memory regions and states (docs/region.md,
docs/region-sharing.md; docs/python.md "Regions and states").

Rules of this module:
  - Region and State own their C handle (ferry_region / ferry_state) and free it on
    close() (with-block exit, collection). Descriptors: fd (the handle's own) stays the
    handle's; readonly_fd() gives the caller a new one, which the caller closes;
    adopt(fd) takes a duplicate (the caller keeps fd).
  - Region.map() is a memoryview over the mapping (writable on a writable handle,
    read-only otherwise: writing into it raises TypeError). The mapping is unmapped only
    when nothing refers to it any more: a released view (mv.release(), or the end of
    `with r.map() as mv:`) is unmapped at the next map() or at close(); close() releases
    the views handed out and, if a slice or an export of one is still alive, raises
    BufferError and leaves the region open (nothing dangles). Views of one region are
    never invalidated by resize(): a resize only grows; map() again to reach new bytes.
  - Timeouts as everywhere in ferry: seconds (float), None forever, 0 now
    (BlockingIOError), waits in slices so that Ctrl-C is prompt.
  - Everything in the region is the application's to validate: another holder with the
    write right may change any byte at any time.
"""

import ctypes
import errno as _errno
import os

from . import _lib
from . import (_Handle, _View, _check, _raise, _wait, _timeout_ns, _policy, _readable)
from ._lib import lib as _c
from ._names import Publication

__all__ = ["Region", "State", "OBJ_REGION", "OBJ_STATE", "REGION_MAX_SIZE", "STATE_MAX_LEN"]

OBJ_REGION = 7
OBJ_STATE = 8
REGION_MAX_SIZE = 1 << 40
STATE_MAX_LEN = 64 << 20

_GROWABLE = 1 << 0
_FILE = 1 << 1
_EXCL = 1 << 2
_RDONLY = 1 << 3
_READ = 1 << 0
_WRITE = 1 << 1
_WRITE_ANYONE = 1 << 5
_POLICY_MAX_IDS = 16

_byref = ctypes.byref


def _opts(path, mode, flags, excl, readonly):
    o = _lib.RegionOpts()
    _c.ferry_region_opts_init_sized(_byref(o), ctypes.sizeof(o))
    if path is not None:
        o.path = os.fsencode(path)
        flags |= _FILE
        o.mode = mode
    elif excl or readonly:
        raise ValueError("excl and readonly are for a persistent region (path=...)")
    if excl:
        flags |= _EXCL
    if readonly:
        flags |= _RDONLY
    o.flags = flags
    return o


def _publish(name, fd, kind, mode, allow_uids, allow_gids, write_uids, write_gids,
             write_anyone, takeover, timeout):
    p = _policy(mode, takeover, allow_uids, allow_gids)
    if len(write_uids) > _POLICY_MAX_IDS or len(write_gids) > _POLICY_MAX_IDS:
        raise ValueError("at most 16 write uids and 16 write gids")
    for i, u in enumerate(write_uids):
        p.write_uids[i] = u
    for i, g in enumerate(write_gids):
        p.write_gids[i] = g
    p.n_write_uids, p.n_write_gids = len(write_uids), len(write_gids)
    if write_anyone:
        p.flags |= _WRITE_ANYONE
    out = ctypes.c_void_p()
    _check(_c.ferry_publish(name.encode(), fd, kind, _byref(p), _byref(out),
                            _timeout_ns(timeout)), name)
    return Publication(out.value, name)


def _create(fn, n, o, path, what):
    """The handle fn (ferry_region_create / ferry_state_create) makes of n and the options
    o; an error names path, else what."""
    out = ctypes.c_void_p()
    _check(fn(n, _byref(o), _byref(out)), path and os.fsdecode(path) or what)
    return out.value


def _wrapped(cls, base, h):
    """An instance of cls around the handle h (it owns h), set up by base's __init__ (a
    subclass's __init__ may take other arguments)."""
    self = cls.__new__(cls)
    base.__init__(self, 0, _handle=h)
    return self


def _adopt(cls, fn, fd, what):
    """cls around the handle fn (ferry_X_adopt) makes of a duplicate of fd (an int or an
    object with fileno(); the caller keeps fd)."""
    fd = fd if isinstance(fd, int) else fd.fileno()
    return cls._wrap(cls._adopted(fn, fd, what))


async def _version_change(obj, seen):
    """Await a version of obj (a Region or State) other than seen: ack, read the version,
    else wait for the poll descriptor to become readable; returns the version."""
    fd = obj.fileno()
    while True:
        obj.ack()
        v = obj.version
        if v != seen:
            return v
        await _readable(fd)


class Region(_Handle):
    """A block of shared memory (docs/region.md). Region(size) makes a volatile region
    (a memfd) of size bytes, zeroed, version 0; growable=True lets resize() grow it;
    path=... makes or opens a persistent one (a file owned by you; mode: a new file's
    bits; excl: fail if it exists; readonly: open an existing file read-only). Shared by
    fork, by descriptor (fd / readonly_fd() then Region.adopt(fd)) or by name
    (publish_as(name, ...), then Region.open(name))."""

    _close = staticmethod(lambda h: _c.ferry_region_close(h))
    _what = "region"

    def __init__(self, size, growable=False, path=None, mode=0o600, excl=False,
                 readonly=False, _handle=None):
        if _handle is None:
            o = _opts(path, mode, _GROWABLE if growable else 0, excl, readonly)
            _handle = _create(_c.ferry_region_create, size, o, path, "region")
        self._views = []  # (addr, _View): mappings handed out by map()
        self._poll_fd = None
        super().__init__(_handle)

    @classmethod
    def _wrap(cls, h):
        return _wrapped(cls, Region, h)

    @classmethod
    def adopt(cls, fd):
        """A handle on the region behind fd (an int or an object with fileno()); the
        caller keeps fd. A read-only fd makes a read-only handle."""
        return _adopt(cls, _c.ferry_region_adopt, fd, "region adopt")

    @classmethod
    def open(cls, name, write=False, timeout=5.0):
        """Open the region published under name: read-only (the connect right), or
        writable with write=True (the write right the publisher granted)."""
        out = ctypes.c_void_p()
        prot = _READ | (_WRITE if write else 0)
        _check(_c.ferry_region_open(name.encode(), prot, _byref(out), _timeout_ns(timeout)),
               name)
        return cls._wrap(out.value)

    # -- lifetime
    def _sweep(self, force):
        """Unmap the mappings nothing refers to any more. force: release the views
        handed out first (close). Returns the number still alive."""
        h = self._h
        keep = []
        for addr, v in self._views:
            if force:
                free = v.release()
            else:
                try:
                    v.mv.nbytes
                    free = False  # the view handed out is still in use
                except ValueError:
                    free = v.release()  # released by its user: free unless escaped
            if free:
                _c.ferry_region_unmap(h, addr)
            else:
                keep.append((addr, v))
        self._views = keep
        return len(keep)

    def close(self):
        """Close the handle (the region lives on while others hold it; a file always).
        Idempotent. BufferError if a slice or an export of a map() view is still alive:
        the region then stays open, so that memory never dangles."""
        if self._h is None:
            return
        if self._sweep(True):
            raise BufferError("a slice or export of a region view is still alive: drop it "
                              "before closing the region")
        self._poll_fd = None
        super().close()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            try:
                self.close()
            except Exception:
                pass  # an escaped view keeps the mapping (and the handle) alive

    # -- properties
    @property
    def closed(self):
        return self._h is None

    @property
    def fd(self):
        """The handle's descriptor (read-only for a read-only handle); owned by the
        region: do not close it."""
        return _check(_c.ferry_region_fd(self._handle()), "region fd")

    @property
    def writable(self):
        return bool(_check(_c.ferry_region_writable(self._handle()), "region"))

    @property
    def size(self):
        """The size in user bytes now (shows another holder's resize)."""
        return _c.ferry_region_size(self._handle())

    def __len__(self):
        return self.size

    @property
    def version(self):
        return _c.ferry_region_version(self._handle())

    def readonly_fd(self):
        """A new read-only descriptor of the region (the caller owns and closes it): a
        capability to hand out; its adopter gets a read-only handle."""
        fd = ctypes.c_int(-1)
        _check(_c.ferry_region_fd_readonly(self._handle(), _byref(fd)), "readonly_fd")
        return fd.value

    # -- memory
    def map(self, write=None):
        """A memoryview over the user bytes as they are now (self.size): writable when
        the handle is (write=None) or write=True, read-only with write=False or on a
        read-only handle (write=True there: PermissionError). See the module rules for
        its lifetime."""
        h = self._handle()
        if write is None:
            write = self.writable
        self._sweep(False)
        # The size before the map: the mapping is at least that long (a region only
        # grows, and ferry_region_map maps the size at its call), so the view never
        # reaches past the mapping even when another holder resizes meanwhile.
        n = _c.ferry_region_size(h)
        addr = ctypes.c_void_p()
        _check(_c.ferry_region_map(h, _READ | (_WRITE if write else 0), _byref(addr)),
               "region map")
        v = _View(addr.value, n, not write)
        self._views.append((addr.value, v))
        return v.mv

    def resize(self, new_size):
        """Grow a growable region to new_size bytes (new bytes read as zeros) and
        notify. Smaller or equal: no-op. PermissionError: not growable (EPERM) or a
        read-only handle (EACCES)."""
        _check(_c.ferry_region_resize(self._handle(), new_size), "resize")

    def sync(self):
        """Write a persistent region to its file and wait for the disk."""
        _check(_c.ferry_region_sync(self._handle()), "sync")

    # -- change notification
    def notify(self):
        """Bump the version and wake every waiter of every process (a release: writes
        made before it are seen by whoever sees the new version). PermissionError on a
        read-only handle."""
        _check(_c.ferry_region_notify(self._handle()), "notify")

    def wait(self, seen, timeout=None):
        """Wait until the version differs from seen; returns the version then.
        TimeoutError / BlockingIOError (timeout 0) when unchanged."""
        h = self._handle()
        _wait(lambda ns: _c.ferry_region_wait(h, seen, ns), timeout, "region wait")
        return _c.ferry_region_version(h)

    def fileno(self):
        """The poll descriptor (readable after the version changed; owned by the
        region). ack() before reading the version."""
        if self._poll_fd is None:
            self._poll_fd = _check(_c.ferry_region_poll_fd(self._handle()), "poll_fd")
        return self._poll_fd

    def ack(self):
        """Consume the poll descriptor's readiness (until the next change)."""
        _check(_c.ferry_region_poll_ack(self._handle()), "poll_ack")

    async def wait_async(self, seen):
        """Await a version other than seen on the running asyncio loop (the poll
        descriptor with loop.add_reader; no threads of Python's); returns it."""
        return await _version_change(self, seen)

    # -- naming
    def publish_as(self, name, mode=0o600, allow_uids=(), allow_gids=(), write_uids=(),
                   write_gids=(), write_anyone=False, takeover=False, timeout=5.0):
        """Publish this region under name (a writable handle's). The connect right
        (mode bit 2 of the caller's class, allow_uids / allow_gids) opens it read-only;
        the write right is granted only by write_uids, write_gids and write_anyone
        (everyone who may connect). Returns a Publication (close() frees the name)."""
        return _publish(name, self.fd, OBJ_REGION, mode, allow_uids, allow_gids,
                        write_uids, write_gids, write_anyone, takeover, timeout)

    def __repr__(self):
        if self._h is None:
            return "<ferry.Region closed>"
        return "<ferry.Region size=%d version=%d%s>" % (
            self.size, self.version, "" if self.writable else " read-only")


class State(_Handle):
    """A value of up to max_len bytes with one writer and torn-free copies for any
    number of readers (docs/region.md "State"). State(max_len) makes a volatile one
    (path=...: persistent, as Region). write(data) publishes; read() -> (bytes, version).
    Shared by fork, descriptor (readonly_fd(), State.adopt) or name (publish_as,
    State.open)."""

    _close = staticmethod(lambda h: _c.ferry_state_close(h))
    _what = "state"

    def __init__(self, max_len, path=None, mode=0o600, excl=False, readonly=False,
                 _handle=None):
        if _handle is None:
            o = _opts(path, mode, 0, excl, readonly)
            _handle = _create(_c.ferry_state_create, max_len, o, path, "state")
        super().__init__(_handle)
        self._poll_fd = None
        self._buf = None
        self._len = ctypes.c_size_t()
        self._ver = ctypes.c_uint64()

    @classmethod
    def _wrap(cls, h):
        return _wrapped(cls, State, h)

    @classmethod
    def adopt(cls, fd):
        """A handle on the state behind fd (the caller keeps fd)."""
        return _adopt(cls, _c.ferry_state_adopt, fd, "state adopt")

    @classmethod
    def open(cls, name, timeout=5.0):
        """Open the state published under name, as a reader."""
        out = ctypes.c_void_p()
        _check(_c.ferry_state_open(name.encode(), _byref(out), _timeout_ns(timeout)), name)
        return cls._wrap(out.value)

    def close(self):
        self._poll_fd = None
        super().close()

    @property
    def closed(self):
        return self._h is None

    @property
    def fd(self):
        return _check(_c.ferry_state_fd(self._handle()), "state fd")

    @property
    def max_len(self):
        return _c.ferry_state_max_len(self._handle())

    @property
    def version(self):
        """The version of the last completed write (0: never written)."""
        return _c.ferry_state_version(self._handle())

    def readonly_fd(self):
        """A new read-only descriptor (the caller owns it)."""
        fd = ctypes.c_int(-1)
        _check(_c.ferry_state_fd_readonly(self._handle(), _byref(fd)), "readonly_fd")
        return fd.value

    def write(self, data):
        """Publish data (bytes-like, at most max_len) as the new value. PermissionError
        on a read-only handle; OSError EMSGSIZE if too long."""
        h = self._handle()
        mv = memoryview(data).cast("B")
        n = mv.nbytes
        if n == 0:
            _check(_c.ferry_state_write(h, None, 0), "state write")
            return
        if mv.readonly:
            buf = ctypes.c_char_p(bytes(mv))
            _check(_c.ferry_state_write(h, buf, n), "state write")
        else:
            buf = (ctypes.c_char * n).from_buffer(mv)
            try:
                _check(_c.ferry_state_write(h, ctypes.addressof(buf), n), "state write")
            finally:
                del buf
                mv.release()

    def read(self):
        """(value, version): a whole copy of one version (version 0: never written).
        BlockingIOError (EAGAIN) while the writer is mid-write for too long."""
        h = self._handle()
        if self._buf is None:
            self._buf = ctypes.create_string_buffer(max(1, _c.ferry_state_max_len(h)))
        buf = self._buf
        _check(_c.ferry_state_read(h, buf, len(buf), _byref(self._len), _byref(self._ver)),
               "state read")
        n = self._len.value
        if n > len(buf):  # the library bounds it by max_len; never trust a length blindly
            _raise(-_errno.EMSGSIZE, "state read")
        return buf.raw[:n], self._ver.value

    def wait(self, seen, timeout=None):
        """Wait until the version differs from seen; returns the version then."""
        h = self._handle()
        _wait(lambda ns: _c.ferry_state_wait(h, seen, ns), timeout, "state wait")
        return _c.ferry_state_version(h)

    def fileno(self):
        """The poll descriptor (that of the region under the state; owned by it)."""
        if self._poll_fd is None:
            r = _c.ferry_state_region(self._handle())
            self._poll_fd = _check(_c.ferry_region_poll_fd(r), "poll_fd")
        return self._poll_fd

    def ack(self):
        _check(_c.ferry_region_poll_ack(_c.ferry_state_region(self._handle())), "poll_ack")

    async def wait_async(self, seen):
        """Await a version other than seen on the running asyncio loop; returns it."""
        return await _version_change(self, seen)

    def publish_as(self, name, mode=0o600, allow_uids=(), allow_gids=(), takeover=False,
                   timeout=5.0):
        """Publish this state under name: whoever may connect opens it read-only
        (State.open); a state has one writer, its creator, so there are no write
        rights."""
        return _publish(name, self.fd, OBJ_STATE, mode, allow_uids, allow_gids, (), (),
                        False, takeover, timeout)

    def __repr__(self):
        if self._h is None:
            return "<ferry.State closed>"
        return "<ferry.State max_len=%d version=%d>" % (self.max_len, self.version)

