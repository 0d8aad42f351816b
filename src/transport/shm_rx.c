// SPDX-License-Identifier: MIT
/*
 * shm_rx.c — the consumer of a shm channel's incoming direction: read records in place
 * (each header copied once and validated), typed selective receive, zero-copy peek, the
 * rendezvous claim, ring growth (JUMP) and eventfd readiness for ferry_chan_poll_fd().
 *
 * Records read but not yet taken wait in a local queue (q), in ring order, still in the
 * ring: a filter that passes over a message leaves it where it is, and the tail we
 * publish (the producer's free-space bound) is the position of the oldest untaken
 * record. So skipped messages keep their order and keep counting against capacity.
 * Only the receiving thread of a channel end runs this code (shm_chan.h).
 */
#define _GNU_SOURCE
#include "shm_chan.h"
#include "shm_link.h"

#include "core/hot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static ferry__rec *rec_in(const rx_map *m, uint64_t pos)
{
    return (ferry__rec *)(m->data + (pos & (m->size - 1)));
}

static rx_map *cur_map(shm_rx *r)
{
    return r->cur;
}

static rx_entry *q_at(shm_rx *r, size_t i)
{
    return &r->q[r->qhead + i];
}

/* The free slot just past the queue's end, for rx_next to fill in place; q_push keeps
 * it. NULL when out of memory, or at qmax (which a rule-abiding producer cannot reach:
 * every queued record takes at least 64 bytes of a live ring). */
static rx_entry *q_slot(shm_rx *r)
{
    if (r->qhead + r->qlen == r->qcap) {
        if (r->qhead > 0) {
            memmove(r->q, r->q + r->qhead, r->qlen * sizeof *r->q);
            r->qhead = 0;
        } else {
            if (r->qcap >= r->qmax) return NULL;
            size_t cap = r->qcap ? r->qcap * 2 : 64;
            if (cap > r->qmax) cap = r->qmax;
            rx_entry *q = realloc(r->q, cap * sizeof *q);
            if (!q) return NULL;
            r->q = q;
            r->qcap = cap;
        }
    }
    return &r->q[r->qhead + r->qlen];
}

/* Keep the slot q_slot gave (filled by rx_next). */
static void q_push(shm_rx *r)
{
    r->qfds += q_at(r, r->qlen)->nfds;
    r->qlen++;
}

/* Drop q[i] (its fds already handed out or closed, and freed). */
static void q_remove(shm_rx *r, size_t i)
{
    if (i == 0) {
        r->qhead++;
    } else {
        rx_entry *e = q_at(r, i);
        memmove(e, e + 1, (r->qlen - i - 1) * sizeof *e);
    }
    if (--r->qlen == 0) r->qhead = 0;
}

/* Close and free the fds an entry holds, and take them off the budget of the queue. */
static void entry_drop_fds(shm_rx *r, rx_entry *e)
{
    if (!e->fds) { /* the common case: nothing to close or free */
        e->nfds = 0;
        return;
    }
    for (uint32_t i = 0; i < e->nfds; i++) close(e->fds[i]);
    r->qfds -= e->nfds;
    free(e->fds);
    e->fds = NULL;
    e->nfds = 0;
}

/* Hand an entry's fds to the caller (m->fds) and take them off the budget. */
static void entry_give_fds(shm_rx *r, rx_entry *e, ferry_msg *m)
{
    m->nfds = e->fds ? e->nfds : 0;
    if (e->fds) {
        memcpy(m->fds, e->fds, e->nfds * sizeof(int));
        r->qfds -= e->nfds;
    }
    free(e->fds);
    e->fds = NULL;
    e->nfds = 0;
}

/* Is something committed (or scribbled) at the scan position? Acquire pairs with the
 * producer's release store of seq: the record's bytes are visible once seq is. */
static int rx_ready(void *arg)
{
    shm_rx *r = &((shm_chan *)arg)->rx;
    ferry__rec *rec = (ferry__rec *)(r->data + (r->scan & r->mask));
    __builtin_prefetch((uint8_t *)rec + FERRY__REC_ALIGN);
    return atomic_load_explicit(&rec->seq, memory_order_acquire) != 0;
}

/* ferry__cond_fn of a receive's wait: a record is committed at the scan position, or the
 * producer is writing the record expected there (a large one, in chunks: ring.h, wprog)
 * and has made progress since we last looked. Then the wait returns and the receive waits
 * again, with a fresh spin, instead of sleeping while the record is on its way. wprog is
 * only a hint, and a producer could change it forever: each record grants at most
 * max_msg / FERRY__CHUNK + 2 such returns (ext_left). Relaxed: nothing is read through
 * it; the record itself is acquired through its seq (rx_ready, rx_next). */
/* What a receive's wait looks at: the channel, and the record slot at the scan position,
 * found before the wait (only this thread moves the scan position or the ring). After a
 * sleep the first look then reads the slot alone, not the channel's line first and the
 * slot after it: on cold caches and a cold TLB (processes outnumbering CPUs) the two
 * misses, a page each, overlap instead of following one another. */
typedef struct rx_wait_arg {
    shm_chan *c;
    ferry__rec *rec;
} rx_wait_arg;

FERRY__HOT static int rx_wait_cond(void *arg)
{
    const rx_wait_arg *a = arg;
    shm_chan *c = a->c;
    shm_rx *r = &c->rx;
    __builtin_prefetch((uint8_t *)a->rec + FERRY__REC_ALIGN);
    /* Acquire: as in rx_ready. */
    if (atomic_load_explicit(&a->rec->seq, memory_order_acquire) != 0) return 1;
    uint64_t p = atomic_load_explicit(&r->ctl->wprog, memory_order_relaxed);
    if ((uint32_t)(p >> 32) != (uint32_t)r->expect) return 0;
    if (r->ext_seq != r->expect) {
        r->ext_seq = r->expect;
        r->ext_done = 0;
        r->ext_left = c->max_msg / FERRY__CHUNK + 2;
    }
    uint32_t done = (uint32_t)p;
    if (done <= r->ext_done || r->ext_left == 0) return 0;
    r->ext_done = done;
    r->ext_left--;
    return 1;
}

/* A JUMP record: take the next ring from the link and continue there. */
static int rx_jump(shm_chan *c)
{
    shm_rx *r = &c->rx;
    ferry__link_msg m;
    int fd;
    int rc = ferry__link_recv(c->link, FERRY__LINK_SEG, &m, &fd, 1, 0);
    if (rc < 0) return rc == -EPIPE ? rc : -EBADMSG;
    uint64_t size = m.ring_bytes;
    rx_map *old = cur_map(r);
    /* Only an unbounded channel grows, each ring twice the last (as the producer makes
     * them), up to its memory cap: the rings of a direction then total under 2 * mem_cap,
     * which is what the adopter agreed to map (shm.c). */
    if (c->capacity != FERRY_UNBOUNDED || m.seq != r->expect || old->size > FERRY__RING_MAX ||
        size != old->size * 2 || size > FERRY__RING_MAX || size > c->mem_cap ||
        r->mapped + size > 2 * c->mem_cap) {
        close(fd);
        return -EBADMSG;
    }
    rx_map *nm = calloc(1, sizeof *nm);
    rx_map **maps = realloc(r->maps, (r->nmaps + 1) * sizeof *maps);
    if (maps) r->maps = maps;
    rc = !nm || !maps ? -ENOMEM : ferry__seg_map_checked(fd, size, &nm->seg);
    close(fd);
    if (rc < 0) {
        free(nm);
        return rc;
    }
    nm->data = nm->seg.base;
    nm->size = size;
    nm->end = UINT64_MAX;
    r->mapped += size;
    old->end = r->scan + FERRY__REC_ALIGN;
    r->maps[r->nmaps++] = nm;
    r->cur = nm;
    r->data = nm->data;
    r->mask = nm->size - 1;
    return 0;
}

/*
 * Read the record at the scan position (shm_chan.h: ferry__shm_rx_next). Control records
 * (WRAP, JUMP, withdrawn rendezvous messages) are passed over here. The fd budget is
 * checked before anything is taken in: a held-back record stays in the ring (and its fds
 * on the link), so its producer is pushed back by the ring filling up.
 */
int ferry__shm_rx_next(shm_chan *c, rx_entry *e, int64_t filter, int exempt)
{
    shm_rx *r = &c->rx;
    for (;;) {
        rx_map *m = cur_map(r);
        uint64_t off = r->scan & (m->size - 1);
        ferry__rec *rec = rec_in(m, r->scan);
        uint64_t s = atomic_load_explicit(&rec->seq, memory_order_acquire);
        if (s == 0) return 0;
        /* Ask for the record's second line now, so its transfer overlaps the checks. */
        __builtin_prefetch((uint8_t *)rec + FERRY__REC_ALIGN);
        /* Every slot is cleared before the record in front of it is published, so only 0
         * or exactly the expected seq (plus the withdrawn bit, capacity 0) can be here. */
        uint64_t extra = s & ~FERRY__SEQ_MASK;
        if ((s & FERRY__SEQ_MASK) != r->expect ||
            (extra && (c->capacity != 0 || extra != FERRY__SEQ_CANCELLED)))
            return -EBADMSG;
        /* Copy the header once, as whole 8-byte words (as the producer writes them:
         * ferry__rec_word0); only the copy is validated and used. */
        uint64_t w0, w3;
        int64_t type;
        memcpy(&w0, rec, sizeof w0);
        memcpy(&type, &rec->type, sizeof type);
        memcpy(&w3, &rec->len, sizeof w3);
        uint8_t flags = (uint8_t)(w0 >> 40), nfds = (uint8_t)(w0 >> 48);
        ferry__frame f = {.flags = flags,
                          .nfds = nfds,
                          .type = type,
                          .seq = r->expect,
                          .len = (uint32_t)w3,
                          .crc = (uint32_t)(w3 >> 32)};
        /* magic, version and the reserved byte in one compare */
        if (w0 != ferry__rec_word0(flags, nfds) ||
            ferry__frame_validate(&f, (uint32_t)c->max_msg) < 0)
            return -EBADMSG;
        uint8_t ctl = f.flags & (FERRY__F_WRAP | FERRY__F_JUMP);
        if (ctl && (f.len || f.nfds || ctl == (FERRY__F_WRAP | FERRY__F_JUMP) || extra))
            return -EBADMSG;
        uint64_t fp = f.flags & FERRY__F_WRAP ? m->size - off : ferry__rec_footprint(f.len);
        if (off + fp > m->size) return -EBADMSG;
        /* A checksummed channel requires a crc on every message; it is checked on the
         * bytes handed out (the copy, or the view at peek), not here, so the peer cannot
         * change them between check and use. */
        if ((c->flags & FERRY_CHECKSUM) && !ctl && !(f.flags & FERRY__F_CRC)) return -EBADMSG;
        int *fds = NULL;
        /* Capacity 0: the fds travel only once the record is claimed (rx_claim), so a
         * withdrawn message never had any. */
        if (f.nfds && c->capacity != 0) {
            if (r->qfds >= r->max_skipped && !(exempt && ferry__filter_match(filter, f.type)))
                return FERRY__RX_BLOCKED;
            fds = malloc(f.nfds * sizeof *fds);
            if (!fds) return -ENOMEM;
            ferry__link_msg lm;
            int rc = ferry__link_recv(c->link, FERRY__LINK_FDS, &lm, fds, f.nfds, 0);
            if (rc == 0 && lm.seq != r->expect) {
                for (uint32_t i = 0; i < f.nfds; i++) close(fds[i]);
                rc = -EBADMSG;
            }
            if (rc < 0) {
                free(fds);
                return rc == -EPIPE ? rc : -EBADMSG;
            }
        }
        if (f.flags & FERRY__F_JUMP) {
            int rc = rx_jump(c);
            if (rc < 0) return rc;
        }
        uint64_t pos = r->scan;
        r->scan += fp;
        r->expect++;
        if (ctl || extra) continue; /* extra: withdrawn before anyone claimed it */
        e->pos = pos;
        e->fds = fds;
        e->seq = f.seq;
        e->type = f.type;
        e->len = f.len;
        e->nfds = f.nfds;
        e->crc = f.crc;
        e->flags = f.flags;
        e->claimed = 0;
        e->map = m;
        return 1;
    }
}

/* Rings we have left and no longer read from (all below tail) can go. */
static __attribute__((noinline)) void rx_drop_maps(shm_rx *r, uint64_t tail)
{
    while (r->nmaps > 1 && r->maps[0]->end <= tail) {
        rx_map *old = r->maps[0];
        if (old->seg.base) r->mapped -= old->size;
        ferry__seg_unmap(&old->seg);
        free(old);
        memmove(r->maps, r->maps + 1, (r->nmaps - 1) * sizeof *r->maps);
        r->nmaps--;
    }
}

/* Publish our progress: messages taken and the oldest position still in use. Inline:
 * every receive runs it (a call costs more than most of what it does). */
static inline __attribute__((always_inline)) void rx_publish(shm_chan *c)
{
    shm_rx *r = &c->rx;
    uint64_t tail = r->qlen ? q_at(r, 0)->pos : r->scan;
    atomic_store_explicit(&r->ctl->taken, r->taken, memory_order_relaxed);
    /* Release: our reads of every record below `tail` are done before the producer may
     * reuse those bytes (it acquires tail). It also publishes `taken` with it. */
    atomic_store_explicit(&r->ctl->tail, tail, memory_order_release);
    /* Dekker pair with a producer that announces it sleeps for space (wait.h). */
    ferry__publish_fence_reg(&r->ctl->space_fence, c->mb_ok);
    if (ferry__wake_if_waiting(&r->ctl->space_futex, &r->ctl->space_waiting))
        FERRY__COUNT(c->base.st.wakeups, 1);
    if (__builtin_expect(r->nmaps > 1, 0)) rx_drop_maps(r, tail);
}

/* Capacity 0, a claimed record that carries fds: take them from the link. The producer
 * sends them as soon as it sees the claim; wait for them until the caller's deadline (a
 * FERRY_NOW receive may so return -EAGAIN before a live producer got to it). 1 with
 * e->fds set; -ETIMEDOUT / -EAGAIN / -ENOMEM leave the record claimed and queued for the
 * next call; -EPIPE (the producer died first: the message is dropped) or -EBADMSG fail
 * the channel. */
static int rx_claim_fds(shm_chan *c, rx_entry *e, ferry__when *w)
{
    int64_t at = ferry__when_at(w);
    int *fds = malloc(e->nfds * sizeof *fds);
    if (!fds) return -ENOMEM;
    ferry__link_msg lm;
    int rc = ferry__link_recv(c->link, FERRY__LINK_FDS, &lm, fds, e->nfds, at);
    if (rc == 0 && lm.seq != e->seq) {
        for (uint32_t i = 0; i < e->nfds; i++) close(fds[i]);
        rc = -EBADMSG;
    }
    if (rc < 0) {
        free(fds);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            c->rx.fds_pending = 1;
            return at == 0 ? -EAGAIN : -ETIMEDOUT;
        }
        return ferry__shm_fail(c, rc == -EPIPE ? rc : -EBADMSG);
    }
    e->fds = fds;
    c->rx.qfds += e->nfds;
    c->rx.fds_pending = 0;
    return 1;
}

/* Capacity 0: the fds of a record claimed by an earlier call come first on the link, so
 * take them before anything else (whatever this call's filter). 0, or an error of
 * rx_claim_fds; an -EPIPE or -EBADMSG drops that record. */
static int rx_pending_fds(shm_chan *c, ferry__when *w)
{
    shm_rx *r = &c->rx;
    for (size_t i = 0; i < r->qlen; i++) {
        rx_entry *e = q_at(r, i);
        if (!e->claimed || !e->nfds || e->fds) continue;
        int rc = rx_claim_fds(c, e, w);
        if (rc == 1) return 0;
        if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -ENOMEM) {
            r->fds_pending = 0;
            q_remove(r, i);
            rx_publish(c);
        }
        return rc;
    }
    r->fds_pending = 0;
    return 0;
}

/* Capacity 0: win the record against a producer that may withdraw it, then take its
 * fds, which the producer sends only once it sees the claim. 1 won (and has its fds), 0
 * lost, or an error of rx_claim_fds. */
static int rx_claim(shm_chan *c, rx_entry *e, ferry__when *w)
{
    if (c->capacity != 0) return 1;
    if (!e->claimed) {
        ferry__rec *rec = rec_in(e->map, e->pos);
        uint64_t seq = e->seq;
        if (!atomic_compare_exchange_strong_explicit(&rec->seq, &seq, seq | FERRY__SEQ_CLAIMED,
                                                     memory_order_seq_cst, memory_order_acquire))
            return 0;
        e->claimed = 1;
        /* Dekker pair with a producer that announces it sleeps until the claim (wait.h). */
        ferry__publish_fence(&c->rx.ctl->space_fence);
        if (ferry__wake_if_waiting(&c->rx.ctl->space_futex, &c->rx.ctl->space_waiting))
            FERRY__COUNT(c->base.st.wakeups, 1);
    }
    return e->nfds && !e->fds ? rx_claim_fds(c, e, w) : 1;
}

/* Index in q of the best match for filter among what is queued, or -1. */
static long rx_pick(shm_rx *r, int64_t filter)
{
    long best = -1;
    for (size_t i = 0; i < r->qlen; i++) {
        const rx_entry *e = q_at(r, i);
        if (!ferry__filter_match(filter, e->type)) continue;
        if (filter >= 0) return (long)i;
        if (best < 0 || e->type < q_at(r, (size_t)best)->type) best = (long)i;
    }
    return best;
}

static int rx_alive(void *arg)
{
    return ferry__shm_alive(((rx_wait_arg *)arg)->c);
}

/* The fd budget holds the next record back and nothing queued matches: only a take from
 * the queue (by this thread, which is here) could free the budget, so wait until the
 * deadline, or until the peer is gone (-EPIPE: nothing this call could reach matches). */
static int rx_wait_blocked(shm_chan *c, ferry__when *w)
{
    int64_t at = ferry__when_at(w);
    for (;;) {
        int dead = ferry__shm_alive(c);
        if (dead < 0) return dead;
        int64_t left = ferry__remaining(at);
        if (left <= 0) return at == 0 ? -EAGAIN : -ETIMEDOUT;
        int64_t ms = (left + 999999) / 1000000;
        /* Hang-up only: the link's queued fds (POLLIN) must not wake us. */
        struct pollfd p = {.fd = c->link, .events = POLLRDHUP};
        (void)poll(&p, 1, ms > 1000 ? 1000 : (int)ms);
    }
}

/* Wait until something is committed at the scan position (or the producer's progress
 * on it moved: rx_wait_cond): 0 to look again, or an error. */
FERRY__HOT static int rx_wait_data(shm_chan *c, ferry__when *w)
{
    shm_rx *r = &c->rx;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    uint64_t sleeps = 0;
    /* The peer's sleeping hint: its flags for "waiting for data from us" and "waiting for
     * room in what it sends us" (wait.h: a hint, never trusted for a wake-up). */
    const ferry__peer peer = {{&c->tx.ctl->data_waiting, &r->ctl->space_waiting}};
    rx_wait_arg a = {c, (ferry__rec *)(r->data + (r->scan & r->mask))};
    int rc = dead ? dead
                  : ferry__wait(&r->spin, rx_wait_cond, rx_alive, &a, &r->ctl->data_futex,
                                &r->ctl->data_waiting, &r->ctl->data_fence, w, &sleeps, &peer,
                                &c->watch);
    FERRY__COUNT(c->base.st.recv_waits, sleeps);
    /* Nothing there and FERRY_NOW: is the peer still there? An event loop (armed fd)
     * has just been told "readable", so it gets a real answer; a busy poller gets
     * one every few milliseconds, which keeps its empty polls free of syscalls. */
    int armed = atomic_load_explicit(&r->epfd, memory_order_relaxed) >= 0; /* (a hint) */
    if (rc == -EAGAIN && (armed ? ferry__shm_alive(c) : ferry__shm_check_alive(c)) < 0) rc = -EPIPE;
    /* The peer is gone: hand out what it committed before it went, then -EPIPE. */
    if (rc == -EPIPE && rx_ready(c)) return 0;
    return rc < 0 ? rc : 0;
}

/* Find (and, with capacity 0, claim) the message to hand out next; its index in q. */
static int rx_find(shm_chan *c, int64_t filter, ferry__when *w, size_t *idx)
{
    shm_rx *r = &c->rx;
    if (r->fds_pending) {
        int rc = rx_pending_fds(c, w);
        if (rc < 0) return rc;
    }
    for (;;) {
        long best = rx_pick(r, filter);
        int blocked = 0;
        /* Anything queued is older than the ring's contents; a "lowest type" filter must
         * also see everything committed so far (that the fd budget lets in) before it
         * chooses. A record that matches and will be taken at once is exempt from the
         * budget: with filter >= 0 the first match is taken, with filter < 0 only while
         * nothing better is queued. */
        if (best < 0 || filter < 0) {
            rx_entry *e;
            int rc = 0;
            while ((e = q_slot(r)) &&
                   (rc = ferry__shm_rx_next(c, e, filter, filter >= 0 || best < 0)) == 1) {
                q_push(r);
                if (!ferry__filter_match(filter, e->type)) continue;
                if (best < 0 || (filter < 0 && e->type < q_at(r, (size_t)best)->type))
                    best = (long)r->qlen - 1;
                if (filter >= 0) break;
            }
            /* q at qmax: more records read than the rings can hold; a producer that
             * overwrote records not yet taken. */
            if (!e) return r->qlen >= r->qmax ? ferry__shm_fail(c, -EBADMSG) : -ENOMEM;
            if (rc == -ENOMEM) return rc;
            if (rc < 0) return ferry__shm_fail(c, rc);
            blocked = rc == FERRY__RX_BLOCKED;
        }
        if (best >= 0) {
            rx_entry *e = q_at(r, (size_t)best);
            int rc = rx_claim(c, e, w);
            if (rc == 1) {
                *idx = (size_t)best;
                return 0;
            }
            if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -ENOMEM) return rc; /* kept */
            /* Withdrawn (or its producer died before it sent the fds): forget it. */
            entry_drop_fds(r, e);
            q_remove(r, (size_t)best);
            rx_publish(c);
            if (rc < 0) return rc;
            continue;
        }
        if (blocked) return rx_wait_blocked(c, w);
        int rc = rx_wait_data(c, w);
        if (rc < 0) return rc;
    }
}

/* Readiness of ferry_chan_poll_fd(): a message queued here or committed in the ring. */
static int rx_has_message(shm_chan *c)
{
    return c->rx.qlen > 0 || rx_ready(c);
}

/* A message is there that the producer may not have announced (it was committed before
 * this end armed, or while `ready` was still 1): make the poll fd readable ourselves. */
static void rx_set_ready(shm_rx *r)
{
    if (!atomic_exchange_explicit(&r->ctl->ready, 1, memory_order_seq_cst)) {
        uint64_t one = 1;
        if (write(r->efd, &one, sizeof one) < 0) { /* saturated: readable anyway */
        }
        /* After the write: a clear that misses this flag leaves the count to the next
         * clear, never a count nobody will take. Relaxed: the eventfd is the data. */
        atomic_store_explicit(&r->self_set, 1, memory_order_relaxed);
    }
}

/* After a take (or a receive that found nothing), clear readiness when nothing is left.
 * Order: take the producer's READY messages off the link and drain our eventfd, then
 * clear `ready`, fence, and re-check, so a producer racing with us either sees ready == 0
 * and sends READY, or we see its record and signal ourselves. A READY still in flight
 * (the producer turned `ready` to 1 and has not sent it yet) makes the fd readable with
 * nothing there for a moment: the receive that follows finds nothing and comes here
 * again. FDS and SEG messages stay on the link (its records come next: readable is
 * right); a peer's malformed READY fails the channel (-EBADMSG). */
static __attribute__((noinline)) void rx_clear_ready(shm_chan *c)
{
    shm_rx *r = &c->rx;
    if (rx_has_message(c)) return;
    if (ferry__link_drain_ready(c->link) < 0) {
        ferry__shm_fail(c, -EBADMSG);
        return;
    }
    if (atomic_exchange_explicit(&r->self_set, 0, memory_order_relaxed)) {
        uint64_t v;
        if (read(r->efd, &v, sizeof v) < 0) { /* already clear */
        }
    }
    atomic_store_explicit(&r->ctl->ready, 0, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    if (rx_has_message(c)) rx_set_ready(r);
}

/* Inline, the end that is not armed (the per-message case) costs one load. */
static inline __attribute__((always_inline)) void rx_update_ready(shm_chan *c)
{
    /* Acquire: pairs with ferry__shm_fd's release, so efd is there once epfd is. */
    if (atomic_load_explicit(&c->rx.epfd, memory_order_acquire) >= 0) rx_clear_ready(c);
}

/* Take q[idx] out of the queue and account for it. */
static void rx_taken(shm_chan *c, size_t idx, uint32_t len)
{
    shm_rx *r = &c->rx;
    q_remove(r, idx);
    r->taken++;
    /* Relaxed: only the send side's demote gate reads it (shm_tx.c, tx_demote). */
    atomic_store_explicit(&r->recvs, (uint32_t)r->taken, memory_order_relaxed);
    FERRY__COUNT(c->base.st.recv_msgs, 1);
    FERRY__COUNT(c->base.st.recv_bytes, len);
    rx_publish(c);
    rx_update_ready(c);
}

/* Does the crc the producer wrote disagree with these payload bytes? */
static int rx_crc_bad(const rx_entry *e, const void *payload)
{
    ferry__frame f = {.flags = e->flags,
                      .nfds = (uint8_t)e->nfds,
                      .type = e->type,
                      .seq = e->seq,
                      .len = e->len,
                      .crc = e->crc};
    return ferry__frame_check_crc(&f, payload) < 0;
}

static int rx_check(shm_chan *c)
{
    if (c->rx.held) return -EBUSY;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    return dead == -EBADMSG ? dead : 0;
}

/* Copy a payload out of the ring. A large one goes in chunks, each followed by a word of
 * progress (ring.h, rprog) that keeps a producer waiting for the room spinning rather
 * than sleeping. Relaxed: only a hint; the room is released (with release) by
 * rx_publish as before. */
static FERRY__COLD void rx_copy_chunks(shm_chan *c, uint8_t *dst, const uint8_t *src, size_t len,
                                       uint64_t seq);

static inline __attribute__((always_inline)) void
rx_copy(shm_chan *c, uint8_t *dst, const uint8_t *src, size_t len, uint64_t seq)
{
    if (len <= FERRY__CHUNK)
        ferry__shm_copy(dst, src, len);
    else
        rx_copy_chunks(c, dst, src, len, seq);
}

static FERRY__COLD void rx_copy_chunks(shm_chan *c, uint8_t *dst, const uint8_t *src, size_t len,
                                       uint64_t seq)
{
    for (size_t done = 0; done < len;) {
        size_t n = len - done < FERRY__CHUNK ? len - done : FERRY__CHUNK;
        memcpy(dst + done, src + done, n);
        done += n;
        atomic_store_explicit(&c->rx.ctl->rprog, FERRY__PROG(seq, done), memory_order_relaxed);
    }
}

/*
 * The fast path of a receive: filter 0, nothing queued, no peek held, the channel fine, a
 * plain message (no fds, no control record) committed at the scan position and fitting
 * the caller's buffer. It takes the record straight from the ring, without the queue.
 * Everything else, including every record that fails a check here, goes the general way
 * (rx_find), which reads the header again and reports what is wrong: this path only ever
 * uses its own copy of a header that passed the same checks as ferry__shm_rx_next's.
 * Returns the length taken, or -1 (not taken: go the general way), or -EBADMSG (a bad
 * crc: the channel is failed). The caller checked filter, queue, peek, fds_pending,
 * capacity != 0 and dead (fuzz_shm_ring drives it on hostile rings too).
 */
static inline __attribute__((always_inline)) ssize_t rx_fast(shm_chan *c, ferry_msg *m,
                                                             int keep_fds)
{
    shm_rx *r = &c->rx;
    uint64_t off = r->scan & r->mask;
    ferry__rec *rec = (ferry__rec *)(r->data + off);
    /* The record's second line: asked for before the first is looked at (rx_ready). */
    __builtin_prefetch((uint8_t *)rec + FERRY__REC_ALIGN);
    /* Acquire pairs with the producer's release store of seq (as in rx_ready). */
    if (atomic_load_explicit(&rec->seq, memory_order_acquire) != r->expect) return -1;
    uint64_t w0, w3;
    int64_t type;
    memcpy(&w0, rec, sizeof w0);
    memcpy(&type, &rec->type, sizeof type);
    memcpy(&w3, &rec->len, sizeof w3);
    uint8_t flags = (uint8_t)(w0 >> 40);
    uint32_t len = (uint32_t)w3;
    /* A plain message: no WRAP/JUMP, no fds, magic/version/reserved right; and as
     * ferry__frame_validate and rx_next ask: length, type, ring bounds, crc when required. */
    if (w0 != ferry__rec_word0(flags, 0) || (flags & ~FERRY__F_CRC) != 0 || len > c->max_msg ||
        type < 0 || ((c->flags & FERRY_CHECKSUM) && !(flags & FERRY__F_CRC)) || len > m->cap)
        return -1;
    uint64_t fp = ferry__rec_footprint(len);
    if (off + fp > r->mask + 1) return -1;
    rx_copy(c, m->data, (uint8_t *)rec + FERRY__FRAME_HDR, len, r->expect);
    if (flags & FERRY__F_CRC) {
        rx_entry e = {.seq = r->expect,
                      .type = type,
                      .len = len,
                      .flags = flags,
                      .crc = (uint32_t)(w3 >> 32)};
        if (rx_crc_bad(&e, m->data)) return ferry__shm_fail(c, -EBADMSG);
    }
    r->scan += fp;
    r->last_fp = fp;
    r->expect++;
    r->taken++;
    /* Relaxed: only the send side's demote gate reads it (shm_tx.c, tx_demote). */
    atomic_store_explicit(&r->recvs, (uint32_t)r->taken, memory_order_relaxed);
    m->type = type;
    m->len = len;
    if (keep_fds) m->nfds = 0;
    FERRY__COUNT(c->base.st.recv_msgs, 1);
    FERRY__COUNT(c->base.st.recv_bytes, len);
    rx_publish(c);
    rx_update_ready(c);
    return (ssize_t)len;
}

ssize_t ferry__shm_rx_fast(shm_chan *c, ferry_msg *m, int keep_fds)
{
    return rx_fast(c, m, keep_fds);
}

/* A stream: this many receives in a row that found their record at once
 * (ferry__shm_rx_gather). */
#define GATHER_RUN 8u

/*
 * A stream read up to the producer: let records gather before polling the next record.
 * A consumer that polls the line the producer is about to write, and reads each record
 * as soon as it is committed, takes every line away from the producer while it still
 * works on it (and the hardware prefetcher, following the consumer, takes the lines
 * after it): both sides then pay a transfer for every line. A consumer a few KiB behind
 * reads lines the producer is done with. So wait, spinning on the commit word of the
 * record FERRY__GATHER_AHEAD records ahead, taking it to be as large as the last one (the
 * records of a stream mostly are), until it shows exactly the seq that record must
 * have, or FERRY__GATHER_NS pass, or the caller's deadline. After FERRY__GATHER_POLL
 * polls, one look at the next record: not committed yet means no stream worth waiting
 * for (the producer is slow, or it stopped after a burst), and the receive waits for it
 * as usual; so a burst's end costs a message that follows at most those polls (~0.5 us
 * here). The probe is only a hint: it may land inside a record, on padding or on bytes a
 * hostile peer wrote there; it is compared, never used, and the wait is bounded in time.
 * It stays inside the ring, before the ring's end (where a WRAP would shift the records
 * anyway). The records are then read as always, each through its own commit word.
 */
void ferry__shm_rx_gather(shm_chan *c, ferry__when *w)
{
    shm_rx *r = &c->rx;
    rx_map *m = cur_map(r);
    uint64_t fp = r->last_fp, off = r->scan & (m->size - 1), k = FERRY__GATHER_AHEAD;
    if (fp == 0) return;
    if (k * fp > m->size / 4) k = m->size / 4 / fp;
    uint64_t before_end = (m->size - off) / fp; /* records of this size before the end */
    if (k >= before_end) k = before_end ? before_end - 1 : 0;
    if (k < 2) return;
    ferry__rec *probe = rec_in(m, r->scan + k * fp);
    const uint64_t want = r->expect + k;
    int64_t end = ferry__now_ns() + FERRY__GATHER_NS, at = ferry__when_at(w);
    if (at < end) end = at;
    for (unsigned i = 1;; i++) {
        /* Relaxed: a hint, nothing is read through it (see above). */
        if (atomic_load_explicit(&probe->seq, memory_order_relaxed) == want) return;
        ferry__cpu_relax();
        if (i % FERRY__GATHER_POLL != 0) continue;
        if (ferry__now_ns() >= end) return;
        if (i == FERRY__GATHER_POLL && !rx_ready(c)) return;
    }
}

static ssize_t rx_recv_general(shm_chan *c, ferry_msg *m, int64_t filter, int keep_fds,
                               ferry__when *w);

/* Back from a wait with a message there (after a sleep: on cold caches and a cold TLB
 * when processes outnumber CPUs). Ask at once for the lines this receive goes on to
 * touch (the consumer's and the producer's lines of the incoming control block, which
 * lie on a page of their own) and those of the send that most often follows (the
 * outgoing side's fields, its control block's waiting line), so that their misses (and
 * page walks) overlap instead of following one another. Not the slot of our next
 * record: a spinning peer polls that line, and taking it early for writing makes both
 * sides pay for it twice. Hints only: prefetches neither fault nor change what is read. */
static inline __attribute__((always_inline)) void rx_after_wait(shm_chan *c)
{
    shm_tx *t = &c->tx;
    __builtin_prefetch(&c->rx.ctl->tail, 1);
    __builtin_prefetch(&c->rx.ctl->space_waiting, 0);
    __builtin_prefetch(&c->dead, 1);
    __builtin_prefetch(&t->sent, 1);
    __builtin_prefetch(&t->ctl->data_waiting, 0);
}

FERRY__HOT ssize_t ferry__shm_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                                      ferry__when *w)
{
    shm_chan *c = (shm_chan *)ch;
    shm_rx *rx = &c->rx;
    /* The fast path; when nothing is there yet, wait here and try it again (a receive
     * that waited takes the fast path too). */
    int waited = 0;
    while (filter == 0 && rx->qlen == 0 && !rx->held && !rx->fds_pending && c->capacity != 0 &&
           !atomic_load_explicit(&c->dead, memory_order_relaxed)) {
        ssize_t n = rx_fast(c, m, keep_fds); /* (inline: ferry__shm_rx_fast) */
        if (n != -1) {                       /* -1: not taken here */
            /* Found at once (without a wait or a gather): one more of a stream's run. */
            if (!waited && rx->run < GATHER_RUN) rx->run++;
            return n;
        }
        if (rx_ready(c)) break; /* something the general way must read */
        int stream = rx->run >= GATHER_RUN;
        rx->run = 0;
        waited = 1;
        /* A stream read up to the producer, a caller that waits and a spin that pays
         * (not FERRY_NO_SPIN, not given up): let records gather first. */
        if (stream && w->at != 0 && rx->spin.cur_ns > 0) {
            ferry__shm_rx_gather(c, w);
            continue;
        }
        int rc = rx_wait_data(c, w);
        if (rc == -EAGAIN || rc == -ETIMEDOUT) rx_update_ready(c); /* a READY that came late */
        if (rc < 0) return rc;
        rx_after_wait(c);
    }
    return rx_recv_general(c, m, filter, keep_fds, w);
}

/* The general way of ferry__shm_recvmsg (the queue, typed receive, fds, rendezvous). */
static FERRY__COLD ssize_t rx_recv_general(shm_chan *c, ferry_msg *m, int64_t filter, int keep_fds,
                                           ferry__when *w)
{
    size_t idx;
    int rc = rx_check(c);
    if (rc == 0) rc = rx_find(c, filter, w, &idx);
    if (rc == -EAGAIN || rc == -ETIMEDOUT) rx_update_ready(c); /* a READY that came late */
    if (rc < 0) return rc;
    rx_entry *e = q_at(&c->rx, idx);
    m->type = e->type;
    m->len = e->len;
    if (e->len > m->cap) return -EMSGSIZE; /* it stays queued */
    rx_copy(c, m->data, (uint8_t *)rec_in(e->map, e->pos) + FERRY__FRAME_HDR, e->len, e->seq);
    if ((e->flags & FERRY__F_CRC) && rx_crc_bad(e, m->data)) return ferry__shm_fail(c, -EBADMSG);
    if (keep_fds)
        entry_give_fds(&c->rx, e, m);
    else
        entry_drop_fds(&c->rx, e);
    uint32_t len = e->len;
    rx_taken(c, idx, len);
    return (ssize_t)len;
}

int ferry__shm_peek(ferry_chan *ch, int64_t filter, ferry_msg *m, ferry__when *w)
{
    shm_chan *c = (shm_chan *)ch;
    size_t idx;
    int rc = rx_check(c);
    if (rc == 0) rc = rx_find(c, filter, w, &idx);
    if (rc == -EAGAIN || rc == -ETIMEDOUT) rx_update_ready(c); /* a READY that came late */
    if (rc < 0) return rc;
    shm_rx *r = &c->rx;
    rx_entry *e = q_at(r, idx);
    uint8_t *data = (uint8_t *)rec_in(e->map, e->pos) + FERRY__FRAME_HDR;
    if (r->peek_private) {
        /* Copy first, check the crc on the copy: what the caller reads is what was
         * checked, whatever the peer writes to the ring afterwards. */
        if (e->len > r->pcap) {
            uint8_t *b = realloc(r->pbuf, e->len);
            if (!b) return -ENOMEM; /* it stays queued */
            r->pbuf = b;
            r->pcap = e->len;
        }
        if (e->len) memcpy(r->pbuf, data, e->len);
        data = r->pbuf;
    }
    if ((e->flags & FERRY__F_CRC) && rx_crc_bad(e, data)) return ferry__shm_fail(c, -EBADMSG);
    m->type = e->type;
    m->len = e->len;
    m->data = data;
    entry_give_fds(&c->rx, e, m); /* the caller owns them now */
    c->rx.held = 1;
    c->rx.held_idx = idx;
    return 0;
}

int ferry__shm_release(ferry_chan *ch)
{
    shm_chan *c = (shm_chan *)ch;
    if (!c->rx.held) return -EINVAL;
    c->rx.held = 0;
    rx_taken(c, c->rx.held_idx, q_at(&c->rx, c->rx.held_idx)->len);
    return 0;
}

int ferry__shm_fd(ferry_chan *ch)
{
    shm_chan *c = (shm_chan *)ch;
    shm_rx *r = &c->rx;
    int armed = atomic_load_explicit(&r->epfd, memory_order_acquire);
    if (armed >= 0) return armed;
    /* Made now, not with the channel: an end that is never armed holds only its link. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* The link says "a message is waiting" (the producer's READY; FDS and SEG messages
     * come just before their records) and "the peer is gone" (hang-up); the eventfd says
     * "a message is waiting" when this end found one the producer did not announce. */
    struct epoll_event ev = {.events = EPOLLIN};
    struct epoll_event link = {.events = EPOLLIN | EPOLLRDHUP};
    if (ep < 0 || efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, c->link, &link) < 0) {
        int e = -errno;
        if (ep >= 0) close(ep);
        if (efd >= 0) close(efd);
        return e;
    }
    r->efd = efd;
    /* Release: a receive in another thread that sees epfd sees efd (rx_update_ready). */
    atomic_store_explicit(&r->epfd, ep, memory_order_release);
    /* Arm, then look: a producer that commits after the store below sees armed and
     * signals; anything committed before it, we see here. */
    atomic_store_explicit(&r->ctl->armed, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    if (rx_has_message(c)) rx_set_ready(r);
    return ep;
}

int ferry__shm_rx_init(shm_chan *c)
{
    shm_rx *r = &c->rx;
    rx_map *m = calloc(1, sizeof *m);
    r->maps = malloc(sizeof *r->maps);
    if (!m || !r->maps) {
        free(m);
        free(r->maps);
        r->maps = NULL;
        return -ENOMEM;
    }
    m->data = (uint8_t *)c->seg_rx.base + FERRY__RING_CTL_BYTES;
    m->size = c->ring_bytes;
    m->end = UINT64_MAX;
    r->maps[0] = m;
    r->nmaps = 1;
    r->cur = m;
    r->data = m->data;
    r->mask = m->size - 1;
    r->ctl = c->seg_rx.base;
    r->expect = 1;
    /* Every queued record takes at least 64 bytes of a live ring: at most the first
     * ring, or with growth the first ring and rings totalling under 2 * mem_cap. */
    uint64_t ring_total = c->ring_bytes + (c->capacity == FERRY_UNBOUNDED ? 2 * c->mem_cap : 0);
    r->qmax = (size_t)(ring_total / FERRY__REC_ALIGN);
    r->efd = -1; /* (ferry__shm_fd makes them; ferry__shm_rx_free closes them) */
    atomic_store_explicit(&r->epfd, -1, memory_order_relaxed);
    return 0;
}

void ferry__shm_rx_free(shm_chan *c)
{
    shm_rx *r = &c->rx;
    for (size_t i = 0; i < r->qlen; i++) entry_drop_fds(r, q_at(r, i));
    free(r->q);
    for (size_t i = 0; i < r->nmaps; i++) {
        ferry__seg_unmap(&r->maps[i]->seg);
        free(r->maps[i]);
    }
    free(r->maps);
    free(r->pbuf);
    int ep = atomic_load_explicit(&r->epfd, memory_order_relaxed); /* (no other thread now) */
    if (ep >= 0) close(ep);
    if (r->efd >= 0) close(r->efd);
}
