# SPDX-License-Identifier: MIT
"""ferry — fast, secure IPC for Linux, from Python (docs/python.md).

A pure-Python binding over ctypes (ferry._lib has the declarations and the import-time
checks). Rules of this module:
  - Timeouts are seconds as float: None waits forever, 0 returns at once
    (BlockingIOError when not ready), t > 0 at most t seconds (TimeoutError).
  - Blocking waits run in slices of at most _SLICE seconds, so that a Ctrl-C (or any
    signal handler that raises) interrupts them promptly. ctypes releases the GIL
    during every foreign call.
  - Every failure is a ferry.Error, which is also the OSError subclass Python gives
    that errno (TimeoutError, BrokenPipeError, PermissionError, ...), with ferry's
    message.
  - Ownership: a handle owns its C object and frees it on close() (also on exit of its
    with block, and, as a last resort, when collected). Received fds belong to the
    caller (Message.fds, ints with FD_CLOEXEC set); sent fds stay the caller's.
  - Zero-copy views (loan, peek) are memoryviews over ferry's memory that are released
    when their with block ends, so later use raises ValueError; a view that escaped
    (a slice, or an export still alive) keeps the memory pinned and is reported as
    BufferError instead of being left dangling. A view is in its owner's _pinned from
    the start of its block, so that a close() inside the block releases it (ValueError
    on later use) before the memory goes, or refuses (BufferError) while it escaped.
  - A handle is not for concurrent use by several threads (its receive buffer and
    message record are reused between calls); use one per thread.
"""

import ctypes
import errno as _errno
import os
import sys
import time

from . import _lib
from ._lib import lib as _c

__all__ = [
    "Error", "Channel", "Listener", "Message", "pair", "open", "listen", "connect",
    "register", "Client", "rpc_connect", "serve", "Service", "Semaphore", "Event",
    "Mailbox", "Mutex", "Barrier", "Broadcast", "Subscriber", "SubscriberInfo",
    "ls", "lookup", "NameInfo", "watch", "Watch", "WatchEvent", "publish", "Publication",
    "inbox", "Inbox", "InboxMessage", "send_to",
    "Region", "State", "OBJ_REGION", "OBJ_STATE", "TLS", "PeerCert",
    "KIND_SHM", "KIND_UNIX", "FOREVER", "CAP_RING", "UNBOUNDED", "REMOTE_ID_MAX",
    "EV_OWNED", "EV_CHANGED", "EV_RELEASED", "EV_DIED",
    "OBJ_SEM", "OBJ_MUTEX", "OBJ_BARRIER", "OBJ_EVENT", "OBJ_MAILBOX", "OBJ_BCAST",
]

KIND_SHM = _lib.KIND_SHM
KIND_UNIX = _lib.KIND_UNIX
FOREVER = None
CAP_RING = _lib.CAP_RING
UNBOUNDED = _lib.UNBOUNDED
MAX_FDS = _lib.MAX_FDS

_SLICE = 0.1  # seconds: the longest a blocking call waits before Python checks signals
_SLICE_NS = int(_SLICE * 1e9)
_ETIMEDOUT = _errno.ETIMEDOUT
_EAGAIN = _errno.EAGAIN
_EMSGSIZE = _errno.EMSGSIZE
_byref = ctypes.byref
_monotonic = time.monotonic

_library_path = _lib.path
_ferry_send = _c.ferry_send
_ferry_recvmsg = _c.ferry_recvmsg


# ---------------------------------------------------------------- errors

class Error(OSError):
    """A failure reported by libferry: errno is the positive errno, strerror ferry's
    message. The instance is also the OSError subclass Python maps that errno to."""


_error_classes = {}


def _error_class(err):
    base = type(OSError(err, ""))
    cls = _error_classes.get(base)
    if cls is None:
        if base is OSError:
            cls = Error
        else:
            cls = type(base.__name__, (Error, base), {"__module__": __name__})
        _error_classes[base] = cls
    return cls


def strerror(err):
    """ferry's message for a (positive or negative) errno."""
    return _c.ferry_strerror(-abs(err)).decode("utf-8", "replace")


def _raise(rc, what=None):
    err = -rc
    msg = strerror(err)
    if what:
        msg = "%s: %s" % (what, msg)
    raise _error_class(err)(err, msg)


def _check(rc, what=None):
    if rc < 0:
        _raise(rc, what)
    return rc


def _timeout_ns(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be None or >= 0")
    return int(timeout * 1e9)


def _wait(fn, timeout, what=None):
    """Call fn(timeout_ns) in slices until it returns something else than a slice's
    timeout or the deadline passes. fn's result is returned (>= 0) or raised."""
    if timeout is not None and timeout <= _SLICE:
        rc = fn(_timeout_ns(timeout))
        if rc < 0:
            _raise(rc, what)
        return rc
    deadline = None if timeout is None else _monotonic() + timeout
    while True:
        if deadline is None:
            ns = _SLICE_NS
        else:
            left = deadline - _monotonic()
            if left <= 0:
                _raise(-_ETIMEDOUT, what)
            ns = min(_SLICE_NS, int(left * 1e9))
        rc = fn(ns)
        if rc == -_ETIMEDOUT:
            continue  # a signal handler that raises runs here, between two slices
        if rc < 0:
            _raise(rc, what)
        return rc


def _fileno(f):
    return f if isinstance(f, int) else f.fileno()


def _opts(cls, init, **fields):
    """A cls record filled with its defaults by init (a ferry_X_opts_init_sized), then
    with each of fields that is not None."""
    o = cls()
    init(_byref(o), ctypes.sizeof(o))
    for name, value in fields.items():
        if value is not None:
            setattr(o, name, value)
    return o


def _counters(cls, fn, h, what):
    """The counters fn (a ferry_X_stats) writes into a cls record, as a dict (every
    field but size)."""
    st = cls()
    st.size = ctypes.sizeof(st)
    _check(fn(h, _byref(st)), what)
    return {n: getattr(st, n) for n, _ in st._fields_[1:]}


async def _poll_async(attempt, fileno):
    """Await attempt() (a call with timeout 0: BlockingIOError while not ready) on the
    running asyncio loop, waiting for fileno() to poll readable between tries."""
    while True:
        try:
            return attempt()
        except BlockingIOError:
            pass
        await _readable(fileno())


_PEEK_PRIVATE = 1 << 3  # ferry.h FERRY_PEEK_PRIVATE
_NO_FDS = 1 << 4  # ferry.h FERRY_NO_FDS
_TRUST_RELAY = 1 << 5  # ferry.h FERRY_TRUST_RELAY
REMOTE_ID_MAX = 127  # ferry.h FERRY_REMOTE_ID_MAX: the longest relay_for, in bytes


def _chan_opts(capacity=None, max_msg=None, ring_bytes=None, checksum=False, mode=None,
               flags=0, tls=None, no_fds=False, peek_private=False, relay_for=None,
               trust_relay_uid=None):
    """A ferry_chan_opts. no_fds (the creating end: listen, register, pair): the peer's
    sends with fds are refused (EOPNOTSUPP), so a peer cannot fill this end's fd table
    through messages whose fds this program ignores. peek_private: peek() hands out a
    private copy checked there (shm), not the ring bytes the peer can still write.
    relay_for (a joining end: open, connect, rpc_connect; unix only): the remote
    identity this end connects for (str or bytes, 1..REMOTE_ID_MAX characters 0x21..0x7e:
    else ferry.Error EINVAL, from the library; a NUL, which could not reach it, is the
    same EINVAL here). trust_relay_uid (a creating end: listen, register, serve; unix):
    believe the identity a joiner of that uid names (FERRY_TRUST_RELAY with relay_uid),
    read with Channel.peer_remote() / Message.remote; ValueError unless 0..2**32-2."""
    o = _opts(_lib.ChanOpts, _c.ferry_chan_opts_init_sized, capacity=capacity,
              max_msg=max_msg, ring_bytes=ring_bytes, mode=mode)
    if tls is not None:  # a ferry.TLS; its struct and strings live as long as o
        o._tls = tls._struct()
        o.tls = ctypes.addressof(o._tls)
    if relay_for is not None:
        rf = relay_for.encode("utf-8") if isinstance(relay_for, str) else bytes(relay_for)
        if b"\0" in rf:  # c_char_p would cut it there: refuse it as the library would
            _raise(-_errno.EINVAL, "relay_for")
        o.relay_for = rf  # (the library checks the rest: length, characters)
    if trust_relay_uid is not None:
        if isinstance(trust_relay_uid, bool) or not 0 <= trust_relay_uid <= 0xFFFFFFFE:
            raise ValueError("trust_relay_uid must be a uid (0..2**32-2)")
        o.relay_uid = trust_relay_uid
        flags |= _TRUST_RELAY
    o.flags |= (flags | (1 if checksum else 0) | (_NO_FDS if no_fds else 0)
                | (_PEEK_PRIVATE if peek_private else 0))
    return o


def _policy(mode=0o600, takeover=False, allow_uids=(), allow_gids=()):
    p = _lib.Policy()
    _c.ferry_policy_init_sized(_byref(p), ctypes.sizeof(p))
    p.mode = mode
    if takeover:
        p.flags |= 1
    if len(allow_uids) > 16 or len(allow_gids) > 16:
        raise ValueError("at most 16 allowed uids and 16 gids")
    for i, u in enumerate(allow_uids):
        p.allow_uids[i] = u
    for i, g in enumerate(allow_gids):
        p.allow_gids[i] = g
    p.n_uids, p.n_gids = len(allow_uids), len(allow_gids)
    return p


async def _readable(fd):
    """Wait until fd polls readable, on the running asyncio loop. Many waiters of one
    fd share one loop.add_reader (which keeps only one callback per fd): it wakes them
    all and is removed when the last is gone."""
    import asyncio
    loop = asyncio.get_running_loop()
    key = (id(loop), fd)
    waiters = _readers.get(key)
    if waiters is None:
        waiters = _readers[key] = []

        def wake():
            for f in waiters:
                if not f.done():
                    f.set_result(None)
            waiters.clear()
            loop.remove_reader(fd)
            _readers.pop(key, None)

        loop.add_reader(fd, wake)
    fut = loop.create_future()
    waiters.append(fut)
    try:
        await fut
    finally:
        if not fut.done() or fut.cancelled():
            if fut in waiters:
                waiters.remove(fut)
            if not waiters and _readers.get(key) is waiters:
                loop.remove_reader(fd)
                del _readers[key]


_readers = {}


# ---------------------------------------------------------------- messages

class Message:
    """A received message: data (bytes), type (int >= 0) and fds (a tuple of ints the
    receiver owns; close them, or use the message as a context manager)."""

    __slots__ = ("data", "type", "fds")

    def __init__(self, data, type=0, fds=()):
        self.data = data
        self.type = type
        self.fds = fds

    @property
    def remote(self):
        """The remote identity a trusted relay named for the sender (a str), or None.
        Always None here; the requests a ferry.serve handler gets carry it (_Request)."""
        return None

    def close_fds(self):
        fds, self.fds = self.fds, ()
        for fd in fds:
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_fds()

    def __repr__(self):
        return "%s(%r, type=%d, fds=%r)" % (type(self).__name__, self.data[:32], self.type,
                                           self.fds)


_INITIAL_RECV = 64 << 10
_new_message = Message.__new__


class _View:
    """A memoryview over C memory that is released when the with block ends. The
    array under it is checked for escapes (slices, exports) at release."""

    def __init__(self, addr, n, readonly):
        arr = (ctypes.c_char * n).from_address(addr) if n else (ctypes.c_char * 0)()
        self._base = sys.getrefcount(arr)
        self.arr = arr
        mv = memoryview(arr).cast("B")
        self.mv = mv.toreadonly() if readonly else mv
        if readonly:
            mv.release()

    def release(self):
        """Release the view; True when nothing else still refers to the memory."""
        try:
            self.mv.release()
        except BufferError:
            return False  # an export of the view itself is alive
        # The array's count is back to where it was before any view was made only if
        # no slice or export of a view still holds the memory.
        return sys.getrefcount(self.arr) <= self._base


def _unpin(owner, busy):
    """Release owner's views (escaped ones, and those of a with block still running)
    that are free now; BufferError(busy) while one is still referenced (owner must then
    stay open, so that the view never dangles)."""
    owner._pinned = [v for v in owner._pinned if not v.release()]
    if owner._pinned:
        raise BufferError(busy)


def _del_unpinned(self):
    """__del__ of a handle with zero-copy views: close unless a view is still pinned
    (then the memory must stay mapped, so the handle is left open)."""
    if getattr(self, "_h", None) is not None and not self._pinned:
        try:
            self.close()
        except Exception:
            pass


class Channel:
    """One end of a ferry channel (any transport). Made by pair(), open(url),
    Listener.accept(), connect(name). A context manager; close() frees it."""

    __slots__ = ("_h", "_msg", "_smsg", "_cap", "_buf", "_mref", "_loan", "_pinned", "_poll_fd",
                 "__weakref__")

    def __init__(self, handle):
        self._h = handle
        self._msg = _lib.Msg()   # the receive record (data: the receive buffer)
        self._smsg = _lib.Msg()  # the send record of the general send path
        self._cap = 0
        self._buf = None       # the receive buffer, made by the first recv
        self._mref = None      # byref(self._msg), made once
        self._loan = None      # (addr, size) of a loan kept after an exception
        self._pinned = []      # escaped views: their memory must stay mapped
        self._poll_fd = None

    def _handle(self):
        h = self._h
        if h is None:
            raise ValueError("channel is closed")
        return h

    # -- lifetime
    def close(self):
        """Close this end (the peer then sees BrokenPipeError once drained). Idempotent.
        BufferError if a zero-copy view escaped its with block and is still alive: the
        channel stays open then, so that view never dangles."""
        if self._h is None:
            return
        _unpin(self, "a loan/peek view outlived its with block and is still "
               "referenced: drop it before closing the channel")
        h, self._h = self._h, None
        _c.ferry_chan_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    __del__ = _del_unpinned

    @property
    def closed(self):
        return self._h is None

    def fileno(self):
        """The poll fd: readable while a message waits or the peer is gone. Owned by
        the channel (do not close it)."""
        if self._poll_fd is None:
            self._poll_fd = _check(_c.ferry_chan_poll_fd(self._handle()), "poll_fd")
        return self._poll_fd

    @property
    def max_msg(self):
        return _c.ferry_chan_max_msg(self._handle())

    def peer(self):
        """(uid, gid, pid) of the peer, where the transport knows it."""
        cr = _lib.Cred()
        _check(_c.ferry_chan_peer(self._handle(), _byref(cr)), "peer")
        return (cr.uid, cr.gid, cr.pid)

    def peer_remote(self):
        """The remote identity a trusted relay connected for, as a str (ferry_chan_peer_remote:
        a unix channel accepted by a listener made with trust_relay_uid, whose joiner has
        that uid and named relay_for). The identity is the relay's word, believed for its
        uid only (docs/security.md "Relays"). FileNotFoundError (ENOENT) when none is
        believed: none named, another uid, no trust_relay_uid, or this end joined;
        BlockingIOError (EAGAIN) while the joiner's handshake has not arrived (it is read
        at this end's first receive; this call does not wait); ferry.Error EOPNOTSUPP on
        other transports; BrokenPipeError, ferry.Error EBADMSG (a malformed handshake)."""
        return _peer_remote(_c.ferry_chan_peer_remote, self._handle())

    def peer_cert(self):
        """tls:// channels: the peer's certificate as a ferry.PeerCert (verified, sha256,
        cn, subject, sans, ktls). OSError EOPNOTSUPP on other transports."""
        from ._tls import peer_cert
        return peer_cert(self._handle())

    def stats(self):
        return _counters(_lib.ChanCounters, _c.ferry_chan_stats, self._handle(), "stats")

    # -- copying send and receive
    def send(self, data, type=0, fds=(), timeout=None):
        """Send data (any bytes-like) as one message of type (>= 0) with fds (ints or
        objects with fileno(); at most 16; the caller keeps them)."""
        if timeout is None and not fds and not type and data.__class__ is bytes:
            # The hot path: bytes, no fds, type 0, no deadline: one slice, then the
            # general path (a send that failed sent nothing, so trying again is safe).
            h = self._h
            if h is not None and _ferry_send(h, data, len(data), _SLICE_NS) >= 0:
                return
        self._send(data, type, fds, timeout)

    def _send(self, data, type, fds, timeout):
        h = self._h
        if h is None:
            raise ValueError("channel is closed")
        if not fds and type == 0 and data.__class__ is bytes:
            n = len(data)
            _wait(lambda ns: _ferry_send(h, data, n, ns), timeout, "send")
            return
        m = self._smsg  # never the receive record: its data is the receive buffer
        mv = memoryview(data)
        if not mv.contiguous:
            raise ValueError("data must be contiguous")
        n = mv.nbytes
        if mv.readonly:
            buf = ctypes.c_char_p(data if isinstance(data, bytes) else bytes(mv))
            m.data = ctypes.cast(buf, ctypes.c_void_p)
        else:
            buf = (ctypes.c_char * n).from_buffer(mv.cast("B")) if n else None
            m.data = ctypes.addressof(buf) if n else None
        m.type = type
        m.len = n
        if len(fds) > MAX_FDS:
            raise ValueError("at most %d fds per message" % MAX_FDS)
        m.nfds = len(fds)
        for i, f in enumerate(fds):
            m.fds[i] = _fileno(f)
        try:
            _wait(lambda ns: _c.ferry_sendmsg(h, _byref(m), ns), timeout, "send")
        finally:
            del buf
            mv.release()

    def recv(self, type_filter=0, timeout=None):
        """Take the next message matching type_filter (0 any, > 0 exactly that type,
        < 0 the lowest type <= -type_filter) and return it as a Message."""
        if timeout is None:
            # The hot path: one slice into the receive buffer, then the general path.
            # m.data and m.cap stay as set (the library writes type, len and fds only);
            # buf[:n] is the cheapest copy of the bytes out (one C call).
            h, buf = self._h, self._buf
            if h is not None and buf is not None:
                n = _ferry_recvmsg(h, self._mref, type_filter, _SLICE_NS)
                if n >= 0:
                    m = self._msg
                    if m.nfds:
                        return Message(buf[:n], m.type, tuple(m.fds[:m.nfds]))
                    msg = _new_message(Message)  # 20 ns less than Message(...)
                    msg.data = buf[:n]
                    msg.type = m.type
                    msg.fds = ()
                    return msg
        h = self._h
        if h is None:
            raise ValueError("channel is closed")
        if self._buf is None:
            self._recv_setup()
        return self._recv_wait(h, type_filter, timeout)

    def _recv_setup(self):
        m = self._msg
        self._cap = min(_INITIAL_RECV, max(self.max_msg, 1))
        self._buf = ctypes.create_string_buffer(self._cap)
        self._mref = _byref(m)
        m.data = ctypes.addressof(self._buf)
        m.cap = self._cap
        return self._buf

    def _recv_wait(self, h, type_filter, timeout):
        m = self._msg
        fn = _c.ferry_recvmsg
        mref = self._mref
        while True:
            m.data = ctypes.addressof(self._buf)
            m.cap = self._cap
            try:
                n = _wait(lambda ns: fn(h, mref, type_filter, ns), timeout, "recv")
            except Error as e:
                if e.errno != _EMSGSIZE or m.len <= self._cap:
                    raise
                self._cap = m.len  # the message stays queued: take it with room enough
                self._buf = ctypes.create_string_buffer(self._cap)
                continue
            fds = tuple(m.fds[:m.nfds]) if m.nfds else ()
            return Message(self._buf[:n], m.type, fds)

    # -- zero copy
    def loan(self, size, type=0, timeout=None):
        """with ch.loan(n) as buf: fill buf (a writable memoryview of n bytes in the
        ring); it is committed as one message of type on a normal exit, and released
        (ValueError on any later use) either way. On an exception nothing is sent: the
        reservation is kept and reused by the next loan of at most that size."""
        return _Loan(self, size, type, timeout)

    def peek(self, type_filter=0, timeout=None):
        """with ch.peek() as msg: msg.data is a read-only memoryview of the next
        message in place (shm: shared memory the peer can still write: copy what you
        check); msg.type, msg.fds as for recv. Released on exit."""
        return _Peek(self, type_filter, timeout)

    # -- asyncio
    async def recv_async(self, type_filter=0):
        """Await the next message matching type_filter, on the running asyncio loop
        (loop.add_reader of the poll fd; no threads)."""
        return await _poll_async(lambda: self.recv(type_filter, 0), self.fileno)

    async def send_async(self, data, type=0, fds=()):
        """Send, yielding to the loop while the channel is full (polled every 1 ms)."""
        import asyncio
        while True:
            try:
                return self.send(data, type, fds, 0)
            except BlockingIOError:
                await asyncio.sleep(0.001)


def _peer_remote(fn, h):
    """fn (ferry_chan_peer_remote or ferry_rpc_server_peer_remote) of h, as a str."""
    buf = ctypes.create_string_buffer(REMOTE_ID_MAX + 1)
    n = fn(h, buf, len(buf))
    if n < 0:
        _raise(n, "peer_remote")
    return buf.raw[:n].decode("ascii")  # 0x21..0x7e only (the library checks)


def _pin(owner, view):
    """view enters owner's _pinned for its with block (see _unpin): a close() inside the
    block must release it before the memory under it goes."""
    owner._pinned.append(view)
    return view


def _unpinned(owner, view):
    """The end of view's with block: True when view was released (it leaves _pinned);
    False when a slice or export still holds it (it stays pinned)."""
    if not view.release():
        return False
    if view in owner._pinned:  # not there when a close() in the block released it
        owner._pinned.remove(view)
    return True


class _Loan:
    """The with block of a loan: a Channel's (ferry_loan / ferry_commit) or, with _fn
    "bcast_" and its own _busy, a Broadcast's (ferry_bcast_loan / ferry_bcast_commit).
    The owner keeps (addr, size) of a loan left after an exception in _loan, and the view
    in _pinned while the block runs and after, if it escaped. A close() in the block ends
    it without a commit (ValueError at the block's end, unless an exception is on its
    way)."""

    _fn = ""
    _busy = ("a slice or export of the loaned view is still alive: nothing was "
             "committed; the memory stays reserved")

    def __init__(self, owner, size, type, timeout):
        self.owner, self.size, self.type, self.timeout = owner, size, type, timeout
        self.view = None

    def __enter__(self):
        o = self.owner
        h = o._handle()
        if o._loan is not None and self.size <= o._loan[1]:
            addr = o._loan[0]
        else:
            p = ctypes.c_void_p()
            what = self._fn + "loan"
            fn = getattr(_c, "ferry_" + what)
            _wait(lambda ns: fn(h, self.size, _byref(p), ns), self.timeout, what)
            addr = p.value
            o._loan = (addr, self.size)
        self.view = _pin(o, _View(addr, self.size, False))
        return self.view.mv

    def __exit__(self, et, ev, tb):
        o = self.owner
        if not _unpinned(o, self.view):
            raise BufferError(self._busy)
        if et is not None:
            return False
        o._handle()  # closed in the block: ValueError, nothing was committed
        o._loan = None
        what = self._fn + "commit"
        _check(getattr(_c, "ferry_" + what)(o._handle(), self.type, self.size), what)
        return False


class _Peek:
    """The with block of a peek: a Channel's (ferry_peek(h, type_filter, ...) /
    ferry_release) or, with _fn "sub_", no type filter, no fds and its own _busy, a
    Subscriber's (ferry_sub_peek / ferry_sub_release). The owner keeps the view in
    _pinned while the block runs and after, if it escaped. A close() in the block
    released the message: the block ends quietly."""

    _fn = ""
    _busy = ("a slice or export of the peeked view is still alive: the message stays "
             "peeked (not released)")

    def __init__(self, owner, type_filter, timeout):
        self.owner, self.filter, self.timeout = owner, type_filter, timeout
        self.view = None

    def _args(self):
        return (self.filter,)

    @staticmethod
    def _fds(m):
        return tuple(m.fds[:m.nfds])

    def __enter__(self):
        h = self.owner._handle()
        m = _lib.Msg()
        what = self._fn + "peek"
        fn, args = getattr(_c, "ferry_" + what), self._args()
        _wait(lambda ns: fn(h, *args, _byref(m), ns), self.timeout, what)
        self.view = _pin(self.owner, _View(m.data or 0, m.len, True))
        return Message(self.view.mv, m.type, self._fds(m))

    def __exit__(self, et, ev, tb):
        o = self.owner
        if not _unpinned(o, self.view):
            raise BufferError(self._busy)
        if o._h is None:
            return False  # closed in the block: the close gave the message back
        what = self._fn + "release"
        _check(getattr(_c, "ferry_" + what)(o._handle()), what)
        return False


class _Handle:
    """A handle that owns one C object: close() (also on `with` exit and at collection)
    releases it once through the class's _close; _handle() is the live pointer."""

    _close = None
    _what = None  # the name in "... is closed" (default: the class's)

    def __init__(self, h):
        self._h = h

    def _handle(self):
        if self._h is None:
            raise ValueError("%s is closed" % (self._what or type(self).__name__))
        return self._h

    def close(self):
        if self._h is not None:
            h, self._h = self._h, None
            type(self)._close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            self.close()

    @staticmethod
    def _adopted(fn, fd, what):
        """The handle fn (a ferry_X_adopt) makes of a duplicate of fd (the caller keeps
        fd; the duplicate is closed on failure)."""
        out = ctypes.c_void_p()
        _check(fn(os.dup(fd), _byref(out)), what)
        return out.value


class Listener(_Handle):
    """A listening endpoint: listen(url) or register(name). accept() gives channels."""

    _close = staticmethod(lambda h: _c.ferry_listener_close(h))
    _what = "listener"

    def accept(self, timeout=None):
        h = self._handle()
        out = ctypes.c_void_p()
        _wait(lambda ns: _c.ferry_accept(h, _byref(out), ns), timeout, "accept")
        return Channel(out.value)

    @property
    def url(self):
        buf = ctypes.create_string_buffer(4096)
        n = _check(_c.ferry_listener_url(self._handle(), buf, 4096), "url")
        return buf.value[:n].decode()

    def fileno(self):
        return _check(_c.ferry_listener_poll_fd(self._handle()), "poll_fd")

    async def accept_async(self):
        return await _poll_async(lambda: self.accept(0), self.fileno)


def pair(**opts):
    """Both ends of a shared-memory channel, e.g. before os.fork()."""
    o = _chan_opts(**opts)
    a, b = ctypes.c_void_p(), ctypes.c_void_p()
    _check(_c.ferry_pair(_byref(o), _byref(a), _byref(b)), "pair")
    return Channel(a.value), Channel(b.value)


def open(url, timeout=None, **opts):
    """Connect to a listener at url (shm://, unix://, tcp://, fifo://, ...)."""
    o = _chan_opts(**opts)
    out = ctypes.c_void_p()
    u = url.encode()
    # One call with the whole deadline: a handshake cut off by a slice and retried
    # would show the listener a peer that went away.
    _check(_c.ferry_chan_open(u, _byref(o), _byref(out), _timeout_ns(timeout)), url)
    return Channel(out.value)


def listen(url, **opts):
    """Listen at url; opts (capacity, max_msg, ring_bytes, checksum, mode, no_fds) shape the
    channels made."""
    o = _chan_opts(**opts)
    out = ctypes.c_void_p()
    _check(_c.ferry_listen(url.encode(), _byref(o), _byref(out)), url)
    return Listener(out.value)


def register(name, mode=0o600, takeover=False, allow_uids=(), allow_gids=(), timeout=5.0,
             **opts):
    """Own name at ferryd and serve it: clients that connect(name) come out of the
    returned Listener's accept()."""
    p = _policy(mode, takeover, allow_uids, allow_gids)
    o = _chan_opts(**opts)
    out = ctypes.c_void_p()
    n = name.encode()
    _check(_c.ferry_register(n, _byref(p), _byref(o), _byref(out), _timeout_ns(timeout)),
           name)
    return Listener(out.value)


def connect(name, kind=KIND_SHM, timeout=5.0, **opts):
    """A channel to the server registered under name (through ferryd)."""
    o = _chan_opts(**opts)
    out = ctypes.c_void_p()
    n = name.encode()
    # One call with the whole deadline: a retried connect would ask ferryd again.
    _check(_c.ferry_connect(n, kind, _byref(o), _byref(out), _timeout_ns(timeout)), name)
    return Channel(out.value)


from ._rpc import Client, Service, rpc_connect, serve  # noqa: E402
from ._sync import (Barrier, Event, Mailbox, Mutex, Semaphore,  # noqa: E402
                    OBJ_SEM, OBJ_MUTEX, OBJ_BARRIER, OBJ_EVENT, OBJ_MAILBOX, OBJ_BCAST)
from ._bcast import Broadcast, Subscriber, SubscriberInfo  # noqa: E402
from ._names import (NameInfo, Watch, WatchEvent, Publication, Inbox,  # noqa: E402
                     InboxMessage, inbox, lookup, ls, publish, send_to, watch,
                     EV_OWNED, EV_CHANGED, EV_RELEASED, EV_DIED)
from ._region import Region, State, OBJ_REGION, OBJ_STATE  # noqa: E402
from ._tls import TLS, PeerCert  # noqa: E402
