// SPDX-License-Identifier: MIT
/*
 * sysvmq.c — the sysvmq transport: ferry channels over System V message queues
 * (msgget/msgsnd/msgrcv), with native typed receive.
 *
 * URLs: "sysvmq://KEY" (KEY decimal or 0x-hex, 1..0xffffffff), "sysvmq://" (IPC_PRIVATE),
 * and, for ferry_chan_open only, "sysvmq://#MSQID" (a door queue by its id, as `ipcs -q`
 * shows it).
 *
 * Duplex scheme: two queues per channel. The *door* (the queue at KEY, or the private
 * queue) carries opener -> listener; the *back* queue (always IPC_PRIVATE, mode without
 * group/other write: only its owner writes to it) carries listener -> opener. ferry's
 * own *records* travel as messages of the reserved mtype LONG_MAX (format:
 * sysvmq_rec.h). The listener puts an *owner* record (door, listener identity) into the
 * back queue for its whole life, and a *hello* (back queue, shape, listener identity)
 * into the door. An opener takes the hello, learns the back queue and the channel's
 * shape from it, and puts an *attach* record (back, door, listener and opener
 * identities) in its place; when it closes it takes its attach record out and puts the
 * hello back: one peer at a time (a second opener meanwhile finds the longer attach
 * record first in line, or nothing: -ECONNREFUSED). An opener that dies without closing
 * leaves its attach record: the channel can then not be opened again, and `ferry ls`
 * can tell from the identities (src/core/proc.h) that everybody named is gone.
 *
 * Rules:
 *  - Types: the ferry type is the System V mtype minus one (mtype must be > 0): type t
 *    travels as mtype t + 1, filter f > 0 becomes msgtyp f + 1 and f < 0 becomes
 *    -(|f| + 1), so msgrcv itself applies the ferry rules (0 next, > 0 exact, < 0 lowest
 *    type <= |f|). Filter 0 is msgtyp LONG_MAX with MSG_EXCEPT (the next message that is
 *    not a hello). Types run 0..LONG_MAX - 2 (TYPE_MAX): a larger type or positive filter
 *    is -EINVAL; a negative filter beyond it means "any type".
 *  - Every message is mtype + one ferry frame (core/frame.h header, then the payload),
 *    validated strictly on receipt: frame decode, length equal to what msgrcv returned,
 *    no fds, no shm flags, a crc when the channel has FERRY_CHECKSUM (checked whenever
 *    flagged), header type + 1 == mtype, not longer than 32 + max_msg. Anything else is
 *    -EBADMSG and the channel is broken for good.
 *  - Shape (decided by the listener, carried by the hello): max_msg + 32 <= msgmax
 *    (/proc/sys/kernel/msgmax; max_msg 0 means msgmax - 32). System V counts capacity in
 *    bytes: capacity N sets msg_qbytes = N * (32 + max_msg) + 48 (the room of a record)
 *    on both queues (so N messages of max_msg bytes fit beside the record; more smaller
 *    ones do), which must be <= msgmnb (/proc/sys/kernel/msgmnb); FERRY_CAP_RING keeps
 *    the kernel default (msgmnb); 0 and FERRY_UNBOUNDED are -EOPNOTSUPP. Beyond a limit
 *    is -EINVAL.
 *  - Records are never frames: every receive excludes mtype LONG_MAX (filter 0 with
 *    MSG_EXCEPT, the others by range). A record's bytes are the writer's claim: the
 *    transport checks the hello it takes (exact length, every field) and treats a record
 *    it did not write as not its own; only `ferry ls` judges liveness from them.
 *  - Waiting: msgsnd/msgrcv have no timeout, so they run with IPC_NOWAIT and a blocked
 *    call sleeps in a backoff loop (50 us doubling to 1 ms, never past the absolute
 *    CLOCK_MONOTONIC deadline; EINTR just loops). There is no pollable descriptor:
 *    ferry_chan_poll_fd is -EOPNOTSUPP.
 *  - -EMSGSIZE on receive: msgrcv has already taken the message, so it is held locally,
 *    at the front: the next receive whose filter it matches returns it (exactly where it
 *    was for the same filter, for a positive one, and for a negative one — a lower type
 *    still in the queue wins; an untyped receive after a typed -EMSGSIZE gets it before
 *    older messages of other types).
 *  - Peer death: when the listener's side closes, the opener's calls return -EPIPE once
 *    it has drained what the listener sent (a receive whose filter nothing left matches:
 *    at once; a send: at once), also while one waits. The listener cannot see its
 *    opener close or die: its receives just time out.
 *  - Lifetime: a close never destroys what the closing side sent. The last close of the
 *    listener and its accepted channel, in the process that created the queues (unless
 *    FERRY_PERSIST), removes them (IPC_RMID; the back queue first) when no opener is
 *    attached or the attached one is dead (its attach record's identity, core/proc.h).
 *    With a live opener attached, the listener *leaves* instead: it clears the owner
 *    write bit of the back queue (the "left" mark: only the owner, creator or root can
 *    set it, so `ferry ls` trusts it), and the opener, the last party out, removes both
 *    queues when it closes (after giving its attachment up, it looks for the mark; the
 *    listener sets the mark before it looks for an attachment, so at least one of them
 *    removes them; both may, harmlessly). An opener killed after the listener left
 *    leaves them: `ferry ls` shows them stale once its identity is dead (the left
 *    listener's no longer counts, nor its pid as the kernel's last user), and
 *    `ferry rm --stale` removes them. An opener of another uid may not remove them
 *    (System V lets only the owner, creator or root): they stay until `ferry rm
 *    --stale` (run as the owner or root) once that opener's process has exited. Messages
 *    the listener sent with no opener attached go with the queues (nobody could read
 *    them; use FERRY_PERSIST). With FERRY_PERSIST the queues stay, with their messages
 *    and records, and can be
 *    opened again (once the hello is back) or listened on again. ferry_listen on an
 *    existing KEY is -EADDRINUSE, or with FERRY_PERSIST reuses the queues when their
 *    hello is there (no opener attached) and has the same max_msg and FERRY_CHECKSUM,
 *    rewriting both records to name the new listener (-EACCES for a uid that may not
 *    write the back queue). Closing an end in a process other than the one that made it
 *    (a forked child's inherited copy) removes or gives back nothing.
 *  - IPC_PRIVATE: the door has no key; a process forked from the listener's creator
 *    opens it with ferry_chan_open("sysvmq://") (the most recent private listener still
 *    open in the creator when it forked), any other process with "sysvmq://#MSQID"
 *    (ferry_listener_url tells it).
 *  - ferry_accept hands out the listener's channel once, at once; a second accept waits
 *    out its deadline (-ETIMEDOUT, -EAGAIN for FERRY_NOW).
 *  - fds cannot ride on a queue message: nfds > 0 is -EOPNOTSUPP; so are zero copy and
 *    peer credentials.
 *  - Threads: one sending and one receiving thread per end; the sender owns tx, txbuf
 *    and seq, the receiver rx, rxbuf and the held message.
 */
#define _GNU_SOURCE /* MSG_EXCEPT */
#include "transport.h"

#include "sysvmq_rec.h"

#include "core/frame.h"
#include "core/proc.h"
#include "core/time.h"

#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#define HDR         ((size_t)FERRY__FRAME_HDR)
#define REC_MTYPE   FERRY__SVQ_REC_MTYPE         /* LONG_MAX: ferry's records, never a frame */
#define TYPE_MAX    ((int64_t)LONG_MAX - 2)      /* mtype TYPE_MAX + 1 stays below the records' */
#define REC_RESERVE ((size_t)FERRY__SVQ_REC_MAX) /* bytes kept in each queue for a record */

#define BACKOFF_MIN_NS 50000LL   /* 50 us */
#define BACKOFF_YIELDS 500       /* first, this many sched_yield() rounds (~150 us here) */
#define BACKOFF_MAX_NS 1000000LL /* 1 ms */

/* ------------------------------------------------------------------ limits and shape */

/* A positive number from a /proc file, or dflt when it cannot be read. */
static long proc_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "re");
    long v = 0;
    if (!f) return dflt;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0) v = dflt;
    fclose(f);
    return v;
}

typedef struct sv_shape {
    size_t max_msg;
    size_t qbytes; /* 0: the kernel default */
    int crc;
} sv_shape;

/* The shape a listener asks for. Errors: -EINVAL (unknown flag, max_msg beyond msgmax,
 * capacity beyond msgmnb), -EOPNOTSUPP (capacity 0 or FERRY_UNBOUNDED). */
static int shape_from_opts(const ferry_chan_opts *o, sv_shape *s)
{
    long msgmax = proc_long("/proc/sys/kernel/msgmax", 8192);
    long msgmnb = proc_long("/proc/sys/kernel/msgmnb", 16384);
    if (o->flags & ~(uint32_t)(FERRY_CHECKSUM | FERRY_NO_SPIN | FERRY_PERSIST | FERRY_PEEK_PRIVATE |
                               FERRY_NO_FDS | FERRY_TRUST_RELAY))
        return -EINVAL;
    if (o->capacity == 0 || o->capacity == FERRY_UNBOUNDED) return -EOPNOTSUPP;
    size_t max = o->max_msg ? o->max_msg : msgmax > (long)HDR ? (size_t)msgmax - HDR : 0;
    if (max > FERRY_MAX_MSG_LIMIT || max + HDR > (size_t)msgmax) return -EINVAL;
    s->max_msg = max;
    s->crc = (o->flags & FERRY_CHECKSUM) != 0;
    s->qbytes = 0;
    if (o->capacity != FERRY_CAP_RING) {
        if ((size_t)msgmnb < REC_RESERVE ||
            o->capacity > ((size_t)msgmnb - REC_RESERVE) / (HDR + max))
            return -EINVAL;
        s->qbytes = (size_t)o->capacity * (HDR + max) + REC_RESERVE;
    }
    return 0;
}

/* ------------------------------------------------------------------ records */

typedef struct sv_buf {
    long mtype;
    uint8_t text[];
} sv_buf;

/* A record message (sysvmq_rec.h): mtype LONG_MAX, at most FERRY__SVQ_REC_MAX bytes. */
typedef struct rec_buf {
    long mtype;
    uint8_t text[FERRY__SVQ_REC_MAX];
    size_t len; /* not sent: the length of text */
} rec_buf;

static void rec_make(rec_buf *b, const ferry__svq_rec *r)
{
    b->mtype = REC_MTYPE;
    b->len = svq_rec_encode(r, b->text);
}

/* Put a record into queue id without waiting. 0 or -errno. */
static int rec_post(int id, const rec_buf *b)
{
    for (;;) {
        if (msgsnd(id, b, b->len, IPC_NOWAIT) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

/* Take the first record-type message of queue id, if it is at most max bytes, without
 * waiting: its length, or -errno (-ENOMSG: none; -E2BIG: the first is longer, and stays). */
static ssize_t rec_take(int id, rec_buf *b, size_t max)
{
    for (;;) {
        ssize_t n = msgrcv(id, b, max, REC_MTYPE, IPC_NOWAIT);
        if (n >= 0) b->len = (size_t)n;
        if (n >= 0 || errno != EINTR) return n < 0 ? -errno : n;
    }
}

/* The hello of a channel: its back queue, shape and listener. */
static void hello_make(rec_buf *b, int back, const sv_shape *s, uint64_t listener)
{
    ferry__svq_rec r = {.kind = FERRY__SVQ_HELLO,
                        .crc = s->crc,
                        .back = back,
                        .max_msg = s->max_msg,
                        .listener = listener};
    rec_make(b, &r);
}

/* Validate a taken hello: 0 and *r, *s filled, or -EBADMSG. */
static int hello_decode(const rec_buf *b, ferry__svq_rec *r, sv_shape *s)
{
    if (svq_rec_decode(b->text, b->len, r) < 0 || r->kind != FERRY__SVQ_HELLO) return -EBADMSG;
    s->max_msg = (size_t)r->max_msg;
    s->crc = r->crc;
    s->qbytes = 0;
    return 0;
}

static int queue_exists(int id)
{
    struct msqid_ds ds;
    return msgctl(id, IPC_STAT, &ds) == 0;
}

/* ------------------------------------------------------------------ ownership */

/* The most recent IPC_PRIVATE door still listened on in this process image (a forked
 * child inherits it): what ferry_chan_open("sysvmq://") opens. -1 when none. */
static _Atomic int last_private = -1;

/* The queues of one channel, shared by a listener and the channel it accepted: the last
 * of them to close removes the queues (unless persist), and only in the process that
 * created them. */
typedef struct sv_ids {
    _Atomic int refs;
    int persist;
    pid_t owner;
    int door, back;
} sv_ids;

/* Remove both queues. The back queue goes first: a process killed in between leaves the
 * door, whose record still names everybody (`ferry ls` can judge it), not a lone back
 * queue. Either may be gone already (the other side removed them: harmless). */
static void queues_remove(int door, int back)
{
    msgctl(back, IPC_RMID, NULL);
    msgctl(door, IPC_RMID, NULL);
}

/* Has the listener left the back queue (the "left" mark: its owner write bit cleared),
 * or is the queue gone? 1, or 0 (also when it cannot be told). */
static int listener_left(int back)
{
    struct msqid_ds ds;
    if (msgctl(back, IPC_STAT, &ds) < 0) return errno == EINVAL || errno == EIDRM;
    return !(ds.msg_perm.mode & 0200);
}

/* The listener leaves: mark the back queue (clear its owner write bit; only the owner,
 * its creator or root may). 0 or -errno. */
static int listener_leave(int back)
{
    struct msqid_ds ds;
    if (msgctl(back, IPC_STAT, &ds) < 0) return -errno;
    ds.msg_perm.mode &= (unsigned short)~0200;
    return msgctl(back, IPC_SET, &ds) < 0 ? -errno : 0;
}

/* Is an opener attached to door, and alive? Takes the first record of the door (when it
 * is an attach record: then it is put back at once) and judges its opener's identity:
 * 1 attached and not proven dead; 0 no opener (a hello, no record: one is opening or
 * closing, and then sees the "left" mark itself), or a dead one (killed). */
static int opener_alive(int door)
{
    rec_buf r;
    ssize_t n = rec_take(door, &r, FERRY__SVQ_REC_MAX);
    if (n < 0) return 0;
    ferry__svq_rec a = {0};
    int alive = svq_rec_decode(r.text, r.len, &a) == 0 && a.kind == FERRY__SVQ_ATTACH &&
                a.door == door && !ferry__proc_dead(a.opener);
    if (a.kind != FERRY__SVQ_HELLO) rec_post(door, &r); /* (a hello is not needed: removing) */
    return alive;
}

/* The last close of the listener and its channel, in the creator (see "Lifetime"): the
 * queues are removed at once, unless an opener is attached and alive: then what this
 * side sent and the opener has not read yet must stay, so the listener leaves (the
 * "left" mark) and the opener removes the queues when it closes. Order (against the
 * opener's close, which gives its attachment up and then looks for the mark): the mark
 * first, then the look at the door, so at least one of the two removes them (both may:
 * a second IPC_RMID finds nothing). A mark that cannot be set removes at once. */
static void listener_last_close(sv_ids *q)
{
    if (listener_leave(q->back) == 0 && opener_alive(q->door)) return;
    queues_remove(q->door, q->back);
}

static void ids_put(sv_ids *q)
{
    if (!q || atomic_fetch_sub(&q->refs, 1) != 1) return;
    if (q->owner == getpid()) {
        int door = q->door;
        atomic_compare_exchange_strong(&last_private, &door, -1);
        if (!q->persist) listener_last_close(q);
    }
    free(q);
}

/* ------------------------------------------------------------------ waiting */

/* The error of a wait that found its deadline passed. */
static int timed_out(int64_t deadline)
{
    return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
}

/* Wait a little: while *step < 0, one sched_yield() per call (counting up to 0); then
 * sleep for *step (doubling it up to BACKOFF_MAX_NS), never past deadline. Returns 0
 * when the deadline has passed (nothing slept), 1 otherwise. A signal just cuts the
 * sleep short: the caller re-checks and comes back. */
static int backoff(int64_t *step, int64_t deadline)
{
    int64_t left = ferry__remaining(deadline);
    if (left <= 0) return 0;
    if (*step < 0) { /* the yield phase: a hand-off usually comes within it, and a sleep
                        of even 50 us would double a round trip (ferry bench) */
        sched_yield();
        if (++*step == 0) *step = BACKOFF_MIN_NS;
        return 1;
    }
    int64_t d = *step < left ? *step : left;
    struct timespec ts = {d / 1000000000, d % 1000000000};
    nanosleep(&ts, NULL);
    *step = *step * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : *step * 2;
    return 1;
}

/* ------------------------------------------------------------------ channel */

typedef struct sv_chan {
    struct ferry_chan base;
    int tx, rx; /* msqids */
    size_t max_msg;
    int crc;          /* FERRY_CHECKSUM: frames carry a crc, both ways */
    _Atomic int dead; /* 0, -EPIPE (queue removed) or -EBADMSG */
    sv_ids *ids;      /* creator side; NULL on the opener */
    /* opener side: the hello it took, given back to the door on close (by its owner),
     * and the attach record it put there in the hello's place (when it could) */
    int has_hello, attached;
    pid_t owner;
    rec_buf hello, attach;
    /* sender */
    uint64_t seq;
    sv_buf *txbuf; /* mtype + HDR + max_msg */
    /* receiver */
    sv_buf *rxbuf;
    int held; /* a message refused with -EMSGSIZE, taken out of the queue */
    int64_t held_type;
    size_t held_len;
    uint8_t *held_data;
} sv_chan;

static const ferry__chan_ops chan_ops;
static const ferry__listener_ops listener_ops;

/* The opener's close: take its attach record out of the door and put the hello back in
 * its place (the attach record's room is the hello's). Best effort: a removed door
 * (EINVAL/EIDRM) takes nothing; a record first in line that is not ours (a raw writer's)
 * is put back and the hello stays out (the door then refuses openers, as it would with
 * that record in it anyway). */
static void hello_give_back(sv_chan *c)
{
    if (!c->has_hello || c->owner != getpid()) return;
    if (c->attached) {
        rec_buf r;
        ssize_t n = rec_take(c->tx, &r, FERRY__SVQ_REC_MAX);
        if (n == -ENOMSG) {
            /* taken by someone else: the hello still goes back */
        } else if (n < 0) {
            return;
        } else if (r.len != c->attach.len || memcmp(r.text, c->attach.text, r.len) != 0) {
            rec_post(c->tx, &r);
            return;
        }
    }
    rec_post(c->tx, &c->hello);
}

static void chan_free(sv_chan *c)
{
    if (!c) return;
    hello_give_back(c);
    /* After giving the attachment up: a listener that has left (see listener_last_close)
     * left the queues to this opener, the last party out. (Another uid's opener may not
     * remove them: IPC_RMID fails, and `ferry rm --stale` removes them.) */
    if (c->has_hello && c->owner == getpid() && listener_left(c->rx)) queues_remove(c->tx, c->rx);
    free(c->txbuf);
    free(c->rxbuf);
    free(c->held_data);
    ids_put(c->ids);
    free(c);
}

/* A channel over the queues tx and rx. Takes the ids reference (dropped on failure).
 * Errors: -ENOMEM. */
static int chan_make(int tx, int rx, const sv_shape *s, sv_ids *ids, ferry_chan **out)
{
    sv_chan *c = calloc(1, sizeof *c);
    if (!c) {
        ids_put(ids);
        return -ENOMEM;
    }
    c->base.ops = &chan_ops;
    c->tx = tx;
    c->rx = rx;
    c->max_msg = s->max_msg;
    c->crc = s->crc;
    c->ids = ids;
    c->txbuf = malloc(sizeof(sv_buf) + HDR + s->max_msg);
    c->rxbuf = malloc(sizeof(sv_buf) + HDR + s->max_msg);
    if (!c->txbuf || !c->rxbuf) {
        chan_free(c);
        return -ENOMEM;
    }
    *out = &c->base;
    return 0;
}

/* Break the channel for good with err; returns the error it is broken with. */
static int chan_fail(sv_chan *c, int err)
{
    int zero = 0;
    atomic_compare_exchange_strong_explicit(&c->dead, &zero, err, memory_order_relaxed,
                                            memory_order_relaxed);
    return atomic_load_explicit(&c->dead, memory_order_relaxed);
}

/* Map a failed msgsnd/msgrcv on queue id: a removed queue breaks the channel with
 * -EPIPE (the creator closed); anything else is passed through. */
static int queue_error(sv_chan *c, int id, int err)
{
    if (err == EIDRM || (err == EINVAL && !queue_exists(id))) return chan_fail(c, -EPIPE);
    return -err;
}

/* ------------------------------------------------------------------ send */

static int svq_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w)
{
    sv_chan *c = (sv_chan *)ch;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    if (dead) return dead;
    if (m->nfds > 0) return -EOPNOTSUPP;
    if (m->type > TYPE_MAX) return -EINVAL;
    if (m->len > c->max_msg) return -EMSGSIZE;
    ferry__frame f = {.flags = c->crc ? FERRY__F_CRC : 0,
                      .type = m->type,
                      .seq = c->seq + 1,
                      .len = (uint32_t)m->len};
    uint8_t *text = c->txbuf->text;
    if (m->len) memcpy(text + HDR, m->data, m->len);
    if (c->crc) f.crc = ferry__frame_crc(&f, text + HDR);
    ferry__frame_encode(&f, text);
    c->txbuf->mtype = (long)m->type + 1;
    /* Opener: a listener that has left reads nothing more (one IPC_STAT per send). */
    if (c->has_hello && listener_left(c->rx)) return -EPIPE;
    int64_t step = -BACKOFF_YIELDS;
    int waited = 0;
    for (;;) {
        if (msgsnd(c->tx, c->txbuf, HDR + m->len, IPC_NOWAIT) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return queue_error(c, c->tx, errno);
        if (c->has_hello && listener_left(c->rx)) return -EPIPE; /* nobody will make room */
        int64_t at = ferry__when_at(w);
        if (!waited && ferry__remaining(at) > 0) FERRY__COUNT(c->base.st.send_waits, 1);
        waited = 1;
        if (!backoff(&step, at)) return timed_out(at);
    }
    c->seq++;
    FERRY__COUNT(c->base.st.sent_msgs, 1);
    FERRY__COUNT(c->base.st.sent_bytes, m->len);
    return 0;
}

/* ------------------------------------------------------------------ receive */

/* Does the held message answer this filter now? 1 yes, 0 no, or an error. For a
 * negative filter, a lower type still in the queue wins: probe for one with a zero-byte
 * msgrcv (E2BIG: there is one, and it stays queued). */
static int held_wins(sv_chan *c, int64_t filter)
{
    if (filter == 0) return 1;
    if (filter > 0) return c->held_type == filter;
    if (c->held_type > -filter) return 0;
    if (c->held_type == 0) return 1;
    for (;;) {
        ssize_t n = msgrcv(c->rx, c->rxbuf, 0, -(long)c->held_type, IPC_NOWAIT);
        if (n >= 0) return chan_fail(c, -EBADMSG); /* an empty message: not a frame */
        if (errno == EINTR) continue;
        if (errno == ENOMSG) return 1;
        if (errno == E2BIG) return 0;
        return queue_error(c, c->rx, errno);
    }
}

/* Validate the n-byte message in rxbuf: 0 (header in *f) or -EBADMSG. */
static int frame_check(const sv_chan *c, ssize_t n, ferry__frame *f)
{
    const uint8_t *text = c->rxbuf->text;
    if ((size_t)n < HDR) return -EBADMSG;
    int rc = ferry__frame_decode(text, (uint32_t)c->max_msg, f);
    if (rc < 0) return rc;
    if ((size_t)f->len != (size_t)n - HDR || f->nfds != 0 || (f->flags & ~FERRY__F_CRC) != 0 ||
        (c->crc && !(f->flags & FERRY__F_CRC)) || f->type + 1 != (int64_t)c->rxbuf->mtype)
        return -EBADMSG;
    return ferry__frame_check_crc(f, text + HDR);
}

static ssize_t svq_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                           ferry__when *w)
{
    sv_chan *c = (sv_chan *)ch;
    long msgtyp;
    int flags = IPC_NOWAIT;
    if (filter == 0) {
        msgtyp = REC_MTYPE;
        flags |= MSG_EXCEPT;
    } else if (filter > 0) {
        if (filter > TYPE_MAX) return -EINVAL;
        msgtyp = (long)filter + 1;
    } else {
        msgtyp = -filter > TYPE_MAX ? -(long)TYPE_MAX - 1 : -(long)(-filter + 1);
    }
    int64_t step = -BACKOFF_YIELDS;
    int waited = 0, left_seen = 0;
    for (;;) {
        int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
        if (dead) return dead;
        if (c->held) {
            int rc = held_wins(c, filter);
            if (rc < 0) return rc;
            if (rc) {
                ssize_t n =
                    ferry__deliver(&c->base, m, keep_fds, c->held_type, c->held_data, c->held_len);
                if (n >= 0) {
                    free(c->held_data);
                    c->held_data = NULL;
                    c->held = 0;
                }
                return n;
            }
        }
        ssize_t n = msgrcv(c->rx, c->rxbuf, HDR + c->max_msg, msgtyp, flags);
        if (n >= 0) {
            ferry__frame f;
            int rc = frame_check(c, n, &f);
            if (rc < 0) return chan_fail(c, rc);
            const uint8_t *payload = c->rxbuf->text + HDR;
            if (f.len <= m->cap)
                return ferry__deliver(&c->base, m, keep_fds, f.type, payload, f.len);
            /* It is out of the queue already: hold it at the front. */
            uint8_t *copy = malloc(f.len);
            if (!copy) return -ENOMEM;
            memcpy(copy, payload, f.len);
            c->held = 1;
            c->held_type = f.type;
            c->held_len = f.len;
            c->held_data = copy;
            m->type = f.type;
            m->len = f.len;
            return -EMSGSIZE;
        }
        if (errno == EINTR) continue;
        if (errno == E2BIG) { /* longer than any frame of this channel: drop it */
            while (msgrcv(c->rx, c->rxbuf, HDR + c->max_msg, msgtyp, flags | MSG_NOERROR) < 0 &&
                   errno == EINTR) {
            }
            return chan_fail(c, -EBADMSG);
        }
        if (errno != ENOMSG) return queue_error(c, c->rx, errno);
        /* Opener: the listener has left? Then nothing more comes; what it sent before it
         * left (the mark) is all in the queue now: one more look, then -EPIPE (the
         * channel is not failed: an untyped receive still drains other types). */
        if (c->has_hello && !left_seen) {
            left_seen = listener_left(c->rx);
            if (left_seen) continue;
        } else if (left_seen) {
            return -EPIPE;
        }
        int64_t at = ferry__when_at(w);
        if (!waited && ferry__remaining(at) > 0) FERRY__COUNT(c->base.st.recv_waits, 1);
        waited = 1;
        if (!backoff(&step, at)) return timed_out(at);
    }
}

static int svq_fd(ferry_chan *ch)
{
    (void)ch;
    return -EOPNOTSUPP; /* System V queues are not file descriptors */
}

static size_t svq_max_msg(const ferry_chan *ch)
{
    return ((const sv_chan *)ch)->max_msg;
}

static void svq_close(ferry_chan *ch)
{
    chan_free((sv_chan *)ch);
}

/* ------------------------------------------------------------------ URLs */

/* Parse the URL part: *key (IPC_PRIVATE for ""), or *id for "#MSQID" (then *key is
 * left alone and *by_id set). Errors: -EINVAL. */
static int parse_where(const char *where, key_t *key, int *id, int *by_id)
{
    *by_id = 0;
    if (!where) return -EINVAL;
    if (where[0] == '\0') {
        *key = IPC_PRIVATE;
        return 0;
    }
    const char *p = where;
    int base = 10;
    if (p[0] == '#') {
        *by_id = 1;
        p++;
    } else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (*p == '\0') return -EINVAL;
    uint64_t v = 0;
    for (; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            return -EINVAL;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > UINT32_MAX) return -EINVAL;
    }
    if (*by_id) {
        if (v > INT_MAX) return -EINVAL;
        *id = (int)v;
        return 0;
    }
    if (v == 0) return -EINVAL; /* 0 is IPC_PRIVATE: spelled "sysvmq://" */
    *key = (key_t)(uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------------ listen / accept / open */

typedef struct sv_listener {
    struct ferry_listener base;
    sv_ids *ids;
    sv_shape shape;
    int accepted;
    int efd;        /* readable until the one accept */
    int is_private; /* the door is IPC_PRIVATE: its URL is "sysvmq://#MSQID" */
} sv_listener;

/* Set msg_qbytes of queue id (0: leave the default). */
static int set_qbytes(int id, size_t qbytes)
{
    struct msqid_ds ds;
    if (qbytes == 0) return 0;
    if (msgctl(id, IPC_STAT, &ds) < 0) return -errno;
    ds.msg_qbytes = (msglen_t)qbytes;
    return msgctl(id, IPC_SET, &ds) < 0 ? -errno : 0;
}

/* FERRY_PERSIST on an existing door: reuse it when its hello matches the asked shape,
 * and make this process its listener: the hello and the back queue's owner record are
 * replaced by ones naming it. Errors: -EADDRINUSE (no hello: not ferry's, or its peer is
 * attached; another shape; the back queue gone or not this door's), -EACCES (the back
 * queue may not be written: only its owner's uid listens on it). On failure the records
 * are put back as they were. */
static int reattach(int door, const sv_shape *want, sv_ids *q)
{
    rec_buf hello, owner, b;
    ferry__svq_rec r;
    sv_shape have;
    ssize_t n = rec_take(door, &hello, FERRY__SVQ_HELLO_LEN);
    if (n < 0) return -EADDRINUSE; /* no hello: not ours, or its peer is attached */
    int rc = hello_decode(&hello, &r, &have);
    if (rc == 0 &&
        (have.max_msg != want->max_msg || have.crc != want->crc || !queue_exists(r.back)))
        rc = -EADDRINUSE;
    int took = 0;
    if (rc == 0) {
        q->back = r.back;
        n = rec_take(q->back, &owner, FERRY__SVQ_REC_MAX);
        ferry__svq_rec o;
        if (n >= 0) {
            took = 1;
            if (svq_rec_decode(owner.text, owner.len, &o) < 0 || o.kind != FERRY__SVQ_OWNER ||
                o.door != door)
                rc = -EADDRINUSE;
        } else if (n != -ENOMSG) {
            rc = n == -EACCES ? -EACCES : -EADDRINUSE;
        }
    }
    if (rc == 0) {
        ferry__svq_rec o = {.kind = FERRY__SVQ_OWNER, .door = door, .listener = ferry__proc_self()};
        rec_make(&b, &o);
        rc = rec_post(q->back, &b);
        if (rc < 0) rc = rc == -EACCES || rc == -EPERM ? -EACCES : -EADDRINUSE;
    }
    if (rc == 0) {
        hello_make(&b, q->back, want, ferry__proc_self());
        if (rec_post(door, &b) == 0) return 0;
        rc = -EADDRINUSE; /* cannot happen: the old hello's room is free */
        rec_take(q->back, &b, FERRY__SVQ_REC_MAX);
    }
    if (took) rec_post(q->back, &owner);
    rec_post(door, &hello);
    return rc;
}

/*
 * ferry_listen("sysvmq://KEY" or "sysvmq://"): make the door and back queues (mode
 * opts->mode) and post the hello. Errors: -EINVAL (bad URL, options beyond msgmax /
 * msgmnb), -EOPNOTSUPP (capacity 0 or FERRY_UNBOUNDED), -EADDRINUSE (KEY exists; with
 * FERRY_PERSIST: exists and is not a reusable ferry door of this shape), -EACCES,
 * -ENOSPC (msgmni), -ENOMEM. On failure the queues this call made are removed. The
 * caller owns *out.
 */
static int svq_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    ferry_chan_opts d;
    if (!o) {
        ferry__opts_defaults(&d);
        o = &d;
    }
    key_t key = IPC_PRIVATE;
    int id, by_id;
    int rc = parse_where(where, &key, &id, &by_id);
    if (rc == 0 && by_id) rc = -EINVAL; /* a listener makes its queues */
    sv_shape s;
    if (rc == 0) rc = shape_from_opts(o, &s);
    if (rc < 0) return rc;
    sv_listener *l = calloc(1, sizeof *l);
    sv_ids *q = calloc(1, sizeof *q);
    if (!l || !q) {
        free(l);
        free(q);
        return -ENOMEM;
    }
    int mode = (int)(o->mode & 0777);
    atomic_init(&q->refs, 1);
    q->persist = (o->flags & FERRY_PERSIST) != 0;
    q->owner = getpid();
    q->back = -1;
    int made = 0;
    q->door = msgget(key, IPC_CREAT | IPC_EXCL | mode);
    if (q->door >= 0) {
        made = 1;
        /* Only the owner writes to the back queue: its owner record cannot be forged by
         * a peer of another uid (an opener only receives from it). */
        q->back = msgget(IPC_PRIVATE, IPC_CREAT | (mode & ~022) | 0600);
        if (q->back < 0) rc = -errno;
        if (rc == 0) rc = set_qbytes(q->door, s.qbytes);
        if (rc == 0) rc = set_qbytes(q->back, s.qbytes);
        rec_buf b;
        if (rc == 0) {
            ferry__svq_rec o = {
                .kind = FERRY__SVQ_OWNER, .door = q->door, .listener = ferry__proc_self()};
            rec_make(&b, &o);
            rc = rec_post(q->back, &b);
        }
        if (rc == 0) {
            hello_make(&b, q->back, &s, ferry__proc_self());
            rc = rec_post(q->door, &b);
        }
    } else if (errno == EEXIST && q->persist) {
        q->door = msgget(key, 0);
        rc = q->door < 0 ? -errno : reattach(q->door, &s, q);
    } else {
        rc = errno == EEXIST ? -EADDRINUSE : -errno;
    }
    if (rc == 0) {
        l->efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->efd < 0) rc = -errno;
    }
    if (rc < 0) {
        if (made) msgctl(q->door, IPC_RMID, NULL);
        if (made && q->back >= 0) msgctl(q->back, IPC_RMID, NULL);
        free(q);
        free(l);
        return rc;
    }
    l->base.ops = &listener_ops;
    l->ids = q;
    l->shape = s;
    l->is_private = key == IPC_PRIVATE;
    if (l->is_private) atomic_store(&last_private, q->door);
    *out = &l->base;
    return 0;
}

/*
 * ferry_accept: the listener's channel (receives on the door, sends on the back queue),
 * once. Later calls wait out the deadline. Errors: -ETIMEDOUT, -EAGAIN, -ENOMEM.
 */
static int svq_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    sv_listener *l = (sv_listener *)fl;
    if (!l->accepted) {
        atomic_fetch_add(&l->ids->refs, 1); /* the channel shares the removal duty */
        int rc = chan_make(l->ids->back, l->ids->door, &l->shape, l->ids, out);
        if (rc < 0) return rc;
        l->accepted = 1;
        uint64_t v;
        ssize_t r = read(l->efd, &v, sizeof v); /* no longer readable: nobody waits */
        (void)r;
        return 0;
    }
    for (;;) {
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return timed_out(deadline);
        struct pollfd p = {.fd = l->efd, .events = POLLIN}; /* never readable again */
        struct timespec ts = {left / 1000000000, left % 1000000000};
        if (ppoll(&p, 1, left == INT64_MAX ? NULL : &ts, NULL) < 0 && errno != EINTR) return -errno;
    }
}

static int svq_listener_fd(const ferry_listener *fl)
{
    return ((const sv_listener *)fl)->efd;
}

/* A private door is reached by its id ("sysvmq://#MSQID"); a keyed one by the URL given
 * to ferry_listen (0: the generic layer's copy of it). */
static int svq_listener_url(const ferry_listener *fl, char *buf, size_t cap)
{
    const sv_listener *l = (const sv_listener *)fl;
    if (!l->is_private) return 0;
    int n = snprintf(buf, cap, "sysvmq://#%d", l->ids->door);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

static void svq_listener_close(ferry_listener *fl)
{
    sv_listener *l = (sv_listener *)fl;
    close(l->efd);
    ids_put(l->ids);
    free(l);
}

/*
 * ferry_chan_open("sysvmq://KEY", "sysvmq://#MSQID" or "sysvmq://"): find the door,
 * take its hello, and attach to the back queue it names. Does not wait. opts are not
 * used (the shape, FERRY_CHECKSUM included, comes from the hello). The channel holds the
 * hello until it is closed (one peer at a time).
 * Errors: -EINVAL (bad URL), -ENOENT (no such queue; "sysvmq://" without an inherited
 * private listener), -ECONNREFUSED (no hello: not a ferry door, or a peer is
 * attached), -EBADMSG (a malformed hello, or its back queue is gone), -EACCES, -ENOMEM.
 * On failure the hello is put back.
 */
static int svq_open(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline)
{
    (void)o;
    (void)deadline;
    key_t key = IPC_PRIVATE;
    int door = -1, by_id;
    int rc = parse_where(where, &key, &door, &by_id);
    if (rc < 0) return rc;
    if (!by_id && key == IPC_PRIVATE) {
        door = atomic_load(&last_private);
        if (door < 0) return -ENOENT;
    } else if (!by_id) {
        door = msgget(key, 0);
        if (door < 0) return -errno;
    }
    rec_buf h;
    ssize_t n = rec_take(door, &h, FERRY__SVQ_HELLO_LEN);
    /* From here on the hello is ours: give it back on any failure. */
    if (n == -ENOMSG) return -ECONNREFUSED;
    if (n == -E2BIG) return -ECONNREFUSED; /* a longer record first: a peer's attach record */
    if (n == -EINVAL || n == -EIDRM) return -ENOENT;
    if (n < 0) return (int)n;
    ferry__svq_rec r;
    sv_shape s;
    rc = hello_decode(&h, &r, &s);
    if (rc == 0 && !queue_exists(r.back)) rc = -EBADMSG;
    if (rc == 0) rc = chan_make(door, r.back, &s, NULL, out);
    if (rc < 0) {
        rec_post(door, &h); /* give the hello back, as it was */
        return rc;
    }
    sv_chan *c = (sv_chan *)*out;
    c->has_hello = 1;
    c->owner = getpid();
    c->hello = h;
    /* In the hello's place, a record of who holds it (for `ferry ls`). Best effort: a
     * door filled by a raw writer has no room, and the channel works without it. */
    ferry__svq_rec a = {.kind = FERRY__SVQ_ATTACH,
                        .back = r.back,
                        .door = door,
                        .listener = r.listener,
                        .opener = ferry__proc_self()};
    rec_make(&c->attach, &a);
    c->attached = rec_post(door, &c->attach) == 0;
    return 0;
}

static const ferry__listener_ops listener_ops = {
    .accept = svq_accept,
    .fd = svq_listener_fd,
    .url = svq_listener_url,
    .close = svq_listener_close,
};

static const ferry__chan_ops chan_ops = {
    .sendmsg = svq_sendmsg,
    .recvmsg = svq_recvmsg,
    .fd = svq_fd,
    .max_msg = svq_max_msg,
    .close = svq_close,
};

const ferry__transport ferry__sysvmq_transport = {
    .scheme = "sysvmq",
    .listen = svq_listen,
    .open = svq_open,
};
