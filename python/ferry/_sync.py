# SPDX-License-Identifier: MIT
"""ferry._sync — semaphores, events and mailboxes (docs/sync.md, docs/mailbox.md).

Rules: each handle owns its C object and closes it on close(). The object's own fd
(handle.fd, to pass to another process, which makes a handle of it with adopt(fd); the
fd is duplicated first, so the caller keeps the one it passed) is owned by the handle;
fileno() is the fd to poll where the object has one. Waits run in slices (Ctrl-C works);
timeouts are seconds (None forever, 0 now).
"""

import ctypes

from . import _lib
from . import _byref, _c, _check, _Handle, _wait

_SEM_UNDO = 1
_EVENT_COALESCE = 1


class Semaphore(_Handle):
    """A counting semaphore shared between processes (inherit it over fork, or pass
    .fd and adopt it). undo=True gives back a dead process's units."""

    _close = staticmethod(lambda h: _c.ferry_sem_close(h))

    def __init__(self, value=0, undo=False, _handle=None):
        if _handle is None:
            out = ctypes.c_void_p()
            _check(_c.ferry_sem_create(value, _SEM_UNDO if undo else 0, _byref(out)),
                   "sem_create")
            _handle = out.value
        super().__init__(_handle)

    @classmethod
    def adopt(cls, fd):
        return cls(_handle=cls._adopted(_c.ferry_sem_adopt, fd, "sem_adopt"))

    @property
    def fd(self):
        return _c.ferry_sem_fd(self._handle())

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


class Event(_Handle):
    """A queue of 64-bit events (ferry_event): post(payload), next() -> payload."""

    _close = staticmethod(lambda h: _c.ferry_event_close(h))

    def __init__(self, capacity=0, _handle=None):
        if _handle is None:
            out = ctypes.c_void_p()
            _check(_c.ferry_event_create(capacity, _byref(out)), "event_create")
            _handle = out.value
        super().__init__(_handle)

    @classmethod
    def adopt(cls, fd):
        return cls(_handle=cls._adopted(_c.ferry_event_adopt, fd, "event_adopt"))

    @property
    def fd(self):
        return _check(_c.ferry_event_fd(self._handle()), "event_fd")

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


class Mailbox(_Handle):
    """A many-to-many message queue in shared memory (ferry_mailbox)."""

    _close = staticmethod(lambda h: _c.ferry_mailbox_close(h))

    def __init__(self, capacity=None, max_msg=None, _handle=None):
        if _handle is None:
            o = _lib.MailboxOpts()
            _c.ferry_mailbox_opts_init_sized(_byref(o), ctypes.sizeof(o))
            if capacity is not None:
                o.capacity = capacity
            if max_msg is not None:
                o.max_msg = max_msg
            out = ctypes.c_void_p()
            _check(_c.ferry_mailbox_create(_byref(o), _byref(out)), "mailbox_create")
            _handle = out.value
        super().__init__(_handle)
        self._buf = None

    @classmethod
    def adopt(cls, fd):
        return cls(_handle=cls._adopted(_c.ferry_mailbox_adopt, fd, "mailbox_adopt"))

    @property
    def fd(self):
        return _check(_c.ferry_mailbox_fd(self._handle()), "mailbox_fd")

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
            st = _lib.MailboxCounters()
            st.size = ctypes.sizeof(st)
            _check(_c.ferry_mailbox_stats(h, _byref(st)), "mailbox_stats")
            self._buf = ctypes.create_string_buffer(max(st.max_msg, 1))
        t = ctypes.c_int64()
        buf = self._buf
        n = _wait(lambda ns: _c.ferry_mailbox_recv(h, type_filter, _byref(t), buf, len(buf), ns),
                  timeout, "mailbox_recv")
        return ctypes.string_at(buf, n), t.value
