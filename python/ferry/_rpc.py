# SPDX-License-Identifier: MIT
"""ferry._rpc — RPC over a ferry channel: Client.call and serve() (docs/rpc.md).

Rules: a Client owns its C client (and the channel under it) and closes it on close().
call() starts the request once and waits for its reply in slices (Ctrl-C interrupts the
wait, and the call is then cancelled, so a late reply is dropped). serve() runs the
handler in ferry's own pool threads (ctypes takes the GIL for the callback); what the
handler returns is the reply: bytes-like, or (bytes-like, fds), or None for no reply.
A handler that raises is reported through sys.unraisablehook and its request gets an
empty reply, so that its client is not left waiting. A reply ferry_reply refuses (it sent
nothing: fds to a client that takes none, more than max_msg, ...) is reported the same
way, as a ferry.Error with its errno, and not sent in another form: that caller times out
(see serve). Each request a handler gets is a Message with remote: the identity a trusted
relay named for the caller (ferry_rpc_server_peer_remote), or None.
"""

import ctypes
import errno as _errno
import select
import sys
import threading
import time
import traceback
import types

from . import _lib
from . import Message, _Handle, _byref, _c, _chan_opts, _check, _policy, _raise, _timeout_ns
from . import _ETIMEDOUT, _SLICE, _monotonic, _fileno, MAX_FDS, KIND_SHM
from . import _error_class, _TRUST_RELAY, REMOTE_ID_MAX, strerror


def _fill(m, data, fds):
    """Point m at data (kept alive by the returned object) and fds."""
    mv = memoryview(data)
    b = bytes(mv) if not isinstance(data, bytes) else data
    keep = ctypes.c_char_p(b)
    m.data = ctypes.cast(keep, ctypes.c_void_p)
    m.len = len(b)
    if len(fds) > MAX_FDS:
        raise ValueError("at most %d fds per message" % MAX_FDS)
    m.nfds = len(fds)
    for i, f in enumerate(fds):
        m.fds[i] = _fileno(f)
    return keep


class Client(_Handle):
    """An RPC client connection: rpc_connect(name) or Client(channel). Calls are made
    with ferry_call_async and completed by ferry_rpc_dispatch in the calling thread
    while it waits on the client's poll fd (select, in slices): a Ctrl-C cancels the
    call, and asyncio awaits the same fd (call_async)."""

    _close = staticmethod(lambda h: _c.ferry_rpc_client_close(h))
    _what = "client"

    def __init__(self, channel):
        h = channel._handle()
        self._cap = max(channel.max_msg, 1)
        out = ctypes.c_void_p()
        _check(_c.ferry_rpc_client_create(h, _byref(out)), "rpc_client")
        channel._h = None  # the client owns the channel now
        self._h = out.value
        self._pending = {}  # key -> [resp Msg, buffer, rc or None]
        self._next = 1
        self._cb = _lib.RpcCallback(self._done)
        self._futs = {}  # key -> asyncio future of a call_async
        self._reader_loop = None
        self._fd = _check(_c.ferry_rpc_poll_fd(self._h), "rpc_poll_fd")

    def _done(self, client, cid, rc, resp, ctx):
        ent = self._pending.get(ctx or 0)
        if ent is not None:
            ent[2] = rc
        fut = self._futs.get(ctx or 0)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def fileno(self):
        return self._fd

    def _start(self, data, fds, timeout):
        self._handle()  # ValueError once closed
        req, resp = _lib.Msg(), _lib.Msg()
        keep = _fill(req, data, fds)
        buf = ctypes.create_string_buffer(self._cap)
        resp.data = ctypes.addressof(buf)
        resp.cap = self._cap
        key = self._next
        self._next += 1
        ent = [resp, buf, None, ctypes.c_uint64()]
        self._pending[key] = ent
        rc = _c.ferry_call_async(self._h, _byref(req), _byref(resp), self._cb, key,
                                 _byref(ent[3]), _timeout_ns(timeout))
        del keep
        if rc < 0:
            del self._pending[key]
            _raise(rc, "call")
        return key

    def _finish(self, key):
        resp, buf, rc, _ = self._pending.pop(key)
        if rc < 0:
            _raise(rc, "call")
        return Message(ctypes.string_at(buf, rc), 0, tuple(resp.fds[:resp.nfds]))

    def _cancel(self, key):
        ent = self._pending.get(key)
        if ent is not None and ent[2] is None and self._h is not None:
            _c.ferry_call_cancel(self._h, ent[3].value)
            _c.ferry_rpc_dispatch(self._h)  # runs its callback (-ECANCELED)
        self._pending.pop(key, None)

    def call(self, data, fds=(), timeout=None):
        """Send a request (bytes-like, fds the caller keeps) and return the reply as a
        Message (its fds are the caller's). TimeoutError after timeout seconds (the call
        is then cancelled and a late reply dropped)."""
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            try:
                key = self._start(data, fds, 0)
                break
            except BlockingIOError:  # the channel is full: read replies, retry
                _c.ferry_rpc_dispatch(self._h)
                if deadline is not None and _monotonic() >= deadline:
                    _raise(-_ETIMEDOUT, "call")
                time.sleep(0.001)
        ok = False
        try:
            while self._pending[key][2] is None:
                rc = _c.ferry_rpc_dispatch(self._h)
                if self._pending[key][2] is not None:
                    break
                if rc < 0:
                    _raise(rc, "call")
                left = _SLICE if deadline is None else min(_SLICE, deadline - _monotonic())
                if left <= 0:
                    _raise(-_ETIMEDOUT, "call")
                select.select([self._fd], [], [], left)
            ok = True
            return self._finish(key)
        finally:
            if not ok:
                self._cancel(key)

    async def call_async(self, data, fds=()):
        """Await the reply to a request, on the running asyncio loop (add_reader of the
        client's poll fd; no threads). Cancelling the task cancels the call. One reader
        per client runs ferry_rpc_dispatch, whose callbacks complete each call's future
        (a dispatch completes every call whose reply it read, not only its caller's)."""
        import asyncio
        loop = asyncio.get_running_loop()
        while True:
            try:
                key = self._start(data, fds, 0)
                break
            except BlockingIOError:  # the channel is full: let replies be read
                _c.ferry_rpc_dispatch(self._h)
                await asyncio.sleep(0.001)
        fut = loop.create_future()
        self._futs[key] = fut
        if self._reader_loop is None:
            self._reader_loop = loop
            loop.add_reader(self._fd, self._on_readable)
        ok = False
        try:
            self._on_readable()  # the reply may be in already
            await fut
            ok = True
            return self._finish(key)
        finally:
            self._futs.pop(key, None)
            if not ok:
                self._cancel(key)
            if not self._futs and self._reader_loop is not None:
                self._reader_loop.remove_reader(self._fd)
                self._reader_loop = None

    def _on_readable(self):
        if self._h is None:
            return
        rc = _c.ferry_rpc_dispatch(self._h)
        if rc < 0:  # the connection died: its calls ended with their callbacks
            for f in list(self._futs.values()):
                if not f.done():
                    f.set_result(None)

    def close(self):
        if self._h is not None:
            self._pending.clear()
        super().close()


def rpc_connect(name, kind=KIND_SHM, timeout=5.0, **opts):
    """A Client of the service registered under name."""
    from . import connect
    return Client(connect(name, kind, timeout, **opts))


class Service(_Handle):
    """A running serve(): close() stops it (joins its threads, releases the name)."""

    _close = staticmethod(lambda h: _c.ferry_rpc_service_close(h))

    def __init__(self, handle, cb):
        super().__init__(handle)
        self._cb = cb  # the C callback must outlive the service


class _Request(Message):
    """What a serve() handler gets: a Message whose remote is the identity a trusted relay
    named for the caller (serve(..., trust_relay_uid=uid)), a str, or None."""

    __slots__ = ("remote",)  # (shadows Message.remote, which is always None)

    def __init__(self, data, type=0, fds=(), remote=None):
        Message.__init__(self, data, type, fds)
        self.remote = remote


def _unraisable(exc, what, obj):
    """Report exc through sys.unraisablehook, as the interpreter reports an exception it
    cannot raise anywhere (the threads of serve() are ferry's, with no caller above).
    The interpreter's own hook (sys.__unraisablehook__) takes only its own
    UnraisableHookArgs, which Python code cannot make: in its place, what it would print
    is printed. Never raises (the caller is a C callback that must go on)."""
    try:
        hook = sys.unraisablehook
        if hook is sys.__unraisablehook__:
            if sys.stderr is not None:
                sys.stderr.write("%s: %r\n" % (what, obj))
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
                sys.stderr.flush()
        else:
            hook(types.SimpleNamespace(exc_type=type(exc), exc_value=exc,
                                       exc_traceback=exc.__traceback__, err_msg=what,
                                       object=obj))
    except BaseException:  # noqa: B902 — a hook that fails: nothing more to do
        pass


def _remote_of(conn, buf):
    """The caller's relayed identity (ferry_rpc_server_peer_remote into buf), or None
    when none is believed (ENOENT), on shm (EOPNOTSUPP), or on any other failure to
    tell."""
    n = _c.ferry_rpc_server_peer_remote(conn, buf, len(buf))
    return buf.raw[:n].decode("ascii") if n > 0 else None


# ferry_reply outcomes that need no report: the caller cancelled the call (a timeout or
# Ctrl-C in Client.call) or is gone: nobody waits for the reply.
_REPLY_QUIET = (-_errno.ECANCELED, -_errno.EPIPE)


def _reply_failed(rc, rq, nfds, nbytes):
    """The ferry.Error for a ferry_reply that returned rc < 0, saying what happened."""
    err = -rc
    if err == _errno.EOPNOTSUPP and nfds:
        why = ("the reply carries %d fds and the client takes none (it connected with "
               "no_fds, or it is a remote caller through ferry-bridge)" % nfds)
    elif err == _errno.EMSGSIZE:
        why = "the reply's %d bytes are more than the channel's max_msg" % nbytes
    else:
        why = strerror(err)
    msg = ("ferry.serve: the reply to request %d was not sent: %s; the caller gets no "
           "reply (it waits until its timeout)" % (rq.id, why))
    return _error_class(err)(err, msg)


def serve(name, handler, threads=1, mode=0o600, timeout=5.0, **opts):
    """Register name and answer every request with handler(Message) in threads pool
    threads. Returns a Service. opts are channel options (_chan_opts), e.g.
    trust_relay_uid=uid: then msg.remote is the identity a relay of that uid named for
    the caller (a str; None when there is none).

    A reply that could not be sent (ferry_reply < 0: fds to a client that takes none,
    EOPNOTSUPP; more than max_msg, EMSGSIZE; ...) is reported through
    sys.unraisablehook as a ferry.Error with that errno and a message saying so, and not
    retried in another form: the caller gets no reply and its call ends at its timeout,
    as with a C server. (A reply without the refused fds, or an empty one, would look
    like a valid answer that it is not.) A cancelled call (ECANCELED) or a client that is
    gone (EPIPE) is not reported: nobody waits for that reply. The service goes on
    serving."""

    def trampoline(conn, rqp, ctx):
        rq = rqp.contents
        m = rq.msg
        # Only a service that trusts a relay can believe an identity: the others skip
        # the call (each handler thread has its own buffer)
        remote = None
        if trusting:
            buf = getattr(bufs, "buf", None)
            if buf is None:
                buf = bufs.buf = ctypes.create_string_buffer(REMOTE_ID_MAX + 1)
            remote = _remote_of(conn, buf)
        msg = _Request(ctypes.string_at(m.data, m.len) if m.len else b"", m.type,
                       tuple(m.fds[:m.nfds]), remote)
        try:
            out = handler(msg)
        except BaseException as e:  # noqa: B902 — never let it unwind into C
            _unraisable(e, "ferry.serve handler", handler)
            out = b""
        if rq.oneway or out is None:
            return
        try:
            data, fds = (out if isinstance(out, tuple) else (out, ()))
            resp = _lib.Msg()
            keep = _fill(resp, data, fds)
        except BaseException as e:  # noqa: B902 — a reply that is not bytes-like, ...
            _unraisable(e, "ferry.serve handler's reply", handler)
            return
        rc = _c.ferry_reply(conn, rq.id, _byref(resp), -1)
        del keep
        if rc < 0 and rc not in _REPLY_QUIET:
            _unraisable(_reply_failed(rc, rq, resp.nfds, resp.len), "ferry.serve reply",
                        handler)

    p = _policy(mode)
    o = _chan_opts(**opts)
    trusting = bool(o.flags & _TRUST_RELAY)
    bufs = threading.local()
    cb = _lib.RpcHandler(trampoline)
    out = ctypes.c_void_p()
    _check(_c.ferry_serve(name.encode(), cb, None, threads, _byref(p), _byref(o), _byref(out),
                          _timeout_ns(timeout)), name)
    return Service(out.value, cb)
