// SPDX-License-Identifier: MIT
/*
 * event.c — ferry_event: reliable, counted event notification with a 64-bit payload
 * (ferry.h, "events"), between any processes that hold the object.
 *
 * The queue. A bounded multi-producer multi-consumer queue of u64 payloads in a sealed
 * memfd (obj.h): D. Vyukov's bounded MPMC queue, one sequence word per slot. Slot i serves
 * the positions p = i (mod cap); its word says what it holds:
 *     2p      free for the post at position p;
 *     2p + 1  holds the event posted at position p (not yet taken).
 * (Twice the position, so that cap 1 is no special case.) A poster claims position `tail`
 * by a CAS when its slot reads 2*tail, writes the payload and publishes 2*tail+1; a taker
 * claims `head` by a CAS when its slot reads 2*head+1, reads the payload and frees the
 * slot for the next round (2*(head+cap)). Posting to a full queue waits (futex) for room:
 * nothing is lost or overwritten. A process killed between claiming a position and
 * publishing it (two instructions) leaves that position unfinished: the queue then stalls
 * there (no taker can pass it). A hostile sharer can break the queue for everyone (it can
 * write every word); this code only ever indexes slots by position mod the capacity it
 * read once when it mapped the object, bounds every loop, and reports a queue whose
 * words contradict each other as -EBADMSG.
 *
 * Coalescing (FERRY_EVENT_COALESCE): the poster scans the untaken events from head to
 * tail for an equal payload; it merges with one (counting it in `merged`, posting
 * nothing) if, after reading the payload, the slot still reads "holds the event of this
 * position": like a seqlock read. The merge takes effect at that check; a taker that has
 * claimed the slot but not yet freed it returns the payload only after freeing it, so the
 * merged post is delivered with it (a standard signal merged into a pending one). Two
 * coalescing posts of one payload made at the same moment into a queue without it may
 * both be enqueued (each scanned before the other published): merging is never wrong,
 * but concurrent posts may fail to merge.
 *
 * Pollability. A memfd cannot be polled, and a poster in another process cannot make a
 * descriptor of the consumer's readable unless it holds that descriptor too (inotify on a
 * memfd sees no writes: pseudo files are FMODE_NONOTIFY). So the object is not the memfd
 * alone: it is a carrier socket. At create: socketpair(SOCK_SEQPACKET) -> (A, B); one
 * message "FEV1" carrying SCM_RIGHTS [memfd, A] is sent on A into B's receive queue, where
 * it stays forever. B is the object's descriptor (ferry_event_fd, what ferryd keeps for a
 * published queue, what ferry_event_adopt takes). Whoever holds B reads that message
 * with MSG_PEEK, which leaves it queued and installs duplicates of the memfd (mapped, then
 * closed) and of A. So every holder has:
 *     B  the doorbell's sending end: a 1-byte send on B lands in A's receive queue;
 *     A  the doorbell's receiving end: readable while a doorbell waits (the poll fd).
 * A is shared by every holder (one socket, one queue): ringing is "send on B", silencing
 * is "read everything from A". A shared word `bell` keeps the syscalls to the transitions:
 *     bell 1: rung, or nobody needs a ring;  bell 0: armed — the next post must ring.
 * A poster, after publishing its event, rings iff it flips bell 0 -> 1. A taker about to
 * sleep, or one that found or left the queue empty while someone polls (`polled`),
 * settles the doorbell: drain A, arm (bell = 0), re-check the queue and ring itself if it
 * is not empty. The publish / arm stores and the loads that follow them are seq_cst: a
 * Dekker pair, so either the poster sees the armed bell or the settling taker sees the
 * event. Hence A (the poll fd) is readable while an event waits and, once a taker emptied
 * the queue, not readable: level-triggered. (A poster delayed between flipping the bell
 * and its send can make A readable a moment after the queue emptied: a spurious wake-up,
 * after which ferry_event_next says -EAGAIN and settles again.) Nobody polling: bell stays
 * 1 and a post makes no system call. A taker waiting in ferry_event_next sleeps in poll on
 * the doorbells (one sleep works for a whole group).
 * Costs of this design: each live queue keeps two descriptors in flight in a socket queue,
 * charged to the creator's uid (the kernel limits a uid's descriptors in flight to its
 * RLIMIT_NOFILE), and a queue lives as long as any process holds B.
 *
 * Room. Posters that found the queue full wait on the futex word room_ftx after setting
 * room_waiting (many may share it); a taker, after freeing a slot (seq_cst), takes the
 * flag (exchange) when it is set, bumps room_ftx and wakes them all (the protocol of
 * shm/wait.h with seq_cst accesses instead of its asymmetric barriers, and a wake-all).
 *
 * Groups (ferry_event_open with "org.x.*"): one handle over several queues: a post goes
 * to each in turn (within one deadline: a post that fails may have reached some), a take
 * takes from any (round robin), the poll fd is an epoll set of their doorbells.
 * Threads: every call is safe from any thread on the same handle.
 */
#define _GNU_SOURCE /* ppoll, MSG_CMSG_CLOEXEC, syscall() for futexes */
#include "obj.h"
#include "core/abi.h"
#include "core/futex.h"

#include "core/name.h"
#include "core/time.h"
#include "ferry/ferry.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

#define EV_CAP_DEFAULT 1024u
#define EV_SLOTS_OFF   256u
#define EV_SPINS       256  /* polls of the queue before sleeping */
#define EV_DRAIN_MAX   1024 /* doorbells read per settle (more only from a hostile sharer) */
#define EV_SLICE_NS    (20 * 1000 * 1000) /* room waits re-check this often */

typedef struct evslot {
    _Atomic uint64_t seq;     /* 2p: free for position p; 2p+1: holds the event of p */
    _Atomic uint64_t payload; /* atomic: a coalescing poster may read it while it changes */
} evslot;

#define EV_CAP_MAX ((uint32_t)((FERRY__OBJ_MAX - EV_SLOTS_OFF) / sizeof(evslot)))

typedef struct evshm {
    ferry__obj_hdr hdr;
    uint32_t cap; /* written once at create; others read it once, when they map */
    uint32_t pad0;
    _Atomic uint64_t posted, merged;
    _Atomic uint32_t bell;   /* 0 armed (the next post rings), 1 rung or not needed */
    _Atomic uint32_t polled; /* someone asked for a poll fd: takers keep the doorbell exact */
    _Atomic uint32_t room_ftx, room_waiting;
    char pad1[64 - 16 - 8 - 16 - 16];
    _Alignas(64) _Atomic uint64_t tail; /* the next position to post (posters' line) */
    char pad2[56];
    _Alignas(64) _Atomic uint64_t head; /* the next position to take (takers' line) */
    char pad3[56];
} evshm;

_Static_assert(sizeof(evshm) <= EV_SLOTS_OFF, "the header overlaps the slots");
_Static_assert(offsetof(evshm, tail) == 64 && offsetof(evshm, head) == 128, "layout");

typedef struct member {
    evshm *q;
    evslot *slots;
    uint32_t cap; /* private copy, checked against the mapping */
    ferry__seg seg;
    int obj;  /* B: the carrier, the object's descriptor, the doorbell's sending end */
    int ring; /* A: the doorbell's receiving end (the poll fd of a single queue) */
} member;

struct ferry_event {
    size_t n;
    _Atomic uint32_t rr; /* group: the member the next take tries first */
    _Atomic int epfd;    /* group: the poll fd (epoll over the doorbells), or -1 */
    member m[];
};

/* ------------------------------------------------------------------ small helpers */

static ferry_event *ev_alloc(size_t n)
{
    ferry_event *e = calloc(1, sizeof *e + n * sizeof(member));
    if (!e) return NULL;
    atomic_init(&e->epfd, -1);
    for (size_t i = 0; i < n; i++) e->m[i].obj = e->m[i].ring = -1;
    return e;
}

static void member_free(member *m)
{
    ferry__seg_unmap(&m->seg);
    if (m->obj >= 0) close(m->obj);
    if (m->ring >= 0) close(m->ring);
    m->obj = m->ring = -1;
}

/* ------------------------------------------------------------------ the queue */

/* Post at the tail: 1 posted, 0 full, -EBADMSG inconsistent. */
static int try_post(member *m, uint64_t payload)
{
    evshm *q = m->q;
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (uint32_t spins = 0;; spins++) {
        evslot *s = &m->slots[pos % m->cap];
        /* acquire: pairs with the taker's release of the slot (below), so its read of the
         * old payload happens before our write of the new one. */
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - 2 * pos);
        if (dif == 0) {
            /* relaxed CAS: the claim orders nothing; the slot's word carries the data. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                atomic_store_explicit(&s->payload, payload, memory_order_relaxed);
                /* Publish. seq_cst, not just release (which orders the payload before it):
                 * it is the first half of the Dekker pair with a settling taker, whose
                 * seq_cst arm of the bell precedes its re-check of this word; our load of
                 * the bell (ring_bell) follows. */
                atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_seq_cst);
                return 1;
            }
            /* pos now holds the tail another poster moved to */
        } else if (dif < 0) {
            return 0; /* the slot still holds the event of pos - cap: full */
        } else {
            /* Our tail was stale (the slot was published or freed for a later round). A
             * slot can only be ahead of a tail that moved past it, so a fresh tail that
             * did not move means the words contradict each other. */
            uint64_t now = atomic_load_explicit(&q->tail, memory_order_relaxed);
            if (now == pos || spins > 4 * m->cap + 1000) return -EBADMSG;
            pos = now;
        }
    }
}

/* Take at the head: 1 taken, 0 empty, -EBADMSG inconsistent. */
static int try_take(member *m, uint64_t *payload)
{
    evshm *q = m->q;
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (uint32_t spins = 0;; spins++) {
        evslot *s = &m->slots[pos % m->cap];
        /* acquire: pairs with the poster's publish; its payload is visible. */
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (2 * pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *payload = atomic_load_explicit(&s->payload, memory_order_relaxed);
                /* Free the slot for the post cap positions on. Release: our payload read
                 * comes before the next poster's write. seq_cst: the first half of the
                 * Dekker pair with a poster waiting for room (wait_room), whose seq_cst
                 * room_waiting store precedes its re-check; our load of room_waiting
                 * follows. */
                atomic_store_explicit(&s->seq, 2 * (pos + m->cap), memory_order_seq_cst);
                if (atomic_load_explicit(&q->room_waiting, memory_order_seq_cst) &&
                    atomic_exchange_explicit(&q->room_waiting, 0, memory_order_seq_cst)) {
                    /* The bump is what a waiter that read room_ftx before it but has not
                     * slept yet notices (FUTEX_WAIT fails with EAGAIN). */
                    atomic_fetch_add_explicit(&q->room_ftx, 1, memory_order_seq_cst);
                    ferry__futex_wake(&q->room_ftx, INT32_MAX);
                }
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* not posted yet (or posted but not yet published): empty */
        } else {
            uint64_t now = atomic_load_explicit(&q->head, memory_order_relaxed);
            if (now == pos || spins > 4 * m->cap + 1000) return -EBADMSG;
            pos = now;
        }
    }
}

/* Is an event waiting at the head? seq_cst: the second half of the Dekker pairs (a
 * settling taker's re-check after arming the bell). */
static int has_event(member *m)
{
    uint64_t pos = atomic_load_explicit(&m->q->head, memory_order_seq_cst);
    uint64_t seq = atomic_load_explicit(&m->slots[pos % m->cap].seq, memory_order_seq_cst);
    return seq == 2 * pos + 1;
}

/* Is the slot at the tail free? seq_cst: the re-check of a poster waiting for room, after
 * its seq_cst store of room_waiting. */
static int has_room(member *m)
{
    uint64_t pos = atomic_load_explicit(&m->q->tail, memory_order_seq_cst);
    uint64_t seq = atomic_load_explicit(&m->slots[pos % m->cap].seq, memory_order_seq_cst);
    return (int64_t)(seq - 2 * pos) >= 0; /* > 0: the tail moved on meanwhile: retry */
}

/* Merge with an untaken event of this payload: 1 merged, 0 none found. */
static int try_merge(member *m, uint64_t payload)
{
    evshm *q = m->q;
    uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t n = tail - head;
    if (n > m->cap) n = m->cap; /* a stale head, or a hostile sharer: bounded anyway */
    for (uint64_t pos = head; pos != head + n; pos++) {
        evslot *s = &m->slots[pos % m->cap];
        /* acquire: the payload published with this word is visible. */
        if (atomic_load_explicit(&s->seq, memory_order_acquire) != 2 * pos + 1) continue;
        if (atomic_load_explicit(&s->payload, memory_order_relaxed) != payload) continue;
        /* Validate like a seqlock reader: the acquire fence keeps the payload read above
         * before the re-read of the word. Still "holds the event of pos" means nobody has
         * freed it (takers free after reading) and it was not reused (that would change
         * the word): the merge takes effect here, while the event is untaken. */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) != 2 * pos + 1) continue;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the doorbell */

/* Ring if armed. Call after publishing an event (its seq_cst store). */
static void ring_bell(member *m)
{
    evshm *q = m->q;
    /* seq_cst load: the second half of the Dekker pair begun by the publish. The
     * exchange makes one poster of many the one that sends. */
    if (atomic_load_explicit(&q->bell, memory_order_seq_cst) == 0 &&
        atomic_exchange_explicit(&q->bell, 1, memory_order_seq_cst) == 0) {
        char c = 1;
        /* Never blocks (MSG_DONTWAIT, whatever flags a sharer set on the file); a full
         * doorbell queue (EAGAIN) is readable already. */
        if (send(m->obj, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        }
    }
}

/* Silence the doorbell, arm it, and ring it again if an event waits (see the top). */
static void settle(member *m)
{
    char buf[16];
    for (int i = 0; i < EV_DRAIN_MAX; i++)
        if (recv(m->ring, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
    /* seq_cst store, then seq_cst loads in has_event: the Dekker pair with a poster's
     * publish and its load of the bell. */
    atomic_store_explicit(&m->q->bell, 0, memory_order_seq_cst);
    if (has_event(m)) ring_bell(m);
}

/* ------------------------------------------------------------------ post and take */

/* Wait until the slot at the tail may be free (0), or the deadline. */
static int wait_room(member *m, ferry__when *w)
{
    evshm *q = m->q;
    for (int i = 0; i < EV_SPINS; i++) {
        if (has_room(m)) return 0;
        cpu_relax();
    }
    for (;;) {
        /* Announce, read the word, re-check (wait.h's order): the seq_cst store and the
         * seq_cst loads of has_room pair with a taker's seq_cst free and its load of
         * room_waiting. The flag is shared by all waiters and not cleared on the way out
         * (another may still sleep): a stale flag costs one wake-up. */
        atomic_store_explicit(&q->room_waiting, 1, memory_order_seq_cst);
        uint32_t v = atomic_load_explicit(&q->room_ftx, memory_order_seq_cst);
        if (has_room(m)) return 0;
        int64_t left = ferry__when_left(w);
        if (left < 0) return (int)left;
        if (left > EV_SLICE_NS)
            left = EV_SLICE_NS;                   /* a lost wake-up
                                                  (a hostile sharer) costs a slice */
        ferry__futex_wait(&q->room_ftx, v, left); /* woken, EAGAIN, EINTR, timeout: re-check */
    }
}

static int post1(member *m, uint64_t payload, uint32_t flags, ferry__when *w)
{
    for (;;) {
        if ((flags & FERRY_EVENT_COALESCE) && try_merge(m, payload)) {
            atomic_fetch_add_explicit(&m->q->merged, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&m->q->posted, 1, memory_order_relaxed);
            return 0;
        }
        int rc = try_post(m, payload);
        if (rc < 0) return rc;
        if (rc > 0) break;
        if ((rc = wait_room(m, w)) < 0) return rc;
    }
    atomic_fetch_add_explicit(&m->q->posted, 1, memory_order_relaxed); /* a statistic */
    ring_bell(m);
    return 0;
}

/* Take from any member, starting at the round-robin point: 1, 0 (all empty), <0. */
static int take_any(ferry_event *e, uint64_t *payload)
{
    /* relaxed: only spreads the takes; orders nothing */
    size_t start = e->n > 1 ? atomic_fetch_add_explicit(&e->rr, 1, memory_order_relaxed) % e->n : 0;
    for (size_t k = 0; k < e->n; k++) {
        member *m = &e->m[(start + k) % e->n];
        int rc = try_take(m, payload);
        if (rc < 0) return rc;
        if (rc > 0) {
            /* Someone polls: if we emptied the queue, its doorbell must go quiet. (relaxed:
             * a flag set once; settle's seq_cst accesses do the ordering.) */
            if (atomic_load_explicit(&m->q->polled, memory_order_relaxed) && !has_event(m))
                settle(m);
            return 1;
        }
    }
    return 0;
}

int ferry_event_post(ferry_event *e, uint64_t payload, uint32_t flags, int64_t timeout_ns)
{
    ferry__when w;
    if (!e || (flags & ~FERRY_EVENT_COALESCE) || ferry__when_from(timeout_ns, &w) < 0)
        return -EINVAL;
    for (size_t i = 0; i < e->n; i++) {
        int rc = post1(&e->m[i], payload, flags, &w);
        if (rc < 0) return rc;
    }
    return 0;
}

int ferry_event_next(ferry_event *e, uint64_t *payload, int64_t timeout_ns)
{
    ferry__when w;
    if (!e || !payload || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    int rc = take_any(e, payload);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (w.at != 0) /* a short spin first: a post may be on its way */
        for (int i = 0; i < EV_SPINS && rc == 0; i++) {
            cpu_relax();
            rc = take_any(e, payload);
        }
    if (rc != 0) return rc < 0 ? rc : 0;
    struct pollfd few[8], *pf = e->n <= 8 ? few : malloc(e->n * sizeof *pf);
    if (!pf) return -ENOMEM;
    for (size_t i = 0; i < e->n; i++) pf[i] = (struct pollfd){.fd = e->m[i].ring, .events = POLLIN};
    for (;;) {
        /* Arm every doorbell (ringing those whose queue is not empty), then sleep on them.
         * FERRY_NOW settles only for pollers (so their poll fd says "empty" again). */
        for (size_t i = 0; i < e->n; i++)
            if (w.at != 0 || atomic_load_explicit(&e->m[i].q->polled, memory_order_relaxed))
                settle(&e->m[i]);
        rc = take_any(e, payload);
        if (rc != 0) break;
        int64_t left = ferry__when_left(&w);
        if (left < 0) {
            rc = (int)left;
            break;
        }
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        if (ppoll(pf, e->n, left == INT64_MAX ? NULL : &ts, NULL) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if ((rc = take_any(e, payload)) != 0) break;
    }
    if (pf != few) free(pf);
    return rc < 0 ? rc : 0;
}

int ferry_event_stats(const ferry_event *e, ferry_event_counters *st)
{
    if (!e || !st) return -EINVAL;
    ferry_event_counters full = {.size = sizeof full};
    for (size_t i = 0; i < e->n; i++) { /* relaxed: statistics, a snapshot */
        full.posted += atomic_load_explicit(&e->m[i].q->posted, memory_order_relaxed);
        full.merged += atomic_load_explicit(&e->m[i].q->merged, memory_order_relaxed);
    }
    /* a full struct of this version, then the caller's prefix of it (core/abi.h) */
    return ferry__sized_out(st, &full, sizeof full, FERRY__EVENT_COUNTERS_V0);
}

int ferry_event_poll_fd(ferry_event *e)
{
    if (!e) return -EINVAL;
    int fd = e->n == 1 ? e->m[0].ring : atomic_load_explicit(&e->epfd, memory_order_acquire);
    if (fd < 0) { /* a group's epoll set, made once (the first thread's wins) */
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) return -errno;
        for (size_t i = 0; i < e->n; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i}; /* level-triggered */
            if (epoll_ctl(ep, EPOLL_CTL_ADD, e->m[i].ring, &ev) < 0) {
                int err = -errno;
                close(ep);
                return err;
            }
        }
        int none = -1;
        /* acq_rel: publishes the finished set to the other threads of this handle. */
        if (atomic_compare_exchange_strong_explicit(&e->epfd, &none, ep, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            fd = ep;
        } else {
            close(ep);
            fd = none;
        }
    }
    for (size_t i = 0; i < e->n; i++) {
        /* From now on takers keep the doorbell exact (relaxed: the settle below, and every
         * later one, does the ordering that matters). */
        atomic_store_explicit(&e->m[i].q->polled, 1, memory_order_relaxed);
        settle(&e->m[i]);
    }
    return fd;
}

int ferry_event_fd(const ferry_event *e)
{
    if (!e || e->n != 1) return -EINVAL; /* a group is several objects */
    return e->m[0].obj;
}

void ferry_event_close(ferry_event *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->n; i++) member_free(&e->m[i]);
    int ep = atomic_load_explicit(&e->epfd, memory_order_relaxed);
    if (ep >= 0) close(ep);
    free(e);
}

/* ------------------------------------------------------------------ making and sharing */

int ferry_event_create(uint32_t capacity, ferry_event **out)
{
    if (!out) return -EINVAL;
    if (capacity == 0) capacity = EV_CAP_DEFAULT;
    if (capacity > EV_CAP_MAX) return -EINVAL;
    ferry_event *e = ev_alloc(1);
    if (!e) return -ENOMEM;
    member *m = &e->m[0];
    int mfd = -1, sv[2] = {-1, -1};
    int rc = ferry__obj_create(FERRY_OBJ_EVENT, EV_SLOTS_OFF + (size_t)capacity * sizeof(evslot),
                               &mfd, &m->seg);
    if (rc < 0) goto fail;
    m->q = m->seg.base;
    m->slots = (evslot *)((char *)m->seg.base + EV_SLOTS_OFF);
    m->cap = m->q->cap = capacity;
    /* Nobody else sees the object yet: plain initialization; the sendmsg below (a system
     * call) comes before anyone else can map it. */
    for (uint32_t i = 0; i < capacity; i++) atomic_init(&m->slots[i].seq, 2 * (uint64_t)i);
    atomic_init(&m->q->bell, 1);
    /* The carrier: [memfd, A] in B's queue (see the header); sv = {A, B}. */
    if ((rc = ferry__carrier_make(FERRY_OBJ_EVENT, mfd, &sv[0], &sv[1])) < 0) goto fail;
    close(mfd);
    m->ring = sv[0];
    m->obj = sv[1];
    e->n = 1;
    *out = e;
    return 0;
fail:
    if (mfd >= 0) close(mfd);
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    ferry__seg_unmap(&m->seg);
    free(e);
    return rc;
}

/* Make m from the carrier fd, which m then owns (closed on failure). The carrier is
 * checked by ferry__carrier_open (obj.h): magic, exactly [memfd, doorbell], the memfd an
 * event queue, the doorbell fd's own peer. */
static int member_adopt(member *m, int fd)
{
    int got[2], ngot = 0;
    int rc = ferry__carrier_open(fd, FERRY_OBJ_EVENT, &got[0], &got[1]);
    if (rc < 0) goto out;
    ngot = 2;
    if ((rc = ferry__obj_map(got[0], FERRY_OBJ_EVENT, &m->seg)) < 0) goto out;
    m->q = m->seg.base;
    /* The capacity, read once (a sharer may change the shared word later), must fit. */
    uint32_t cap = *(volatile uint32_t *)&m->q->cap;
    if (cap == 0 || cap > EV_CAP_MAX || EV_SLOTS_OFF + (size_t)cap * sizeof(evslot) > m->seg.size) {
        ferry__seg_unmap(&m->seg);
        rc = -EBADMSG;
        goto out;
    }
    m->cap = cap;
    m->slots = (evslot *)((char *)m->seg.base + EV_SLOTS_OFF);
    close(got[0]); /* mapped: the memfd itself is no longer needed */
    m->ring = got[1];
    m->obj = fd;
    return 0;
out:
    for (int i = 0; i < ngot; i++) close(got[i]);
    close(fd);
    return rc;
}

int ferry_event_adopt(int fd, ferry_event **out)
{
    if (fd < 0) return -EINVAL;
    ferry_event *e = out ? ev_alloc(1) : NULL;
    if (!e) {
        close(fd);
        return out ? -ENOMEM : -EINVAL;
    }
    int rc = member_adopt(&e->m[0], fd);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->n = 1;
    *out = e;
    return 0;
}

/* A sub-call's timeout: what is left of the caller's deadline. */
static int64_t sub_timeout(int64_t deadline)
{
    if (deadline == FERRY__NO_DEADLINE) return FERRY_FOREVER;
    int64_t left = ferry__remaining(deadline);
    return left > 0 ? left : FERRY_NOW;
}

/* Every queue published under a name matching pattern that the caller may open. */
static int open_group(const char *pattern, ferry_event **out, int64_t timeout_ns)
{
    if (ferry__pattern_valid(pattern) < 0) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    char after[256] = "";
    size_t plen = strlen(pattern) - 1; /* "org.x.*" -> the prefix "org.x." ("*": "") */
    if (plen > 0)
        snprintf(after, sizeof after, "%.*s", (int)(plen - 1), pattern); /* "org.x"
                         sorts just before every name below it */
    enum { PAGE_N = 32 };
    ferry_name_info *page = malloc(PAGE_N * sizeof *page);
    ferry_event *e = NULL;
    size_t n = 0, capm = 0;
    int rc = page ? 0 : -ENOMEM;
    for (int done = 0; rc == 0 && !done;) {
        ssize_t got = ferry_list(after, page, PAGE_N, sub_timeout(deadline));
        if (got < 0) {
            rc = (int)got;
            break;
        }
        done = got < PAGE_N;
        for (ssize_t i = 0; i < got && rc == 0; i++) {
            const char *nm = page[i].name;
            if (plen > 0 && strncmp(nm, pattern, plen) > 0) { /* past the prefix: the end */
                done = 1;
                break;
            }
            if (!ferry__pattern_match(pattern, nm)) continue;
            int fd;
            int r = ferry__obj_open(nm, FERRY_OBJ_EVENT, &fd, sub_timeout(deadline));
            /* Gone meanwhile, not ours to open, or not an event queue: not in the group. */
            if (r == -ENOENT || r == -EACCES || r == -EPROTOTYPE) continue;
            if (r < 0) {
                rc = r;
                break;
            }
            if (n == capm) {
                size_t nc = capm ? capm * 2 : 4;
                ferry_event *ne = realloc(e, sizeof *e + nc * sizeof(member));
                if (!ne) {
                    close(fd);
                    rc = -ENOMEM;
                    break;
                }
                e = ne;
                capm = nc;
            }
            member mb = {.obj = -1, .ring = -1};
            if (member_adopt(&mb, fd) < 0) continue; /* a broken object: not a queue */
            e->m[n++] = mb;
        }
        if (got > 0) snprintf(after, sizeof after, "%s", page[got - 1].name);
    }
    free(page);
    if (rc == 0 && n == 0) rc = -ENOENT;
    if (rc == -EAGAIN && timeout_ns > 0) rc = -ETIMEDOUT;
    if (rc < 0) {
        for (size_t i = 0; i < n; i++) member_free(&e->m[i]);
        free(e);
        return rc;
    }
    e->n = n;
    atomic_init(&e->rr, 0);
    atomic_init(&e->epfd, -1);
    *out = e;
    return 0;
}

int ferry_event_open(const char *name, ferry_event **out, int64_t timeout_ns)
{
    if (!name || !out) return -EINVAL;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '*') return open_group(name, out, timeout_ns);
    int fd;
    int rc = ferry__obj_open(name, FERRY_OBJ_EVENT, &fd, timeout_ns);
    if (rc < 0) return rc;
    return ferry_event_adopt(fd, out);
}
