# SPDX-License-Identifier: MIT
"""ferry._lib — the ctypes declarations of libferry's C API (include/ferry/ferry.h).

Rules: this module only loads the library, declares the structs and the prototypes,
and checks at import that the library it found lays the sized structs out as declared
here (docs/abi.md "Sized structs"). Anything wrong raises ImportError with the reason:
a mismatched library is refused at import, never used to corrupt memory.

The library is $FERRY_LIBRARY when set, else what ctypes.util.find_library("ferry")
finds, else "libferry.so.0" through the dynamic linker's search path.
"""

import ctypes
import ctypes.util
import os

c_int64 = ctypes.c_int64
c_size_t = ctypes.c_size_t
c_ssize_t = ctypes.c_ssize_t
c_int = ctypes.c_int
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
POINTER = ctypes.POINTER

FOREVER = -1
NOW = 0
MAX_FDS = 16
CAP_RING = 0xFFFFFFFF - 1
UNBOUNDED = 0xFFFFFFFF
KIND_SHM = 0
KIND_UNIX = 1

# The defaults ferry_chan_opts_init_sized fills (ferry.h): used to check the layout.
_RING_BYTES_DEFAULT = 256 << 10
_MAX_MAP_DEFAULT = 512 << 20


class ChanOpts(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("capacity", c_uint32),
        ("flags", c_uint32),
        ("ring_bytes", c_size_t),
        ("max_msg", c_size_t),
        ("mem_cap", c_size_t),
        ("spin_ns", c_int64),
        ("mode", ctypes.c_uint),
        ("max_skipped_fds", c_uint32),
        ("max_map", c_size_t),
        ("tls", c_void_p),  # const ferry_tls_opts * (ferry._tls.TLS)
        # 0.3, relayed identities: const char *relay_for (bytes kept by ctypes in the
        # struct's _objects while it lives) and uid_t relay_uid; they end the C struct
        ("relay_for", c_char_p),
        ("relay_uid", c_uint32),
    ]


class Msg(ctypes.Structure):
    _fields_ = [
        ("type", c_int64),
        ("data", c_void_p),
        ("len", c_size_t),
        ("cap", c_size_t),
        ("nfds", c_uint32),
        ("fds", c_int * MAX_FDS),
    ]


class ChanCounters(ctypes.Structure):
    _fields_ = [("size", c_size_t)] + [
        (n, c_uint64)
        for n in ("sent_msgs", "sent_bytes", "recv_msgs", "recv_bytes", "send_waits",
                  "recv_waits", "wakeups", "drops", "grows")
    ]


class Policy(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("mode", ctypes.c_uint),
        ("gid", ctypes.c_uint32),
        ("flags", c_uint32),
        ("n_uids", c_uint32),
        ("n_gids", c_uint32),
        ("allow_uids", ctypes.c_uint32 * 16),
        ("allow_gids", ctypes.c_uint32 * 16),
        # 0.3: the write right of a published region (ferry._region)
        ("reserved0", c_uint32),
        ("n_write_uids", c_uint32),
        ("n_write_gids", c_uint32),
        ("write_uids", ctypes.c_uint32 * 16),
        ("write_gids", ctypes.c_uint32 * 16),
    ]


class Cred(ctypes.Structure):
    _fields_ = [("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("pid", ctypes.c_int32)]


class RpcRequest(ctypes.Structure):
    _fields_ = [
        ("id", c_uint64),
        ("oneway", c_int),
        ("msg", Msg),
        ("reserved", c_uint64 * 4),
    ]


class MailboxOpts(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("capacity", c_uint32),
        ("flags", c_uint32),
        ("max_msg", c_size_t),
    ]


class MailboxCounters(ctypes.Structure):
    _fields_ = [("size", c_size_t)] + [
        (n, c_uint64)
        for n in ("sent", "received", "lost", "returned", "withdrawn", "torn", "recovered")
    ] + [("queued", c_uint32), ("capacity", c_uint32), ("max_msg", c_size_t),
         ("waiting", c_uint64),
         ("flags", c_uint64)]


class BcastOpts(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("slots", c_uint32), ("max_subs", c_uint32),
                ("max_msg", c_size_t)]


class BcastCounters(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("published", c_uint64), ("max_lag", c_uint64),
                ("subscribers", c_uint32), ("max_subs", c_uint32), ("slots", c_uint32),
                ("ended", c_uint32), ("max_msg", c_size_t)]


class RegionOpts(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("flags", c_uint32), ("mode", c_uint32),
                ("path", c_char_p)]


class TlsOpts(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("cert", c_char_p), ("cert_pem", c_char_p),
        ("key", c_char_p), ("key_pem", c_char_p),
        ("ca", c_char_p), ("ca_pem", c_char_p),
        ("host", c_char_p),
        ("client_cert", c_uint32),
        ("flags", c_uint32),
        ("handshake_timeout_ns", c_int64),
    ]


class PeerCert(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("flags", c_uint32),
        ("reserved", c_uint32),
        ("sha256", ctypes.c_uint8 * 32),
        ("cn", ctypes.c_char * 256),
        ("subject", ctypes.c_char * 512),
        ("sans", ctypes.c_char * 1024),
    ]


# Records the library fills (ferry.h "Sized structs": no size field, reserved room the
# library zeroes). Their layout is checked at every fill by check_records() below.
class NameInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 256),
        ("uid", c_uint32),
        ("gid", c_uint32),
        ("pid", ctypes.c_int32),
        ("mode", ctypes.c_uint),
        ("connects", c_uint64),
        ("kind", c_uint32),
        ("since_ns", c_uint64),
        # 0.3: a published region or state's size, and its file's device and inode
        ("size", c_uint64),
        ("dev", c_uint64),
        ("ino", c_uint64),
        ("reserved", c_uint64 * 5),
    ]


class WatchEvent(ctypes.Structure):
    _fields_ = [
        ("kind", c_int),
        ("reserved", c_uint32),
        ("info", NameInfo),
        ("reserved2", c_uint64 * 4),
    ]


class BcastSubInfo(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_int32),
        ("flags", c_uint32),
        ("lag", c_uint64),
        ("holding", c_uint32),
        ("alive", c_uint32),
        ("reserved", c_uint64 * 4),
    ]


_GUARD = 0xA5
_SLACK = 4096  # bytes past the records: room a larger library record would spill into


def record_buffer(cls, n):
    """A buffer for n records of cls, filled with a guard byte, with _SLACK bytes of
    guard after them (check_records reads what the library did to it)."""
    size = ctypes.sizeof(cls) * n + _SLACK
    buf = (ctypes.c_char * size)()
    ctypes.memset(buf, _GUARD, size)
    return buf


def _reserved_ok(rec):
    if isinstance(rec, WatchEvent):
        # (kind is not checked: a later library may add kinds; they come out as ints)
        return rec.reserved == 0 and not any(rec.reserved2) and _reserved_ok(rec.info)
    if isinstance(rec, NameInfo):
        raw = ctypes.string_at(ctypes.addressof(rec) + NameInfo.name.offset, 256)
        return not any(rec.reserved) and b"\0" in raw
    return not any(rec.reserved)


def check_records(buf, cls, n):
    """The layout check of the records the library fills (ferry_name_info,
    ferry_watch_event, ferry_bcast_sub_info), which have no size field and no accessor
    that tells their size: the library zeroes their reserved words and writes nothing
    past its n-th record. So in a buffer prefilled with a guard byte, each of the n
    records as declared here must have its reserved words zero (a record of another
    size puts the library's fields or the guard there) and the bytes past n records
    must still be the guard (a larger library record would spill into the slack). Any
    mismatch raises RuntimeError: nothing read is used. Returns the records."""
    sz = ctypes.sizeof(cls)
    recs = [cls.from_buffer_copy(buf, i * sz) for i in range(n)]
    tail = bytes(buf)[n * sz:]
    if tail.count(_GUARD) != len(tail) or not all(_reserved_ok(r) for r in recs):
        raise RuntimeError("ferry: %s lays out %s differently from this binding (the "
                           "record's size or reserved words differ); install the matching "
                           "python3-ferry" % (path, cls.__name__))
    return recs


RpcHandler = ctypes.CFUNCTYPE(None, c_void_p, POINTER(RpcRequest), c_void_p)
RpcCallback = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_ssize_t, POINTER(Msg), c_void_p)

# name: (restype, argtypes)
_PROTOS = {
    "ferry_strerror": (c_char_p, [c_int]),
    "ferry_chan_opts_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_policy_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_mailbox_opts_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_pair": (c_int, [POINTER(ChanOpts), POINTER(c_void_p), POINTER(c_void_p)]),
    "ferry_listen": (c_int, [c_char_p, POINTER(ChanOpts), POINTER(c_void_p)]),
    "ferry_accept": (c_int, [c_void_p, POINTER(c_void_p), c_int64]),
    "ferry_listener_poll_fd": (c_int, [c_void_p]),
    "ferry_listener_url": (c_ssize_t, [c_void_p, c_char_p, c_size_t]),
    "ferry_listener_close": (None, [c_void_p]),
    "ferry_chan_open": (c_int, [c_char_p, POINTER(ChanOpts), POINTER(c_void_p), c_int64]),
    "ferry_chan_close": (None, [c_void_p]),
    "ferry_send": (c_int, [c_void_p, c_void_p, c_size_t, c_int64]),
    "ferry_sendmsg": (c_int, [c_void_p, POINTER(Msg), c_int64]),
    "ferry_recvmsg": (c_ssize_t, [c_void_p, POINTER(Msg), c_int64, c_int64]),
    "ferry_loan": (c_int, [c_void_p, c_size_t, POINTER(c_void_p), c_int64]),
    "ferry_commit": (c_int, [c_void_p, c_int64, c_size_t]),
    "ferry_peek": (c_int, [c_void_p, c_int64, POINTER(Msg), c_int64]),
    "ferry_release": (c_int, [c_void_p]),
    "ferry_chan_poll_fd": (c_int, [c_void_p]),
    "ferry_chan_stats": (c_int, [c_void_p, c_void_p]),
    "ferry_chan_max_msg": (c_size_t, [c_void_p]),
    "ferry_chan_peer": (c_int, [c_void_p, POINTER(Cred)]),
    "ferry_chan_peer_remote": (c_ssize_t, [c_void_p, c_char_p, c_size_t]),
    "ferry_register": (c_int, [c_char_p, POINTER(Policy), POINTER(ChanOpts), POINTER(c_void_p),
                               c_int64]),
    "ferry_connect": (c_int, [c_char_p, c_int, POINTER(ChanOpts), POINTER(c_void_p), c_int64]),
    # rpc
    "ferry_rpc_client_create": (c_int, [c_void_p, POINTER(c_void_p)]),
    "ferry_rpc_connect": (c_int, [c_char_p, c_int, POINTER(ChanOpts), POINTER(c_void_p),
                                  c_int64]),
    "ferry_rpc_client_close": (None, [c_void_p]),
    "ferry_call_start": (c_int, [c_void_p, POINTER(Msg), POINTER(Msg), POINTER(c_uint64),
                                 c_int64]),
    "ferry_call_wait": (c_ssize_t, [c_void_p, c_uint64, c_int64]),
    "ferry_call_async": (c_int, [c_void_p, POINTER(Msg), POINTER(Msg), RpcCallback, c_void_p,
                                 POINTER(c_uint64), c_int64]),
    "ferry_rpc_poll_fd": (c_int, [c_void_p]),
    "ferry_rpc_dispatch": (c_int, [c_void_p]),
    "ferry_call_cancel": (c_int, [c_void_p, c_uint64]),
    "ferry_reply": (c_int, [c_void_p, c_uint64, POINTER(Msg), c_int64]),
    "ferry_serve": (c_int, [c_char_p, RpcHandler, c_void_p, ctypes.c_uint, POINTER(Policy),
                            POINTER(ChanOpts), POINTER(c_void_p), c_int64]),
    "ferry_rpc_service_close": (None, [c_void_p]),
    "ferry_rpc_server_peer_remote": (c_ssize_t, [c_void_p, c_char_p, c_size_t]),
    # sync objects
    "ferry_sem_create": (c_int, [c_uint32, c_uint32, POINTER(c_void_p)]),
    "ferry_sem_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_sem_fd": (c_int, [c_void_p]),
    "ferry_sem_wait": (c_int, [c_void_p, c_int64]),
    "ferry_sem_post": (c_int, [c_void_p]),
    "ferry_sem_value": (c_int, [c_void_p]),
    "ferry_sem_close": (None, [c_void_p]),
    "ferry_event_create": (c_int, [c_uint32, POINTER(c_void_p)]),
    "ferry_event_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_event_fd": (c_int, [c_void_p]),
    "ferry_event_poll_fd": (c_int, [c_void_p]),
    "ferry_event_post": (c_int, [c_void_p, c_uint64, c_uint32, c_int64]),
    "ferry_event_next": (c_int, [c_void_p, POINTER(c_uint64), c_int64]),
    "ferry_event_close": (None, [c_void_p]),
    "ferry_mailbox_create": (c_int, [POINTER(MailboxOpts), POINTER(c_void_p)]),
    "ferry_mailbox_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_mailbox_fd": (c_int, [c_void_p]),
    "ferry_mailbox_poll_fd": (c_int, [c_void_p]),
    "ferry_mailbox_send": (c_int, [c_void_p, c_int64, c_void_p, c_size_t, c_int64]),
    "ferry_mailbox_recv": (c_ssize_t, [c_void_p, c_int64, POINTER(c_int64), c_void_p, c_size_t,
                                       c_int64]),
    "ferry_mailbox_stats": (c_int, [c_void_p, POINTER(MailboxCounters)]),
    "ferry_mailbox_close": (None, [c_void_p]),
    "ferry_mailbox_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_sem_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_event_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_mutex_create": (c_int, [c_uint32, POINTER(c_void_p)]),
    "ferry_mutex_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_mutex_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_mutex_fd": (c_int, [c_void_p]),
    "ferry_mutex_lock": (c_int, [c_void_p, c_int64]),
    "ferry_mutex_consistent": (c_int, [c_void_p]),
    "ferry_mutex_unlock": (c_int, [c_void_p]),
    "ferry_mutex_close": (None, [c_void_p]),
    "ferry_barrier_create": (c_int, [c_uint32, POINTER(c_void_p)]),
    "ferry_barrier_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_barrier_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_barrier_fd": (c_int, [c_void_p]),
    "ferry_barrier_wait": (c_int, [c_void_p, c_int64]),
    "ferry_barrier_close": (None, [c_void_p]),
    # naming
    "ferry_publish": (c_int, [c_char_p, c_int, c_int, POINTER(Policy), POINTER(c_void_p),
                              c_int64]),
    "ferry_pub_close": (None, [c_void_p]),
    "ferry_lookup": (c_int, [c_char_p, c_void_p, c_int64]),
    "ferry_list": (c_ssize_t, [c_char_p, c_void_p, c_size_t, c_int64]),
    "ferry_watch_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_watch_next": (c_int, [c_void_p, c_void_p, c_int64]),
    "ferry_watch_poll_fd": (c_int, [c_void_p]),
    "ferry_watch_close": (None, [c_void_p]),
    "ferry_inbox_open": (c_int, [c_char_p, POINTER(Policy), POINTER(ChanOpts),
                                 POINTER(c_void_p), c_int64]),
    "ferry_recv_from": (c_ssize_t, [c_void_p, c_char_p, POINTER(Msg), c_int64, POINTER(Cred),
                                    c_int64]),
    "ferry_inbox_poll_fd": (c_int, [c_void_p]),
    "ferry_inbox_close": (None, [c_void_p]),
    "ferry_send_to": (c_int, [c_char_p, POINTER(Msg), c_int64]),
    # broadcast
    "ferry_bcast_opts_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_bcast_create": (c_int, [POINTER(BcastOpts), POINTER(c_void_p)]),
    "ferry_bcast_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_bcast_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_bcast_fd": (c_int, [c_void_p]),
    "ferry_bcast_max_msg": (c_size_t, [c_void_p]),
    "ferry_bcast_subscribers": (c_int, [c_void_p]),
    "ferry_bcast_stats": (c_int, [c_void_p, c_void_p]),
    "ferry_bcast_list": (c_ssize_t, [c_void_p, c_void_p, c_size_t]),
    "ferry_bcast_end": (c_int, [c_void_p]),
    "ferry_bcast_close": (None, [c_void_p]),
    "ferry_bcast_publish": (c_int, [c_void_p, c_int64, c_void_p, c_size_t, c_int64]),
    "ferry_bcast_loan": (c_int, [c_void_p, c_size_t, POINTER(c_void_p), c_int64]),
    "ferry_bcast_commit": (c_int, [c_void_p, c_int64, c_size_t]),
    "ferry_bcast_subscribe": (c_int, [c_void_p, c_uint32, POINTER(c_void_p)]),
    "ferry_sub_recv": (c_ssize_t, [c_void_p, c_void_p, c_size_t, POINTER(c_int64), c_int64]),
    "ferry_sub_peek": (c_int, [c_void_p, POINTER(Msg), c_int64]),
    "ferry_sub_release": (c_int, [c_void_p]),
    "ferry_sub_lost": (c_uint64, [c_void_p]),
    # 0.3: broadcast gaps
    "ferry_bcast_skip": (c_int, [c_void_p, c_uint64, c_int64]),
    "ferry_sub_seq": (c_uint64, [c_void_p]),
    "ferry_sub_poll_fd": (c_int, [c_void_p]),
    "ferry_sub_close": (None, [c_void_p]),
    # regions and states (ferry._region)
    "ferry_region_opts_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_region_create": (c_int, [c_size_t, POINTER(RegionOpts), POINTER(c_void_p)]),
    "ferry_region_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_region_open": (c_int, [c_char_p, c_uint32, POINTER(c_void_p), c_int64]),
    "ferry_region_fd": (c_int, [c_void_p]),
    "ferry_region_fd_readonly": (c_int, [c_void_p, POINTER(c_int)]),
    "ferry_region_writable": (c_int, [c_void_p]),
    "ferry_region_size": (c_size_t, [c_void_p]),
    "ferry_region_map": (c_int, [c_void_p, c_uint32, POINTER(c_void_p)]),
    "ferry_region_unmap": (c_int, [c_void_p, c_void_p]),
    "ferry_region_resize": (c_int, [c_void_p, c_size_t]),
    "ferry_region_sync": (c_int, [c_void_p]),
    "ferry_region_notify": (c_int, [c_void_p]),
    "ferry_region_version": (c_uint64, [c_void_p]),
    "ferry_region_wait": (c_int, [c_void_p, c_uint64, c_int64]),
    "ferry_region_poll_fd": (c_int, [c_void_p]),
    "ferry_region_poll_ack": (c_int, [c_void_p]),
    "ferry_region_close": (None, [c_void_p]),
    "ferry_state_create": (c_int, [c_size_t, POINTER(RegionOpts), POINTER(c_void_p)]),
    "ferry_state_adopt": (c_int, [c_int, POINTER(c_void_p)]),
    "ferry_state_open": (c_int, [c_char_p, POINTER(c_void_p), c_int64]),
    "ferry_state_fd": (c_int, [c_void_p]),
    "ferry_state_fd_readonly": (c_int, [c_void_p, POINTER(c_int)]),
    "ferry_state_max_len": (c_size_t, [c_void_p]),
    "ferry_state_region": (c_void_p, [c_void_p]),
    "ferry_state_write": (c_int, [c_void_p, c_void_p, c_size_t]),
    "ferry_state_read": (c_int, [c_void_p, c_void_p, c_size_t, POINTER(c_size_t),
                                 POINTER(c_uint64)]),
    "ferry_state_version": (c_uint64, [c_void_p]),
    "ferry_state_wait": (c_int, [c_void_p, c_uint64, c_int64]),
    "ferry_state_close": (None, [c_void_p]),
    # tls:// (ferry._tls)
    "ferry_tls_opts_init_sized": (None, [c_void_p, c_size_t]),
    "ferry_chan_peer_cert": (c_int, [c_void_p, POINTER(PeerCert)]),
}


def _find():
    path = os.environ.get("FERRY_LIBRARY")
    if path:
        return path
    return ctypes.util.find_library("ferry") or "libferry.so.0"


def _load():
    path = _find()
    try:
        lib = ctypes.CDLL(path, use_errno=True)
    except OSError as e:
        raise ImportError(
            "ferry: cannot load libferry (%s): %s; set FERRY_LIBRARY to its path" % (path, e)
        ) from None
    missing = []
    for name, (res, args) in _PROTOS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = res
        fn.argtypes = args
    if missing:
        raise ImportError("ferry: %s is not a libferry this binding knows: missing %s"
                          % (path, ", ".join(missing[:5])))
    _check_layout(lib, path)
    return lib, path


def _check_layout(lib, path):
    """Check that the library's sized structs hold, at the offsets declared here, the
    defaults ferry.h documents (so field order and padding agree), and that the library's
    structs are no smaller than ours (an older library lacks fields we would set)."""
    def bad(what):
        raise ImportError("ferry: %s does not match this binding's struct layout (%s); "
                          "install the matching python3-ferry" % (path, what))

    # Options: the library fills defaults into a big, zeroed buffer; its own sizeof is
    # at least where the last default lies.
    buf = (ctypes.c_char * 4096)()
    lib.ferry_chan_opts_init_sized(buf, 4096)
    o = ChanOpts.from_buffer_copy(buf[:ctypes.sizeof(ChanOpts)])
    if (o.size != 4096 or o.capacity != CAP_RING or o.ring_bytes != _RING_BYTES_DEFAULT
            or o.mode != 0o600 or o.max_map != _MAX_MAP_DEFAULT):
        bad("ferry_chan_opts")
    buf = (ctypes.c_char * 4096)()
    lib.ferry_policy_init_sized(buf, 4096)
    p = Policy.from_buffer_copy(buf[:ctypes.sizeof(Policy)])
    if p.mode != 0o600 or p.gid != 0xFFFFFFFF:
        bad("ferry_policy")
    buf = (ctypes.c_char * 4096)()
    lib.ferry_mailbox_opts_init_sized(buf, 4096)
    m = MailboxOpts.from_buffer_copy(buf[:ctypes.sizeof(MailboxOpts)])
    if m.capacity != 64 or m.max_msg != 4096:
        bad("ferry_mailbox_opts")
    buf = (ctypes.c_char * 4096)()
    lib.ferry_bcast_opts_init_sized(buf, 4096)
    bo = BcastOpts.from_buffer_copy(buf[:ctypes.sizeof(BcastOpts)])
    if bo.size != 4096 or bo.slots != 64 or bo.max_subs != 32 or bo.max_msg != 4096:
        bad("ferry_bcast_opts")
    # relay_for and relay_uid default to zero, which a default cannot place: a pair made
    # with an invalid relay_for (a space) must be -EINVAL, i.e. the library reads the
    # pointer where we put it (elsewhere it would read NULL and make the pair; a library
    # whose struct ends before it says -E2BIG). relay_uid is the next member, the last.
    probe = ChanOpts()
    lib.ferry_chan_opts_init_sized(ctypes.byref(probe), ctypes.sizeof(probe))
    probe.relay_for = b" "
    pa, pb = c_void_p(), c_void_p()
    rc = lib.ferry_pair(ctypes.byref(probe), ctypes.byref(pa), ctypes.byref(pb))
    if rc == 0:
        lib.ferry_chan_close(pa)
        lib.ferry_chan_close(pb)
    if rc != -22:  # -EINVAL
        bad("ferry_chan_opts.relay_for: a pair with an invalid one gave %d" % rc)
    _check_region_tls(lib, bad)
    _check_counters(lib, bad)
    # Counters: ferry_chan_stats writes min(size, its sizeof) and says how much.
    a, b = c_void_p(), c_void_p()
    opts = ChanOpts()
    lib.ferry_chan_opts_init_sized(ctypes.byref(opts), ctypes.sizeof(opts))
    opts.ring_bytes = 4096
    opts.max_msg = 0
    rc = lib.ferry_pair(ctypes.byref(opts), ctypes.byref(a), ctypes.byref(b))
    if rc < 0:
        return  # cannot make a pair here (limits): the options checks above stand
    try:
        st = (ctypes.c_char * 4096)()
        ctypes.memmove(st, ctypes.byref(c_size_t(4096)), ctypes.sizeof(c_size_t))
        rc = lib.ferry_chan_stats(a, st)
        got = c_size_t.from_buffer_copy(st[:ctypes.sizeof(c_size_t)]).value
        if rc < 0 or got < ctypes.sizeof(ChanCounters):
            bad("ferry_chan_counters: the library's is %d bytes, ours %d"
                % (got, ctypes.sizeof(ChanCounters)))
    finally:
        lib.ferry_chan_close(a)
        lib.ferry_chan_close(b)


def _check_region_tls(lib, bad):
    """ferry_region_opts and ferry_tls_opts, as the options above: the library fills its
    defaults (region: mode 0600, flags 0, path NULL; tls: all zero) into a big buffer
    prefilled with a guard byte, which must land where we declare them, and its size
    field must read back the size we gave."""
    for cls, init, ok in (
            (RegionOpts, lib.ferry_region_opts_init_sized,
             lambda o: o.flags == 0 and o.mode == 0o600 and o.path is None),
            (TlsOpts, lib.ferry_tls_opts_init_sized,
             lambda o: (o.client_cert == 0 and o.flags == 0 and o.handshake_timeout_ns == 0
                        and o.cert is None and o.host is None))):
        buf = (ctypes.c_char * 4096)()
        ctypes.memset(buf, 0xA5, 4096)
        init(buf, 4096)
        o = cls.from_buffer_copy(buf[:ctypes.sizeof(cls)])
        if o.size != 4096 or not ok(o):
            bad(cls.__name__)


def _check_counters(lib, bad):
    """ferry_bcast_stats writes min(size, its sizeof) and says how much: the library's
    ferry_bcast_counters must be at least ours, and hold what the object was made with
    where we declare it."""
    o = BcastOpts()
    lib.ferry_bcast_opts_init_sized(ctypes.byref(o), ctypes.sizeof(o))
    o.slots, o.max_subs, o.max_msg = 2, 3, 5
    b = c_void_p()
    if lib.ferry_bcast_create(ctypes.byref(o), ctypes.byref(b)) < 0:
        return  # cannot make one here (limits): the options check stands
    try:
        st = (ctypes.c_char * 4096)()
        ctypes.memmove(st, ctypes.byref(c_size_t(4096)), ctypes.sizeof(c_size_t))
        rc = lib.ferry_bcast_stats(b, st)
        c = BcastCounters.from_buffer_copy(st[:ctypes.sizeof(BcastCounters)])
        if rc < 0 or c.size < ctypes.sizeof(BcastCounters):
            bad("ferry_bcast_counters: the library's is %d bytes, ours %d"
                % (c.size, ctypes.sizeof(BcastCounters)))
        if c.slots != 2 or c.max_subs != 3 or c.max_msg != 5:
            bad("ferry_bcast_counters")
    finally:
        lib.ferry_bcast_close(b)


lib, path = _load()
