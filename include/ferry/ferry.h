// SPDX-License-Identifier: MIT
/*
 * ferry.h — the public API of libferry: fast, secure inter-process communication.
 *
 * Rules that hold for every function here (docs/api.md has them in full, with the
 * checklist for adding an object):
 *  - Names: ferry_<object>_<verb> (ferry_sem_wait); accessors of one value
 *    ferry_<object>_<property> (ferry_chan_max_msg); types ferry_<thing>; options
 *    ferry_<object>_opts, filled by ferry_<object>_opts_init() before use (NULL: the
 *    defaults). The channel's message calls (ferry_send, ...) and the naming service's
 *    (ferry_register, ...) are bare verbs.
 *  - One suffix, one meaning: ferry_X_fd is the object's own descriptor, to pass to
 *    another process (ferry_X_adopt turns it back into a handle); ferry_X_poll_fd is a
 *    descriptor to poll for readiness. Both are owned by the object, except where the
 *    function makes the descriptor for the caller (ferry_pair_fd, ferry_pipe_pair_fd,
 *    ferry_signal_poll_fd, and the read-only capabilities ferry_region_fd_readonly and
 *    ferry_state_fd_readonly).
 *  - Counters: ferry_X_stats() copies them into a ferry_X_counters.
 *  - Sized structs: options (ferry_X_opts, ferry_policy) and counters (ferry_X_counters)
 *    start with `size_t size`, the sizeof of the struct as the caller was compiled, so
 *    that fields can be added at their end without breaking compiled callers. Prepare
 *    each with its ferry_X_init(&x) before use: an inline function of this header that
 *    records sizeof(x) in x.size (options: and fills the defaults, through the library's
 *    ferry_X_opts_init_sized / ferry_policy_init_sized, which bindings that cannot use
 *    the inline call with their own sizeof). A copy of a prepared struct is prepared. A
 *    function that takes options reads min(size, its own sizeof) bytes: fields past an
 *    older caller's size take their defaults; a newer caller's struct is accepted when
 *    every byte past the library's struct is zero (a field added later means, when zero,
 *    what the versions before it did), else -E2BIG (the caller asks for something this
 *    library cannot do); a size of 0 (a struct never prepared), below the first
 *    version's or above 4096 is -EINVAL. A ferry_X_stats writes min(size, its own
 *    sizeof) bytes and sets size to that (a field lies within size only if it was
 *    filled), -EINVAL for a size as above. Records that the library fills
 *    (ferry_name_info, ferry_watch_event, ferry_rpc_request, ferry_bcast_sub_info) have
 *    reserved room it zeroes instead; ferry_msg and ferry_cred are fixed (more comes as
 *    new functions).
 *    docs/api.md has the rule in full.
 *  - Lifetimes: shared objects are made by ferry_X_create, reached by ferry_X_adopt (a
 *    descriptor) or ferry_X_open (a name), released by ferry_X_close. Every handle type
 *    ferry_X has one release function: ferry_X_close, or ferry_X_unref where the handle is
 *    reference-counted within a process (ferry_X_ref takes another reference). Releasing
 *    NULL is a no-op.
 *  - Errors: a function returns 0 (or a count) on success and a negative errno value on
 *    failure. errno is never the channel of an error. ferry_strerror() names every code.
 *      -ETIMEDOUT  the deadline passed          -EAGAIN    FERRY_NOW and not ready
 *      -EPIPE      the peer is gone             -EMSGSIZE  a message is too large
 *      -EBADMSG    corrupt frame or ring (the channel is then closed for good)
 *      -EINVAL     bad argument                 -ENOBUFS   an unbounded channel hit its memory cap
 *      -EOPNOTSUPP not on this transport        -EBUSY     a loan or peek is already outstanding
 *  - Timeouts: every blocking call takes `int64_t timeout_ns`: FERRY_FOREVER (-1) waits
 *    forever, FERRY_NOW (0) returns at once, a positive value waits at most that long. Any
 *    other negative value is -EINVAL, returned at once by every call that takes a
 *    timeout_ns, before it does anything (nothing sent, taken, locked or registered). The
 *    bound is a deadline on CLOCK_MONOTONIC taken when the call starts; a signal (EINTR)
 *    neither shortens nor lengthens it.
 *  - Handles are opaque. A handle's release (above) frees everything it owns and never
 *    blocks for long. Each doc comment says who owns a handle, buffer or fd on success
 *    and on failure.
 *  - Threads: one channel end may be used by one sending thread and one receiving thread at
 *    the same time (send/loan/commit on one side, recv/peek/release on the other). Anything
 *    more needs the caller's own lock; many-to-many comes with mailboxes.
 *  - Every file descriptor ferry creates has FD_CLOEXEC set, except the one fd that
 *    ferry_pair_fd() makes for a child to inherit across exec.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, for the ferry_X_init inlines */
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FERRY_API marks the public API: libferry is built with hidden visibility, and only
 * what carries this mark (and matches the linker version script) is exported. */
#ifndef FERRY_API
#if defined(__GNUC__)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif
#endif

#define FERRY_VERSION_MAJOR 0
#define FERRY_VERSION_MINOR 3

/* Timeouts. */
#define FERRY_FOREVER ((int64_t)-1)
#define FERRY_NOW     ((int64_t)0)

/* Capacity (messages queued per direction). 0 is a rendezvous: a send returns only once
 * the receiver has taken the message. N > 0 bounds the queue. FERRY_CAP_RING (the default)
 * queues as many as fit in the ring. FERRY_UNBOUNDED never blocks a send: the ring grows. */
#define FERRY_UNBOUNDED UINT32_MAX
#define FERRY_CAP_RING  (UINT32_MAX - 1)

/* At most this many file descriptors ride on one message. */
#define FERRY_MAX_FDS 16
/* The default of ferry_chan_opts.max_skipped_fds. */
#define FERRY_SKIPPED_FDS_DEFAULT 64u
/* The default of ferry_chan_opts.max_map (shm adopters). */
#define FERRY_MAX_MAP_DEFAULT ((size_t)512 << 20)
/* The largest max_msg a channel may be configured with (1 GiB). */
#define FERRY_MAX_MSG_LIMIT ((size_t)1 << 30)

/* Channel flags (ferry_chan_opts.flags). */
#define FERRY_CHECKSUM (1u << 0) /* every message carries a crc32c, checked on receipt */
#define FERRY_NO_SPIN  (1u << 1) /* a waiting call sleeps at once instead of spinning first */
#define FERRY_PERSIST  (1u << 2) /* posixmq, sysvmq: the queue outlives its creator's close */
/* shm, a local choice of each end: ferry_peek copies the message into memory of this end
 * and checks the crc there (see ferry_peek). No other transport peeks into shared memory,
 * so elsewhere it changes nothing. */
#define FERRY_PEEK_PRIVATE (1u << 3)
/* shm and unix (ferry_listen, ferry_register, ferry_pair), a choice of the creating end: it
 * takes no fds. The handshake tells the other end, whose ferry_sendmsg with nfds > 0 is
 * then -EOPNOTSUPP, nothing sent, the channel usable on. ferry-bridge sets it on its
 * proxies of names on other hosts (fds cannot cross hosts). The creator's own sends with
 * fds still go. A peer whose libferry predates the flag refuses that handshake (-EBADMSG).
 * unix, the joining end (ferry_connect, ferry_chan_open): it takes no fds either, said in
 * its handshake reply in a field older libferry ignores (an older creator is not told,
 * and its sends with fds still arrive: ferry-bridge then closes the relay). A creator
 * waits for that reply before its first send with fds (within the send's deadline;
 * FERRY_NOW: -EAGAIN while it has not come), then -EOPNOTSUPP as above.
 * Other transports ignore it (fds never ride there). */
#define FERRY_NO_FDS (1u << 4)
/* A creating end (unix: ferry_listen, ferry_register, ferry_serve) believes the remote
 * identity a joining end names in its handshake (ferry_chan_opts.relay_for) when, and only
 * when, that joiner's kernel-stamped uid is ferry_chan_opts.relay_uid: a relay such as
 * ferry-bridge, which connects for users on other hosts. ferry_chan_peer_remote then
 * tells the identity. Without the flag, or from any other uid, a named identity is
 * ignored (the peer is a plain local peer). Other transports ignore it. */
#define FERRY_TRUST_RELAY (1u << 5)
/* The longest remote identity (bytes, without the NUL) ferry_chan_opts.relay_for may
 * name: 1..127 printable ASCII characters other than space (0x21..0x7e). */
#define FERRY_REMOTE_ID_MAX 127

typedef struct ferry_chan ferry_chan;
typedef struct ferry_listener ferry_listener;
typedef struct ferry_tls_opts ferry_tls_opts; /* tls:// (below, with ferry_chan_peer_cert) */

/*
 * Channel options. Always start from ferry_chan_opts_init(). The side that creates the
 * channel (ferry_pair*, ferry_listen) decides the shape of the channel: capacity,
 * ring_bytes, max_msg, mem_cap, FERRY_CHECKSUM and (shm, unix) FERRY_NO_FDS; the other
 * side takes them from the handshake and uses only its local choices (spin_ns,
 * FERRY_NO_SPIN, max_skipped_fds; unix also FERRY_NO_FDS and relay_for, said in its reply).
 * max_skipped_fds (each end's own, never negotiated; 0 means the default): once the
 * messages this end holds because its typed receives passed over them carry that many
 * fds, it takes no more messages from the transport, so the sender is held back as by a
 * full channel (its sends wait, -EAGAIN, -ETIMEDOUT). A receive that matches a held
 * message, or an untyped one, still proceeds and frees the budget; a typed receive that
 * cannot waits until its deadline (-EAGAIN for FERRY_NOW, -ETIMEDOUT) or until the peer
 * is gone (closed or died; also with FERRY_FOREVER): then -EPIPE, as soon as this end
 * sees the peer gone (as a blocked receive would), without taking in more of what the
 * peer sent, while untyped receives still drain all of it, in order, before their
 * -EPIPE. (tcp: the peer's end of stream arrives behind what it sent; while more of that
 * is on its way than the kernel's buffers here take, the end cannot arrive, so such a
 * receive waits for its deadline — give it one.) Nothing is dropped. So a peer cannot fill this
 * end's fd table through messages it skips: at most max_skipped_fds + FERRY_MAX_FDS - 1 fds are
 * held. One rule for every transport: where fds ride (shm, unix) as above; unix, tcp, fifo and pipe
 * hold back the same way at their bound of 8 MiB of skipped messages. On shm the budget applies
 * only to messages carrying fds, and the local choices also include FERRY_PEEK_PRIVATE and max_map.
 */
typedef struct ferry_chan_opts {
    size_t size;              /* sizeof(ferry_chan_opts) of the caller: ferry_chan_opts_init */
    uint32_t capacity;        /* 0, N, FERRY_CAP_RING (default) or FERRY_UNBOUNDED */
    uint32_t flags;           /* FERRY_CHECKSUM | FERRY_NO_SPIN | FERRY_NO_FDS ... */
    size_t ring_bytes;        /* ring size per direction, a power of two >= 4096; default 256 KiB.
                                 0 = derive from max_msg */
    size_t max_msg;           /* largest message; default and most ring_bytes / 2 - 128;
                                 at most FERRY_MAX_MSG_LIMIT */
    size_t mem_cap;           /* FERRY_UNBOUNDED only: largest ring it may grow to; default 64 MiB.
                                 All live rings of a direction together stay under 2 * mem_cap. */
    int64_t spin_ns;          /* how long a waiting call may spin before it sleeps; default 50 us.
                                 The spin adapts downwards when it does not pay off, down to
                                 none (more processes than CPUs; a probe now and then brings
                                 it back), and ends early while the peer sleeps (shm). */
    unsigned mode;            /* ferry_listen: permission bits of the socket file; default 0600 */
    uint32_t max_skipped_fds; /* fds a receiving end keeps in messages its typed receives passed
                                 over; default FERRY_SKIPPED_FDS_DEFAULT (64) */
    size_t max_map;           /* adopting end (shm): the most it agrees to map for one channel, all
                                 rings of both directions including growth, plus the private heap
                                 of its skip queue; default FERRY_MAX_MAP_DEFAULT (512 MiB), 0 = the
                                 default. A creator's shape beyond it fails the handshake: -E2BIG */

    /* tls:// only: certificates and checks (ferry_tls_opts, below), read during ferry_listen /
     * ferry_chan_open only; NULL: from the environment (FERRY_TLS_CERT, FERRY_TLS_KEY,
     * FERRY_TLS_CA). */
    const ferry_tls_opts *tls;

    /* Relayed identities (docs/security.md, "Relays"), unix only (elsewhere ignored):
     * relay_for, a joining end (ferry_connect, ferry_chan_open): the remote user this end
     *   connects for (a relay's own check decided who that is), said in the handshake when
     *   the creator's libferry reads it (older ones are told nothing); NULL: none. At most
     *   FERRY_REMOTE_ID_MAX characters 0x21..0x7e, else -EINVAL. Read during the call only.
     * relay_uid, a creating end with FERRY_TRUST_RELAY: the one uid whose joiners are
     *   believed (0 is root: only when given with the flag). */
    const char *relay_for;
    uid_t relay_uid;
} ferry_chan_opts;

/* The library's half of ferry_chan_opts_init, for bindings that cannot use the inline:
 * zero size bytes at o, fill the defaults of the fields within them and set o->size =
 * size (the caller's sizeof(ferry_chan_opts)). o NULL is a no-op. */
FERRY_API void ferry_chan_opts_init_sized(ferry_chan_opts *o, size_t size);

/* Fill *o with the defaults and record this program's sizeof(*o) ("Sized structs").
 * Never fails. */
static inline void ferry_chan_opts_init(ferry_chan_opts *o)
{
    ferry_chan_opts_init_sized(o, sizeof *o);
}

/*
 * A message. On send, the library reads type, data[0..len) and fds[0..nfds) and keeps
 * nothing: the caller still owns data and its fds (the peer gets duplicates). On receive,
 * the caller supplies data and cap; the library sets type, len and fds/nfds, and the
 * caller owns the received fds (FD_CLOEXEC set) and must close them.
 * Types are >= 0; a negative type is -EINVAL on send.
 */
typedef struct ferry_msg {
    int64_t type;
    void *data;
    size_t len; /* send: bytes to send; receive: bytes received (or needed, on -EMSGSIZE) */
    size_t cap; /* receive: size of data */
    uint32_t nfds;
    int fds[FERRY_MAX_FDS];
} ferry_msg;

/* Counters of one channel end. Exact for the calling end; read at any time from any
 * thread (each counter is individually consistent). Prepare with
 * ferry_chan_counters_init ("Sized structs"). */
typedef struct ferry_chan_counters {
    size_t size;                    /* set by ferry_chan_counters_init; ferry_chan_stats sets
                                       it to the bytes it wrote */
    uint64_t sent_msgs, sent_bytes; /* messages committed to the peer */
    uint64_t recv_msgs, recv_bytes; /* messages taken by this end */
    uint64_t send_waits;            /* times a send/loan/commit slept in the kernel */
    uint64_t recv_waits;            /* times a recv/peek slept in the kernel */
    uint64_t wakeups;               /* wake-up system calls this end made for its peer */
    uint64_t drops;                 /* messages sent but never delivered (a rendezvous send
                                       that timed out and was withdrawn) */
    uint64_t grows;                 /* FERRY_UNBOUNDED: rings added by this end's sends */
} ferry_chan_counters;

/* Zero *st and record this program's sizeof(*st) in st->size. Never fails. */
static inline void ferry_chan_counters_init(ferry_chan_counters *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
}

/* ---------------------------------------------------------------- errors */

/* A short, static, human-readable name for a value returned by ferry (negative errno)
 * or a positive errno. Never NULL. Thread-safe. */
FERRY_API const char *ferry_strerror(int err);

/* ---------------------------------------------------------------- making channels */

/*
 * ferry_pair — make both ends of a shared-memory channel in this process, typically
 * before fork(): the parent keeps one end and the child the other (close the one you do
 * not use in each process). opts may be NULL for the defaults.
 * On success *a and *b are owned by the caller. On failure nothing is left behind.
 * Errors: -EINVAL (options), -ENOMEM, -EMFILE/-ENFILE.
 */
FERRY_API int ferry_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b);

/*
 * ferry_pair_fd — like ferry_pair, but the second end is handed out as one file
 * descriptor (FD_CLOEXEC cleared) for a child to inherit across exec; the child turns it
 * into a channel with ferry_chan_adopt(). The caller owns *a and *child_fd; it closes
 * *child_fd after fork. Errors as ferry_pair.
 */
FERRY_API int ferry_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int *child_fd);

/*
 * ferry_chan_adopt — turn a descriptor made by ferry_pair_fd() (inherited across exec)
 * into a channel end. On success the channel owns fd; on failure fd is closed.
 * opts (may be NULL) supplies only local choices (spin_ns, FERRY_NO_SPIN,
 * FERRY_PEEK_PRIVATE, max_skipped_fds, max_map).
 * Errors: -EBADMSG (not a ferry descriptor, or a refused segment), -E2BIG (the creator's
 * shape needs more than opts->max_map: nothing was mapped), -EBADF, -ENOMEM.
 */
FERRY_API int ferry_chan_adopt(int fd, const ferry_chan_opts *opts, ferry_chan **out);

/*
 * ferry_listen — listen at a URL. The schemes (docs/transports.md has what each can do):
 *   "shm:///path" or "shm://@name"  peers meet at a Unix socket; data flows through
 *                                   shared memory
 *   "unix:///path", "unix://@name"  SOCK_SEQPACKET (fds, credentials)
 *   "tcp://host:port", "tcp://[v6]:port"   (port 0: the kernel picks a free one; see
 *                                   ferry_listener_url)
 *   "tls://host:port", "tls://[v6]:port"   tcp inside TLS 1.3 (see "tls://" below:
 *                                   opts->tls, the handshake's errors)
 *   "fifo:///path"                  two FIFOs, path.c2s and path.s2c; one client
 *   "posixmq:///name"               two POSIX queues, /name.c2s and /name.s2c; one peer
 *   "sysvmq://KEY", "sysvmq://"     System V queues (KEY decimal or 0x hex; or private)
 * The scheme is case-insensitive (RFC 3986): "SHM://" and "Unix://" work too.
 * A socket file or FIFO gets exactly opts->mode (default 0600; never wider, not even for
 * a moment); a sysvmq door queue gets opts->mode, its back queue opts->mode without group
 * and other write, plus owner read and write (only its owner writes there). The listener decides
 * the channel's shape (capacity, max_msg, checksum). The caller owns *out; ferry_listener_close()
 * removes the names it made (queues: see FERRY_PERSIST). Errors: -EINVAL (bad URL or options),
 * -EPROTONOSUPPORT (unknown scheme), -EOPNOTSUPP (a capacity mode the transport lacks),
 * -EADDRINUSE, -ENAMETOOLONG, -EACCES, and other errors of the kernel calls. Names on a shared
 * filesystem: the mode is set without following a symlink, so a name swapped for something that is
 * not this user's socket file or FIFO is -EACCES. A stale socket file (nobody listens) is replaced;
 * of listeners starting at once on one, exactly one wins (-EADDRINUSE for the others), and a live
 * listener's file is never removed.
 */
FERRY_API int ferry_listen(const char *url, const ferry_chan_opts *opts, ferry_listener **out);

/*
 * ferry_accept — wait for the next peer and return its channel (owned by the caller).
 * Errors: -ETIMEDOUT, -EAGAIN (FERRY_NOW), -ENOMEM, -EMFILE; tls:// also the handshake's
 * errors for a peer that failed it ("tls://" below), after which the listener accepts on.
 */
FERRY_API int ferry_accept(ferry_listener *l, ferry_chan **out, int64_t timeout_ns);

/* A descriptor readable while a peer waits to be accepted. Owned by the listener. */
FERRY_API int ferry_listener_poll_fd(const ferry_listener *l);

/*
 * ferry_listener_url — the URL a peer passes to ferry_chan_open to reach l: written,
 * NUL-terminated, into buf (the caller's, cap bytes). Returns its length (without the
 * NUL). By scheme:
 *   "tcp://...", "tls://..."   the address and port the socket is bound to, numeric (getsockname):
 *                 after ferry_listen("tcp://127.0.0.1:0") the port the kernel picked,
 *                 e.g. "tcp://127.0.0.1:40123", "tcp://[::1]:40123". A wildcard address
 *                 (0.0.0.0, [::]) stays one: it reaches l from this machine only.
 *   "sysvmq://"   (IPC_PRIVATE) "sysvmq://#MSQID", the door queue's id (as `ipcs -q`
 *                 shows it), which any process the queue's mode lets in can open;
 *                 "sysvmq://KEY" as given.
 *   other schemes the URL as given to ferry_listen.
 * Errors: -EINVAL (l or buf NULL), -ENAMETOOLONG (cap too small: buf is left as it was),
 * -EOPNOTSUPP (a listener not made by ferry_listen: ferry_register's).
 */
FERRY_API ssize_t ferry_listener_url(const ferry_listener *l, char *buf, size_t cap);

/* Stop listening, unlink the socket file and free the listener. NULL is a no-op. */
FERRY_API void ferry_listener_close(ferry_listener *l);

/*
 * ferry_chan_open — connect to a listener at a URL (the schemes of ferry_listen, and
 * "pipe://R,W" for the ends ferry_pipe_pair_fd handed to an exec'd child) and wait for
 * its handshake. opts (may be NULL) supplies only local choices. The caller owns *out.
 * Errors: -ENOENT / -ECONNREFUSED (nobody listens), -ETIMEDOUT, -EAGAIN, -EBADMSG (a bad
 * handshake or a refused segment), -E2BIG (shm: the listener's shape needs more memory
 * than opts->max_map lets this end map), -EINVAL, -EPROTONOSUPPORT, -EACCES (fifo: a
 * path that is not a FIFO owned by the caller's euid or root, or a symlink); tls:// also
 * the handshake's errors ("tls://" below: -EKEYREJECTED, -EKEYEXPIRED, -EREMCHG, -EACCES,
 * -EPROTO).
 */
FERRY_API int ferry_chan_open(const char *url, const ferry_chan_opts *opts, ferry_chan **out,
                              int64_t timeout_ns);

/* Close a channel end: the peer sees -EPIPE once it has drained what was sent. Frees
 * everything, including fds of received-but-untaken messages. NULL is a no-op. Must not
 * race with other calls on the same end. A close never destroys what this end sent,
 * also when messages of the peer are still unread here (tcp: what the peer sends after
 * the close may make the kernel reset the connection; sysvmq: a listener's close with
 * an opener attached leaves the queues to the opener, whose close removes them;
 * docs/transports.md). A process killed without closing (SIGKILL, a crash) leaves what
 * it sent to be drained on every transport, with one exception that ferry cannot avoid:
 * on tcp, if the dead end had unread data, the kernel answers its close with a reset and
 * drops what it had not transmitted yet, though its sends had returned 0 — the peer then
 * gets a whole, gap-free prefix of the stream and -EPIPE. */
FERRY_API void ferry_chan_close(ferry_chan *ch);

/*
 * ferry_pipe_pair — both ends of a channel over two anonymous pipes, typically made
 * before fork (close the end you do not use in each process). Messages carry types (in
 * the ferry frame) but no fds (-EOPNOTSUPP); capacity is the kernel's pipe buffer, so
 * opts->capacity must be FERRY_CAP_RING (else -EOPNOTSUPP); max_msg defaults to 1 MiB.
 * On success the caller owns both ends. Errors: -EINVAL, -EOPNOTSUPP, -EMFILE, -ENOMEM.
 */
FERRY_API int ferry_pipe_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b);

/*
 * ferry_pipe_pair_fd — like ferry_pipe_pair, but the second end is handed out as two
 * descriptors (read end, write end; FD_CLOEXEC cleared) for a child to inherit across
 * exec; the child joins with ferry_chan_open("pipe://R,W", ...). The caller owns *a and
 * both child_fds, and closes the latter after fork.
 */
FERRY_API int ferry_pipe_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int child_fds[2]);

/* ---------------------------------------------------------------- messages */

/*
 * ferry_send — copy len bytes as one message of type 0. The caller keeps buf.
 * Blocks while the channel is full (capacity or ring bytes); with capacity 0 it returns
 * only once the receiver has taken the message (on timeout the message is withdrawn and
 * never delivered; on shm its fds never left this process, so none stays open anywhere;
 * they travel once the receiver has claimed it, and a receive whose deadline passes
 * before they arrive returns -ETIMEDOUT / -EAGAIN and takes that message next time).
 * A peer that died is noticed: on shm a call waiting on the ring returns -EPIPE at once
 * (woken by the process's link watcher thread, docs/shm-channel.md; within 10 ms where
 * none could be started; an armed ferry_chan_poll_fd polls readable at once), on the
 * other transports when the kernel reports the hang-up.
 * After a send's -EPIPE every send is -EPIPE, while receives still return everything the
 * peer sent before it went, then -EPIPE.
 * Errors: -EMSGSIZE (len > max_msg; nothing sent), -ETIMEDOUT, -EAGAIN, -EPIPE, -EBADMSG,
 * -ENOBUFS (unbounded channel at its memory cap), -EBUSY (a loan is outstanding).
 */
FERRY_API int ferry_send(ferry_chan *ch, const void *buf, size_t len, int64_t timeout_ns);

/*
 * ferry_recv — take the next message (any type) and copy it into buf.
 * Returns its length. If it is longer than cap, -EMSGSIZE and it stays queued.
 * Fds riding on it are closed (use ferry_recvmsg to get them).
 * Errors: -EMSGSIZE, -ETIMEDOUT, -EAGAIN, -EPIPE (peer gone and nothing left), -EBADMSG.
 */
FERRY_API ssize_t ferry_recv(ferry_chan *ch, void *buf, size_t cap, int64_t timeout_ns);

/*
 * ferry_sendmsg — send m->type, m->data[0..m->len) and m->fds[0..m->nfds). The caller
 * keeps its data and fds. Errors as ferry_send, and -EINVAL (type < 0, nfds > 16, a
 * bad fd); -EOPNOTSUPP (nfds > 0 where fds do not ride: tcp, tls, fifo, pipe, posixmq,
 * sysvmq; or a peer that said FERRY_NO_FDS, e.g. a name on another host through
 * ferry-bridge): nothing sent, the channel stays usable.
 */
FERRY_API int ferry_sendmsg(ferry_chan *ch, const ferry_msg *m, int64_t timeout_ns);

/*
 * ferry_recvmsg — take the next message that matches filter, into m->data (m->cap bytes):
 *    filter == 0  the next message;
 *    filter  > 0  the next message of exactly that type;
 *    filter  < 0  the first message of the lowest type <= -filter (System V msgrcv).
 * Messages the filter passes over stay queued, in order. Returns the length and sets
 * m->type, m->len, m->nfds, m->fds (the caller owns those fds).
 * Skipped messages keep their fds: ferry_chan_opts.max_skipped_fds bounds how many this
 * end holds, and how a sender is held back beyond it.
 * On -EMSGSIZE m->len is the size needed and the message stays queued.
 * Errors as ferry_recv, and -EINVAL (filter == INT64_MIN).
 */
FERRY_API ssize_t ferry_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int64_t timeout_ns);

/* ---------------------------------------------------------------- zero copy */

/*
 * ferry_loan — reserve room for a message of up to len bytes in the ring and return a
 * writable pointer to it in *buf (32-byte aligned). Fill it, then ferry_commit(). The
 * pointer is valid until the commit. One loan at a time per end (-EBUSY otherwise).
 * The timeout covers the whole send: it also bounds the wait in ferry_commit on a
 * capacity-0 channel. Errors as ferry_send.
 */
FERRY_API int ferry_loan(ferry_chan *ch, size_t len, void **buf, int64_t timeout_ns);

/*
 * ferry_commit — publish the loaned message with the given type and length (<= the loaned
 * len). On a capacity-0 channel it then waits, within the loan's deadline, until the
 * receiver has taken it; on timeout the message is withdrawn (-ETIMEDOUT / -EAGAIN).
 * Errors: -EINVAL (no loan, len too large, type < 0), -ETIMEDOUT, -EAGAIN, -EPIPE.
 */
FERRY_API int ferry_commit(ferry_chan *ch, int64_t type, size_t len);

/*
 * ferry_peek — find the next message matching filter (rules of ferry_recvmsg) and give a
 * read-only view of it in place: m->data points into shared memory, valid until
 * ferry_release(); m->type, m->len set; fds are handed to the caller in m->fds/m->nfds.
 * m->cap is ignored. The peer cannot take the memory back, but it can still write those
 * bytes: a peeked view is only as trustworthy as the peer. The crc of a FERRY_CHECKSUM
 * channel is checked on the shared bytes at the peek, and a hostile (or buggy) peer can
 * change them after that check, while you read. So validate what you read, and read each
 * byte once (copy what you check, check what you copied). Copy receives (ferry_recv,
 * ferry_recvmsg) are safe: the crc is checked on the private copy they hand out. An end
 * opened with FERRY_PEEK_PRIVATE gets that from ferry_peek too: the message is copied
 * into memory of this end (valid until ferry_release), the crc is checked on the copy,
 * and m->data points to it (one copy, as a receive costs). One peek at a time (-EBUSY).
 * Errors as ferry_recvmsg (never -EMSGSIZE; -ENOMEM: no memory for the private copy,
 * the message stays queued).
 */
FERRY_API int ferry_peek(ferry_chan *ch, int64_t filter, ferry_msg *m, int64_t timeout_ns);

/* ferry_release — give the peeked message's memory back. Errors: -EINVAL (no peek). */
FERRY_API int ferry_release(ferry_chan *ch);

/* ---------------------------------------------------------------- integration */

/*
 * ferry_chan_poll_fd — a descriptor that polls readable (POLLIN / EPOLLIN) while a message is
 * waiting to be received, or once the peer is gone (where the transport can tell: not on
 * posixmq). Level-triggered. Owned by the channel (do not close it); every call returns
 * the same one. The first call arms the notification; until then, and when nobody polls,
 * sends make no system call for it. The first call also makes the descriptors behind it
 * (shm: an epoll and an eventfd; until then a shm end holds one descriptor). On posixmq
 * it must not race with a receive on the same end (call it first, or from the receiving
 * thread). Errors: -EOPNOTSUPP (sysvmq: a System V queue is no descriptor, there is
 * nothing to poll), -EINVAL (ch NULL), -EMFILE / -ENFILE (descriptor limits), -ENOMEM,
 * -ENOSPC (fs.epoll.max_user_watches).
 */
FERRY_API int ferry_chan_poll_fd(ferry_chan *ch);

/* Copy the counters of this end into *st (prepared by ferry_chan_counters_init: "Sized
 * structs"). Errors: -EINVAL (NULL, or st->size 0, too small or above 4096). */
FERRY_API int ferry_chan_stats(const ferry_chan *ch, ferry_chan_counters *st);

/* The maximum message size of this channel (decided at creation). */
FERRY_API size_t ferry_chan_max_msg(const ferry_chan *ch);

/* The peer's identity as the kernel stamped it (SO_PEERCRED when the link was made). */
typedef struct ferry_cred {
    uid_t uid;
    gid_t gid;
    pid_t pid;
} ferry_cred;

/*
 * ferry_chan_peer — the peer's kernel-stamped credentials, on transports that can know
 * them (unix, and shm channels made by ferry_listen/ferry_chan_open). Errors:
 * -EOPNOTSUPP (the transport cannot know: tcp, pipes, fifos, queues, shm pairs), -EINVAL.
 */
FERRY_API int ferry_chan_peer(const ferry_chan *ch, ferry_cred *out);

/*
 * ferry_chan_peer_remote — the remote identity a trusted relay connected for (unix
 * channels a listener with FERRY_TRUST_RELAY accepted): ferry-bridge names the NATS user
 * its export policy admitted. Copies it, NUL-terminated, into buf (cap bytes) and returns
 * its length.
 * The threat model: the identity is the relay's word, believed only because the peer's
 * kernel-stamped uid (SO_PEERCRED, through ferryd for a name) is the relay_uid this end
 * chose, so any process of that uid can name anyone: give it to a dedicated relay uid
 * only. Any other local process naming an identity (in its ferry_chan_opts.relay_for, or
 * forged bytes in its handshake) is a plain local peer here: -ENOENT, as for a peer that
 * named none; ferry_chan_peer still gives its uid. Malformed handshakes are -EBADMSG
 * on the first receive, as any corrupt frame.
 * The joiner's handshake is read at this end's first receive; before it, this call looks
 * without waiting: -EAGAIN while it has not arrived.
 * Errors: -ENOENT (no identity believed: none named, not the trusted uid, no
 * FERRY_TRUST_RELAY, or this end joined), -EAGAIN, -ENAMETOOLONG (cap too small: buf is
 * left as it was), -EPIPE, -EBADMSG, -EOPNOTSUPP (not unix), -EINVAL.
 */
FERRY_API ssize_t ferry_chan_peer_remote(const ferry_chan *ch, char *buf, size_t cap);

/* ---------------------------------------------------------------- tls:// */

/*
 * TLS 1.3 over TCP (docs/transports.md, docs/cluster.md): "tls://host:port",
 * "tls://[v6]:port". The tcp transport's frames inside TLS records, with a crc only when
 * the listener sets FERRY_CHECKSUM (TLS authenticates every byte already); no fds, no
 * kernel credentials; capacity FERRY_CAP_RING only; max_msg as tcp. Present when libferry
 * was built with OpenSSL 3 (CMake FERRY_TLS): without it ferry_listen and ferry_chan_open
 * of a tls:// URL are -EPROTONOSUPPORT. TLS 1.3 only, no session resumption, no 0-RTT;
 * both sides speak ALPN "ferry/1", so a TLS peer of another protocol fails the handshake
 * (-EPROTO). The client always checks the server's certificate: a chain to one of its CAs
 * (ca / ca_pem, else the system's store) and the host name of the URL (or `host`) among
 * its subject alternative names (DNS, or IP for an address). The listener checks client
 * certificates as client_cert says. Linux kernel TLS is used when the kernel has it (the
 * `tls` module) unless FERRY_TLS_NO_KTLS; ferry_chan_peer_cert tells.
 *
 * Options: ferry_chan_opts.tls, read during ferry_listen / ferry_chan_open only (the files
 * and PEM text are loaded then: the caller may free them after the call). A NULL tls takes
 * the defaults from the environment, read with secure_getenv (a set-uid program ignores
 * them): FERRY_TLS_CERT, FERRY_TLS_KEY (PEM files of this end's certificate chain and key)
 * and FERRY_TLS_CA (PEM file of the CAs that may vouch for the peer). A non-NULL tls is
 * used as given, without the environment.
 *
 * Errors of a tls:// ferry_listen: -EINVAL (no certificate or key, one without the other,
 * a file and PEM text for the same item, a key that does not match the certificate, PEM
 * that does not parse, client_cert or flags unknown, client certificates asked for with no
 * CA), -ENOENT / -EACCES (a file that cannot be read), -EFBIG (a file over 1 MiB), and
 * those of tcp. Errors of the handshake (ferry_accept, ferry_chan_open), each its own:
 *   -EKEYREJECTED the peer's certificate is not trusted (no chain to our CAs, a bad
 *                 signature, not a certificate for TLS use)
 *   -EKEYEXPIRED  the peer's certificate (or one of its chain) has expired or is not yet
 *                 valid
 *   -EREMCHG      ferry_chan_open: the server's certificate is valid, but not for the
 *                 host name asked for (the URL's host, or tls->host)
 *   -EACCES       the peer refused us: our certificate is missing (the listener requires
 *                 one), untrusted, or expired in its eyes (ferry_chan_open); a listener
 *                 that requires a certificate got none (ferry_accept)
 *   -EPROTO       the peer does not speak TLS 1.3 with ALPN "ferry/1" (a tcp:// peer, an
 *                 HTTPS server, anything else), or the handshake broke off otherwise
 *   -ETIMEDOUT    the handshake did not finish within handshake_timeout_ns (ferry_chan_open:
 *                 with the listener's first frame, or its own deadline, the earlier)
 *   -EPIPE        the peer closed during the handshake (ferry_accept skips such a peer
 *                 and waits on, as tcp does)
 * ferry_accept returns these for the peer that failed (nothing is left of it) and the
 * listener goes on: accept again. The listener runs up to 64 handshakes side by side, each
 * bounded by handshake_timeout_ns alone and going on across ferry_accept calls (whose
 * timeout bounds only the call): a client that stalls holds one of them, not the others,
 * and ferry_listener_poll_fd polls readable whenever ferry_accept would not wait. After
 * the handshake a record that fails its authentication is -EBADMSG (the channel is closed
 * for good), as a bad frame is. A tcp:// client at a tls:// listener sends nothing until
 * it hears the listener's frame, so the listener's handshake waits for its deadline
 * (-ETIMEDOUT at ferry_accept; the client then -EPIPE); a tls:// client at a tcp://
 * listener gets -EPROTO, the listener's channel -EBADMSG at its first receive.
 */

/* ferry_tls_opts.client_cert (ferry_listen): ask no client certificate (the default); ask
 * one, letting in a client without one and refusing one with a bad one; require one that
 * verifies. */
#define FERRY_TLS_CLIENT_NONE     0u
#define FERRY_TLS_CLIENT_OPTIONAL 1u
#define FERRY_TLS_CLIENT_REQUIRED 2u

#define FERRY_TLS_NO_KTLS (1u << 0) /* ferry_tls_opts.flags: never use kernel TLS */

/* Default of ferry_tls_opts.handshake_timeout_ns (a value of 0 means it): 10 s. */
#define FERRY_TLS_HANDSHAKE_TIMEOUT_DEFAULT ((int64_t)10 * 1000 * 1000 * 1000)

/* TLS options (sized: start with ferry_tls_opts_init). Each of cert, key and ca comes from
 * a PEM file (the path) or PEM text in memory (the _pem field, NUL-terminated), not both.
 * All pointers are the caller's and are read during the call only. */
struct ferry_tls_opts {
    size_t size;                  /* sizeof(ferry_tls_opts) of the caller: ferry_tls_opts_init */
    const char *cert, *cert_pem;  /* this end's certificate, then its chain (a listener needs
                                     one; a client shows one when it has it) */
    const char *key, *key_pem;    /* its private key (unencrypted PEM) */
    const char *ca, *ca_pem;      /* the CAs that may vouch for the peer's certificate; a client
                                     without: the system's store */
    const char *host;             /* ferry_chan_open: the name the server's certificate must
                                     carry; NULL: the URL's host (a DNS name or an address) */
    uint32_t client_cert;         /* ferry_listen: FERRY_TLS_CLIENT_NONE, _OPTIONAL, _REQUIRED */
    uint32_t flags;               /* FERRY_TLS_NO_KTLS */
    int64_t handshake_timeout_ns; /* bound of one handshake, on both sides; 0: 10 s */
};

/* The library's half of ferry_tls_opts_init (bindings that cannot use the inline): zero
 * size bytes at o, fill the defaults within them and set o->size = size. NULL: no-op. */
FERRY_API void ferry_tls_opts_init_sized(ferry_tls_opts *o, size_t size);

/* Fill *o with the defaults (all zero: nothing loaded, no client certificate asked for)
 * and record this program's sizeof(*o). Never fails. */
static inline void ferry_tls_opts_init(ferry_tls_opts *o)
{
    ferry_tls_opts_init_sized(o, sizeof *o);
}

/* ferry_peer_cert.flags */
#define FERRY_PEER_CERT_VERIFIED  (1u << 0) /* the peer showed a certificate, and it verified */
#define FERRY_PEER_CERT_TRUNCATED (1u << 1) /* sans did not hold every name (whole lines kept) */
#define FERRY_PEER_CERT_KTLS_TX   (1u << 2) /* the kernel encrypts what this end sends */
#define FERRY_PEER_CERT_KTLS_RX   (1u << 3) /* the kernel decrypts what this end receives */

/* The peer's identity as its certificate states it (sized: ferry_peer_cert_init). The
 * strings are NUL-terminated; bytes of the certificate's names that are control
 * characters or not printable ASCII are written as '?' in cn and sans (so a name with an
 * embedded NUL or newline never equals a plain one), and subject is RFC 2253 with such
 * bytes escaped. All empty and flags without VERIFIED: the peer showed no certificate (a
 * client at a FERRY_TLS_CLIENT_OPTIONAL listener, or any client of a _NONE one). */
typedef struct ferry_peer_cert {
    size_t size;        /* set by ferry_peer_cert_init; ferry_chan_peer_cert sets it to the
                           bytes it wrote */
    uint32_t flags;     /* FERRY_PEER_CERT_* */
    uint32_t reserved;  /* 0 */
    uint8_t sha256[32]; /* SHA-256 of the certificate (DER): a pin */
    char cn[256];       /* the subject's (last) common name */
    char subject[512];  /* the subject, RFC 2253: "CN=alice,O=Example" */
    char sans[1024];    /* the subject alternative names, one per line, each "DNS:name",
                           "IP:addr", "email:addr" or "URI:uri" */
} ferry_peer_cert;

/* Zero *p and record this program's sizeof(*p) in p->size. Never fails. */
static inline void ferry_peer_cert_init(ferry_peer_cert *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
}

/*
 * ferry_chan_peer_cert — the identity the peer's certificate proved in the TLS handshake
 * (tls:// channels: both ends), so that a server can decide by it, as by ferry_chan_peer
 * on a local transport. Written into *out (prepared by ferry_peer_cert_init: "Sized
 * structs"). Errors: -EOPNOTSUPP (not a tls:// channel), -EINVAL (NULL, or out->size 0,
 * too small or above 4096).
 */
FERRY_API int ferry_chan_peer_cert(const ferry_chan *ch, ferry_peer_cert *out);

/* ---------------------------------------------------------------- the naming service */

/*
 * ferryd, the broker, names servers and introduces clients to them (docs/broker.md). It
 * listens on $FERRY_BROKER, else $XDG_RUNTIME_DIR/ferry/ferryd.sock, else
 * /run/ferry/ferryd.sock. The first call that needs it starts it when none runs (unless
 * FERRY_NO_AUTOSPAWN=1; the program is $FERRY_FERRYD, else the ferryd installed with
 * this library (its prefix's bin/), else "ferryd" on PATH; never a build tree's). These
 * variables are read with secure_getenv: a set-uid caller ignores them, and searches no
 * PATH. Identity is the kernel's (SO_PEERCRED), never a
 * payload's. Names: 1..255 bytes of dot-separated parts, each 1..63 of [A-Za-z0-9_-],
 * e.g. "org.example.echo"; anything else is -EINVAL.
 * Errors common to every call here: -EINVAL, -ENOENT (no such name, or one the caller
 * may not see), -EACCES (policy), -EDQUOT (quota), -ETIMEDOUT/-EAGAIN, -ECONNREFUSED
 * (no broker and none could be started), -EBADMSG (the broker broke the protocol),
 * -EPERM (the process listening at the broker's path runs as a uid the caller does not
 * trust: a broker must run as root, as the caller's euid, or as the uid in
 * $FERRY_BROKER_UID (decimal; anything else there is ignored). Its SO_PEERCRED is checked
 * before anything is sent, and no ferryd is started in its place. Also when the ferryd
 * started for the path refused its directory: one another uid owns or others may write.)
 */

/* Name policy flags. */
#define FERRY_TAKEOVER                                                                             \
    (1u << 0) /* a later ferry_register by the same uid (or root) takes                            \
                 the name over; without it the name is -EEXIST */
/* Signal rights (ferry_kill), all off by default: without one, ferry_kill does only what
 * the caller's own kill(2) could do to the owner. Each lets a class of callers that may
 * see the name signal its owner beyond that. */
#define FERRY_SIGNAL_GROUP   (1u << 1) /* members of the policy's group */
#define FERRY_SIGNAL_ALLOWED (1u << 2) /* the uids and groups in allow_uids / allow_gids */
#define FERRY_SIGNAL_ANYONE  (1u << 3) /* anyone who may see the name */
/* ferry_publish of a plain (not FERRY_MUTEX_FAIR) ferry_mutex: the publisher trusts every
 * uid the policy lets open it not to scribble on the mutex's glibc fields (see
 * ferry_mutex_create). Without it ferryd hands such a mutex to the publisher's uid only. */
#define FERRY_POLICY_TRUSTED_SHARERS (1u << 4)
/* The write right of a published region (FERRY_OBJ_REGION; see "regions and states by
 * name"): besides the uids and groups in write_uids / write_gids, everyone the policy
 * lets open the region (connect) may open it writable. Only for FERRY_OBJ_REGION. */
#define FERRY_WRITE_ANYONE (1u << 5)
/* Keep a published object's name when its publisher dies (ferry_publish only; needs
 * FERRY_TAKEOVER: -EINVAL without it, and on ferry_register, ferry_serve and
 * ferry_inbox_open). The publisher's death (or its ferry_pub_leave) leaves the name an
 * orphan: it keeps its object and policy, opens work as the policy says, it counts against
 * its uid's quotas (names, fds) as before, and ferry_lookup shows pid 0 (uid: the
 * publisher's); watchers hear FERRY_EV_DIED all the same. A process of its uid (or root)
 * takes it over with ferry_publish (any object), and may then ferry_pub_close it: the only
 * way an orphan goes, besides ferryd's exit (a restarted ferryd has none). A ferryd that
 * predates the flag refuses it (-EINVAL: unknown flags are). */
#define FERRY_POLICY_KEEP (1u << 6)

#define FERRY_POLICY_MAX_IDS 16

/*
 * The policy of a name, decided by the server that registers it. `mode` gives rights
 * like a file's, for the owner (its uid), the group (`gid`, or the owner's gid when
 * gid is (gid_t)-1; membership counts supplementary groups) and others: 4 = may see the
 * name (lookup, list, watch), 2 = may connect (implies see). Uids in allow_uids and
 * groups in allow_gids may see and connect whatever the mode says. root may see and
 * connect everything. Default (ferry_policy_init): mode 0600, no allow lists, no flags.
 * For a published region or state, "connect" is opening it read-only; opening a region
 * writable is a third right, granted only explicitly: to the uids in write_uids and the
 * members of the groups in write_gids (who may also see and open it, whatever the mode
 * says), and with FERRY_WRITE_ANYONE to everyone who may connect. root may write every
 * region. Write rights on anything but a FERRY_OBJ_REGION are -EINVAL.
 */
typedef struct ferry_policy {
    size_t size; /* sizeof(ferry_policy) of the caller: ferry_policy_init */
    unsigned mode;
    gid_t gid;
    uint32_t flags; /* FERRY_TAKEOVER, FERRY_SIGNAL_*, FERRY_POLICY_TRUSTED_SHARERS,
                       FERRY_WRITE_ANYONE, FERRY_POLICY_KEEP */
    uint32_t n_uids, n_gids;
    uid_t allow_uids[FERRY_POLICY_MAX_IDS];
    gid_t allow_gids[FERRY_POLICY_MAX_IDS];
    /* Added in 0.3 (after the old sizeof on every ABI; the zeros mean "as before"). */
    uint32_t reserved0; /* must be 0: explicit padding (docs/abi.md) */
    uint32_t n_write_uids, n_write_gids;
    uid_t write_uids[FERRY_POLICY_MAX_IDS]; /* may open a region writable */
    gid_t write_gids[FERRY_POLICY_MAX_IDS];
} ferry_policy;

/* The library's half of ferry_policy_init (as ferry_chan_opts_init_sized). */
FERRY_API void ferry_policy_init_sized(ferry_policy *p, size_t size);

/* Fill *p with the defaults and record this program's sizeof(*p). Never fails. */
static inline void ferry_policy_init(ferry_policy *p)
{
    ferry_policy_init_sized(p, sizeof *p);
}

/*
 * ferry_register — own `name` and serve it: clients that ferry_connect() to it come out
 * of ferry_accept(*out) as channels. policy may be NULL (the defaults); opts (may be
 * NULL) is the shape of every channel made (as for ferry_listen). The system policy
 * (/etc/ferry/policy.conf) says which uids may own which names: -EACCES otherwise.
 * A name owned by another live process is -EEXIST (unless its policy allows a takeover:
 * FERRY_TAKEOVER). If ferryd restarts, the listener registers again by itself the next
 * time it is used (ferry_accept, or its fd polled), backing off while the broker is away;
 * channels already made are not affected. The name is released by
 * ferry_listener_close(), or when this process dies. The caller owns *out.
 * Errors: those above, and -EEXIST.
 */
FERRY_API int ferry_register(const char *name, const ferry_policy *policy,
                             const ferry_chan_opts *opts, ferry_listener **out, int64_t timeout_ns);

/* Kinds of channel ferry_connect makes. */
#define FERRY_KIND_SHM  0 /* shared memory (the default) */
#define FERRY_KIND_UNIX 1 /* a SOCK_SEQPACKET socket pair */

/*
 * ferry_connect — look up `name`, and if the policy lets the caller connect, get a
 * channel to its server: ferryd makes a socket pair and hands one end to each side (a
 * capability: nobody else can open it). The server's ferry_accept() yields the other
 * end, and ferry_chan_peer() on each end gives the other's kernel-stamped uid, gid and
 * pid. kind: FERRY_KIND_SHM or FERRY_KIND_UNIX. The call waits (within timeout_ns) for
 * the server to accept. The caller owns *out.
 * Errors: those above, -E2BIG (FERRY_KIND_SHM: the server's shape needs more memory
 * than opts->max_map lets this client map), -EPIPE (the server died before accepting, or cannot
 * make a channel of that kind with its options: a unix channel has only FERRY_CAP_RING),
 * -EPROTOTYPE (the name is a published object, not a server), -EDQUOT (also: the server
 * is slow, and the introductions this uid asked for that wait for it in ferryd already
 * hold its fair share of the server's queue there).
 */
FERRY_API int ferry_connect(const char *name, int kind, const ferry_chan_opts *opts,
                            ferry_chan **out, int64_t timeout_ns);

/* What ferry_lookup and ferry_list tell about a name. */
typedef struct ferry_name_info {
    char name[256];
    uid_t uid;         /* owner */
    gid_t gid;         /* the policy's group */
    pid_t pid;         /* owner process; 0: an orphan (FERRY_POLICY_KEEP, publisher gone) */
    unsigned mode;     /* the policy's mode */
    uint64_t connects; /* introductions made to this name so far */
    uint32_t kind;     /* 0: a server (ferry_register, ferry_serve, ferry_inbox_open);
                          else the FERRY_OBJ_* kind of a published object (ferry_publish) */
    uint64_t since_ns; /* when the current owner took the name: CLOCK_REALTIME, ns since
                          the epoch (ferryd's clock) */
    /* A published region or state (kind FERRY_OBJ_REGION / FERRY_OBJ_STATE): its size in
     * bytes when published, and the device and inode of its file (a memfd, or the
     * persistent file), for finding who holds it. 0 for other kinds. */
    uint64_t size;
    uint64_t dev, ino;
    uint64_t reserved[5]; /* zeroed by the library: room for later fields, which read 0
                             from a library that does not know them */
} ferry_name_info;

/* ferry_lookup — the owner of `name`. Errors: those above. */
FERRY_API int ferry_lookup(const char *name, ferry_name_info *out, int64_t timeout_ns);

/*
 * ferry_list — the names the caller may see, in name order, starting after `after`
 * (NULL or "" for the first): up to `cap` entries into out. Returns the number written;
 * call again with the last name to go on, until it returns less than cap.
 */
FERRY_API ssize_t ferry_list(const char *after, ferry_name_info *out, size_t cap,
                             int64_t timeout_ns);

typedef struct ferry_watch ferry_watch;

/* Events a watch delivers. */
#define FERRY_EV_OWNED    1 /* the name got an owner */
#define FERRY_EV_CHANGED  2 /* the name was taken over by another process */
#define FERRY_EV_RELEASED 3 /* its owner released the name (listener closed) */
#define FERRY_EV_DIED     4 /* its owner died; the name is free (FERRY_POLICY_KEEP: kept) */

typedef struct ferry_watch_event {
    int kind;              /* FERRY_EV_* */
    uint32_t reserved;     /* zeroed by the library: room for a later field */
    ferry_name_info info;  /* the name and the owner it concerns (the new one for CHANGED) */
    uint64_t reserved2[4]; /* zeroed by the library: room for later fields */
} ferry_watch_event;

/*
 * ferry_watch_open — watch the names matching `pattern` ("org.example.echo", or a prefix
 * ending in '*': "org.example.*", or "*"), among those the caller may see. The caller owns
 * *out (ferry_watch_close). Errors: those above.
 */
FERRY_API int ferry_watch_open(const char *pattern, ferry_watch **out, int64_t timeout_ns);

/* The next event, waiting up to timeout_ns. -EPIPE once the broker is gone (open a new
 * watch: events missed meanwhile are not replayed). */
FERRY_API int ferry_watch_next(ferry_watch *w, ferry_watch_event *ev, int64_t timeout_ns);

/* A descriptor readable while an event waits (level-triggered). Owned by the watch. */
FERRY_API int ferry_watch_poll_fd(const ferry_watch *w);

/* Stop watching. NULL is a no-op. */
FERRY_API void ferry_watch_close(ferry_watch *w);

/* The broker's socket path this process uses (see above) into buf. Returns the length,
 * or -ENAMETOOLONG. */
FERRY_API ssize_t ferry_broker_path(char *buf, size_t cap);

/* ---------------------------------------------------------------- synchronization */

/*
 * Semaphores, robust mutexes, barriers and events between processes. Each object lives in
 * a sealed memfd (never a name in /dev/shm); an event queue's descriptor is a unix socket
 * that carries its memfd and its doorbell (see ferry_event_create). Three ways to share
 * one:
 *  - anonymous, before fork: ferry_X_create(); the handle works in parent and child;
 *  - by descriptor: ferry_X_fd() (owned by the object) sent over a unix channel or
 *    inherited across exec (clear FD_CLOEXEC on a dup), then ferry_X_adopt(fd);
 *  - by name, through ferryd: ferry_publish(name, ferry_X_fd(x), kind, policy) by the
 *    owner, ferry_X_open(name) by others (the policy's connect right; -ENOENT / -EACCES
 *    as for ferry_connect). The name lives as long as the ferry_pub; processes that
 *    opened the object keep it after that.
 * A receiver of a descriptor validates it (seals, size, kind, version) before use:
 * -EBADMSG otherwise. A hostile process that shares an object can break it for the
 * others (it can write the shared words); it cannot make ferry crash or write outside
 * the object — except a plain ferry_mutex (without FERRY_MUTEX_FAIR), whose sharers are
 * trusted (see below). Waits never spin for long: a blocked caller sleeps on a futex (an event
 * taker in poll on the doorbell).
 * Threads: every call may be made from any thread, on the same handle too.
 */

/* Kinds of published object (ferry_publish). */
#define FERRY_OBJ_SEM     1
#define FERRY_OBJ_MUTEX   2
#define FERRY_OBJ_BARRIER 3
#define FERRY_OBJ_EVENT   4
#define FERRY_OBJ_MAILBOX 5 /* a ferry_mailbox (see "mailboxes") */

typedef struct ferry_pub ferry_pub;

/*
 * ferry_publish — give the object behind fd (a ferry_X_fd()) a name in ferryd, with a
 * policy like ferry_register's (may be NULL: the defaults). ferryd keeps a duplicate of
 * fd and hands duplicates to whoever opens the name and may connect. The name is freed
 * by ferry_pub_close or when this process dies (with FERRY_POLICY_KEEP it stays, an
 * orphan: see there; FERRY_TAKEOVER takes over an orphan of the caller's uid, as a live
 * owner's name). The caller keeps fd; owns *out.
 * Errors: as ferry_register (-EEXIST, -EACCES, -EDQUOT, -EINVAL, -ECONNREFUSED), and
 * -EBADMSG (fd is not a ferry object of that kind), -EINVAL (ferryd refuses fd: not a
 * sealed memfd whose header is of that kind, or for FERRY_OBJ_EVENT and
 * FERRY_OBJ_MAILBOX not a genuine carrier: a SOCK_SEQPACKET socket whose queued message
 * has the kind's magic and exactly the object's memfd and the socket's own peer — a
 * connection to ferryd or any other socket is refused), -EPERM (a plain ferry_mutex —
 * not FERRY_MUTEX_FAIR — whose policy lets another uid open it: group or other connect
 * right, an allowed group, an allowed uid other than the caller's; unless the policy has
 * FERRY_POLICY_TRUSTED_SHARERS). Regions and states (FERRY_OBJ_REGION, FERRY_OBJ_STATE:
 * see "regions and states by name"): also -EACCES (a region's read-only descriptor: no
 * write right to pass on), -EPERM (its file is another uid's, or lets group or others
 * write), -EINVAL (write rights in the policy of any other kind; a file that is not on
 * tmpfs or hugetlbfs: ferryd asks nothing of such a file, since on FUSE even an fstat
 * can wait forever — a persistent region on a disk is shared by path or descriptor).
 */
FERRY_API int ferry_publish(const char *name, int fd, int kind, const ferry_policy *policy,
                            ferry_pub **out, int64_t timeout_ns);

/* Unpublish: free the name (objects already opened are not affected) and the handle.
 * NULL is a no-op. */
FERRY_API void ferry_pub_close(ferry_pub *p);

/* Free the handle but not the name: as if this process died (a FERRY_POLICY_KEEP name
 * stays, an orphan; any other is freed). NULL is a no-op. */
FERRY_API void ferry_pub_leave(ferry_pub *p);

/* ---- regions and states by name (docs/region-sharing.md) */

/*
 * A region (ferry_region_create) or a state (ferry_state_create) is published like any
 * other object: ferry_publish(name, ferry_region_fd(r), FERRY_OBJ_REGION, policy, ...) or
 * ferry_publish(name, ferry_state_fd(s), FERRY_OBJ_STATE, ...). Who may open it, and how,
 * is the policy's (ferry_policy above): the connect right (mode bit 2 of the caller's
 * class, the allow lists) opens it read-only, the write right (write_uids, write_gids,
 * FERRY_WRITE_ANYONE; regions only) writable; bit 4 alone lets a caller see the name,
 * and its open is -EACCES. Example: mode 0660 with write_uids {1001}: the owner's uid
 * and the group read, uid 1001 writes, others do not see the name.
 *
 * Read-only is the kernel's, not a promise. ferry_publish sends ferryd the region's
 * read-write descriptor and a read-only one of the same inode (ferry_region_fd_readonly:
 * made by the publisher, which owns the inode, so it works whatever uid ferryd runs as);
 * a state's read-only one alone (its creator is its one writer). ferryd checks them (a
 * genuine region or state of that kind, the same inode, one O_RDWR and one O_RDONLY, an
 * inode owned by the publisher's uid that grants group and others no write) and hands an
 * opener without the write right only the read-only one: its mmap with PROT_WRITE and
 * MAP_SHARED, mprotect to PROT_WRITE, pwrite, ftruncate, F_ADD_SEALS and a reopen of
 * /proc/self/fd/N for writing all fail in the kernel. A volatile region's memfd is mode
 * 0444 (ferry_publish drops the group and other write bits of a memfd made elsewhere); a
 * persistent region's file keeps its own mode, and one that grants group or others write
 * is refused (-EPERM): whoever holds a read-only descriptor could reopen it writable.
 * Against the publisher's own uid (the inode's owner, which may chmod it) and root,
 * read-only is not enforced: give them only what they would have anyway. A persistent
 * region's read-write descriptor goes to the publisher's uid and root only, whatever the
 * policy grants (its holder could truncate the file under every mapper).
 */
/* FERRY_OBJ_REGION and FERRY_OBJ_STATE are defined with the regions, below. */
typedef struct ferry_region ferry_region; /* (again below: a typedef may be repeated) */
typedef struct ferry_state ferry_state;

/*
 * ferry_region_open — open the region published under `name`. prot: FERRY_REGION_READ (a
 * read-only handle: ferryd sends the read-only descriptor; the connect right suffices) or
 * FERRY_REGION_READ | FERRY_REGION_WRITE (writable: the write right). On success the
 * caller owns *out (ferry_region_close); a read-only handle's ferry_region_map with
 * FERRY_REGION_WRITE is -EACCES.
 * Errors: those of the naming service (above: -ENOENT no such name or one the caller may
 * not see, -EACCES the policy denies the caller the connect right, or the write right
 * when prot has FERRY_REGION_WRITE), -EPROTOTYPE (the name is not a region), -EINVAL
 * (prot neither of the two, name invalid, out NULL), -EBADMSG (ferryd sent a descriptor
 * that is not a region, or not of the access asked for; also a persistent region whose
 * file the caller's euid does not own: ferry_region_adopt's rule), -ENOMEM, -EMFILE.
 */
FERRY_API int ferry_region_open(const char *name, uint32_t prot, ferry_region **out,
                                int64_t timeout_ns);

/*
 * ferry_state_open — open the state published under `name`, as a reader (the connect
 * right; ferryd only ever has a state's read-only descriptor). On success the caller
 * owns *out (ferry_state_close). Errors: as ferry_region_open (-EPROTOTYPE: not a state).
 */
FERRY_API int ferry_state_open(const char *name, ferry_state **out, int64_t timeout_ns);

/* ---- counting semaphore */

typedef struct ferry_sem ferry_sem;

/* Undo, like System V SEM_UNDO: units a process took with ferry_sem_wait and has not
 * given back with ferry_sem_post when it dies are returned to the semaphore — lazily: by
 * the next wait that finds none, or a blocked waiter within its sleep slice (at most
 * 160 ms). A table in the object holds up to 1022 processes (-ENOSPC beyond). Processes
 * are told apart by pid and start time (a recycled pid is another process); reclaiming
 * works within one pid namespace (units of a process in another are kept, never wrongly
 * returned). A process killed exactly between the two instructions that take a unit and
 * record it (or record and give back) loses that one unit; killed at any other point —
 * holding, waiting, working — its units come back exactly. */
#define FERRY_SEM_UNDO (1u << 0)

/* A semaphore with initial value (<= INT32_MAX) and flags (FERRY_SEM_UNDO). The caller
 * owns *out. Errors: -EINVAL, -ENOMEM, -EMFILE. */
FERRY_API int ferry_sem_create(uint32_t value, uint32_t flags, ferry_sem **out);
/* On success the semaphore owns fd; on failure fd is closed. -EBADMSG, -ENOMEM, -EINVAL
 * (out is NULL). (The same holds for every ferry_X_adopt below.) */
FERRY_API int ferry_sem_adopt(int fd, ferry_sem **out);
FERRY_API int ferry_sem_open(const char *name, ferry_sem **out, int64_t timeout_ns);
/* The object's descriptor (owned by the semaphore). */
FERRY_API int ferry_sem_fd(const ferry_sem *s);
/* P: take one unit, waiting up to timeout_ns. No system call when a unit is there.
 * Errors: -ETIMEDOUT, -EAGAIN (FERRY_NOW and none), -EBADMSG (corrupted object),
 * -ENOSPC (FERRY_SEM_UNDO: the table of processes is full), -EINVAL (NULL). */
FERRY_API int ferry_sem_wait(ferry_sem *s, int64_t timeout_ns);
/* P without waiting: 0, or -EAGAIN and the errors of ferry_sem_wait. */
FERRY_API int ferry_sem_trywait(ferry_sem *s);
/* V: give one unit back and wake a waiter if there is one. -EOVERFLOW at INT32_MAX,
 * -EBADMSG, -EINVAL. */
FERRY_API int ferry_sem_post(ferry_sem *s);
/* The current value (>= 0), a snapshot; or -EBADMSG. */
FERRY_API int ferry_sem_value(const ferry_sem *s);
/* Callers blocked in ferry_sem_wait now (>= 0), of every process, a snapshot; or -EINVAL
 * (NULL). A hint: a waiter killed while it waited stays counted (with FERRY_SEM_UNDO until
 * a wait reclaims its process's units), and a sharer can write any count: the result is
 * at most 4194304 (the kernel's limit on tasks). */
FERRY_API int ferry_sem_waiters(const ferry_sem *s);
FERRY_API void ferry_sem_close(ferry_sem *s);

/* ---- robust mutex */

typedef struct ferry_mutex ferry_mutex;

/* Fair: the lock is handed over in the order lockers asked for it (FIFO, bounded
 * waiting). Without it, a waker may be overtaken by a newcomer (faster). All sharers of a
 * fair mutex must be in one pid namespace; at most 128 threads queue at once (more wait
 * for a place first); a waiter that dies in the queue delays it by up to one sleep slice
 * (5..160 ms). */
#define FERRY_MUTEX_FAIR (1u << 0)

/*
 * Which mode to share with whom.
 *  - Plain (flags 0): a glibc robust, process-shared, error-checking pthread mutex inside
 *    the object — the fastest, and the kernel frees it at the owner's death or exec at
 *    any instruction. But glibc keeps pointers in it (its robust list) and writes
 *    through them on unlock: a sharer that scribbles on the object can make a locker
 *    write where it chose, or crash. Share a plain mutex only with processes you trust
 *    that far. ferryd therefore hands a plain mutex only to the publisher's uid:
 *    ferry_publish of one whose policy lets another uid open it is -EPERM, and
 *    ferry_mutex_open of one by another uid (root included) is -EPERM — unless the
 *    publisher set FERRY_POLICY_TRUSTED_SHARERS in the policy. The mode is the object's
 *    own word, which its publisher can rewrite at any time; so ferry_mutex_open does not
 *    rely on ferryd's look at it: ferryd also says whether the caller is trusted (its
 *    uid is the publisher's, or the flag is set), and the library makes a plain mutex
 *    only then (-EPERM otherwise), judging the mode by its own single read. A handle
 *    keeps the mode it was made with for good (a later rewrite of the word never turns
 *    it into the other mode). ferry_mutex_adopt makes whichever mode the object says:
 *    adopt only a descriptor whose sender you trust as far as the mode needs.
 *  - FERRY_MUTEX_FAIR: safe with untrusted sharers. The lock is a futex word owned by
 *    {thread id, start time} (nothing in it is a pointer), recovered by a death check:
 *    a holder's death (its thread or process exiting) is noticed by a waiter within one
 *    sleep slice (1..50 ms), which then gets -EOWNERDEAD. A holder that execs keeps it
 *    until it exits. A hostile sharer can still deny the lock (hold it, or write a live
 *    holder into it: -ETIMEDOUT), break it (-ENOTRECOVERABLE), hand a locker -EOWNERDEAD,
 *    -EDEADLK (it wrote the locker's own id) or, at unlock, -EPERM (it rewrote the word),
 *    or let two lockers in at once: protect nothing from it you would not protect from
 *    any writer of shared memory. It cannot make a locker crash, write outside the
 *    object, or wait past its deadline by more than one slice. Waiting: the next in line
 *    spins for its turn (reading only; pause, then sched_yield) while the thread before
 *    it runs, for at most 20 us per lock call whatever the shared words say, then sleeps;
 *    waiters further back sleep at once. Locks are granted in ticket (FIFO) order.
 * create: -EINVAL (unknown flags), -ENOMEM, -EMFILE. adopt: as ferry_sem_adopt.
 * open: those of the naming service, -EPROTOTYPE (not a mutex), -EBADMSG, and -EPERM: a
 * plain mutex and the caller is not trusted with its sharers — refused by ferryd, or by
 * the library when the publisher turned a fair mutex plain after ferryd looked (above).
 */
FERRY_API int ferry_mutex_create(uint32_t flags, ferry_mutex **out);
FERRY_API int ferry_mutex_adopt(int fd, ferry_mutex **out);
FERRY_API int ferry_mutex_open(const char *name, ferry_mutex **out, int64_t timeout_ns);
FERRY_API int ferry_mutex_fd(const ferry_mutex *m);
/*
 * Lock, waiting up to timeout_ns. Returns 0 (locked), or -EOWNERDEAD: the previous owner
 * died holding it; the caller now holds it, must repair the protected state and call
 * ferry_mutex_consistent() before unlocking — unlocking without that makes the mutex
 * unusable for everyone (-ENOTRECOVERABLE from then on). Errors: -ETIMEDOUT, -EAGAIN
 * (FERRY_NOW and held), -ENOTRECOVERABLE, -EDEADLK (this thread holds it already).
 */
FERRY_API int ferry_mutex_lock(ferry_mutex *m, int64_t timeout_ns);
/* Lock without waiting: 0, -EOWNERDEAD, -EBUSY when held, -EDEADLK, -ENOTRECOVERABLE. */
FERRY_API int ferry_mutex_trylock(ferry_mutex *m);
/* Mark the state repaired after -EOWNERDEAD. -EINVAL if not in that state or the caller
 * does not hold the mutex. */
FERRY_API int ferry_mutex_consistent(ferry_mutex *m);
/* Unlock. -EPERM if the calling thread does not hold it (or it is not recoverable). */
FERRY_API int ferry_mutex_unlock(ferry_mutex *m);
/* Close. If the calling thread holds the mutex it is unlocked first (an inconsistent one
 * thereby becomes not recoverable). */
FERRY_API void ferry_mutex_close(ferry_mutex *m);

/* ---- barrier */

typedef struct ferry_barrier ferry_barrier;

/* A barrier for count (>= 1) parties. */
FERRY_API int ferry_barrier_create(uint32_t count, ferry_barrier **out);
FERRY_API int ferry_barrier_adopt(int fd, ferry_barrier **out);
FERRY_API int ferry_barrier_open(const char *name, ferry_barrier **out, int64_t timeout_ns);
FERRY_API int ferry_barrier_fd(const ferry_barrier *b);
/* Wait until count parties have arrived: returns 1 in exactly one of them, 0 in the
 * others; the barrier is then ready for the next round. A party that times out
 * (-ETIMEDOUT, or -EAGAIN for FERRY_NOW) withdraws its arrival — unless the round
 * completed as it gave up: then it belongs to that round and returns 0 or 1.
 * -EBADMSG for a corrupted object. */
FERRY_API int ferry_barrier_wait(ferry_barrier *b, int64_t timeout_ns);
FERRY_API void ferry_barrier_close(ferry_barrier *b);

/* ---- events: reliable, counted notification with a 64-bit payload */

typedef struct ferry_event ferry_event;

/* ferry_event_post flag: merge with an event of the same payload not yet taken (like a
 * standard signal); without it every event is delivered (like a real-time signal). */
#define FERRY_EVENT_COALESCE (1u << 0)

/*
 * An event queue that others post to: capacity events (>= 1, 0 = default 1024) are kept
 * until taken; a post to a full queue waits (none is ever lost). Any holder may post and
 * take. Anonymous: shared like the other objects (ferry_event_fd / ferry_event_adopt, or
 * ferry_publish it with FERRY_OBJ_EVENT: a process or a group of processes gets named
 * events that way). The descriptor is a SOCK_SEQPACKET socket holding one message that
 * carries the queue's memfd and the doorbell socket's other end (read with MSG_PEEK by
 * every adopter); a live queue therefore keeps 2 descriptors in flight, which the kernel
 * counts against the creator's RLIMIT_NOFILE. ferry_event_adopt checks the carrier
 * (-EBADMSG): the magic, exactly two descriptors, a sealed memfd holding an event queue,
 * and a doorbell that is the carrier's own peer (asked of the kernel by sock_diag; on a
 * kernel without unix_diag only its type is checked); ferryd checks the same at publish.
 */
FERRY_API int ferry_event_create(uint32_t capacity, ferry_event **out);
FERRY_API int ferry_event_adopt(int fd, ferry_event **out);
/* Open the queue published under name — or, with a pattern "org.x.*", every queue
 * published under a matching name the caller may connect to (a group: a post reaches
 * each). -ENOENT when none. */
FERRY_API int ferry_event_open(const char *name, ferry_event **out, int64_t timeout_ns);
/* The object's descriptor, to pass (owned by the event). -EINVAL for a group. */
FERRY_API int ferry_event_fd(const ferry_event *e);
/* A descriptor that polls readable while an event waits (level-triggered): the doorbell
 * for one queue, an epoll set of them for a group. Posters ring it only while someone
 * may be polling, so it costs nothing when unused. It can wake spuriously for a moment
 * (ferry_event_next then says -EAGAIN). */
FERRY_API int ferry_event_poll_fd(ferry_event *e);
/* Post one event (to every queue of a group, in turn: a post that fails may already have
 * reached some). With FERRY_EVENT_COALESCE two posts made at the very same moment may
 * both be queued (merging is never wrong, it can be missed). Errors: -ETIMEDOUT, -EAGAIN
 * (full). */
FERRY_API int ferry_event_post(ferry_event *e, uint64_t payload, uint32_t flags,
                               int64_t timeout_ns);
/* Take the oldest event. Errors: -ETIMEDOUT, -EAGAIN. */
FERRY_API int ferry_event_next(ferry_event *e, uint64_t *payload, int64_t timeout_ns);
/* Counters of an event queue (a group: summed over its queues), a snapshot. Prepare
 * with ferry_event_counters_init ("Sized structs"). */
typedef struct ferry_event_counters {
    size_t size;     /* set by ferry_event_counters_init; ferry_event_stats sets it to the
                        bytes it wrote */
    uint64_t posted; /* events posted so far */
    uint64_t merged; /* of those, how many were merged into one not yet taken
                        (FERRY_EVENT_COALESCE) */
} ferry_event_counters;

/* Zero *st and record this program's sizeof(*st) in st->size. Never fails. */
static inline void ferry_event_counters_init(ferry_event_counters *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
}

/* Copy the queue's counters into *st (prepared by ferry_event_counters_init). Errors:
 * -EINVAL (NULL, or st->size 0, too small or above 4096). */
FERRY_API int ferry_event_stats(const ferry_event *e, ferry_event_counters *st);
FERRY_API void ferry_event_close(ferry_event *e);

/* ---- signals */

/*
 * ferry_signal_poll_fd — block the signals in mask (bit n-1 for signal n, 1..64) for the
 * calling thread (call it before making threads, so that they inherit the mask) and
 * return a signalfd that polls readable while one is pending; read struct
 * signalfd_siginfo from it (sys/signalfd.h). A descriptor to poll, not to pass (hence
 * _poll_fd); unlike the other _poll_fds it is made for the caller, who owns it
 * (FD_CLOEXEC, O_NONBLOCK) and closes it. Errors: -EINVAL (empty mask, SIGKILL/SIGSTOP, or glibc's
 * reserved 32 and 33), -EMFILE.
 */
FERRY_API int ferry_signal_poll_fd(uint64_t mask);

/*
 * ferry_kill — send signal sig (1..64) to the process that owns name (a ferry_register
 * or ferry_publish name). ferryd never lends its own privilege: the signal is sent when
 * the name's policy grants the caller a signal right (FERRY_SIGNAL_*, or a `signal` rule
 * of the system policy file), or else when the caller may connect to the name and its
 * own kill(2) would be allowed to signal the owner (its real or effective uid is the
 * owner's real or saved uid, or it holds CAP_KILL in ferryd's user namespace; root
 * may). ferryd sends it (by the owner's pidfd, so never to a recycled pid); the receiver
 * sees ferryd as the sender (ssi_pid). Errors: -ENOENT (no such name, or one the caller
 * may not see), -EACCES (the caller may see the name but neither connect nor signal),
 * -EPERM (no signal right, and kill(2)'s rule refuses: what the caller's own kill would
 * say), -EINVAL (sig), -ESRCH (the owner is exiting), and the broker errors.
 */
FERRY_API int ferry_kill(const char *name, int sig, int64_t timeout_ns);

/* ---------------------------------------------------------------- direct communication */

/*
 * Send(P, m) and Receive(Q, m) by name, without managing channels: the library connects
 * on first use (ferry_connect, shared memory) and keeps and reuses the connection.
 *
 * ferry_send_to — send m (as ferry_sendmsg) to the process that owns `name` (a
 * ferry_inbox_open or ferry_register name). The connection is kept per name and process
 * (a fork's child makes its own). If the owner went away and a new one owns the name, a
 * send that finds the old connection broken connects again and sends once more; a
 * message is never sent twice. Thread-safe (sends to one name are serialized).
 * Errors: those of ferry_connect and ferry_sendmsg.
 */
FERRY_API int ferry_send_to(const char *name, const ferry_msg *m, int64_t timeout_ns);

/* Forget the connections ferry_send_to keeps (closes them). Optional. */
FERRY_API void ferry_send_to_reset(void);

typedef struct ferry_inbox ferry_inbox;

/* ferry_inbox_open — register `name` (policy and opts as ferry_register) and receive
 * from every process that sends to it. The caller owns *out. Errors as ferry_register. */
FERRY_API int ferry_inbox_open(const char *name, const ferry_policy *policy,
                               const ferry_chan_opts *opts, ferry_inbox **out, int64_t timeout_ns);

/*
 * ferry_recv_from — the next message matching filter (ferry_recvmsg rules) from the
 * process that owns the name `from` now (looked up in ferryd), or from anyone (from ==
 * NULL). *sender (may be NULL) gets the sender's kernel-stamped identity. Messages from
 * others stay queued in their channels. Not thread-safe: one receiving thread per inbox.
 * Errors: those of ferry_recvmsg (-EMSGSIZE: the message stays), -ENOENT (`from` is not
 * a name the caller may see), -ETIMEDOUT, -EAGAIN.
 */
FERRY_API ssize_t ferry_recv_from(ferry_inbox *in, const char *from, ferry_msg *m, int64_t filter,
                                  ferry_cred *sender, int64_t timeout_ns);

/* A descriptor readable when ferry_recv_from(in, NULL, ...) may find something (a message
 * or a new sender). Owned by the inbox. */
FERRY_API int ferry_inbox_poll_fd(const ferry_inbox *in);

/* Close every channel and release the name. NULL is a no-op. */
FERRY_API void ferry_inbox_close(ferry_inbox *in);

/* ---------------------------------------------------------------- RPC */

/*
 * Call and reply over one channel (docs/rpc.md). A client connection
 * (ferry_rpc_client) carries many calls at once, from many threads, each matched to its
 * reply by a correlation id; a server connection (ferry_rpc_server) receives requests and
 * replies to them, from any thread, in any order. On the wire each message's ferry type
 * holds the kind (request, reply, one-way) and the 56-bit id; the payload is the caller's
 * bytes and fds, untouched, so requests and replies are sized at run time (up to the
 * channel's max_msg).
 * Threads: every call below may be made from any thread, on the same handle too.
 * Errors, besides those of the channel: -ETIMEDOUT (no reply in time: the call is
 * forgotten and a late reply is dropped), -ECANCELED (ferry_call_cancel), -EPIPE (the
 * peer is gone: every pending call ends with it, within the reader's 20 ms slice),
 * -EMSGSIZE (a reply larger than the caller's cap: resp->len says how large),
 * -ENOENT (ferry_reply to an id that is not awaiting a reply: unknown or already answered).
 */
typedef struct ferry_rpc_client ferry_rpc_client;
typedef struct ferry_rpc_server ferry_rpc_server;
typedef struct ferry_rpc_service ferry_rpc_service;

/* Make a client connection on ch. On success the client owns ch (closed by
 * ferry_rpc_client_close); on failure the caller keeps it. Errors: -EINVAL, -ENOMEM. */
FERRY_API int ferry_rpc_client_create(ferry_chan *ch, ferry_rpc_client **out);
/* ferry_connect(name, kind, opts) and ferry_rpc_client_create. The caller owns *out. */
FERRY_API int ferry_rpc_connect(const char *name, int kind, const ferry_chan_opts *opts,
                                ferry_rpc_client **out, int64_t timeout_ns);
/* Close the connection and its channel. Calls still pending are forgotten (async
 * callbacks not run); no call may be in progress on other threads. NULL is a no-op. */
FERRY_API void ferry_rpc_client_close(ferry_rpc_client *c);

/*
 * ferry_call — send req (type ignored; data, len, fds: the caller keeps them) and wait
 * for its reply into resp (the caller's data/cap; on return type 0, len, and fds the
 * caller then owns). Returns the reply's length. timeout_ns bounds the whole call; like
 * the channel's calls, the deadline is read lazily (fixed at the call's first wait).
 * ferry_call gives out no id: a call another thread may cancel is made with
 * ferry_call_start (a ferry_call made while no other call is pending takes a fast path
 * whose id no table holds, so ferry_call_cancel of a guessed id is -ENOENT for it).
 * Errors: -ETIMEDOUT, -EAGAIN (FERRY_NOW), -EPIPE, -EMSGSIZE, -ECANCELED, and the errors
 * of ferry_sendmsg.
 */
FERRY_API ssize_t ferry_call(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp,
                             int64_t timeout_ns);

/* The split form of ferry_call, for a call that another thread may cancel: start sends
 * the request and gives its id; resp (the caller's) must stay valid until wait returns.
 * Every started call is ended by exactly one ferry_call_wait (which frees it). Wait
 * returns as ferry_call. */
FERRY_API int ferry_call_start(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp,
                               uint64_t *id, int64_t timeout_ns);
FERRY_API ssize_t ferry_call_wait(ferry_rpc_client *c, uint64_t id, int64_t timeout_ns);

/* Cancel a pending call (sync or async): its wait returns -ECANCELED, its callback runs
 * with -ECANCELED from ferry_rpc_dispatch; its reply, if any comes, is dropped. The
 * server is told, best effort (a cancel message sent without waiting): see
 * ferry_rpc_cancelled.
 * Errors: -ENOENT (no such call pending: unknown, finished or already cancelled). */
FERRY_API int ferry_call_cancel(ferry_rpc_client *c, uint64_t id);

/* Completion of an asynchronous call: rc is the reply's length or a negative errno;
 * resp is the one given to ferry_call_async (fds in it now owned by the callee). */
typedef void (*ferry_rpc_callback)(ferry_rpc_client *c, uint64_t id, ssize_t rc, ferry_msg *resp,
                                   void *ctx);

/*
 * ferry_call_async — send req and return at once; the reply goes into resp (the
 * caller's, valid until the callback) and cb(ctx) runs from ferry_rpc_dispatch, in the
 * thread that calls it, when ferry_rpc_poll_fd polls readable. No thread is made. *id (may be
 * NULL) gets the id for ferry_call_cancel. timeout_ns bounds the send only: the call then
 * waits for its reply until it comes, is cancelled, or the connection dies (-EPIPE).
 * Errors: those of sending (nothing pending then).
 */
FERRY_API int ferry_call_async(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp,
                               ferry_rpc_callback cb, void *ctx, uint64_t *id, int64_t timeout_ns);

/* A descriptor that polls readable (level-triggered) while ferry_rpc_dispatch has work:
 * a message on the channel or a finished async call. Owned by the client. It may stay
 * readable while another thread is reading replies inside ferry_call. Errors: -ENOMEM,
 * -EMFILE. */
FERRY_API int ferry_rpc_poll_fd(ferry_rpc_client *c);
/* Read the replies waiting (never blocks) and run the callbacks of finished async
 * calls. Returns how many callbacks ran, or -EPIPE / -EBADMSG once the connection died
 * (after running the callbacks of the calls it ended). */
FERRY_API int ferry_rpc_dispatch(ferry_rpc_client *c);

/* A one-way message to the server: no reply, no id. Errors as ferry_sendmsg. */
FERRY_API int ferry_rpc_send(ferry_rpc_client *c, const ferry_msg *m, int64_t timeout_ns);

/* Replies dropped so far: late (after a timeout or cancel) or for unknown ids. */
FERRY_API uint64_t ferry_rpc_dropped(const ferry_rpc_client *c);

/* ---- server side */

/* A request as the server receives it. */
typedef struct ferry_rpc_request {
    uint64_t id;          /* to pass to ferry_reply; 0 for a one-way message */
    int oneway;           /* 1: a one-way message, nothing to reply */
    ferry_msg msg;        /* data/cap the caller's (ferry_recv_request) or the worker's
                             (ferry_serve: valid during the handler only); fds the receiver's */
    uint64_t reserved[4]; /* zeroed by the library: room for later fields */
} ferry_rpc_request;

/* Make a server connection on ch (e.g. from ferry_accept). On success it owns ch. One
 * reference, dropped by ferry_rpc_server_unref. Errors: -EINVAL, -ENOMEM. */
FERRY_API int ferry_rpc_server_create(ferry_chan *ch, ferry_rpc_server **out);
/* Take another reference (to reply later from another thread); each is dropped by a
 * ferry_rpc_server_unref. The last one closes the channel. */
FERRY_API ferry_rpc_server *ferry_rpc_server_ref(ferry_rpc_server *s);
/* Drop one reference; the last one closes the connection and its channel (no call may
 * be in progress on it then). The connection has no _close: it is reference-counted.
 * NULL is a no-op. */
FERRY_API void ferry_rpc_server_unref(ferry_rpc_server *s);

/*
 * ferry_recv_request — the next request or one-way message into rq->msg (data/cap set
 * by the caller; rules of ferry_recvmsg: -EMSGSIZE leaves it queued, msg.len the size
 * needed). Returns its length. Errors as ferry_recvmsg (-EPIPE: the client is gone).
 */
FERRY_API ssize_t ferry_recv_request(ferry_rpc_server *s, ferry_rpc_request *rq,
                                     int64_t timeout_ns);

/* ferry_reply — answer request id with resp (type ignored; the caller keeps data and
 * fds). Once per request: a second reply, or one to an id never received, is -ENOENT and
 * sends nothing; a reply to a request the client cancelled is -ECANCELED and sends
 * nothing. A send that sent nothing (-EOPNOTSUPP: fds towards a client that takes none,
 * -EMSGSIZE, -EAGAIN, -ETIMEDOUT, -EINVAL) leaves the id awaiting its reply: reply again
 * (or the client times out; the id is forgotten with the connection). Any other outcome
 * uses the id up. Errors: -ENOENT, -ECANCELED, and those of ferry_sendmsg. */
FERRY_API int ferry_reply(ferry_rpc_server *s, uint64_t id, const ferry_msg *resp,
                          int64_t timeout_ns);
/* Has the client cancelled request id? 1 yes, 0 no, -ENOENT (not awaiting a reply). The
 * cancel is seen once a receive on this connection has read it (ferry_serve's threads
 * read continuously; a manual server at its next ferry_recv_request). */
FERRY_API int ferry_rpc_cancelled(ferry_rpc_server *s, uint64_t id);
/* The fd that polls readable while a request waits (ferry_chan_poll_fd). */
FERRY_API int ferry_rpc_server_poll_fd(ferry_rpc_server *s);
/* The remote identity a trusted relay connected for (ferry_chan_peer_remote of the
 * connection's channel, with its threat model): ferry-bridge's connections carry the
 * NATS user of the caller on another host, one connection per (name, user). Known once
 * a request was received (in a ferry_serve handler: always). Errors as
 * ferry_chan_peer_remote. */
FERRY_API ssize_t ferry_rpc_server_peer_remote(const ferry_rpc_server *s, char *buf, size_t cap);

/* A handler of ferry_serve: called for each request or one-way message, in a pool
 * thread. It replies with ferry_reply(conn, rq->id, ...) now or, holding a
 * ferry_rpc_server_ref, later from any thread. rq->msg.data is valid during the call only;
 * fds in it belong to the handler. */
typedef void (*ferry_rpc_handler)(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx);

/*
 * ferry_serve — register name (ferry_register with policy and opts, both may be NULL) and
 * serve every client that connects with nthreads (>= 1) threads sharing one epoll set:
 * each connection is read by one thread at a time, but its requests are handled in
 * parallel. Returns at once; the caller owns *out (ferry_rpc_service_close stops it).
 * Errors: those of ferry_register,
 * -EINVAL, -ENOMEM, -EMFILE, -EAGAIN (threads).
 */
FERRY_API int ferry_serve(const char *name, ferry_rpc_handler handler, void *ctx, unsigned nthreads,
                          const ferry_policy *policy, const ferry_chan_opts *opts,
                          ferry_rpc_service **out, int64_t timeout_ns);
/* Stop serving and free the service: join the threads, release the name, drop the
 * connections (those a handler still holds a reference to stay open until it drops it
 * with ferry_rpc_server_unref). NULL is a no-op. */
FERRY_API void ferry_rpc_service_close(ferry_rpc_service *s);

/* ---------------------------------------------------------------- broadcast */

/*
 * One publisher, any number of subscribers: every subscriber gets every message, in
 * order, zero copy. The object is a ring of `slots` fixed-size slots in a sealed memfd
 * (shared like the synchronization objects: before fork, ferry_bcast_fd +
 * ferry_bcast_adopt, or ferry_publish(..., FERRY_OBJ_BCAST, ...) + ferry_bcast_open). A
 * message is written once into its slot; the slot is reused once every subscriber has
 * released the message it held. docs/broadcast.md has the design.
 *  - Slow subscribers: by default a subscriber that falls `slots` messages behind blocks
 *    the publisher (lossless). With FERRY_SUB_DROP_OLDEST the publisher instead drops that
 *    subscriber's oldest message, and ferry_sub_lost() counts exactly how many it lost.
 *    A drop-oldest subscriber's outstanding peek (or copy in progress) holds its one
 *    message: the publisher waits for that release.
 *  - A subscriber's entry records its process ({pid, start time}); a publisher blocked by
 *    a dead process's entry frees it within one 20 ms slice (a dead subscriber blocks it
 *    for well under 100 ms). ferry_bcast_subscribe on a full table frees the entries of
 *    dead processes too.
 *  - A subscriber starts at the current head (messages published before it subscribed are
 *    not its, nor lost); ferry_sub_close frees its entry.
 *  - Gaps: a publisher that relays a stream and missed some of it (ferry-bridge after a
 *    lapse) records them with ferry_bcast_skip; every subscriber counts them in
 *    ferry_sub_lost, exactly, as drops. Messages are numbered in publishing order, skipped
 *    ones included (ferry_sub_seq).
 *  - End of stream: ferry_bcast_end, or ferry_bcast_close in the publishing process (the
 *    creator, or the last process that published), ends the stream; subscribers get
 *    -EPIPE after the last message. A publisher process that dies is noticed by waiting
 *    subscribers within a slice (-EPIPE after the last message).
 *  - Threads: publish/loan/commit from one thread at a time (one publisher); subscribe
 *    from any thread; a ferry_sub is used by one thread at a time, in the process that
 *    made it (not in a fork child). The ferry_bcast must outlive its ferry_subs in the
 *    process. All sharers must be in one pid namespace (liveness is judged by pid).
 *  - Hostile sharers can break the stream for others (-EBADMSG, missing messages), never
 *    make ferry touch memory outside the object. Validate what you read.
 *  - Not provided: fds riding on messages.
 */

#define FERRY_OBJ_BCAST 6 /* ferry_publish kind of a broadcast object */

/* The largest max_subs. */
#define FERRY_BCAST_MAX_SUBS 1024

typedef struct ferry_bcast ferry_bcast;
typedef struct ferry_sub ferry_sub;

/* Broadcast options: always start from ferry_bcast_opts_init(). */
typedef struct ferry_bcast_opts {
    size_t size;       /* sizeof(ferry_bcast_opts) of the caller: ferry_bcast_opts_init */
    uint32_t slots;    /* ring slots, a power of two >= 2; default 64 */
    uint32_t max_subs; /* subscribers at once, 1..FERRY_BCAST_MAX_SUBS; default 32 */
    size_t max_msg;    /* largest message, 1..FERRY_MAX_MSG_LIMIT; default 4096. The whole
                          object (about slots * max_msg) must stay under 64 MiB */
} ferry_bcast_opts;

/* The library's half of ferry_bcast_opts_init (as ferry_chan_opts_init_sized). */
FERRY_API void ferry_bcast_opts_init_sized(ferry_bcast_opts *o, size_t size);

/* Fill *o with the defaults and record this program's sizeof(*o). Never fails. */
static inline void ferry_bcast_opts_init(ferry_bcast_opts *o)
{
    ferry_bcast_opts_init_sized(o, sizeof *o);
}

/* A new broadcast object; the calling process is its publisher. opts may be NULL. The
 * caller owns *out. Errors: -EINVAL (options, or too large), -ENOMEM, -EMFILE. */
FERRY_API int ferry_bcast_create(const ferry_bcast_opts *opts, ferry_bcast **out);
/* On success the object owns fd; on failure fd is closed. -EBADMSG (not a broadcast
 * object), -ENOMEM, -EINVAL. */
FERRY_API int ferry_bcast_adopt(int fd, ferry_bcast **out);
/* Open the object published under name (rules of ferry_sem_open). */
FERRY_API int ferry_bcast_open(const char *name, ferry_bcast **out, int64_t timeout_ns);
/* The object's descriptor (owned by the object). */
FERRY_API int ferry_bcast_fd(const ferry_bcast *b);
/* The largest message (decided at creation). */
FERRY_API size_t ferry_bcast_max_msg(const ferry_bcast *b);
/* Active subscribers now (a snapshot, of every process), or -EINVAL. */
FERRY_API int ferry_bcast_subscribers(const ferry_bcast *b);

/* Counters of a broadcast object (shared by every handle), a snapshot. Prepare with
 * ferry_bcast_counters_init ("Sized structs"). */
typedef struct ferry_bcast_counters {
    size_t size;          /* set by ferry_bcast_counters_init; ferry_bcast_stats sets it to
                             the bytes it wrote */
    uint64_t published;   /* messages published so far, and those skipped (ferry_bcast_skip) */
    uint64_t max_lag;     /* the largest lag of an active subscriber (see ferry_bcast_list) */
    uint32_t subscribers; /* active subscriber entries now (as ferry_bcast_subscribers) */
    uint32_t max_subs;    /* as created */
    uint32_t slots;       /* as created */
    uint32_t ended;       /* 1 once the stream was ended, else 0 */
    size_t max_msg;       /* as created */
} ferry_bcast_counters;

/* Zero *st and record this program's sizeof(*st) in st->size. Never fails. */
static inline void ferry_bcast_counters_init(ferry_bcast_counters *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
}

/* Copy the object's counters into *st (prepared by ferry_bcast_counters_init), from any
 * handle (the publisher's or any opener's). Never blocks. Errors: -EINVAL (NULL, or
 * st->size 0, too small or above 4096). What a sharer wrote can make published and the
 * lags wrong, never larger than the ring allows (max_lag <= slots). */
FERRY_API int ferry_bcast_stats(const ferry_bcast *b, ferry_bcast_counters *st);

/* One subscriber, as ferry_bcast_list tells it (a record: see "Sized structs"). */
typedef struct ferry_bcast_sub_info {
    pid_t pid;            /* its process (in the pid namespace of the object's sharers) */
    uint32_t flags;       /* its FERRY_SUB_* flags */
    uint64_t lag;         /* messages published that it has not released yet, 0..slots:
                             a blocking subscriber `slots` behind holds the publisher */
    uint32_t holding;     /* 1 while a peek (or a drop-oldest copy) holds its next message */
    uint32_t alive;       /* 0 if its process is certainly gone (its entry is freed when it
                             blocks the publisher or the table is full), else 1 */
    uint64_t reserved[4]; /* zeroed by the library */
} ferry_bcast_sub_info;

/* The active subscribers (of every process), in the order of their entries: up to cap
 * records into out. Returns the number written (>= 0; cap = the counters' max_subs
 * takes them all), or -EINVAL (b NULL, out NULL with cap > 0). A snapshot, entry by
 * entry; never blocks (it looks at each process: a few system calls per subscriber). */
FERRY_API ssize_t ferry_bcast_list(const ferry_bcast *b, ferry_bcast_sub_info *out, size_t cap);
/* End the stream now (from the publisher): subscribers get -EPIPE once they have taken
 * every message published before; later publishes are -EPIPE. -EINVAL (NULL). */
FERRY_API int ferry_bcast_end(ferry_bcast *b);
/* Close the handle. In the publishing process this also ends the stream (above). The
 * process's ferry_subs must be closed first. NULL is a no-op. */
FERRY_API void ferry_bcast_close(ferry_bcast *b);

/*
 * ferry_bcast_publish — copy len bytes as one message of type (>= 0) to every
 * subscriber. Waits (up to timeout_ns) while a blocking subscriber is `slots` behind.
 * Errors: -EMSGSIZE (len > max_msg), -ETIMEDOUT, -EAGAIN (FERRY_NOW), -EINVAL, -EBUSY
 * (a loan is outstanding), -EPIPE (the stream was ended).
 */
FERRY_API int ferry_bcast_publish(ferry_bcast *b, int64_t type, const void *data, size_t len,
                                  int64_t timeout_ns);
/* Zero copy: reserve the next slot (up to len bytes; waits as publish), fill *buf, then
 * ferry_bcast_commit. One loan at a time (-EBUSY). */
FERRY_API int ferry_bcast_loan(ferry_bcast *b, size_t len, void **buf, int64_t timeout_ns);
/* Publish the loaned slot with len (<= the loaned len) bytes. -EINVAL (no loan, len too
 * large, type < 0: the loan stays). */
FERRY_API int ferry_bcast_commit(ferry_bcast *b, int64_t type, size_t len);
/*
 * ferry_bcast_skip — record that n messages of the stream are missing here (a relay that
 * missed them): every subscriber that takes the record adds n to ferry_sub_lost and goes
 * on to the next message; a drop-oldest subscriber that has the record dropped counts the
 * n as well. The record takes one slot, so it waits as publish does. n = 0 does nothing.
 * (Subscribers linked with a libferry older than 0.3 get -EBADMSG once for the record and
 * do not count it.) Errors as ferry_bcast_publish, and -EOVERFLOW (the stream's count
 * would pass INT64_MAX).
 */
FERRY_API int ferry_bcast_skip(ferry_bcast *b, uint64_t n, int64_t timeout_ns);

/* Subscription flag: drop the oldest message instead of blocking the publisher. */
#define FERRY_SUB_DROP_OLDEST (1u << 0)

/* Subscribe (from any process holding the object): the first message received is the
 * next one published. The caller owns *out. Errors: -EINVAL, -ENOSPC (max_subs live
 * subscribers), -ENOMEM. */
FERRY_API int ferry_bcast_subscribe(ferry_bcast *b, uint32_t flags, ferry_sub **out);
/* Take the next message into buf (cap bytes); returns its length and sets *type (may be
 * NULL). -EMSGSIZE (it stays; a drop-oldest subscriber may lose it meanwhile),
 * -ETIMEDOUT, -EAGAIN, -EPIPE (end of stream, nothing left), -EBUSY (a peek is
 * outstanding), -EBADMSG (a corrupted object). */
FERRY_API ssize_t ferry_sub_recv(ferry_sub *s, void *buf, size_t cap, int64_t *type,
                                 int64_t timeout_ns);
/* Zero copy: m->data points at the next message in shared memory (read-only), valid
 * until ferry_sub_release; m->type, m->len set, m->nfds = 0. Errors as ferry_sub_recv
 * (never -EMSGSIZE). */
FERRY_API int ferry_sub_peek(ferry_sub *s, ferry_msg *m, int64_t timeout_ns);
/* Release the peeked message. -EINVAL (no peek). */
FERRY_API int ferry_sub_release(ferry_sub *s);
/* Messages this subscription lost so far (exact): those the publisher dropped for a
 * drop-oldest subscription, and those it skipped (ferry_bcast_skip). */
FERRY_API uint64_t ferry_sub_lost(const ferry_sub *s);
/* The stream's number of the next message this subscription takes (of the peeked one while
 * a peek is outstanding). Messages are numbered from 0 in publishing order, skipped ones
 * included, so after a receive, ferry_sub_seq - 1 is that message's number; it moves by
 * exactly one per message received plus the messages counted lost. 0 for NULL. */
FERRY_API uint64_t ferry_sub_seq(const ferry_sub *s);
/*
 * ferry_sub_poll_fd — a descriptor that polls readable (POLLIN) while a message waits for this
 * subscription, or once the stream has ended. Level-triggered, owned by the subscription.
 * It is a datagram socket with an abstract name the publisher rings (publisher and
 * subscriber must share a network namespace); the first call arms it, and until then
 * publishing makes no system call for it. It may wake spuriously (ferry_sub_recv then
 * says -EAGAIN). A publisher's death does not make it readable (a waiting recv notices).
 * Errors: -EMFILE, -ENOMEM.
 */
FERRY_API int ferry_sub_poll_fd(ferry_sub *s);
/* Leave: the entry is freed (a publisher waiting on it goes on). NULL is a no-op. */
FERRY_API void ferry_sub_close(ferry_sub *s);

/* ---------------------------------------------------------------- mailboxes */

/*
 * Mailboxes: indirect, many-to-many communication. A mailbox is a queue of typed messages
 * in a sealed memfd (kind FERRY_OBJ_MAILBOX) that any number of processes send to and any
 * number receive from; each message goes to exactly one receiver. Its descriptor is, as
 * for an event queue, a SOCK_SEQPACKET socket carrying the memfd and a doorbell (so a
 * live mailbox keeps 2 descriptors in flight, counted against the creator's
 * RLIMIT_NOFILE; ferryd refuses anything else with -EINVAL, and adopt with -EBADMSG,
 * checking the carrier as for an event queue: see ferry_event_create). It is shared like the
 * synchronization objects (see there): before fork, by descriptor (ferry_mailbox_fd /
 * ferry_mailbox_adopt, -EBADMSG for anything that is not a mailbox), or by name
 * (ferry_publish(name, ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, policy) by the owner,
 * ferry_mailbox_open(name) by others: -ENOENT / -EACCES / -EPROTOTYPE as for the other
 * objects). Messages stay queued, whether or not a receiver is there, for as long as the
 * mailbox exists (while any process or ferryd holds its descriptor).
 *
 * Hand-out: messages are handed out oldest first (among those a receive's filter
 * matches). Competing receivers (the default) are served fairly, in FIFO order: a message
 * that arrives while receivers wait is handed to the one that has waited longest among
 * those whose filter takes it, and nobody else (a newcomer included) can take it from
 * under it. Up to 64 waiters are queued so; more wait unordered.
 * FERRY_MAILBOX_EXCLUSIVE: only the handle that holds the mailbox
 * (ferry_mailbox_attach) may receive; others wait for it or get -EBUSY.
 *
 * Crash semantics. A message is invisible until its sender's send (or commit) completes:
 * a sender that dies mid-write leaves nothing torn behind (its slot is freed by the next
 * caller that needs room or finds nothing to take). A message taken by a receiver that
 * dies before it finished (inside ferry_mailbox_recv's copy, or between ferry_mailbox_peek
 * and ferry_mailbox_release) is, once noticed (a receiver that finds nothing to take, or
 * a waiting receiver within 20 ms): dropped and counted in `lost` (the default,
 * at-most-once), or with FERRY_MAILBOX_AT_LEAST_ONCE put back at its old place in the
 * queue and counted in `returned` (it may then be delivered twice). The holder of an
 * exclusive mailbox that dies releases it. Processes are told apart by pid and start time;
 * all processes sharing a mailbox must be in one pid namespace.
 *
 * Per-sender order: the messages of one sender (process) are taken in the order it sent
 * them, also when a receiver dies while a message is handed to it (that message goes to
 * another receiver before any later one of its sender). The one exception is
 * FERRY_MAILBOX_AT_LEAST_ONCE's return: a message whose receiver died after taking it
 * comes back at its old place in the queue, after later messages of its sender may have
 * been received. A receiver stopped (SIGSTOP) while a message is handed to it holds back
 * its sender's later messages until it runs again or dies.
 *
 * Trust: a mailbox may be shared with processes that do not trust each other. The queue
 * is guarded by a futex lock word owned by {thread id, start time} (no pointers in it),
 * recovered by a death check within a 1..50 ms slice; every size, index, link and length
 * read from the object is read once and checked before use, and no walk is unbounded. So
 * a hostile sharer can lose, forge, reorder or delay messages, and make calls fail with
 * -EBADMSG (a corrupted message or lock) or -ETIMEDOUT, but never make another process
 * crash, read or write outside the mailbox, or return later than 1 s past its deadline
 * (the grace every call gives a holder of the lock: honest ones hold it for
 * microseconds; a call without a timeout — stats, poll fd, detach, close — waits that
 * long at most, then gives up with -ETIMEDOUT, or in close and in a receive whose message
 * was already copied leaves the slot busy until the process exits).
 * Threads: every call may be made from any thread; each handle has at most one loan and
 * one peek outstanding at a time (-EBUSY).
 */
typedef struct ferry_mailbox ferry_mailbox;

/* Flags (ferry_mailbox_opts.flags). */
#define FERRY_MAILBOX_EXCLUSIVE     (1u << 0) /* one receiver at a time (attach) */
#define FERRY_MAILBOX_AT_LEAST_ONCE (1u << 1) /* a dead receiver's message goes back */

/* The most messages a mailbox may hold (capacity N, and FERRY_UNBOUNDED's cap). */
#define FERRY_MAILBOX_MAX_SLOTS 65536u

typedef struct ferry_mailbox_opts {
    size_t size;       /* sizeof(ferry_mailbox_opts) of the caller: ferry_mailbox_opts_init */
    uint32_t capacity; /* 0: rendezvous (a send returns once a receiver took it; at most
                          64 senders at once); N: at most N messages queued, a send to a
                          full mailbox waits; FERRY_UNBOUNDED: a send never waits, but
                          gets -ENOBUFS at the cap: as many messages as fit in 64 MiB
                          (at most FERRY_MAILBOX_MAX_SLOTS). Default 64. */
    uint32_t flags;    /* FERRY_MAILBOX_EXCLUSIVE | FERRY_MAILBOX_AT_LEAST_ONCE */
    size_t max_msg;    /* largest message, 1 .. 16 MiB; default 4096. Every message takes a
                          slot of max_msg bytes plus 64 (memory is touched only when used) */
} ferry_mailbox_opts;

/* The library's half of ferry_mailbox_opts_init (as ferry_chan_opts_init_sized). */
FERRY_API void ferry_mailbox_opts_init_sized(ferry_mailbox_opts *o, size_t size);

/* Fill *o with the defaults and record this program's sizeof(*o). Never fails. */
static inline void ferry_mailbox_opts_init(ferry_mailbox_opts *o)
{
    ferry_mailbox_opts_init_sized(o, sizeof *o);
}

/* Counters of the mailbox (shared by every handle), a snapshot. Prepare with
 * ferry_mailbox_counters_init ("Sized structs"). */
typedef struct ferry_mailbox_counters {
    size_t size;        /* set by ferry_mailbox_counters_init; ferry_mailbox_stats sets it
                           to the bytes it wrote */
    uint64_t sent;      /* messages made visible by sends and commits */
    uint64_t received;  /* messages handed to a receiver and finished with */
    uint64_t lost;      /* at-most-once: taken by a receiver that died before finishing */
    uint64_t returned;  /* at-least-once: put back after their receiver died */
    uint64_t withdrawn; /* rendezvous sends that timed out before a receiver took them */
    uint64_t torn;      /* messages being written by senders that died (never visible) */
    uint64_t recovered; /* processes that died inside the mailbox's lock: each may have
                           left one of the counters above one off */
    uint32_t queued;    /* messages waiting now */
    uint32_t capacity;  /* as created */
    size_t max_msg;     /* as created */
    /* Receivers blocked in a receive now, of every process: those queued in the FIFO
       of waiters whose process is alive, plus (when all 64 places are taken) the others
       that sleep. A hint, not a guarantee: a sharer can make it wrong (at most 4194304,
       the kernel's limit on tasks), and one killed while waiting beyond the 64 stays
       counted. (A uint64_t: it starts past max_msg's struct on every ABI.) */
    uint64_t waiting;
    uint64_t flags; /* as created: FERRY_MAILBOX_* (added in 0.3; a uint64_t, as waiting) */
} ferry_mailbox_counters;

/* Zero *st and record this program's sizeof(*st) in st->size. Never fails. */
static inline void ferry_mailbox_counters_init(ferry_mailbox_counters *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
}

/* A new mailbox (opts NULL: the defaults). The caller owns *out. Errors: -EINVAL
 * (options, unknown flags, too large), -ENOMEM, -EMFILE. */
FERRY_API int ferry_mailbox_create(const ferry_mailbox_opts *opts, ferry_mailbox **out);
/* As ferry_sem_adopt: on success the mailbox owns fd; on failure fd is closed (-EBADMSG
 * when fd is not a mailbox, -ENOMEM, -EINVAL). */
FERRY_API int ferry_mailbox_adopt(int fd, ferry_mailbox **out);
/* Open the mailbox published under name (ferryd's policy decides): errors as
 * ferry_sem_open. */
FERRY_API int ferry_mailbox_open(const char *name, ferry_mailbox **out, int64_t timeout_ns);
/* The object's descriptor (owned by the mailbox), to publish or pass on. */
FERRY_API int ferry_mailbox_fd(const ferry_mailbox *mb);
/* A descriptor (owned by the mailbox, shared by every holder) that polls readable while
 * at least one message is queued (level-triggered; whatever its type: a typed receive
 * may still say -EAGAIN). Once anyone asked for it, every call that changes the queue
 * keeps it exact (a send or a receive that flips it costs a system call); before, it
 * costs nothing. Errors: -EINVAL, -EBADMSG, -ETIMEDOUT (a sharer held the lock for over
 * 1 s: see "Trust"). */
FERRY_API int ferry_mailbox_poll_fd(ferry_mailbox *mb);

/* Send a copy of buf[0..len) as one message of type (>= 0). The caller keeps buf.
 * Errors: -EINVAL (type < 0, NULL), -EMSGSIZE (len > max_msg), -ETIMEDOUT / -EAGAIN
 * (full, or for capacity 0 no receiver took it in time: then it is withdrawn, never
 * delivered), -ENOBUFS (FERRY_UNBOUNDED at its cap), -EBADMSG (corrupted mailbox). */
FERRY_API int ferry_mailbox_send(ferry_mailbox *mb, int64_t type, const void *buf, size_t len,
                                 int64_t timeout_ns);

/* Take the oldest message that matches filter (the rules of ferry_recvmsg: 0 any, > 0
 * exactly that type, < 0 the lowest type <= -filter) and copy it into buf (cap bytes).
 * Returns its length and sets *type (may be NULL). Errors: -ETIMEDOUT / -EAGAIN,
 * -EMSGSIZE (larger than cap: it stays queued), -EINVAL (filter INT64_MIN, NULL buf
 * with cap > 0), -EPERM (an exclusive mailbox this handle does not hold), -EBADMSG. */
FERRY_API ssize_t ferry_mailbox_recv(ferry_mailbox *mb, int64_t filter, int64_t *type, void *buf,
                                     size_t cap, int64_t timeout_ns);

/* Zero copy, sending: *buf points at max_msg bytes in the mailbox; write the message
 * there and ferry_mailbox_commit it (invisible until then). Errors as ferry_mailbox_send
 * (capacity 0: -EOPNOTSUPP), -EBUSY (a loan is outstanding on this handle). */
FERRY_API int ferry_mailbox_loan(ferry_mailbox *mb, void **buf, int64_t timeout_ns);
/* Publish the loan as one message of type and len (<= max_msg). -EINVAL (no loan, bad
 * type or len), -ETIMEDOUT (a sharer held the lock for over 1 s: see "Trust"), -EBADMSG:
 * on an error the loan is kept (commit again, or close). */
FERRY_API int ferry_mailbox_commit(ferry_mailbox *mb, int64_t type, size_t len);

/* Zero copy, receiving: take the message ferry_mailbox_recv would, and point *data at it
 * in the mailbox (valid until ferry_mailbox_release; *len and *type set, type may be
 * NULL). It is this receiver's, and counts as taken, until released (see "Crash
 * semantics"). Errors as ferry_mailbox_recv, -EBUSY (a peek is outstanding). */
FERRY_API int ferry_mailbox_peek(ferry_mailbox *mb, int64_t filter, const void **data, size_t *len,
                                 int64_t *type, int64_t timeout_ns);
/* Finish with the peeked message. -EINVAL if none is outstanding. */
FERRY_API int ferry_mailbox_release(ferry_mailbox *mb);

/* FERRY_MAILBOX_EXCLUSIVE: make this handle the mailbox's one receiver, waiting up to
 * timeout_ns for the holder to detach, close or die. Errors: -EBUSY (FERRY_NOW and held
 * by another), -ETIMEDOUT, -EINVAL (not an exclusive mailbox). 0 if already held. */
FERRY_API int ferry_mailbox_attach(ferry_mailbox *mb, int64_t timeout_ns);
/* Give the hold up. -EPERM if this handle does not hold it; -EBADMSG, -ETIMEDOUT (a
 * sharer held the lock for over 1 s). */
FERRY_API int ferry_mailbox_detach(ferry_mailbox *mb);

/* Copy the mailbox's counters (a snapshot taken under its lock; `waiting` judges the
 * waiters' processes after it, a few system calls each) into *st (prepared by
 * ferry_mailbox_counters_init). Errors: -EINVAL (NULL, or st->size 0, too small or above
 * 4096), -EBADMSG, -ETIMEDOUT (a sharer held the lock for over 1 s). */
FERRY_API int ferry_mailbox_stats(const ferry_mailbox *mb, ferry_mailbox_counters *st);

/* Close the handle: an outstanding loan is discarded, an outstanding peek released, a
 * hold given up. The mailbox lives on while others hold it. NULL is a no-op. */
FERRY_API void ferry_mailbox_close(ferry_mailbox *mb);

/* ---------------------------------------------------------------- regions and states */
/*
 * Shared memory as an object (docs/region.md). A ferry_region is a block of memory that
 * several processes map and read or write directly; a ferry_state is a value published
 * by one writer and copied torn-free by any number of readers, built on a region.
 *
 * Backing. A volatile region is a memfd (never a name in /dev/shm: it vanishes with its
 * last holder), sealed against shrinking and against further seals, and against growing
 * unless FERRY_REGION_GROWABLE. Its inode is made mode 0444, so a process of another uid
 * that holds a read-only descriptor cannot reopen it writable through /proc/PID/fd. A
 * persistent region (FERRY_REGION_FILE) is a regular file at opts.path that survives
 * restarts and reboots; a file cannot be sealed, so whoever can write it (its owner,
 * the mode's writers) can also truncate it, and a mapper then faults (SIGBUS): only
 * files owned by the caller's effective uid are opened or adopted.
 *
 * Layout. The object starts with a 4096-byte header the library keeps (its magic, kind,
 * size, the 64-bit version word, a state's sequence word); the user's bytes follow it.
 * ferry_region_map returns the address of the user's bytes (4096-aligned), never the
 * header. ferry_region_size is the size of the user's bytes.
 *
 * Capabilities, not names. A region is shared by fork (the handle works in the child),
 * by descriptor (ferry_region_fd / ferry_region_fd_readonly, then ferry_region_adopt), or
 * published through ferryd (ferry_publish with FERRY_OBJ_REGION / FERRY_OBJ_STATE).
 * Read-only is enforced by the kernel: a read-only handle holds an O_RDONLY descriptor,
 * so mmap(PROT_WRITE, MAP_SHARED), mprotect(PROT_WRITE) of its mappings, pwrite,
 * ftruncate and F_ADD_SEALS all fail in the kernel, whatever the holder does. Limit: a
 * process of the *same* uid as the region's owner (or root) holding a read-only
 * descriptor can reopen it writable through /proc/self/fd (it may chmod the inode): the
 * uid, not the descriptor, is the boundary between processes of one user.
 *
 * Change notification. Every region has a 64-bit version word: ferry_region_notify bumps
 * it and wakes every waiter; ferry_region_wait sleeps on it (a futex: it works on a
 * read-only handle too); ferry_region_poll_fd gives a descriptor for event loops. A
 * holder without the write right cannot bump the version; a holder with it can also
 * write the word arbitrarily (it can write the data, too) but cannot make another
 * process miss a ferry_region_notify: every waiter is woken and re-reads the word.
 *
 * Hostile sharers. Anything a sharer can write (the user's bytes, the header with the
 * write right) is read by the library as hostile: every length is bounded by the
 * holder's own copy of the sizes, no loop runs on a shared word without a bound, and the
 * size of a mapping comes from fstat, never from the header. A region's contents are
 * the application's to validate.
 *
 * Threads: every call may be made from any thread, on the same handle too, except that
 * one ferry_state has one writer at a time (ferry_state_write serializes the threads of
 * one process; two processes writing one state is a misuse: readers may then get
 * -EAGAIN or -EBADMSG, never a fault).
 */

/* Kinds of published object (ferry_publish) for regions and states. */
#define FERRY_OBJ_REGION 7
#define FERRY_OBJ_STATE  8

/* Region flags (ferry_region_opts.flags). */
#define FERRY_REGION_GROWABLE (1u << 0) /* not sealed against growing: ferry_region_resize */
#define FERRY_REGION_FILE     (1u << 1) /* persistent: backed by the file at opts.path */
#define FERRY_REGION_EXCL     (1u << 2) /* FILE: fail with -EEXIST if the file exists */
/* FILE: open an existing file read-only (never creates it); the handle is read-only. */
#define FERRY_REGION_RDONLY (1u << 3)

/* Access to a mapping (ferry_region_map): FERRY_REGION_READ, or READ | WRITE. */
#define FERRY_REGION_READ  (1u << 0)
#define FERRY_REGION_WRITE (1u << 1)

/* The largest region (user bytes): 1 TiB. A state's largest value: 64 MiB. */
#define FERRY_REGION_MAX_SIZE ((uint64_t)1 << 40)
#define FERRY_STATE_MAX_LEN   ((size_t)64 << 20)

typedef struct ferry_region ferry_region;

/* Region options: always start from ferry_region_opts_init(). */
typedef struct ferry_region_opts {
    size_t size;      /* sizeof(ferry_region_opts) of the caller: ferry_region_opts_init */
    uint32_t flags;   /* FERRY_REGION_GROWABLE | FERRY_REGION_FILE | FERRY_REGION_EXCL |
                         FERRY_REGION_RDONLY; default 0 (a volatile, fixed-size region) */
    uint32_t mode;    /* FILE: the new file's permission bits exactly (the umask is not
                         applied), at most 0777; default 0600 */
    const char *path; /* FILE: the file (read during the call only); default NULL */
} ferry_region_opts;

/* The library's half of ferry_region_opts_init (as ferry_chan_opts_init_sized). */
FERRY_API void ferry_region_opts_init_sized(ferry_region_opts *o, size_t size);

/* Fill *o with the defaults and record this program's sizeof(*o). Never fails. */
static inline void ferry_region_opts_init(ferry_region_opts *o)
{
    ferry_region_opts_init_sized(o, sizeof *o);
}

/*
 * ferry_region_create — a new region of `size` user bytes (1 .. FERRY_REGION_MAX_SIZE),
 * zeroed, version 0; the handle has the write right. opts may be NULL (a volatile,
 * fixed-size region). With FERRY_REGION_FILE: the file at opts.path is created (mode
 * opts.mode) or, if it exists and FERRY_REGION_EXCL is not set, opened and validated: a
 * regular file (never through a symlink in the last component: -ELOOP), owned by the
 * caller's effective uid, holding a region header, of exactly `size` user bytes (0:
 * whatever it has; GROWABLE: at least `size`). A new file appears complete or not at all
 * (it is built unnamed and linked in). The file outlives the handle; removing it is the
 * caller's business (unlink, or `ferry rm`). The caller owns *out.
 * Errors: -EINVAL (size, flags, mode, path NULL with FILE or set without it, RDONLY or
 * EXCL without FILE, GROWABLE with RDONLY; options per "Sized structs", -E2BIG),
 * -EEXIST (EXCL and the file exists), -ENOENT (RDONLY and no file, or no directory),
 * -ELOOP (the path's last component is a symlink), -EBADMSG (an existing file that is no
 * region of this kind and size, or is not the caller's), -EACCES, -ENOMEM, -EMFILE,
 * -ENOSPC, and the errors of open(2) on the path.
 */
FERRY_API int ferry_region_create(size_t size, const ferry_region_opts *opts, ferry_region **out);

/*
 * ferry_region_adopt — a handle on the region behind fd (a ferry_region_fd or
 * ferry_region_fd_readonly of some process). On success the handle owns fd; on failure
 * fd is closed. fd is validated before use: a memfd sealed against shrinking and further
 * seals (and against growing unless its header says growable), or a regular file owned
 * by the caller's effective uid; its header (read once) has the magic, layout version,
 * kind FERRY_OBJ_REGION and a size that fits the file. An fd opened read-only (O_RDONLY)
 * makes a read-only handle. Errors: -EBADMSG (not such a region, or open write-only),
 * -EINVAL (fd < 0), -ENOMEM.
 */
FERRY_API int ferry_region_adopt(int fd, ferry_region **out);

/* The region's descriptor, to pass to another process (owned by the region: do not close
 * it); read-only for a read-only handle. -EINVAL (NULL). */
FERRY_API int ferry_region_fd(const ferry_region *r);

/*
 * ferry_region_fd_readonly — a new read-only descriptor of the region (an O_RDONLY
 * reopen of its inode, FD_CLOEXEC), to hand out as a read-only capability: its adopter
 * gets a read-only handle whose write paths the kernel refuses. The caller owns *fd.
 * Errors: -EINVAL (NULL), -EMFILE, -ENFILE, -EACCES (a file region whose mode gives its
 * owner no read bit).
 */
FERRY_API int ferry_region_fd_readonly(const ferry_region *r, int *fd);

/* 1 if the handle has the write right, 0 if it is read-only, -EINVAL (NULL). */
FERRY_API int ferry_region_writable(const ferry_region *r);

/* The region's size in user bytes now (a growable region's is re-read from the kernel on
 * every call, so it shows another holder's ferry_region_resize); 0 for NULL. */
FERRY_API size_t ferry_region_size(const ferry_region *r);

/*
 * ferry_region_map — map the region's user bytes as they are now (ferry_region_size),
 * shared, with prot FERRY_REGION_READ or FERRY_REGION_READ | FERRY_REGION_WRITE; *addr
 * is the first user byte (4096-aligned). A mapping stays valid, at its length, until
 * ferry_region_unmap or ferry_region_close of this handle — also after a resize (a region
 * never shrinks, so no mapping ever faults); map again to reach bytes a resize added.
 * Writes through any mapping of any holder are seen by all at once (it is one memory).
 * Errors: -EINVAL (NULL, prot), -EACCES (FERRY_REGION_WRITE on a read-only handle),
 * -ENOMEM.
 */
FERRY_API int ferry_region_map(ferry_region *r, uint32_t prot, void **addr);

/* Unmap a mapping ferry_region_map made on this handle. -EINVAL (not one of them). */
FERRY_API int ferry_region_unmap(ferry_region *r, void *addr);

/*
 * ferry_region_resize — grow a FERRY_REGION_GROWABLE region to new_size user bytes (the
 * new bytes read as zeros), then ferry_region_notify, so other holders learn it (their
 * ferry_region_size says the new size; their mappings keep their old length until they
 * map again). A size at most the current one is a no-op (0): regions never shrink.
 * Errors: -EINVAL (NULL, new_size above FERRY_REGION_MAX_SIZE), -EPERM (not growable:
 * the size is sealed), -EACCES (read-only handle), -ENOSPC (no room, or larger than the
 * filesystem allows).
 */
FERRY_API int ferry_region_resize(ferry_region *r, size_t new_size);

/* Write the region's changes to its file and wait for the disk (msync(MS_SYNC) of this
 * handle's mappings, then fsync): a persistent region survives a crash of the machine as
 * of the last sync. A volatile region: 0 at once. Errors: -EINVAL (NULL), -EIO. */
FERRY_API int ferry_region_sync(ferry_region *r);

/* Bump the region's version by one and wake every waiter (ferry_region_wait, poll
 * descriptors) of every process; a release: what this thread wrote before it is seen by
 * anyone who sees the new version. Returns 0. Errors: -EINVAL (NULL), -EACCES (read-only
 * handle: the kernel would refuse the write anyway). */
FERRY_API int ferry_region_notify(ferry_region *r);

/* The version now (an acquire: the writes before the notify that made it are seen).
 * 0 for NULL. */
FERRY_API uint64_t ferry_region_version(const ferry_region *r);

/*
 * ferry_region_wait — wait until the version differs from `seen` (typically a value
 * ferry_region_version returned), up to timeout_ns. Sleeps on a futex (no CPU while it
 * waits); works on a read-only handle. Returns 0 once it differs (read it with
 * ferry_region_version). Errors: -ETIMEDOUT, -EAGAIN (FERRY_NOW and unchanged), -EINVAL.
 */
FERRY_API int ferry_region_wait(ferry_region *r, uint64_t seen, int64_t timeout_ns);

/*
 * ferry_region_poll_fd — a descriptor that polls readable (POLLIN) after the version
 * changed, for event loops. Owned by the handle; every call returns the same one (in a
 * child after fork the first call makes the child its own). Acknowledge with
 * ferry_region_poll_ack before reading the version, so a later change makes it readable
 * again. It can be readable spuriously (then the version is unchanged). It is backed by
 * an eventfd that a thread of this process, sleeping on the region's futex, signals (a
 * memfd gives no inotify events): the first call starts that thread, close stops it.
 * Errors: -EINVAL (NULL), -EMFILE, -ENFILE, -ENOMEM, -EAGAIN (no thread).
 */
FERRY_API int ferry_region_poll_fd(ferry_region *r);

/* Consume the readiness of ferry_region_poll_fd (it no longer polls readable until the
 * next change). 0; -EINVAL (NULL, or no poll descriptor yet). */
FERRY_API int ferry_region_poll_ack(ferry_region *r);

/* Close the handle: unmap its mappings, stop its poll thread, close its descriptors. The
 * region lives on while others hold it (a file: always). NULL is a no-op. */
FERRY_API void ferry_region_close(ferry_region *r);

/* ---- state: one writer, torn-free copies for any number of readers */

typedef struct ferry_state ferry_state;

/*
 * ferry_state_create — a state whose value holds up to max_len bytes (1 ..
 * FERRY_STATE_MAX_LEN), at first empty (length 0, version 0), on a region of its own
 * (kind FERRY_OBJ_STATE). opts as ferry_region_create (NULL: volatile); a persistent
 * state keeps its value across restarts. FERRY_REGION_GROWABLE is -EINVAL. The caller
 * owns *out, and the handle may write (with RDONLY: read-only). Errors as
 * ferry_region_create (-EBADMSG: an existing file that is no state of this max_len).
 */
FERRY_API int ferry_state_create(size_t max_len, const ferry_region_opts *opts, ferry_state **out);

/* A handle on the state behind fd (a ferry_state_fd or ferry_state_fd_readonly): rules and
 * errors of ferry_region_adopt (kind FERRY_OBJ_STATE; its max_len must fit the region).
 * On success the handle owns fd; on failure fd is closed. */
FERRY_API int ferry_state_adopt(int fd, ferry_state **out);

/* The state's descriptor (owned by the state). -EINVAL (NULL). */
FERRY_API int ferry_state_fd(const ferry_state *s);

/* A new read-only descriptor of the state (caller owns *fd), as ferry_region_fd_readonly. */
FERRY_API int ferry_state_fd_readonly(const ferry_state *s, int *fd);

/* The largest value (decided at creation); 0 for NULL. */
FERRY_API size_t ferry_state_max_len(const ferry_state *s);

/* The region under the state (owned by the state: do not close it), for
 * ferry_region_poll_fd / ferry_region_poll_ack (its version is bumped after every write,
 * and differs from the state's version). NULL for NULL. */
FERRY_API ferry_region *ferry_state_region(ferry_state *s);

/*
 * ferry_state_write — publish len bytes (0 .. max_len) as the new value: readers see
 * the old or the new value whole, never a mix. Never waits for readers. The version goes
 * up by one; then waiters are woken (ferry_state_wait, the region's poll descriptors).
 * One writer at a time (threads of this process are serialized). A writer that dies in
 * the middle leaves readers with -EAGAIN until the next write completes.
 * Errors: -EINVAL (NULL, buf NULL with len > 0), -EMSGSIZE (len > max_len), -EACCES
 * (read-only handle).
 */
FERRY_API int ferry_state_write(ferry_state *s, const void *buf, size_t len);

/*
 * ferry_state_read — copy the current value into buf (cap bytes): *len gets its length
 * and *version (may be NULL) its version (0: never written). The copy is whole, of one
 * version; it takes a few tries while a write is in progress, bounded (no wait for the
 * writer, never a spin without end: at most 256 tries, 64 with a pause between them, then
 * sched_yield between them for at most about 2 ms). Errors: -EAGAIN (a write was in progress on
 * every try: the writer is slow, or died mid-write; try again), -EMSGSIZE (the value is longer than
 * cap: *len gets its length, buf is undefined), -EBADMSG (the shared words are corrupt: a length
 * above max_len), -EINVAL (NULL s or len, buf NULL with cap > 0).
 */
FERRY_API int ferry_state_read(const ferry_state *s, void *buf, size_t cap, size_t *len,
                               uint64_t *version);

/* The version of the last completed write (0: none), without copying. 0 for NULL. */
FERRY_API uint64_t ferry_state_version(const ferry_state *s);

/* Wait until the state's version differs from seen, up to timeout_ns (a futex sleep;
 * works read-only). 0, -ETIMEDOUT, -EAGAIN (FERRY_NOW and unchanged), -EINVAL. */
FERRY_API int ferry_state_wait(ferry_state *s, uint64_t seen, int64_t timeout_ns);

/* Close the handle (as ferry_region_close). NULL is a no-op. */
FERRY_API void ferry_state_close(ferry_state *s);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_FERRY_H */
