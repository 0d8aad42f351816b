// SPDX-License-Identifier: MIT
/*
 * bcast.c — ferry_bcast: one publisher, any number of subscribers, every subscriber gets
 * every message in order (ferry.h, "broadcast"), zero copy through shared memory.
 *
 * The object is a sealed memfd (shm/obj.h, kind FERRY_OBJ_BCAST) shared like the
 * synchronization objects (fork, descriptor, ferry_publish). Layout:
 *     [bshm: header, sizes, head, wait words] [max_subs subscriber entries, 64 B each]
 *     [nslots slots: a 32-byte slot header, then max_msg bytes, stride a multiple of 64]
 *
 * Sequence numbers. Message s (0, 1, 2, ...) lives in slot s & (nslots - 1). `head` is
 * the number of messages published; only the publisher writes it.
 *
 * Subscribers. Entry i: state (FREE, JOINING, ACTIVE), flags, the process identity
 * {start time, pid} (0 while FREE: a leaving subscriber clears it, an evicter clears it
 * by CAS first) and `pos`: the sequence of the next message this subscriber has not
 * released (bit 63 HOLD: a peek of message pos is outstanding). A subscriber moves its own
 * pos forward (CAS); the publisher moves the pos of a FERRY_SUB_DROP_OLDEST subscriber
 * forward (CAS, never while HOLD is set) when it needs that slot: that is a drop. The
 * subscriber tells the drops from its own moves with a private `expect` (the pos it last
 * set): lost += pos - expect whenever it finds pos ahead. So lost counts are exact.
 *
 * Room. The publisher may write message s into its slot when every ACTIVE entry has
 * pos > s - nslots (the message that slot held has been released by all). A lagging
 * blocking subscriber (or a drop-oldest one holding a peek of that exact message) makes
 * the publisher wait: futex pub_ftx with pub_waiting, sliced at 20 ms; at every slice (and
 * before giving up on a deadline) it checks that the blocking subscriber's process is
 * alive, and evicts a dead one (CAS ACTIVE -> FREE). A dead subscriber thus blocks the
 * publisher for one slice plus the check (~20-40 ms), never 100 ms.
 *
 * A peek sets HOLD by CAS, so the slot is stable until ferry_sub_release; a copying
 * receive of a drop-oldest subscriber holds its message the same way for the copy (so no
 * copy is ever torn, and there is no data race on the bytes); a blocking subscriber's
 * copy needs no hold, as the publisher never moves its pos.
 *
 * Joining (the subtle point): a subscriber claims a FREE entry (CAS -> JOINING), writes
 * its identity, flags and pos = head, stores ACTIVE (seq_cst), then reads head again
 * (seq_cst) and moves pos forward to it if it grew. The publisher reads states (seq_cst)
 * after its seq_cst store of head; so either its scan for a message sees the entry
 * ACTIVE, or the joiner's second read of head sees that message's head store — and the
 * joiner then starts after the slot being overwritten. The start is that second head:
 * what was published before it is not the joiner's, and not counted as lost.
 *
 * Wake-ups (the Dekker pairs of shm/wait.h, with seq_cst on both sides):
 *   data: subscriber sub_waiting++, read data_ftx, re-check head; publisher stores head,
 *         reads sub_waiting, and if set bumps data_ftx and wakes all.
 *   room: publisher pub_waiting = 1, read pub_ftx, re-check room; a subscriber moves pos
 *         (or frees its entry), reads pub_waiting, and if set clears it, bumps pub_ftx
 *         and wakes.
 * Every sleep is sliced at 20 ms, so a lost wake-up (from a hostile sharer) costs a slice.
 *
 * Gaps (ferry_bcast_skip). A gap record takes one slot like a message (type GAP_TYPE, its
 * slot's len = n, the count of messages it stands for, n >= 1) and is never handed out:
 * every subscriber that takes it adds n to its lost count. Each slot also carries
 * `extra`, the sum of (n - 1) over the gap records before it, so record s is message
 * number s + extra(s) of the stream; a subscriber keeps the extra of the record it expects
 * (`xk`) and, at every record it reads, adds extra - xk to lost: the messages of gap
 * records the publisher dropped for it (counted as one each by the pos jump) are then
 * counted exactly too. The publisher keeps the running total in the header (`extra`); a
 * joiner needs it together with head, so a skip changes both inside a seqlock (`xgen`,
 * odd while it writes; a plain publish changes head only, which leaves extra(head) as it
 * was). A library older than gaps writes no extra (0: no gaps) and takes a gap record as
 * -EBADMSG (its type is negative), without counting it.
 *
 * End of stream: ferry_bcast_close in the publisher's process sets `closed`; subscribers
 * get -EPIPE once they have taken everything. A publisher process that dies is noticed by
 * waiting subscribers at their next slice (its identity is in the header).
 *
 * Hostile sharers can write every shared word: sizes are read once at map time and
 * checked against the mapping; slots are indexed by sequence & mask, entries are bounded
 * by the private max_subs, a length read from a slot is bounded by max_msg, and every
 * retry loop is bounded. Such a sharer can break the stream (-EBADMSG, lost or repeated
 * messages), never make ferry read or write outside the object.
 *
 * Threads: a ferry_bcast handle may be used from any thread, but publish/loan/commit by
 * one thread at a time (one publisher). A ferry_sub is used by one thread at a time.
 */
#define _GNU_SOURCE /* syscall(), pidfd_open via SYS_, fstat with -std=c11 */
#include "core/abi.h"
#include "core/time.h"
#include "core/proc.h"
#include "core/futex.h"
#include "ferry/ferry.h"
#include "broker/client.h"
#include "shm/obj.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SUBS_OFF  256u
#define SUB_BYTES 64u
#define SLOT_HDR  32u
#define HOLD      ((uint64_t)1 << 63)
#define SLICE_NS  ((int64_t)20 * 1000 * 1000)
#define SPINS     128
#define RETRY_MAX 100000        /* a bound on CAS retries (only a hostile sharer needs it) */
#define GAP_TYPE  ((int64_t)-1) /* a gap record's type (messages have types >= 0) */
#define XGEN_MAX  64            /* a bound on the joiner's seqlock retries (yields) */

enum { SUB_FREE = 0, SUB_JOINING = 1, SUB_ACTIVE = 2 };

typedef struct bshm {
    ferry__obj_hdr hdr;
    uint32_t nslots;         /* power of two; written once at create, read once at map */
    uint32_t max_subs;       /* written once */
    uint64_t max_msg;        /* written once */
    _Atomic uint64_t pub_id; /* the publisher's identity (start << 22 | pid) */
    _Atomic uint32_t closed; /* the publisher closed: end of stream */
    _Atomic uint32_t pub_ftx, pub_waiting;
    _Atomic uint32_t data_ftx, sub_waiting;
    _Atomic uint32_t npolled; /* entries with a doorbell (ferry_sub_poll_fd) */
    _Atomic uint32_t used;    /* 1 + the highest entry ever claimed: the publisher's scans
                                 stop there (bounded by max_subs on use) */
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t extra; /* extra(head): the sum of (n - 1) over the gap records */
    _Atomic uint32_t xgen;  /* the seqlock of (head, extra) for a skip: odd while it writes */
} bshm;

typedef struct subent {
    _Atomic uint32_t state; /* SUB_* */
    _Atomic uint32_t flags; /* FERRY_SUB_* */
    _Atomic uint64_t id;    /* the subscriber's process identity */
    _Atomic uint64_t pos;   /* next message not released; | HOLD while peeked */
    _Atomic uint64_t token; /* 0, or the name of its doorbell socket (ferry_sub_poll_fd) */
    _Atomic uint32_t bell;  /* 0 armed: the next publish rings; 1 rung or not needed */
    char pad[SUB_BYTES - 36];
} subent;

typedef struct slothdr {
    _Atomic uint64_t seq; /* the message it holds */
    _Atomic int64_t type;
    _Atomic uint64_t len;   /* bytes; in a gap record, the messages it stands for */
    _Atomic uint64_t extra; /* the sum of (n - 1) over the gap records before it */
} slothdr;

_Static_assert(sizeof(bshm) <= SUBS_OFF, "the header overlaps the entries");
_Static_assert(sizeof(subent) == SUB_BYTES, "entry size");
_Static_assert(sizeof(slothdr) == SLOT_HDR, "slot header size");

struct ferry_bcast {
    int fd;
    ferry__seg seg;
    bshm *sh;
    subent *subs;
    char *slots;
    /* private copies of the sizes (checked against the mapping at map time) */
    uint32_t nslots, max_subs;
    size_t max_msg, stride;
    /* publisher state (one publishing thread at a time) */
    int loaned;
    uint64_t loan_seq;
    size_t loan_len;
    _Atomic int bellsock; /* -1, or the socket the publisher rings doorbells with */
};

struct ferry_sub {
    ferry_bcast *b;
    subent *e;
    uint32_t flags;
    uint64_t expect; /* the pos this subscriber last set */
    uint64_t xk;     /* extra of record `expect` (top of the file, "Gaps") */
    uint64_t lost;   /* messages the publisher dropped for us, and those of gap records */
    int peeked;      /* a peek of message `expect` is outstanding */
    int bellfd;      /* -1, or the doorbell (ferry_sub_poll_fd) */
    uint64_t id;     /* our identity, as written into the entry */
};

/* ------------------------------------------------------------------ helpers */

static slothdr *slot_at(const ferry_bcast *b, uint64_t seq)
{
    return (slothdr *)(b->slots + (size_t)(seq & (b->nslots - 1)) * b->stride);
}

/* head and extra(head) as one pair, read inside the seqlock of a skip (top of the file):
 * every load is seq_cst, so loads between two equal even xgen values saw none of a
 * skip's stores in part. A sharer that leaves xgen odd (or a publisher stopped inside a
 * skip for XGEN_MAX yields) costs those tries, and the last pair read is then used: the
 * joiner's lost count may be off by that one gap (lost counts are a sharer's to break
 * anyway). Few tries: under load a yield can cost a time slice. */
static uint64_t stream_pos(bshm *sh, uint64_t *extra)
{
    uint64_t h = 0, x = 0;
    for (int i = 0; i < XGEN_MAX; i++) {
        uint32_t g = atomic_load_explicit(&sh->xgen, memory_order_seq_cst);
        h = atomic_load_explicit(&sh->head, memory_order_seq_cst);
        x = atomic_load_explicit(&sh->extra, memory_order_seq_cst);
        if (!(g & 1) && atomic_load_explicit(&sh->xgen, memory_order_seq_cst) == g) break;
        if (i > 4) sched_yield(); /* a skip is a few stores: its publisher was preempted */
    }
    *extra = x;
    return h;
}

/* ------------------------------------------------------------------ making and mapping */

/* The defaults, as a full struct of this version. */
static void opts_defaults(ferry_bcast_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->slots = 64;
    o->max_msg = 4096;
    o->max_subs = 32;
}

void ferry_bcast_opts_init_sized(ferry_bcast_opts *o, size_t size)
{
    ferry_bcast_opts d;
    opts_defaults(&d);
    ferry__sized_init(o, size, &d, sizeof d);
}

static size_t stride_of(size_t max_msg)
{
    return (SLOT_HDR + max_msg + 63) & ~(size_t)63;
}

/* Total bytes for these sizes, or 0 if too large. */
static size_t size_of(uint32_t nslots, uint32_t max_subs, size_t max_msg)
{
    size_t slots_off = SUBS_OFF + (size_t)max_subs * SUB_BYTES;
    size_t st = stride_of(max_msg);
    if (st != 0 && nslots > (FERRY__OBJ_MAX - slots_off) / st) return 0;
    size_t total = slots_off + (size_t)nslots * st;
    return total > FERRY__OBJ_MAX ? 0 : total;
}

static int make_handle(int fd, ferry__seg seg, ferry_bcast **out)
{
    if (seg.size < SUBS_OFF) return -EBADMSG;
    bshm *sh = seg.base;
    /* One private copy of the sizes (obj.h): a sharer may rewrite them any time. */
    uint32_t nslots = *(volatile uint32_t *)&sh->nslots;
    uint32_t max_subs = *(volatile uint32_t *)&sh->max_subs;
    uint64_t max_msg = *(volatile uint64_t *)&sh->max_msg;
    if (nslots < 2 || (nslots & (nslots - 1)) || max_subs < 1 || max_subs > FERRY_BCAST_MAX_SUBS ||
        max_msg < 1 || max_msg > FERRY__OBJ_MAX)
        return -EBADMSG;
    size_t need = size_of(nslots, max_subs, (size_t)max_msg);
    if (need == 0 || need > seg.size) return -EBADMSG;
    ferry_bcast *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    b->fd = fd;
    atomic_init(&b->bellsock, -1);
    b->seg = seg;
    b->sh = sh;
    b->subs = (subent *)((char *)seg.base + SUBS_OFF);
    b->slots = (char *)seg.base + SUBS_OFF + (size_t)max_subs * SUB_BYTES;
    b->nslots = nslots;
    b->max_subs = max_subs;
    b->max_msg = (size_t)max_msg;
    b->stride = stride_of((size_t)max_msg);
    *out = b;
    return 0;
}

int ferry_bcast_create(const ferry_bcast_opts *opts, ferry_bcast **out)
{
    if (!out) return -EINVAL;
    ferry_bcast_opts o;
    opts_defaults(&o);
    int rc = ferry__sized_in(&o, sizeof o, opts, FERRY__BCAST_OPTS_V0); /* core/abi.h */
    if (rc < 0) return rc;
    if (o.slots < 2 || (o.slots & (o.slots - 1)) || o.max_msg < 1 ||
        o.max_msg > FERRY_MAX_MSG_LIMIT || o.max_subs < 1 || o.max_subs > FERRY_BCAST_MAX_SUBS)
        return -EINVAL;
    size_t size = size_of(o.slots, o.max_subs, o.max_msg);
    if (size == 0) return -EINVAL;
    int fd;
    ferry__seg seg;
    rc = ferry__obj_create(FERRY_OBJ_BCAST, size, &fd, &seg);
    if (rc < 0) return rc;
    bshm *sh = seg.base;
    sh->nslots = o.slots;
    sh->max_subs = o.max_subs;
    sh->max_msg = o.max_msg;
    atomic_store_explicit(&sh->pub_id, ferry__proc_self(), memory_order_relaxed);
    /* Every slot's seq starts at a value no message has below nslots: slot i holds
     * "message i - nslots" (never published): UINT64_MAX - x. Only used as a check. */
    for (uint32_t i = 0; i < o.slots; i++) {
        slothdr *h = (slothdr *)((char *)seg.base + SUBS_OFF + (size_t)o.max_subs * SUB_BYTES +
                                 (size_t)i * stride_of(o.max_msg));
        atomic_store_explicit(&h->seq, UINT64_MAX, memory_order_relaxed);
    }
    /* Nobody else sees the object before the fd leaves this process (fork, sendmsg,
     * ferry_publish), each of which orders these stores before the other side's reads. */
    rc = make_handle(fd, seg, out);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        close(fd);
    }
    return rc;
}

int ferry_bcast_adopt(int fd, ferry_bcast **out)
{
    if (fd < 0) return -EBADMSG;
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    ferry__seg seg;
    int rc = ferry__obj_map(fd, FERRY_OBJ_BCAST, &seg);
    if (rc == 0) {
        rc = make_handle(fd, seg, out);
        if (rc < 0) ferry__seg_unmap(&seg);
    }
    if (rc < 0) close(fd);
    return rc;
}

int ferry_bcast_open(const char *name, ferry_bcast **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    int fd = -1;
    int rc = ferry__obj_open(name, FERRY_OBJ_BCAST, &fd, timeout_ns);
    if (rc < 0) return rc;
    return ferry_bcast_adopt(fd, out);
}

int ferry_bcast_fd(const ferry_bcast *b)
{
    return b ? b->fd : -EINVAL;
}

size_t ferry_bcast_max_msg(const ferry_bcast *b)
{
    return b ? b->max_msg : 0;
}

int ferry_bcast_subscribers(const ferry_bcast *b)
{
    if (!b) return -EINVAL;
    int n = 0;
    for (uint32_t i = 0; i < b->max_subs; i++) /* relaxed: a snapshot */
        if (atomic_load_explicit(&b->subs[i].state, memory_order_relaxed) == SUB_ACTIVE) n++;
    return n;
}

/* A subscriber's lag: messages published that entry e has not released, 0..nslots.
 * pos is read before head (both seq_cst: after the subscriber's and the publisher's
 * stores in the one total order), so an honest pos is never past that head; a later
 * publish may make the difference exceed nslots by the time head is read, and a sharer
 * can write anything: clamped. *pos_out: the pos word as read (HOLD bit included). */
static uint64_t lag_of(const ferry_bcast *b, subent *e, uint64_t *pos_out)
{
    uint64_t p = atomic_load_explicit(&e->pos, memory_order_seq_cst);
    uint64_t head = atomic_load_explicit(&b->sh->head, memory_order_seq_cst);
    uint64_t pv = p & ~HOLD;
    *pos_out = p;
    if (pv >= head) return 0;
    return head - pv > b->nslots ? b->nslots : head - pv;
}

int ferry_bcast_stats(const ferry_bcast *b, ferry_bcast_counters *ust)
{
    if (!b || ferry__sized_check(ust, FERRY__BCAST_COUNTERS_V0) < 0) return -EINVAL;
    ferry_bcast_counters full = {
        .size = sizeof full, .max_subs = b->max_subs, .slots = b->nslots, .max_msg = b->max_msg};
    /* The stream's count (skipped messages included) as one pair; the rest relaxed:
     * counters, a snapshot; each word is read once. */
    uint64_t x, h = stream_pos(b->sh, &x);
    full.published = h + x;
    full.ended = atomic_load_explicit(&b->sh->closed, memory_order_relaxed) != 0;
    for (uint32_t i = 0; i < b->max_subs; i++) { /* bounded by the private max_subs */
        subent *e = &b->subs[i];
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != SUB_ACTIVE) continue;
        full.subscribers++;
        uint64_t p, lag = lag_of(b, e, &p);
        if (lag > full.max_lag) full.max_lag = lag;
    }
    /* a full struct of this version, then the caller's prefix of it (core/abi.h) */
    return ferry__sized_out(ust, &full, sizeof full, FERRY__BCAST_COUNTERS_V0);
}

ssize_t ferry_bcast_list(const ferry_bcast *b, ferry_bcast_sub_info *out, size_t cap)
{
    if (!b || (!out && cap)) return -EINVAL;
    size_t n = 0;
    for (uint32_t i = 0; i < b->max_subs && n < cap; i++) { /* bounded by the private max_subs */
        subent *e = &b->subs[i];
        /* relaxed: a snapshot of one entry; each word is read once and checked. */
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != SUB_ACTIVE) continue;
        uint64_t id = atomic_load_explicit(&e->id, memory_order_relaxed);
        uint32_t fl = atomic_load_explicit(&e->flags, memory_order_relaxed);
        uint64_t p, lag = lag_of(b, e, &p);
        ferry_bcast_sub_info *r = &out[n++];
        memset(r, 0, sizeof *r);
        r->pid = ferry__proc_pid(id);
        r->flags = fl & FERRY_SUB_DROP_OLDEST; /* only the flags we know */
        r->lag = lag;
        r->holding = (p & HOLD) != 0;
        r->alive = id != 0 && !ferry__proc_dead(id); /* id 0: being evicted or garbage */
    }
    return (ssize_t)n;
}

static void ring_all(ferry_bcast *b);

int ferry_bcast_end(ferry_bcast *b)
{
    if (!b) return -EINVAL;
    bshm *sh = b->sh;
    /* End of stream. seq_cst: a Dekker pair with a waiting subscriber's sub_waiting++
     * and its re-check of closed, like a publish (the wake-up is unconditional anyway). */
    atomic_store_explicit(&sh->closed, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&sh->data_ftx, 1, memory_order_seq_cst);
    ferry__futex_wake(&sh->data_ftx, INT32_MAX);
    ring_all(b); /* the end makes the doorbells readable too */
    return 0;
}

void ferry_bcast_close(ferry_bcast *b)
{
    if (!b) return;
    if (atomic_load_explicit(&b->sh->pub_id, memory_order_relaxed) == ferry__proc_self())
        ferry_bcast_end(b);
    int bs = atomic_load_explicit(&b->bellsock, memory_order_relaxed);
    if (bs >= 0) close(bs);
    ferry__seg_unmap(&b->seg);
    close(b->fd);
    free(b);
}

/* ------------------------------------------------------------------ doorbells
 * ferry_sub_poll_fd. A memfd cannot be polled and the publisher holds no descriptor of a
 * subscriber's, so a polled subscription owns a SOCK_DGRAM unix socket bound to an
 * abstract address named by a random 64-bit token ("\0ferry-bcast-<hex>"), which it
 * writes into its entry; the publisher rings it by sending one byte there from a socket of
 * its own (MSG_DONTWAIT: never blocks). The entry's `bell` word keeps the system calls to
 * the transitions (event.c's scheme): 0 armed — the next publish must ring; 1 rung, or
 * not needed. The publisher, after its seq_cst store of head, reads npolled and each
 * polled entry's bell (seq_cst) and rings iff it flips 0 -> 1. The subscriber settles its
 * bell whenever it found or left nothing to take: drain the socket, arm (seq_cst store),
 * re-check head (seq_cst) and ring itself if a message (or the end) is there — the Dekker
 * pair with the publisher, so the descriptor is readable while a message waits and not
 * after the subscriber emptied its backlog (level-triggered; a ring delayed between flip
 * and send, or a datagram from anyone who knows the name — abstract names are listed in
 * /proc/net/unix — is a spurious wake-up: recv then says -EAGAIN and settles again).
 * Abstract names are per network namespace: publisher and subscriber must share one. */

static void bell_addr(uint64_t token, struct sockaddr_un *sa, socklen_t *len)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "ferry-bcast-%016llx",
                     (unsigned long long)token);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void bell_send(int sock, uint64_t token)
{
    struct sockaddr_un sa;
    socklen_t len;
    bell_addr(token, &sa, &len);
    char c = 1;
    /* ECONNREFUSED (it left), EAGAIN (full: readable already): nothing to do */
    if (sendto(sock, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0) {
    }
}

/* The publisher's ringing socket, made on first need (-1 if it cannot be made: the
 * subscribers then notice messages at their next settle or wait). */
static int pub_sock(ferry_bcast *b)
{
    /* relaxed / acq_rel: the descriptor is a plain value; racing creators close theirs */
    int fd = atomic_load_explicit(&b->bellsock, memory_order_acquire);
    if (fd >= 0) return fd;
    int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (nfd < 0) return -1;
    int expect = -1;
    if (!atomic_compare_exchange_strong_explicit(&b->bellsock, &expect, nfd, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        close(nfd);
        return expect;
    }
    return nfd;
}

/* How many entries the publisher must scan. seq_cst: after its seq_cst store of head;
 * a joiner raises `used` (seq_cst) before it stores ACTIVE, so the joining argument (top
 * of the file) holds for this load as for the load of the state. */
static uint32_t scan_len(const ferry_bcast *b)
{
    uint32_t n = atomic_load_explicit(&b->sh->used, memory_order_seq_cst);
    return n < b->max_subs ? n : b->max_subs;
}

/* Ring every armed doorbell (after a publish or the end). */
static void ring_all(ferry_bcast *b)
{
    /* seq_cst: after the seq_cst store of head (or closed); the Dekker pair with a
     * settling subscriber's arm and re-check. */
    if (!atomic_load_explicit(&b->sh->npolled, memory_order_seq_cst)) return;
    for (uint32_t i = 0, n = scan_len(b); i < n; i++) {
        subent *e = &b->subs[i];
        uint64_t token = atomic_load_explicit(&e->token, memory_order_seq_cst);
        if (!token || atomic_load_explicit(&e->bell, memory_order_seq_cst) != 0) continue;
        if (atomic_exchange_explicit(&e->bell, 1, memory_order_seq_cst) != 0) continue;
        int sock = pub_sock(b);
        if (sock >= 0) bell_send(sock, token);
    }
}

/* ------------------------------------------------------------------ publishing */

/* Can message s go into its slot? 1 yes; 0 no, *blocker = the entry in the way. Drops
 * for drop-oldest subscribers as it goes. */
static int room_for(ferry_bcast *b, uint64_t s, uint32_t *blocker)
{
    if (s < b->nslots) return 1;      /* the slot never held a message */
    uint64_t low = s - b->nslots + 1; /* every pos must be >= low */
    for (uint32_t i = 0, n = scan_len(b); i < n; i++) {
        subent *e = &b->subs[i];
        /* seq_cst: after our seq_cst store of head (the joining argument at the top). */
        if (atomic_load_explicit(&e->state, memory_order_seq_cst) != SUB_ACTIVE) continue;
        for (int tries = 0;; tries++) {
            /* seq_cst: the room Dekker pair (a subscriber's pos move, then its load of
             * pub_waiting). Also acquire: the subscriber's reads of the slot happen
             * before it moved pos, so before our overwrite. */
            uint64_t p = atomic_load_explicit(&e->pos, memory_order_seq_cst);
            uint64_t pv = p & ~HOLD;
            if (pv >= low) break;
            uint32_t fl = atomic_load_explicit(&e->flags, memory_order_relaxed);
            if (!(fl & FERRY_SUB_DROP_OLDEST) || (p & HOLD) || tries > RETRY_MAX) {
                *blocker = i;
                return 0;
            }
            /* Drop the oldest: move its pos to low. seq_cst CAS: fails if the subscriber
             * moved it (or set HOLD) meanwhile; then we look again. */
            if (atomic_compare_exchange_strong_explicit(&e->pos, &p, low, memory_order_seq_cst,
                                                        memory_order_seq_cst))
                break;
        }
    }
    return 1;
}

/* Free the entry of the dead process `id` (judged dead by the caller). The id is
 * cleared first, by CAS: one evicter wins, and an entry whose id is no longer that one
 * (freed and claimed again meanwhile) is left alone. Entries are freed with id 0 (see
 * ferry_sub_close), so while the id is the dead process's nobody else can claim the
 * entry and the state may be set FREE plainly. 1 if we freed it. */
static int evict(ferry_bcast *b, subent *e, uint64_t id)
{
    if (id == 0 || !atomic_compare_exchange_strong_explicit(&e->id, &id, 0, memory_order_seq_cst,
                                                            memory_order_relaxed))
        return 0;
    if (atomic_exchange_explicit(&e->token, 0, memory_order_seq_cst))
        atomic_fetch_sub_explicit(&b->sh->npolled, 1, memory_order_seq_cst);
    /* seq_cst (a release): the cleared id and token come before the entry is free */
    atomic_store_explicit(&e->state, SUB_FREE, memory_order_seq_cst);
    return 1;
}

/* The blocking entry is a dead process's: free it. */
static void check_blocker(ferry_bcast *b, uint32_t i)
{
    subent *e = &b->subs[i];
    uint64_t id = atomic_load_explicit(&e->id, memory_order_relaxed);
    if (id != 0 && ferry__proc_dead(id)) evict(b, e, id);
}

static int wait_room(ferry_bcast *b, uint64_t s, ferry__when *w)
{
    bshm *sh = b->sh;
    uint32_t blocker = 0;
    for (int i = 0; i < SPINS; i++) {
        if (room_for(b, s, &blocker)) return 0;
        sched_yield();
    }
    int64_t next_check = 0; /* check the blocker at once, then every slice */
    for (;;) {
        /* Announce, read the word, re-check (the room Dekker pair, seq_cst). */
        atomic_store_explicit(&sh->pub_waiting, 1, memory_order_seq_cst);
        uint32_t v = atomic_load_explicit(&sh->pub_ftx, memory_order_seq_cst);
        if (room_for(b, s, &blocker)) return 0;
        int64_t now = ferry__now_ns();
        if (now >= next_check) {
            check_blocker(b, blocker);
            next_check = now + SLICE_NS;
            if (room_for(b, s, &blocker)) return 0;
        }
        int64_t left = ferry__when_left(w);
        if (left < 0) return (int)left;
        if (left > SLICE_NS) left = SLICE_NS;
        ferry__futex_wait(&sh->pub_ftx, v, left); /* woken, EAGAIN, EINTR, timeout: re-check */
    }
}

/* The next record's number, once its slot is free (waits as publish): 0, or an error. */
static int reserve(ferry_bcast *b, uint64_t *seq, ferry__when *w)
{
    bshm *sh = b->sh;
    uint64_t id = ferry__proc_self();
    /* relaxed: a label read by subscribers' liveness checks only */
    if (atomic_load_explicit(&sh->pub_id, memory_order_relaxed) != id)
        atomic_store_explicit(&sh->pub_id, id, memory_order_relaxed);
    /* relaxed: only the publisher writes head */
    *seq = atomic_load_explicit(&sh->head, memory_order_relaxed);
    return wait_room(b, *seq, w);
}

/* Record s is in its slot (seq stored): make it visible (head, with the skip's extra in
 * the seqlock when xnew != NULL) and wake the subscribers. */
static void publish_record(ferry_bcast *b, uint64_t s, const uint64_t *xnew)
{
    bshm *sh = b->sh;
    uint32_t g = 0;
    if (xnew) {
        /* seq_cst: the seqlock (stream_pos): odd, then extra and head, then even, all in
         * the one total order of the joiner's seq_cst loads. Only the publisher writes. */
        g = atomic_load_explicit(&sh->xgen, memory_order_relaxed);
        atomic_store_explicit(&sh->xgen, g | 1, memory_order_seq_cst);
        atomic_store_explicit(&sh->extra, *xnew, memory_order_seq_cst);
    }
    /* seq_cst: release for the slot (subscribers acquire head), and the first half of the
     * data Dekker pair (our load of sub_waiting follows) and of the joining argument. */
    atomic_store_explicit(&sh->head, s + 1, memory_order_seq_cst);
    if (xnew) atomic_store_explicit(&sh->xgen, (g | 1) + 1, memory_order_seq_cst);
    if (atomic_load_explicit(&sh->sub_waiting, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&sh->data_ftx, 1, memory_order_seq_cst);
        ferry__futex_wake(&sh->data_ftx, INT32_MAX);
    }
    ring_all(b);
}

int ferry_bcast_loan(ferry_bcast *b, size_t len, void **buf, int64_t timeout_ns)
{
    ferry__when w;
    if (!b || !buf || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (b->loaned) return -EBUSY;
    /* relaxed: a flag; publishing after the end is the caller's error */
    if (atomic_load_explicit(&b->sh->closed, memory_order_relaxed)) return -EPIPE;
    if (len > b->max_msg) return -EMSGSIZE;
    uint64_t s;
    int rc = reserve(b, &s, &w);
    if (rc < 0) return rc;
    b->loaned = 1;
    b->loan_seq = s;
    b->loan_len = len;
    *buf = (char *)slot_at(b, s) + SLOT_HDR;
    return 0;
}

int ferry_bcast_commit(ferry_bcast *b, int64_t type, size_t len)
{
    if (!b || !b->loaned || len > b->loan_len || type < 0) return -EINVAL;
    bshm *sh = b->sh;
    uint64_t s = b->loan_seq;
    slothdr *h = slot_at(b, s);
    atomic_store_explicit(&h->type, type, memory_order_relaxed);
    atomic_store_explicit(&h->len, len, memory_order_relaxed);
    /* relaxed: only the publisher writes extra (read once; a sharer's value only skews
     * the lost counts) */
    atomic_store_explicit(&h->extra, atomic_load_explicit(&sh->extra, memory_order_relaxed),
                          memory_order_relaxed);
    /* release: the data, type, len and extra are visible to whoever reads this seq */
    atomic_store_explicit(&h->seq, s, memory_order_release);
    b->loaned = 0;
    publish_record(b, s, NULL);
    return 0;
}

int ferry_bcast_skip(ferry_bcast *b, uint64_t n, int64_t timeout_ns)
{
    ferry__when w;
    if (!b || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (b->loaned) return -EBUSY;
    /* relaxed: a flag; publishing after the end is the caller's error */
    if (atomic_load_explicit(&b->sh->closed, memory_order_relaxed)) return -EPIPE;
    if (n == 0) return 0;
    bshm *sh = b->sh;
    uint64_t s;
    int rc = reserve(b, &s, &w);
    if (rc < 0) return rc;
    /* relaxed: only the publisher writes extra; read once */
    uint64_t x = atomic_load_explicit(&sh->extra, memory_order_relaxed);
    /* The stream's count s + x + n stays within INT64_MAX. */
    if (s > (uint64_t)INT64_MAX || x > (uint64_t)INT64_MAX - s || n > (uint64_t)INT64_MAX - s - x)
        return -EOVERFLOW;
    slothdr *h = slot_at(b, s);
    atomic_store_explicit(&h->type, GAP_TYPE, memory_order_relaxed);
    atomic_store_explicit(&h->len, n, memory_order_relaxed);
    atomic_store_explicit(&h->extra, x, memory_order_relaxed);
    /* release: type, len and extra are visible to whoever reads this seq */
    atomic_store_explicit(&h->seq, s, memory_order_release);
    uint64_t xnew = x + n - 1;
    publish_record(b, s, &xnew);
    return 0;
}

int ferry_bcast_publish(ferry_bcast *b, int64_t type, const void *data, size_t len,
                        int64_t timeout_ns)
{
    if (!b || type < 0 || (len && !data)) return -EINVAL;
    void *buf;
    int rc = ferry_bcast_loan(b, len, &buf, timeout_ns);
    if (rc < 0) return rc;
    if (len) memcpy(buf, data, len);
    return ferry_bcast_commit(b, type, len);
}

/* ------------------------------------------------------------------ subscribing */

/* A subscriber moved its pos or left: wake the publisher if it waits for room. */
static void wake_pub(bshm *sh)
{
    /* seq_cst: the second half of the room Dekker pair (our pos move came first). */
    if (atomic_load_explicit(&sh->pub_waiting, memory_order_seq_cst) &&
        atomic_exchange_explicit(&sh->pub_waiting, 0, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&sh->pub_ftx, 1, memory_order_seq_cst);
        ferry__futex_wake(&sh->pub_ftx, INT32_MAX);
    }
}

static int claim_entry(ferry_bcast *b, int reclaim)
{
    for (uint32_t i = 0; i < b->max_subs; i++) {
        subent *e = &b->subs[i];
        uint32_t st = atomic_load_explicit(&e->state, memory_order_relaxed);
        if (st != SUB_FREE && reclaim) {
            /* ACTIVE, or JOINING by a process that died subscribing (once its id is
             * written; a joiner killed before that instruction leaks the entry) */
            uint64_t id = atomic_load_explicit(&e->id, memory_order_relaxed);
            if (id != 0 && ferry__proc_dead(id) && evict(b, e, id)) st = SUB_FREE;
        }
        /* acquire on success: the previous owner's last accesses come before ours */
        if (st == SUB_FREE &&
            atomic_compare_exchange_strong_explicit(&e->state, &st, SUB_JOINING,
                                                    memory_order_acquire, memory_order_relaxed))
            return (int)i;
    }
    return -1;
}

int ferry_bcast_subscribe(ferry_bcast *b, uint32_t flags, ferry_sub **out)
{
    if (!b || !out || (flags & ~FERRY_SUB_DROP_OLDEST)) return -EINVAL;
    ferry_sub *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    int i = claim_entry(b, 0);
    if (i < 0) i = claim_entry(b, 1); /* full: free the entries of dead processes */
    if (i < 0) {
        free(s);
        return -ENOSPC;
    }
    bshm *sh = b->sh;
    subent *e = &b->subs[i];
    uint64_t me = ferry__proc_self();
    atomic_store_explicit(&e->id, me, memory_order_relaxed);
    /* Raise `used` to cover us (seq_cst, before our ACTIVE store: see scan_len). */
    uint32_t u = atomic_load_explicit(&sh->used, memory_order_seq_cst);
    while (u < (uint32_t)i + 1 &&
           !atomic_compare_exchange_weak_explicit(&sh->used, &u, (uint32_t)i + 1,
                                                  memory_order_seq_cst, memory_order_seq_cst)) {
    }
    atomic_store_explicit(&e->flags, flags, memory_order_relaxed);
    atomic_store_explicit(&e->bell, 1, memory_order_relaxed);
    if (atomic_exchange_explicit(&e->token, 0, memory_order_seq_cst)) /* a leftover */
        atomic_fetch_sub_explicit(&sh->npolled, 1, memory_order_seq_cst);
    uint64_t h = atomic_load_explicit(&sh->head, memory_order_seq_cst);
    atomic_store_explicit(&e->pos, h, memory_order_relaxed);
    /* seq_cst: the publisher's scan either sees us ACTIVE (and, by this release, our id,
     * flags and pos) or our next load of head sees its store (top of the file). */
    atomic_store_explicit(&e->state, SUB_ACTIVE, memory_order_seq_cst);
    /* head again (each of stream_pos's loads is seq_cst, after the store of ACTIVE), with
     * extra(head): the stream's count before our first message. */
    uint64_t x2, h2 = stream_pos(sh, &x2);
    for (int tries = 0; h2 != h && tries < RETRY_MAX; tries++) {
        uint64_t p = atomic_load_explicit(&e->pos, memory_order_seq_cst);
        if ((p & ~HOLD) >= h2) break;
        if (atomic_compare_exchange_weak_explicit(&e->pos, &p, h2, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            break;
    }
    s->b = b;
    s->e = e;
    s->flags = flags;
    s->expect = h2;
    s->xk = x2;
    s->bellfd = -1;
    s->id = me;
    *out = s;
    return 0;
}

void ferry_sub_close(ferry_sub *s)
{
    if (!s) return;
    if (s->bellfd >= 0) {
        if (atomic_exchange_explicit(&s->e->token, 0, memory_order_seq_cst))
            atomic_fetch_sub_explicit(&s->b->sh->npolled, 1, memory_order_seq_cst);
        close(s->bellfd);
    }
    /* Only if the entry is still ours (not evicted: a misjudged process; then it may be
     * someone else's by now). Entries are free with id 0 (evict relies on it); the CAS
     * is ordered before the seq_cst store below. */
    uint64_t me = s->id;
    if (atomic_compare_exchange_strong_explicit(&s->e->id, &me, 0, memory_order_relaxed,
                                                memory_order_relaxed))
        /* seq_cst: our last reads of slots come before the entry is free (release), and
         * the first half of the room Dekker pair with a waiting publisher. */
        atomic_store_explicit(&s->e->state, SUB_FREE, memory_order_seq_cst);
    wake_pub(s->b->sh);
    free(s);
}

uint64_t ferry_sub_lost(const ferry_sub *s)
{
    return s ? s->lost : 0;
}

uint64_t ferry_sub_seq(const ferry_sub *s)
{
    return s ? s->expect + s->xk : 0;
}

/* Is the stream over for us: closed, or the publisher dead? -EPIPE or 0. */
static int pub_gone(ferry_bcast *b)
{
    if (atomic_load_explicit(&b->sh->closed, memory_order_seq_cst)) return -EPIPE;
    uint64_t id = atomic_load_explicit(&b->sh->pub_id, memory_order_relaxed);
    return ferry__proc_dead(id) ? -EPIPE : 0;
}

/* Wait for message `want` (head > want) or the end. 0, -EPIPE, -ETIMEDOUT, -EAGAIN. */
static int wait_data(ferry_bcast *b, uint64_t want, ferry__when *w)
{
    bshm *sh = b->sh;
    for (int i = 0; i < SPINS; i++) {
        /* acquire: pairs with the publisher's store of head; the slot is visible */
        if (atomic_load_explicit(&sh->head, memory_order_acquire) > want) return 0;
        if (i > 8) sched_yield();
    }
    int checked = 0;
    for (;;) {
        /* The data Dekker pair: count ourselves in, read the word, re-check (seq_cst). */
        atomic_fetch_add_explicit(&sh->sub_waiting, 1, memory_order_seq_cst);
        uint32_t v = atomic_load_explicit(&sh->data_ftx, memory_order_seq_cst);
        int rc = 0;
        if (atomic_load_explicit(&sh->head, memory_order_seq_cst) > want) {
            rc = 1;
        } else if (atomic_load_explicit(&sh->closed, memory_order_seq_cst) ||
                   (checked && pub_gone(b))) {
            rc = -EPIPE;
        } else {
            int64_t left = ferry__when_left(w);
            if (left < 0) {
                rc = (int)left;
            } else {
                if (left > SLICE_NS) left = SLICE_NS;
                ferry__futex_wait(&sh->data_ftx, v, left);
                checked = 1; /* check the publisher's liveness from the next round on */
            }
        }
        atomic_fetch_sub_explicit(&sh->sub_waiting, 1, memory_order_relaxed);
        if (rc == 1) return 0;
        if (rc < 0) {
            /* The end comes only after what was published before it. */
            if (rc == -EPIPE && atomic_load_explicit(&sh->head, memory_order_acquire) > want)
                return 0;
            return rc;
        }
    }
}

static void after_take(ferry_sub *s);
static int advance(ferry_sub *s, uint64_t from, uint64_t seq);

/* Record p is read and taken: a held one's slot is given back (our pos moves past it), a
 * blocking subscriber's pos advances. 0, or -EBADMSG when a blocking subscriber's pos
 * moved under it (a sharer). */
static int done_with(ferry_sub *s, uint64_t p, int hold)
{
    if (!hold) return advance(s, p, p) == 1 ? -EBADMSG : 0;
    /* seq_cst: release of our reads of the slot, and the room Dekker pair */
    atomic_store_explicit(&s->e->pos, p + 1, memory_order_seq_cst);
    s->expect = p + 1;
    wake_pub(s->b->sh);
    return 0;
}

/* Record p (seq checked; held if `hold`) is read: count the messages of gap records that
 * were dropped for us (its extra against ours). Then, if it is a gap record, take it and
 * count its messages: 1 (taken; the caller looks for the next record), -EBADMSG (taken: a
 * sharer wrote it), or 0 (a message: the caller hands it out). */
static int take_gap(ferry_sub *s, uint64_t p, slothdr *h, int hold)
{
    /* Stable: a blocking subscriber's pos is p and a held one's slot is not rewritten (a
     * sharer aside: every value is checked or only counted). */
    uint64_t x = atomic_load_explicit(&h->extra, memory_order_relaxed);
    if (x >= s->xk) s->lost += x - s->xk; /* less: a sharer's; not counted */
    s->xk = x;
    if (atomic_load_explicit(&h->type, memory_order_relaxed) != GAP_TYPE) return 0;
    uint64_t n = atomic_load_explicit(&h->len, memory_order_relaxed);
    if (done_with(s, p, hold) < 0) return -EBADMSG;
    if (n == 0) return -EBADMSG; /* a sharer's (a gap stands for >= 1 message) */
    s->lost += n;
    s->xk = x + n - 1; /* extra of the next record */
    return 1;
}

/* Find the next message: its seq in *seq and slot in *h (0), or an error. Accounts
 * drops. With hold, the message is held (HOLD set) on success. */
static int next_msg(ferry_sub *s, int hold, uint64_t *seq, slothdr **hp, ferry__when *w)
{
    ferry_bcast *b = s->b;
    subent *e = s->e;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        if (atomic_load_explicit(&e->state, memory_order_relaxed) != SUB_ACTIVE ||
            atomic_load_explicit(&e->id, memory_order_relaxed) != s->id)
            return -EPIPE; /* evicted (only happens to a process misjudged dead) */
        /* acquire: a drop by the publisher moved it; nothing else to see */
        uint64_t p = atomic_load_explicit(&e->pos, memory_order_acquire);
        if (p & HOLD) return -EBADMSG; /* not ours: a sharer wrote it */
        if (p < s->expect) return -EBADMSG;
        if (p > s->expect) {
            s->lost += p - s->expect; /* the publisher dropped these for us */
            s->expect = p;
        }
        int rc = wait_data(b, p, w);
        if (rc < 0) {
            after_take(s); /* nothing there (or the end): the doorbell must say so */
            return rc;
        }
        slothdr *h = slot_at(b, p);
        /* acquire: pairs with the publisher's release of the slot */
        if (atomic_load_explicit(&h->seq, memory_order_acquire) != p) {
            if (s->flags & FERRY_SUB_DROP_OLDEST) continue; /* overwritten: dropped */
            return -EBADMSG;
        }
        if (hold) {
            /* seq_cst CAS: from now on the publisher cannot drop (and overwrite) it */
            uint64_t want = p;
            if (!atomic_compare_exchange_strong_explicit(
                    &e->pos, &want, p | HOLD, memory_order_seq_cst, memory_order_seq_cst))
                continue; /* dropped meanwhile */
            if (atomic_load_explicit(&h->seq, memory_order_acquire) != p) {
                atomic_store_explicit(&e->pos, p, memory_order_seq_cst);
                return -EBADMSG; /* it changed under a hold: a sharer wrote it */
            }
        }
        rc = take_gap(s, p, h, hold);
        if (rc == 1) continue; /* a gap record: counted, taken; the next one */
        if (rc < 0) {
            after_take(s);
            return rc;
        }
        *seq = p;
        *hp = h;
        return 0;
    }
    return -EBADMSG;
}

/* A blocking subscriber took message seq (its pos was `from`): mark it released and wake
 * the publisher if it waits. 0, or 1 when the pos had changed (only a sharer does that). */
static int advance(ferry_sub *s, uint64_t from, uint64_t seq)
{
    uint64_t want = from;
    /* seq_cst CAS: release (our reads of the slot come before the publisher's
     * overwrite), and the first half of the room Dekker pair (wake_pub follows). */
    if (!atomic_compare_exchange_strong_explicit(&s->e->pos, &want, seq + 1, memory_order_seq_cst,
                                                 memory_order_seq_cst))
        return 1;
    s->expect = seq + 1;
    wake_pub(s->b->sh);
    return 0;
}

ssize_t ferry_sub_recv(ferry_sub *s, void *buf, size_t cap, int64_t *type, int64_t timeout_ns)
{
    ferry__when w;
    if (!s || (cap && !buf) || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (s->peeked) return -EBUSY;
    /* A drop-oldest subscriber holds the message while it copies (as a peek does), so
     * the publisher cannot drop and overwrite it under the copy; a blocking one need not:
     * the publisher never moves its pos. */
    int hold = (s->flags & FERRY_SUB_DROP_OLDEST) != 0;
    uint64_t seq;
    slothdr *h;
    int rc = next_msg(s, hold, &seq, &h, &w);
    if (rc < 0) return rc;
    uint64_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&h->type, memory_order_relaxed);
    ssize_t ret = (ssize_t)len;
    if (len > s->b->max_msg || t < 0)
        ret = -EBADMSG; /* a sharer wrote it (types are >= 0): taken, not handed out */
    else if (len > cap)
        ret = -EMSGSIZE; /* it stays */
    else if (len)
        memcpy(buf, (char *)h + SLOT_HDR, (size_t)len);
    if (ret == -EMSGSIZE) {
        /* Leave it queued: drop the hold (only we move a held pos). seq_cst: the room
         * Dekker pair, as in release. */
        if (hold) {
            atomic_store_explicit(&s->e->pos, seq, memory_order_seq_cst);
            wake_pub(s->b->sh);
        }
        return ret;
    }
    if (done_with(s, seq, hold) < 0) return -EBADMSG;
    if (ret >= 0 && type) *type = t;
    after_take(s);
    return ret;
}

int ferry_sub_peek(ferry_sub *s, ferry_msg *m, int64_t timeout_ns)
{
    ferry__when w;
    if (!s || !m || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (s->peeked) return -EBUSY;
    uint64_t seq;
    slothdr *h;
    int rc = next_msg(s, 1, &seq, &h, &w);
    if (rc < 0) return rc;
    /* Held: stable until release (a hostile sharer aside: len is bounded anyway). */
    uint64_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
    if (len > s->b->max_msg) len = s->b->max_msg;
    int64_t type = atomic_load_explicit(&h->type, memory_order_relaxed);
    s->peeked = 1;
    if (type < 0) { /* a sharer wrote it (types are >= 0): taken, not handed out */
        ferry_sub_release(s);
        return -EBADMSG;
    }
    m->type = type;
    m->len = (size_t)len;
    m->data = (char *)h + SLOT_HDR;
    m->nfds = 0;
    return 0;
}

int ferry_sub_release(ferry_sub *s)
{
    if (!s || !s->peeked) return -EINVAL;
    s->peeked = 0;
    uint64_t seq = s->expect;
    /* seq_cst: release of our reads of the slot, and the room Dekker pair. Only we move
     * a held pos, so a plain store (a sharer's scribble aside). */
    atomic_store_explicit(&s->e->pos, seq + 1, memory_order_seq_cst);
    s->expect = seq + 1;
    wake_pub(s->b->sh);
    after_take(s);
    return 0;
}

/* ------------------------------------------------------------------ the doorbell */

/* Drain, arm, re-check and ring ourselves if a message (or the end) waits. */
static void settle(ferry_sub *s)
{
    subent *e = s->e;
    bshm *sh = s->b->sh;
    char buf[16];
    for (int i = 0; i < 1024; i++)
        if (recv(s->bellfd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    /* seq_cst store, then seq_cst loads: the Dekker pair with a publisher's store of
     * head (or closed) and its load of our bell (ring_all). */
    atomic_store_explicit(&e->bell, 0, memory_order_seq_cst);
    uint64_t p = atomic_load_explicit(&e->pos, memory_order_seq_cst) & ~HOLD;
    if (atomic_load_explicit(&sh->head, memory_order_seq_cst) > p ||
        atomic_load_explicit(&sh->closed, memory_order_seq_cst)) {
        if (atomic_exchange_explicit(&e->bell, 1, memory_order_seq_cst) == 0)
            bell_send(s->bellfd, atomic_load_explicit(&e->token, memory_order_relaxed));
    }
}

/* After a take or a failed wait: keep the doorbell exact. A message still waiting means
 * the bell is rung (1) with its byte queued: nothing to do. */
static void after_take(ferry_sub *s)
{
    if (s->bellfd < 0 || s->peeked) return;
    uint64_t p = atomic_load_explicit(&s->e->pos, memory_order_relaxed) & ~HOLD;
    /* acquire: a plain check; settle re-checks with seq_cst */
    if (atomic_load_explicit(&s->b->sh->head, memory_order_acquire) > p &&
        atomic_load_explicit(&s->e->bell, memory_order_relaxed) == 1)
        return;
    settle(s);
}

int ferry_sub_poll_fd(ferry_sub *s)
{
    if (!s) return -EINVAL;
    if (s->bellfd >= 0) return s->bellfd;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    uint64_t token = 0;
    int rc = -EADDRINUSE;
    for (int tries = 0; tries < 8 && rc == -EADDRINUSE; tries++) {
        if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token) {
            rc = -errno;
            break;
        }
        if (token == 0) continue;
        struct sockaddr_un sa;
        socklen_t len;
        bell_addr(token, &sa, &len);
        rc = bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    s->bellfd = fd;
    subent *e = s->e;
    atomic_store_explicit(&e->bell, 1, memory_order_relaxed); /* not armed yet */
    /* seq_cst: a publisher that sees npolled sees the token (and then reads the bell) */
    atomic_store_explicit(&e->token, token, memory_order_seq_cst);
    atomic_fetch_add_explicit(&s->b->sh->npolled, 1, memory_order_seq_cst);
    settle(s);
    return fd;
}
