# SPDX-License-Identifier: MIT
"""ferry._names — the naming service from Python (docs/broker.md, docs/python.md):
ls() and lookup() as data, watch(pattern) as an iterator, publish() of shared objects,
and inboxes (inbox(name) and send_to(name, ...)).

Rules: every request to ferryd is one C call with the whole timeout (a request cut off
and repeated would ask ferryd twice), so these default to 5 s. Waits for events and
messages (Watch.next, Inbox.recv) run in slices (Ctrl-C works). The records the library
fills (ferry_name_info, ferry_watch_event) have no size field: each fill is checked with
_lib.check_records (guard bytes, reserved words zero) before anything is read from it.
Handles own their C object (close(), with, collection); Publication.close() frees the
name.
"""

import ctypes
import collections

from . import _lib
from . import (Error, Message, _byref, _c, _chan_opts, _check, _fileno, _Handle, _policy,
               _poll_async, _raise, _timeout_ns, _wait, _EMSGSIZE, MAX_FDS)

EV_OWNED = 1     # the name got an owner
EV_CHANGED = 2   # taken over by another process (info: the new owner)
EV_RELEASED = 3  # its owner released it
EV_DIED = 4      # its owner died; the name is free

_POLICY_TRUSTED_SHARERS = 1 << 4
_LIST_PAGE = 64

NameInfo = collections.namedtuple(
    "NameInfo", "name uid gid pid mode connects kind since_ns")
NameInfo.__doc__ = """A name in ferryd: its owner's uid and pid, the policy's gid and mode,
the introductions made so far, kind (0 a server; else ferry.OBJ_* of a published object)
and since_ns (when the owner took it, CLOCK_REALTIME ns)."""

WatchEvent = collections.namedtuple("WatchEvent", "kind info")
WatchEvent.__doc__ = """What a watch saw: kind (ferry.EV_OWNED, EV_CHANGED, EV_RELEASED,
EV_DIED) and info, the NameInfo of the name and the owner it concerns."""


def _info(r):
    return NameInfo(r.name.decode("utf-8", "replace"), r.uid, r.gid, r.pid, r.mode,
                    r.connects, r.kind, r.since_ns)


def lookup(name, timeout=5.0):
    """The NameInfo of name (FileNotFoundError when there is none the caller may see)."""
    buf = _lib.record_buffer(_lib.NameInfo, 1)
    _check(_c.ferry_lookup(name.encode(), buf, _timeout_ns(timeout)), name)
    return _info(_lib.check_records(buf, _lib.NameInfo, 1)[0])


def ls(timeout=5.0):
    """Every name the caller may see, in name order, as a list of NameInfo (ferry_list,
    page by page; timeout bounds each page)."""
    out = []
    after = None
    while True:
        buf = _lib.record_buffer(_lib.NameInfo, _LIST_PAGE)
        n = _check(_c.ferry_list(after, buf, _LIST_PAGE, _timeout_ns(timeout)), "list")
        if n > _LIST_PAGE:
            raise RuntimeError("ferry_list returned %d records for %d" % (n, _LIST_PAGE))
        recs = _lib.check_records(buf, _lib.NameInfo, n)
        out.extend(_info(r) for r in recs)
        if n < _LIST_PAGE:
            return out
        after = recs[-1].name


class Watch(_Handle):
    """watch(pattern): the changes of the names matching pattern ("org.example.echo",
    "org.example.*" or "*") among those the caller may see. An iterator of WatchEvent
    that waits forever for each (next(timeout) bounds one wait); fileno() polls readable
    while an event waits (selectors, asyncio). BrokenPipeError once ferryd is gone
    (events missed meanwhile are not replayed: watch again)."""

    _close = staticmethod(lambda h: _c.ferry_watch_close(h))

    def next(self, timeout=None):
        h = self._handle()
        buf = _lib.record_buffer(_lib.WatchEvent, 1)
        fn = _c.ferry_watch_next
        _wait(lambda ns: fn(h, buf, ns), timeout, "watch")
        ev = _lib.check_records(buf, _lib.WatchEvent, 1)[0]
        return WatchEvent(ev.kind, _info(ev.info))

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def fileno(self):
        return _check(_c.ferry_watch_poll_fd(self._handle()), "watch_poll_fd")

    async def next_async(self):
        """Await the next event on the running asyncio loop (no threads)."""
        return await _poll_async(lambda: self.next(0), self.fileno)


def watch(pattern="*", timeout=5.0):
    """A Watch of the names matching pattern (timeout: for asking ferryd)."""
    out = ctypes.c_void_p()
    _check(_c.ferry_watch_open(pattern.encode(), _byref(out), _timeout_ns(timeout)), pattern)
    return Watch(out.value)


class Publication(_Handle):
    """A name given to a shared object by publish(): close() (or the end of its with
    block, or this process's death) frees the name; processes that opened the object
    keep it."""

    _close = staticmethod(lambda h: _c.ferry_pub_close(h))

    def __init__(self, h, name):
        super().__init__(h)
        self.name = name


def publish(name, obj, mode=0o600, allow_uids=(), allow_gids=(), takeover=False,
            trusted_sharers=False, timeout=5.0):
    """Publish obj (a Semaphore, Mutex, Barrier, Event, Mailbox or Broadcast) under name
    with a policy like register's; other processes then X.open(name). A plain (not fair)
    Mutex that another uid could open is PermissionError unless trusted_sharers."""
    kind = getattr(type(obj), "_kind", 0)
    if not kind:
        raise TypeError("publish: %r is not a ferry object that can be published" % (obj,))
    p = _policy(mode, takeover, allow_uids, allow_gids)
    if trusted_sharers:
        p.flags |= _POLICY_TRUSTED_SHARERS
    out = ctypes.c_void_p()
    _check(_c.ferry_publish(name.encode(), obj.fd, kind, _byref(p), _byref(out),
                            _timeout_ns(timeout)), name)
    return Publication(out.value, name)


class InboxMessage(Message):
    """A message from an inbox: Message's data, type and fds, and sender, the sender's
    kernel-stamped (uid, gid, pid)."""

    __slots__ = ("sender",)

    def __init__(self, data, type, fds, sender):
        Message.__init__(self, data, type, fds)
        self.sender = sender


_INITIAL_RECV = 64 << 10


class Inbox(_Handle):
    """inbox(name): receive what any process sends to name with send_to(name, ...)."""

    _close = staticmethod(lambda h: _c.ferry_inbox_close(h))

    def __init__(self, h, name):
        super().__init__(h)
        self.name = name
        self._cap = _INITIAL_RECV
        self._buf = ctypes.create_string_buffer(self._cap)
        self._msg = _lib.Msg()
        self._cred = _lib.Cred()

    def recv(self, sender=None, type_filter=0, timeout=None):
        """The next message matching type_filter (as Channel.recv) from anyone, or from
        the process that owns the name sender now (FileNotFoundError when that is not a
        name the caller may see). Returns an InboxMessage; its fds are the caller's."""
        h = self._handle()
        frm = sender.encode() if sender is not None else None
        m, cr = self._msg, self._cred
        fn = _c.ferry_recv_from
        while True:
            m.data = ctypes.addressof(self._buf)
            m.cap = self._cap
            try:
                n = _wait(lambda ns: fn(h, frm, _byref(m), type_filter, _byref(cr), ns),
                          timeout, "recv_from")
            except Error as e:
                if e.errno != _EMSGSIZE or m.len <= self._cap:
                    raise
                self._cap = m.len  # it stays queued: take it with room enough
                self._buf = ctypes.create_string_buffer(self._cap)
                continue
            fds = tuple(m.fds[:m.nfds]) if m.nfds else ()
            return InboxMessage(ctypes.string_at(self._buf, n), m.type, fds,
                                (cr.uid, cr.gid, cr.pid))

    def fileno(self):
        """Readable when recv() from anyone may find something."""
        return _check(_c.ferry_inbox_poll_fd(self._handle()), "inbox_poll_fd")

    async def recv_async(self, sender=None, type_filter=0):
        return await _poll_async(lambda: self.recv(sender, type_filter, 0), self.fileno)


def inbox(name, mode=0o600, allow_uids=(), allow_gids=(), takeover=False, timeout=5.0,
          **opts):
    """Register name and receive from every process that sends to it (ferry_inbox_open;
    policy and channel options as register)."""
    p = _policy(mode, takeover, allow_uids, allow_gids)
    o = _chan_opts(**opts)
    out = ctypes.c_void_p()
    _check(_c.ferry_inbox_open(name.encode(), _byref(p), _byref(o), _byref(out),
                               _timeout_ns(timeout)), name)
    return Inbox(out.value, name)


def send_to(name, data, type=0, fds=(), timeout=5.0):
    """Send data (bytes-like) as one message of type with fds (the caller keeps them) to
    the process that owns name (an inbox or a register name), connecting on first use
    and keeping the connection (ferry_send_to). One C call with the whole timeout (it
    may ask ferryd): None waits forever and is not interrupted by Ctrl-C."""
    b = data if isinstance(data, bytes) else bytes(memoryview(data))
    if len(fds) > MAX_FDS:
        raise ValueError("at most %d fds per message" % MAX_FDS)
    m = _lib.Msg()
    keep = ctypes.c_char_p(b)
    m.data = ctypes.cast(keep, ctypes.c_void_p)
    m.len = len(b)
    m.type = type
    m.nfds = len(fds)
    for i, f in enumerate(fds):
        m.fds[i] = _fileno(f)
    rc = _c.ferry_send_to(name.encode(), _byref(m), _timeout_ns(timeout))
    del keep
    if rc < 0:
        _raise(rc, name)
