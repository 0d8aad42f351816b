# SPDX-License-Identifier: MIT
"""ferry._sync — semaphores, mutexes, barriers, events and mailboxes (docs/sync.md,
docs/mailbox.md).

Rules: each handle owns its C object and closes it on close(). The object's own fd
(handle.fd, to pass to another process, which makes a handle of it with adopt(fd); the
fd is duplicated first, so the caller keeps the one it passed) is owned by the handle;
fileno() is the fd to poll where the object has one. By name: obj.publish_as(name, ...)
(ferry_publish, a Publication the caller closes to free the name) and X.open(name) in
another process. Waits run in slices (Ctrl-C works); timeouts are seconds (None
forever, 0 now).
"""

import ctypes
import errno

from . import _lib
from . import Error, _byref, _c, _check, _counters, _Handle, _opts, _timeout_ns, _wait

_SEM_UNDO = 1
_EVENT_COALESCE = 1
_MUTEX_FAIR = 1
_EOWNERDEAD = errno.EOWNERDEAD

OBJ_SEM = 1
OBJ_MUTEX = 2
OBJ_BARRIER = 3
OBJ_EVENT = 4
OBJ_MAILBOX = 5
OBJ_BCAST = 6


class _Shared(_Handle):
    """A shareable object: adopt(fd), open(name) and publish_as(name). Subclasses set
    _kind (FERRY_OBJ_*), _adopt_fn and _open_fn (names in libferry) and _fd_fn."""

    _kind = 0
    _adopt_fn = _open_fn = _fd_fn = None

    @classmethod
    def _make(cls, h):
        obj = cls.__new__(cls)
        obj._init_handle(h)
        return obj

    def _init_handle(self, h):
        _Handle.__init__(self, h)

    @classmethod
    def adopt(cls, fd):
        """A handle of the object behind fd (another process's .fd); the caller keeps fd."""
        return cls._make(cls._adopted(getattr(_c, cls._adopt_fn), fd, cls._adopt_fn[6:]))

    @classmethod
    def open(cls, name, timeout=5.0):
        """The object published under name (ferryd's policy decides: FileNotFoundError
        when there is none the caller may see, PermissionError when it may not connect,
        ferry.Error EPROTOTYPE when the name is another kind of object)."""
        out = ctypes.c_void_p()
        # One call with the whole deadline, as connect: it is a request to ferryd.
        _check(getattr(_c, cls._open_fn)(name.encode(), _byref(out), _timeout_ns(timeout)),
               name)
        return cls._make(out.value)

    @property
    def fd(self):
        """The object's descriptor (owned by the handle), to pass to another process."""
        return _check(getattr(_c, self._fd_fn)(self._handle()), self._fd_fn[6:])

    def publish_as(self, name, mode=0o600, allow_uids=(), allow_gids=(), takeover=False,
                trusted_sharers=False, timeout=5.0):
        """Give this object a name in ferryd (ferry_publish): others then X.open(name).
        Returns a Publication; closing it (or this process dying) frees the name."""
        from ._names import publish
        return publish(name, self, mode=mode, allow_uids=allow_uids, allow_gids=allow_gids,
                       takeover=takeover, trusted_sharers=trusted_sharers, timeout=timeout)


class Semaphore(_Shared):
    """A counting semaphore shared between processes (inherit it over fork, or pass
    .fd and adopt it). undo=True gives back a dead process's units."""

    _close = staticmethod(lambda h: _c.ferry_sem_close(h))
    _kind = OBJ_SEM
    _adopt_fn, _open_fn, _fd_fn = "ferry_sem_adopt", "ferry_sem_open", "ferry_sem_fd"

    def __init__(self, value=0, undo=False):
        out = ctypes.c_void_p()
        _check(_c.ferry_sem_create(value, _SEM_UNDO if undo else 0, _byref(out)),
               "sem_create")
        super().__init__(out.value)

    def acquire(self, timeout=None):
        h = self._handle()
        _wait(lambda ns: _c.ferry_sem_wait(h, ns), timeout, "sem_wait")

    wait = acquire

    def release(self):
        _check(_c.ferry_sem_post(self._handle()), "sem_post")

    post = release

    @property
    def value(self):
        return _check(_c.ferry_sem_value(self._handle()), "sem_value")


class Mutex(_Shared):
    """A robust mutex between processes (ferry_mutex). fair=True: safe with untrusted
    sharers (FERRY_MUTEX_FAIR; FIFO). lock() returns True, or False when the previous
    holder died holding it: the caller holds it then, must repair what it protects and
    call consistent() before unlock() (unlocking without makes it unusable for everyone:
    ferry.Error ENOTRECOVERABLE). `with m.hold() as ok:` locks (ok: lock()'s result) and
    unlocks; `with m:` closes the handle, as for every handle. A lock belongs to the
    thread that took it."""

    _close = staticmethod(lambda h: _c.ferry_mutex_close(h))
    _kind = OBJ_MUTEX
    _adopt_fn, _open_fn, _fd_fn = "ferry_mutex_adopt", "ferry_mutex_open", "ferry_mutex_fd"

    def __init__(self, fair=False):
        out = ctypes.c_void_p()
        _check(_c.ferry_mutex_create(_MUTEX_FAIR if fair else 0, _byref(out)),
               "mutex_create")
        super().__init__(out.value)

    def lock(self, timeout=None):
        """Lock, waiting at most timeout seconds (TimeoutError; BlockingIOError for 0).
        ferry.Error EDEADLK if this thread holds it already."""
        h = self._handle()
        fn = _c.ferry_mutex_lock
        try:
            _wait(lambda ns: fn(h, ns), timeout, "mutex_lock")
        except Error as e:
            if e.errno == _EOWNERDEAD:
                return False
            raise
        return True

    acquire = lock

    def unlock(self):
        """PermissionError (EPERM) if this thread does not hold it."""
        _check(_c.ferry_mutex_unlock(self._handle()), "mutex_unlock")

    release = unlock

    def consistent(self):
        """Mark the state repaired after lock() returned False."""
        _check(_c.ferry_mutex_consistent(self._handle()), "mutex_consistent")

    def hold(self, timeout=None):
        """with m.hold() as ok: the block runs holding the lock (ok: lock()'s result)
        and unlocks at its end. (`with m:` itself, as for every handle, closes m.)"""
        return _Held(self, timeout)


class _Held:
    def __init__(self, m, timeout):
        self.m, self.timeout = m, timeout

    def __enter__(self):
        return self.m.lock(self.timeout)

    def __exit__(self, *exc):
        self.m.unlock()


class Barrier(_Shared):
    """A barrier for parties processes or threads (ferry_barrier): wait() returns True
    in exactly one party of each round, False in the others."""

    _close = staticmethod(lambda h: _c.ferry_barrier_close(h))
    _kind = OBJ_BARRIER
    _adopt_fn, _open_fn, _fd_fn = ("ferry_barrier_adopt", "ferry_barrier_open",
                                   "ferry_barrier_fd")

    def __init__(self, parties):
        out = ctypes.c_void_p()
        _check(_c.ferry_barrier_create(parties, _byref(out)), "barrier_create")
        super().__init__(out.value)

    def wait(self, timeout=None):
        """Arrive and wait for the round (TimeoutError / BlockingIOError: the arrival
        is withdrawn). Each slice of the wait that times out withdraws and arrives
        again, which the others cannot tell from a longer wait."""
        h = self._handle()
        fn = _c.ferry_barrier_wait
        return _wait(lambda ns: fn(h, ns), timeout, "barrier_wait") == 1


class Event(_Shared):
    """A queue of 64-bit events (ferry_event): post(payload), next() -> payload.
    Event.open(pattern) with "org.x.*" opens every queue published under a matching
    name (a group: a post reaches each)."""

    _close = staticmethod(lambda h: _c.ferry_event_close(h))
    _kind = OBJ_EVENT
    _adopt_fn, _open_fn, _fd_fn = "ferry_event_adopt", "ferry_event_open", "ferry_event_fd"

    def __init__(self, capacity=0):
        out = ctypes.c_void_p()
        _check(_c.ferry_event_create(capacity, _byref(out)), "event_create")
        super().__init__(out.value)

    def fileno(self):
        return _check(_c.ferry_event_poll_fd(self._handle()), "event_poll_fd")

    def post(self, payload, coalesce=False, timeout=None):
        h = self._handle()
        f = _EVENT_COALESCE if coalesce else 0
        _wait(lambda ns: _c.ferry_event_post(h, payload, f, ns), timeout, "event_post")

    def next(self, timeout=None):
        h = self._handle()
        p = ctypes.c_uint64()
        _wait(lambda ns: _c.ferry_event_next(h, _byref(p), ns), timeout, "event_next")
        return p.value


class Mailbox(_Shared):
    """A many-to-many message queue in shared memory (ferry_mailbox)."""

    _close = staticmethod(lambda h: _c.ferry_mailbox_close(h))
    _kind = OBJ_MAILBOX
    _adopt_fn, _open_fn, _fd_fn = ("ferry_mailbox_adopt", "ferry_mailbox_open",
                                   "ferry_mailbox_fd")

    def __init__(self, capacity=None, max_msg=None):
        o = _opts(_lib.MailboxOpts, _c.ferry_mailbox_opts_init_sized, capacity=capacity,
                  max_msg=max_msg)
        out = ctypes.c_void_p()
        _check(_c.ferry_mailbox_create(_byref(o), _byref(out)), "mailbox_create")
        self._init_handle(out.value)

    def _init_handle(self, h):
        _Handle.__init__(self, h)
        self._buf = None

    def fileno(self):
        return _check(_c.ferry_mailbox_poll_fd(self._handle()), "mailbox_poll_fd")

    def send(self, data, type=0, timeout=None):
        h = self._handle()
        b = bytes(data)
        n = len(b)
        _wait(lambda ns: _c.ferry_mailbox_send(h, type, b, n, ns), timeout, "mailbox_send")

    def recv(self, type_filter=0, timeout=None):
        """(data, type) of the oldest message matching type_filter."""
        h = self._handle()
        if self._buf is None:
            st = _counters(_lib.MailboxCounters, _c.ferry_mailbox_stats, h, "mailbox_stats")
            self._buf = ctypes.create_string_buffer(max(st["max_msg"], 1))
        t = ctypes.c_int64()
        buf = self._buf
        n = _wait(lambda ns: _c.ferry_mailbox_recv(h, type_filter, _byref(t), buf, len(buf), ns),
                  timeout, "mailbox_recv")
        return ctypes.string_at(buf, n), t.value
