# SPDX-License-Identifier: MIT
"""ferry._bcast — broadcast: one publisher, any number of subscribers, every subscriber
gets every message in order, zero copy (ferry_bcast, docs/broadcast.md).

Rules: a Broadcast owns its C object; closing it in the publishing process ends the
stream. The C object must outlive its subscriptions in a process, so a Subscriber keeps
its Broadcast alive and Broadcast.close() closes the subscriptions made from it first.
A Subscriber is for one thread at a time, in the process that made it: in a fork child
its methods raise ValueError and its close() leaves the parent's subscription alone. Views of loan() and peek() are released at the end of their with block, as a
Channel's (an escaped view: BufferError, the memory stays pinned).
"""

import collections
import ctypes
import os
import weakref

from . import _lib
from . import (Message, _byref, _c, _check, _counters, _del_unpinned, _Handle, _Loan, _opts,
               _Peek, _poll_async, _unpin, _wait)
from ._sync import OBJ_BCAST, _Shared

_SUB_DROP_OLDEST = 1

SubscriberInfo = collections.namedtuple("SubscriberInfo", "pid flags lag holding alive")
SubscriberInfo.__doc__ = """One subscription of a broadcast (ferry_bcast_list): its
process, its flags (1: drop oldest), the messages it has not released yet (0..slots),
holding (a peek holds its next message) and alive (False: its process is certainly
gone)."""


class Broadcast(_Shared):
    """Broadcast(slots=64, max_subs=32, max_msg=4096): made by the publishing process;
    others get it over fork, by fd (adopt) or by name (publish / Broadcast.open) and
    subscribe(). A slow subscriber blocks the publisher (lossless) unless it subscribed
    with drop_oldest=True: then it loses its oldest messages, counted in its lost."""

    _close = staticmethod(lambda h: _c.ferry_bcast_close(h))
    _kind = OBJ_BCAST
    _adopt_fn, _open_fn, _fd_fn = "ferry_bcast_adopt", "ferry_bcast_open", "ferry_bcast_fd"

    def __init__(self, slots=None, max_subs=None, max_msg=None):
        o = _opts(_lib.BcastOpts, _c.ferry_bcast_opts_init_sized, slots=slots,
                  max_subs=max_subs, max_msg=max_msg)
        out = ctypes.c_void_p()
        _check(_c.ferry_bcast_create(_byref(o), _byref(out)), "bcast_create")
        self._init_handle(out.value)

    def _init_handle(self, h):
        _Handle.__init__(self, h)
        self._subs = weakref.WeakSet()
        self._loan = None
        self._pinned = []

    def close(self):
        """Close the subscriptions made from this handle, then the handle (in the
        publishing process: the end of the stream). BufferError while a loaned view
        escaped its block (see Channel.close)."""
        if self._h is None:
            return
        for s in list(self._subs):
            s.close()
        _unpin(self, "a loaned view outlived its with block and is still referenced: "
               "drop it before closing")
        super().close()

    __del__ = _del_unpinned

    @property
    def max_msg(self):
        return _c.ferry_bcast_max_msg(self._handle())

    @property
    def subscribers(self):
        """Active subscriptions now, of every process."""
        return _check(_c.ferry_bcast_subscribers(self._handle()), "bcast_subscribers")

    def stats(self):
        """The counters (published, max_lag, subscribers, max_subs, slots, ended,
        max_msg) as a dict."""
        return _counters(_lib.BcastCounters, _c.ferry_bcast_stats, self._handle(),
                         "bcast_stats")

    def list_subscribers(self):
        """The active subscriptions (of every process) as a list of SubscriberInfo."""
        cap = self.stats()["max_subs"]
        buf = _lib.record_buffer(_lib.BcastSubInfo, cap)
        n = _check(_c.ferry_bcast_list(self._handle(), buf, cap), "bcast_list")
        if n > cap:
            raise RuntimeError("ferry_bcast_list returned %d records for %d" % (n, cap))
        return [SubscriberInfo(r.pid, r.flags, r.lag, bool(r.holding), bool(r.alive))
                for r in _lib.check_records(buf, _lib.BcastSubInfo, n)]

    def publish(self, data, type=0, timeout=None):
        """Copy data (bytes-like) as one message of type to every subscriber, waiting
        while a blocking subscriber is slots behind. ferry.Error EMSGSIZE above
        max_msg; BrokenPipeError once the stream was ended."""
        h = self._handle()
        b = data if isinstance(data, bytes) else bytes(memoryview(data))
        n = len(b)
        fn = _c.ferry_bcast_publish
        _wait(lambda ns: fn(h, type, b, n, ns), timeout, "bcast_publish")

    def loan(self, size, type=0, timeout=None):
        """with b.loan(n) as buf: fill buf (a writable memoryview of n bytes in the next
        slot), published as one message of type on a normal exit. On an exception
        nothing is published; the slot stays reserved and the next loan of at most that
        size reuses it."""
        return _BcastLoan(self, size, type, timeout)

    def skip(self, n, timeout=None):
        """Record that n messages of the stream are missing here (a relay that missed
        them): every subscriber counts them in its lost count. Takes one slot, so it
        waits as publish does."""
        h = self._handle()
        fn = _c.ferry_bcast_skip
        _wait(lambda ns: fn(h, n, ns), timeout, "bcast_skip")

    def end(self):
        """End the stream now: subscribers get what was published, then StopIteration
        (BrokenPipeError from recv)."""
        _check(_c.ferry_bcast_end(self._handle()), "bcast_end")

    def subscribe(self, drop_oldest=False):
        """A Subscriber that receives every message published from now on."""
        out = ctypes.c_void_p()
        _check(_c.ferry_bcast_subscribe(self._handle(), _SUB_DROP_OLDEST if drop_oldest
                                        else 0, _byref(out)), "bcast_subscribe")
        s = Subscriber(out.value, self)
        self._subs.add(s)
        return s


class _BcastLoan(_Loan):
    _fn = "bcast_"
    _busy = ("a slice or export of the loaned view is still alive: nothing was "
             "published; the slot stays reserved")


class Subscriber(_Handle):
    """A subscription: recv() / peek() the next message, lost (messages dropped for a
    drop_oldest subscription, exact), fileno() (readable while a message waits or once
    the stream ended). Iterating gives the messages until the end of the stream."""

    _close = staticmethod(lambda h: _c.ferry_sub_close(h))
    _what = "subscriber"

    def __init__(self, h, bcast):
        super().__init__(h)
        self._pid = os.getpid()  # the subscription is this process's only
        self._bcast = bcast  # the C object must outlive the subscription
        self._cap = max(bcast.max_msg, 1)
        self._buf = ctypes.create_string_buffer(self._cap)
        self._type = ctypes.c_int64()
        self._pinned = []

    def _handle(self):
        h = self._h
        if h is None or self._pid != os.getpid():
            raise ValueError("subscriber is closed" if h is None else
                             "subscriber of another process (made before a fork)")
        return h

    def close(self):
        if self._h is None:
            return
        if self._pid != os.getpid():
            self._h = None  # a fork child's copy: the entry is the parent's, left alone
            return
        _unpin(self, "a peeked view outlived its with block and is still referenced: "
               "drop it before closing")
        super().close()

    __del__ = _del_unpinned

    def recv(self, timeout=None):
        """The next message as a Message (data bytes, type). BrokenPipeError at the end
        of the stream (nothing left)."""
        h = self._handle()
        buf, cap, t = self._buf, self._cap, self._type
        fn = _c.ferry_sub_recv
        n = _wait(lambda ns: fn(h, buf, cap, _byref(t), ns), timeout, "sub_recv")
        return Message(ctypes.string_at(buf, n), t.value)

    def peek(self, timeout=None):
        """with s.peek() as m: m.data is a read-only memoryview of the next message in
        the shared ring (copy what you check: sharers can write it), released on exit."""
        return _SubPeek(self, timeout)

    @property
    def lost(self):
        return _c.ferry_sub_lost(self._handle())

    @property
    def seq(self):
        """The stream's number of the next message (skipped ones included)."""
        return _c.ferry_sub_seq(self._handle())

    def fileno(self):
        return _check(_c.ferry_sub_poll_fd(self._handle()), "sub_poll_fd")

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.recv()
        except BrokenPipeError:
            raise StopIteration from None

    async def recv_async(self):
        """Await the next message on the running asyncio loop (no threads)."""
        return await _poll_async(lambda: self.recv(0), self.fileno)


class _SubPeek(_Peek):
    _fn = "sub_"
    _busy = ("a slice or export of the peeked view is still alive: the message stays "
             "held (not released)")

    def __init__(self, s, timeout):
        super().__init__(s, 0, timeout)

    def _args(self):
        return ()

    @staticmethod
    def _fds(m):
        return ()
