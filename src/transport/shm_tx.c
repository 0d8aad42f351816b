// SPDX-License-Identifier: MIT
/*
 * shm_tx.c — the producer of a shm channel's outgoing direction: reserve room in the
 * ring, write a record in place, publish it with one release store, wake the consumer
 * only when it announced that it sleeps; capacity, rendezvous and ring growth.
 * Only the sending thread of a channel end runs this code (shm_chan.h).
 */
#define _GNU_SOURCE
#include "shm_chan.h"
#include "shm_link.h"

#include "core/crc32c.h"
#include "core/hot.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The per-message helpers: always inlined into the send path (a call each costs more
 * than what most of them do). */
#define HOT inline __attribute__((always_inline))

static HOT ferry__rec *rec_at(shm_tx *t, uint64_t pos)
{
    return (ferry__rec *)(t->data + (pos & (t->size - 1)));
}

/* Refresh what we know of the consumer. Acquire: the consumer released the bytes below
 * `tail` only after it finished reading them, so we may overwrite them after this load. */
static int tx_refresh(shm_chan *c)
{
    shm_tx *t = &c->tx;
    uint64_t tail = atomic_load_explicit(&t->ctl->tail, memory_order_acquire);
    uint64_t taken = atomic_load_explicit(&t->ctl->taken, memory_order_acquire);
    if (tail > t->head || tail < t->tail_cache || taken > t->sent || taken < t->taken_cache)
        return ferry__shm_fail(c, -EBADMSG); /* a consumer that scribbles its indices */
    t->tail_cache = tail;
    t->taken_cache = taken;
    return 0;
}

/* Would a record of footprint fp fit now (ring bytes and the message cap)? */
static HOT int tx_fits(const shm_chan *c, uint64_t fp)
{
    const shm_tx *t = &c->tx;
    uint64_t off = t->head & (t->size - 1), to_end = t->size - off;
    uint64_t need = fp <= to_end ? fp + FERRY__REC_ALIGN : to_end + fp + FERRY__REC_ALIGN;
    if (t->head - t->tail_cache + need > t->size) return 0;
    uint32_t cap = c->capacity;
    if (cap != 0 && cap != FERRY_CAP_RING && cap != FERRY_UNBOUNDED &&
        t->sent - t->cancelled - t->taken_cache >= cap)
        return 0;
    return 1;
}

struct fit_arg {
    shm_chan *c;
    uint64_t fp;
    uint64_t prog; /* the consumer's rprog as last seen */
    uint64_t left; /* spin extensions still granted for its progress in this reservation */
};

/* Does the record fit after a fresh look at the consumer's indices? */
static int tx_fits_cond(void *arg)
{
    struct fit_arg *a = arg;
    int rc = tx_refresh(a->c);
    return rc < 0 ? rc : tx_fits(a->c, a->fp);
}

/* ferry__cond_fn of a wait for room: the record fits, or the consumer is copying a large
 * record out and has made progress since we last looked (ring.h, FERRY__CHUNK): then the
 * wait returns and tx_reserve waits again, with a fresh spin, instead of sleeping while
 * room is on its way. rprog is only a hint, and a consumer could change it forever: each
 * reservation grants at most a->left such returns (every chunk of every large record the
 * ring can hold, twice). Relaxed: nothing is read through it. */
static int tx_wait_cond(void *arg)
{
    struct fit_arg *a = arg;
    int rc = tx_fits_cond(arg);
    if (rc != 0) return rc;
    uint64_t p = atomic_load_explicit(&a->c->tx.ctl->rprog, memory_order_relaxed);
    if (p == a->prog || a->left == 0) return 0;
    a->prog = p;
    a->left--;
    return 1;
}

static int tx_alive(void *arg)
{
    return ferry__shm_alive(((struct fit_arg *)arg)->c);
}

/* Clear the commit word of the slot at `next` (reserved: it lies within the room we
 * checked), so stale bytes there can never pass for a committed record. The release
 * store in tx_publish orders this before the consumer can see the record in front. */
static HOT void tx_clear_slot(shm_tx *t, uint64_t next)
{
    atomic_store_explicit(&rec_at(t, next)->seq, 0, memory_order_relaxed);
}

/* The next slot must be clear before the record in front of it is published: skip the
 * store when a batch (tx_clear_ahead) already cleared it in this lap. */
static HOT void tx_clear_next(shm_tx *t, uint64_t next)
{
    if (next + FERRY__REC_ALIGN > t->clear_to) tx_clear_slot(t, next);
}

#define CLEAR_BATCH 1024u /* bytes of slots cleared at once (divides every ring size) */
#define CLEAR_LOW   256u  /* clear the next batch when less than this is left cleared */

/* Batched slot clears: after a publication, clear the commit word of every 64-byte slot
 * of the next CLEAR_BATCH bytes beyond what is cleared already, so that the records
 * written there need no clear of their own (tx_clear_next). Done after the publication,
 * not before it: on x86 stores become visible in program order, and a clear waiting for
 * its cache line (the consumer read it a lap ago) would hold the publication back.
 * Invariant: every slot in [head, clear_to) was cleared in this lap and not written since
 * (records are written only below the head; a loan, whose caller writes a whole buffer
 * that may reach past the record it commits, resets clear_to to the head). Only room that is free
 * is cleared: the batch must lie below tail + size (what the producer knows of the tail is a lower
 * bound, so this errs on the safe side); otherwise the per-record clear does the work. */
static HOT void tx_clear_ahead(shm_tx *t)
{
    if (t->clear_to > t->head + CLEAR_LOW) return;
    uint64_t from = t->clear_to > t->head ? t->clear_to : t->head;
    uint64_t to = (from + CLEAR_BATCH) & ~(uint64_t)(CLEAR_BATCH - 1);
    if (to - t->tail_cache > t->size) return;
    for (uint64_t p = from; p < to; p += FERRY__REC_ALIGN) tx_clear_slot(t, p);
    t->clear_to = to;
}

/* Publish the record r, whose header and payload are written and whose next slot is
 * cleared (tx_clear_slot; after a JUMP the next slot lies in the new, zero-filled ring,
 * and the old ring's bytes at that position may be a record still waiting to be read, so
 * they are left alone); the next record goes at `next`. */
static HOT void tx_publish(shm_chan *c, ferry__rec *r, uint64_t next)
{
    shm_tx *t = &c->tx;
    atomic_store_explicit(&r->seq, ++t->seq, memory_order_release);
    /* Dekker pair with the consumer's "announce, barrier, re-check" (wait.h): order the
     * publication before the loads of its waiting and armed flags. */
    ferry__publish_fence_reg(&t->ctl->data_fence, c->mb_ok);
    if (ferry__wake_if_waiting(&t->ctl->data_futex, &t->ctl->data_waiting))
        FERRY__COUNT(c->base.st.wakeups, 1);
    if (atomic_load_explicit(&t->ctl->armed, memory_order_relaxed) &&
        !atomic_load_explicit(&t->ctl->ready, memory_order_relaxed) &&
        !atomic_exchange_explicit(&t->ctl->ready, 1, memory_order_seq_cst))
        ferry__link_send_ready(c->link); /* the consumer's armed poll fd watches the link */
    t->head = next;
}

/* A record just published, by an end that received since its last send (a request or
 * a reply: its peer is likely waiting for this record, polling its commit word): hint
 * the CPU to move the record's lines (the header's, and the second one of a payload that
 * reaches into it) from this core's caches to the shared one, where the consumer finds
 * them without first taking them from this core. CLDEMOTE, written as bytes (0f 1c /0,
 * [rax]) for assemblers that do not know it; it lies in the hint-NOP space, so a CPU
 * without it executes a NOP. Only a hint, with no effect on what is written or its
 * order. Not for an end that only sends (a stream, or one thread that sends and then
 * receives on the other end: the line it reads back would come from the shared cache,
 * 22 -> 165 ns per send + receive here), and not when the consumer sleeps (it reads the
 * record after a wake-up, maybe on this CPU: 64 pairs on 2 CPUs lost ~5 % with it). A
 * 64 B ping-pong took 5-25 ns less per round trip with it (performance.md). */
static HOT void tx_demote(ferry__rec *r, size_t len)
{
#if defined(__x86_64__)
    __asm__ volatile(".byte 0x0f, 0x1c, 0x00" ::"a"(r) : "memory");
    if (len > FERRY__REC_ALIGN - FERRY__FRAME_HDR)
        __asm__ volatile(".byte 0x0f, 0x1c, 0x00" ::"a"((uint8_t *)r + FERRY__REC_ALIGN)
                         : "memory");
#else
    (void)r;
    (void)len;
#endif
}

static HOT void tx_header(shm_chan *c, ferry__rec *r, uint8_t flags, uint8_t nfds, int64_t type,
                          uint32_t len)
{
    uint32_t crc = 0;
    if (c->flags & FERRY_CHECKSUM) {
        flags |= FERRY__F_CRC;
        ferry__frame f = {
            .flags = flags, .nfds = nfds, .type = type, .seq = c->tx.seq + 1, .len = len, .crc = 0};
        crc = ferry__frame_crc(&f, (uint8_t *)r + FERRY__FRAME_HDR);
    }
    /* Whole 8-byte words (ring.h: ferry__rec_word0), as the consumer reads them: a load
     * that spans several smaller stores still in the store buffer cannot be forwarded
     * from them, and waits for them to reach the cache (a sender that receives its own
     * messages, or a consumer on the same core, would pay that on every record). */
    uint64_t w0 = ferry__rec_word0(flags, nfds), w3 = (uint64_t)len | (uint64_t)crc << 32;
    memcpy(r, &w0, sizeof w0);
    r->type = type;
    memcpy(&r->len, &w3, sizeof w3);
}

/* Commit a control record (WRAP or JUMP) of footprint fp at the head. */
static void tx_control(shm_chan *c, uint8_t flag, uint64_t fp)
{
    ferry__rec *r = rec_at(&c->tx, c->tx.head);
    tx_header(c, r, flag, 0, 0, 0);
    if (flag != FERRY__F_JUMP) tx_clear_next(&c->tx, c->tx.head + fp);
    tx_publish(c, r, c->tx.head + fp);
}

/* FERRY_UNBOUNDED and the ring is full: continue in a ring twice as large, handed to the
 * consumer over the link before the JUMP record that points to it. */
static int tx_grow(shm_chan *c)
{
    shm_tx *t = &c->tx;
    uint64_t size = t->size * 2;
    if (size > c->mem_cap || size > FERRY__RING_MAX) return -ENOBUFS;
    int fd;
    ferry__seg seg;
    int rc = ferry__seg_create(size, &fd, &seg);
    if (rc < 0) return rc == -ENOMEM ? -ENOBUFS : rc;
    ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC,
                         .kind = FERRY__LINK_SEG,
                         .seq = t->seq + 1,
                         .ring_bytes = size};
    /* Never wait here: an unbounded send does not block. A link too full to take one
     * more message counts as out of buffer space. */
    rc = ferry__link_send(c->link, &m, &fd, 1, 0);
    close(fd);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        return rc == -EAGAIN ? -ENOBUFS : rc;
    }
    /* The JUMP takes the 64 bytes every reservation keeps free after the head. */
    tx_control(c, FERRY__F_JUMP, FERRY__REC_ALIGN);
    ferry__seg_unmap(&t->grown);
    t->grown = seg;
    t->data = seg.base;
    t->size = size;
    t->clear_to = t->head; /* what was cleared lies in the old ring */
    FERRY__COUNT(c->base.st.grows, 1);
    return 0;
}

/*
 * The ring is full and the consumer is taking records (a stream faster than its
 * consumer): before waiting for room as usual, let room gather. A producer that polls
 * the consumer's tail and writes each record as soon as one is taken takes the tail's
 * line from the consumer at every message (it writes it at every take), and writes the
 * lines the consumer has just read. So look at the tail only every FERRY__GATHER_POLL
 * pauses, until there is room for FERRY__GATHER_AHEAD more records of this size (at most
 * a quarter of the ring), or FERRY__GATHER_NS pass, or the deadline. Relaxed, and only a
 * hint: the reservation then takes the tail again with its checks (tx_refresh), and
 * a tail that lies only ends the gather sooner or lets it run its time.
 */
static void tx_gather(shm_chan *c, uint64_t fp, ferry__when *w)
{
    shm_tx *t = &c->tx;
    uint64_t k = FERRY__GATHER_AHEAD;
    if (k * fp > t->size / 4) k = t->size / 4 / fp;
    if (k < 2) return;
    /* The tail at which this record, k more and the slot after them fit. */
    if (t->head + (k + 1) * fp + FERRY__REC_ALIGN <= t->size) return;
    const uint64_t goal = t->head + (k + 1) * fp + FERRY__REC_ALIGN - t->size;
    int64_t end = ferry__now_ns() + FERRY__GATHER_NS, at = ferry__when_at(w);
    if (at < end) end = at;
    for (unsigned i = 1;; i++) {
        ferry__cpu_relax();
        if (i % FERRY__GATHER_POLL != 0) continue;
        if (atomic_load_explicit(&t->ctl->tail, memory_order_relaxed) >= goal) return;
        if (ferry__now_ns() >= end) return;
    }
}

/* Wait for room for a record of len bytes; on success the record goes at t->head. Cold:
 * the send calls it only when what it knows of the consumer says "full" (or a wrap). */
static FERRY__COLD int tx_reserve(shm_chan *c, size_t len, ferry__when *w)
{
    shm_tx *t = &c->tx;
    uint64_t fp = ferry__rec_footprint(len);
    struct fit_arg a = {c, fp, 0, 0};
    int waited = 0, gathered = 0;
    for (;;) {
        /* What we cached of the consumer's indices is usually enough; only when it says
         * "full" do we pull the consumer's line over (tx_fits_cond refreshes). */
        int rc = tx_fits(c, fp);
        if (rc == 0) rc = tx_fits_cond(&a);
        if (rc < 0) return rc;
        if (rc == 0 && c->capacity == FERRY_UNBOUNDED) {
            rc = tx_grow(c);
            if (rc < 0) return rc;
            continue;
        }
        /* Full, in a ring counted in bytes only, for a caller that waits and a spin that
         * pays (not FERRY_NO_SPIN, not given up): let room gather first, once. */
        if (rc == 0 && !gathered && c->capacity == FERRY_CAP_RING && w->at != 0 &&
            t->spin.cur_ns > 0) {
            gathered = 1;
            tx_gather(c, fp, w);
            continue;
        }
        if (rc == 0) {
            if (!waited) {
                waited = 1;
                a.prog = atomic_load_explicit(&t->ctl->rprog, memory_order_relaxed);
                a.left = 2 * (t->size / FERRY__CHUNK) + 2;
            }
            uint64_t sleeps = 0;
            /* The peer's sleeping hint: its flags for "waiting for data from us" and
             * "waiting for room in what it sends us" (wait.h: a hint only). */
            rc = ferry__wait(
                &t->spin, tx_wait_cond, tx_alive, &a, &t->ctl->space_futex, &t->ctl->space_waiting,
                &t->ctl->space_fence, w, &sleeps,
                &(const ferry__peer){{&t->ctl->data_waiting, &c->rx.ctl->space_waiting}},
                &c->watch);
            FERRY__COUNT(c->base.st.send_waits, sleeps);
            if (rc < 0) return rc;
            continue; /* room, or only the consumer's progress: look again */
        }
        uint64_t off = t->head & (t->size - 1), to_end = t->size - off;
        if (fp > to_end) tx_control(c, FERRY__F_WRAP, to_end); /* pad to the end */
        return 0;
    }
}

struct claim_arg {
    shm_chan *c;
    ferry__rec *r;
};

static int tx_claimed(void *arg)
{
    struct claim_arg *a = arg;
    /* Acquire pairs with the consumer's claiming CAS. */
    return (atomic_load_explicit(&a->r->seq, memory_order_acquire) & FERRY__SEQ_CLAIMED) != 0;
}

static int tx_claim_alive(void *arg)
{
    return ferry__shm_alive(((struct claim_arg *)arg)->c);
}

/* Capacity 0: wait until the consumer claims the record just committed at r; if the
 * deadline passes first, withdraw it (exactly one of claim and withdrawal wins). */
static int tx_rendezvous(shm_chan *c, ferry__rec *r, ferry__when *w)
{
    shm_tx *t = &c->tx;
    struct claim_arg a = {c, r};
    uint64_t sleeps = 0;
    /* The peer's sleeping hint (wait.h): its waiting flags, as in tx_reserve. */
    int rc = ferry__wait(&t->spin, tx_claimed, tx_claim_alive, &a, &t->ctl->space_futex,
                         &t->ctl->space_waiting, &t->ctl->space_fence, w, &sleeps,
                         &(const ferry__peer){{&t->ctl->data_waiting, &c->rx.ctl->space_waiting}},
                         &c->watch);
    FERRY__COUNT(c->base.st.send_waits, sleeps);
    if (rc == 0) return 0;
    uint64_t seq = t->seq;
    if (atomic_compare_exchange_strong_explicit(&r->seq, &seq, seq | FERRY__SEQ_CANCELLED,
                                                memory_order_acq_rel, memory_order_acquire)) {
        t->cancelled++;
        FERRY__COUNT(c->base.st.drops, 1);
        return rc;
    }
    return 0; /* the consumer claimed it just in time */
}

/* Before a send: the end's state and whether the peer is still there. A send that may
 * wait (w->timeout is not FERRY_NOW) on an end whose link the process's watcher holds
 * learns of a hang-up from the watcher (its hup word, watch.h) and asks the kernel only
 * then: no poll every FERRY__LIVE_CHECK_NS, a system call that cost ~5 % of the round
 * trips with 64 pairs on 2 CPUs (docs/performance.md). A FERRY_NOW send keeps the
 * rate-limited poll: its -EPIPE comes in the very call, before the watcher ran
 * (shm-channel.md, "Peer death"). */
static HOT int tx_check(shm_chan *c, size_t len, const ferry__when *w)
{
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    if (dead) return dead;
    if (len > c->max_msg) return -EMSGSIZE;
    if (c->tx.loaned) return -EBUSY;
    /* Relaxed: joined was set by this end's own join (this thread, or one that handed
     * the end over), and a fork child's handler cleared it; hup is read with acquire. */
    if (w->timeout != FERRY_NOW && atomic_load_explicit(&c->watch.joined, memory_order_relaxed))
        return ferry__watch_fired(&c->watch) ? ferry__shm_alive(c) : 0;
    return ferry__shm_check_alive(c);
}

static int tx_finish_rendezvous(shm_chan *c, ferry__rec *r, size_t len, uint32_t nfds,
                                const int *fds, ferry__when *w);

/* Publish the record at the head (header still to write) and do the capacity-0 wait;
 * a capacity-0 message's fds go only once it is claimed, so a withdrawn message never
 * leaves one in flight. */
static HOT int tx_finish(shm_chan *c, int64_t type, size_t len, uint32_t nfds, const int *fds,
                         ferry__when *w)
{
    shm_tx *t = &c->tx;
    ferry__rec *r = rec_at(t, t->head);
    tx_header(c, r, 0, (uint8_t)nfds, type, (uint32_t)len);
    /* Relaxed, both: hints (tx_demote). The receiving thread stores recvs; the consumer
     * raises data_waiting before it sleeps (then it reads the record after a wake-up, on
     * whichever CPU: no demote). Read before the publication, which may take the flag. */
    uint32_t recvs = atomic_load_explicit(&c->rx.recvs, memory_order_relaxed);
    int demote = 0;
    if (recvs != t->recvs_seen) {
        t->recvs_seen = recvs;
        demote = !atomic_load_explicit(&t->ctl->data_waiting, memory_order_relaxed);
    }
    tx_publish(c, r, t->head + ferry__rec_footprint(len));
    if (demote) tx_demote(r, len);
    tx_clear_ahead(t);
    t->sent++;
    FERRY__COUNT(c->base.st.sent_msgs, 1);
    FERRY__COUNT(c->base.st.sent_bytes, len);
    if (c->capacity != 0) return 0;
    return tx_finish_rendezvous(c, r, len, nfds, fds, w);
}

/* tx_finish of a capacity-0 channel: wait for the claim, then send the fds. */
static FERRY__COLD int tx_finish_rendezvous(shm_chan *c, ferry__rec *r, size_t len, uint32_t nfds,
                                            const int *fds, ferry__when *w)
{
    uint64_t seq = c->tx.seq;
    int rc = tx_rendezvous(c, r, w);
    if (rc < 0) {
        FERRY__COUNT(c->base.st.sent_msgs, (uint64_t)-1);
        FERRY__COUNT(c->base.st.sent_bytes, (uint64_t)-len);
        return rc;
    }
    if (nfds) {
        /* Claimed: the receiver now waits for exactly these. With one rendezvous message
         * in flight at a time a receiver that reads its link always has room for them
         * (the send does not wait); a link still full at the deadline belongs to a
         * receiver that does not read it, which broke the protocol. A dead receiver hangs
         * the link up: -EPIPE. */
        ferry__link_msg lm = {.magic = FERRY__SETUP_MAGIC, .kind = FERRY__LINK_FDS, .seq = seq};
        rc = ferry__link_send(c->link, &lm, fds, nfds, ferry__when_at(w));
        if (rc == -ETIMEDOUT || rc == -EAGAIN) rc = ferry__shm_fail(c, -EBADMSG);
    }
    return rc;
}

/* Copy a payload into the record at the head. A large one goes in chunks, each followed
 * by a word of progress (ring.h, wprog) that keeps a consumer waiting on this record
 * spinning rather than sleeping. Relaxed: only a hint; the record is published (with
 * release) by tx_publish as before. */
static FERRY__COLD void tx_copy_chunks(shm_chan *c, uint8_t *dst, const void *src, size_t len);

static HOT void tx_copy(shm_chan *c, uint8_t *dst, const void *src, size_t len)
{
    if (len <= FERRY__CHUNK)
        ferry__shm_copy(dst, src, len);
    else
        tx_copy_chunks(c, dst, src, len);
}

static FERRY__COLD void tx_copy_chunks(shm_chan *c, uint8_t *dst, const void *src, size_t len)
{
    uint64_t seq = c->tx.seq + 1;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < FERRY__CHUNK ? len - done : FERRY__CHUNK;
        memcpy(dst + done, (const uint8_t *)src + done, n);
        done += n;
        atomic_store_explicit(&c->tx.ctl->wprog, FERRY__PROG(seq, done), memory_order_relaxed);
    }
}

FERRY__HOT int ferry__shm_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w)
{
    shm_chan *c = (shm_chan *)ch;
    int rc = tx_check(c, m->len, w);
    if (rc < 0) return rc;
    if (m->nfds && c->peer_no_fds) return -EOPNOTSUPP; /* nothing sent: the end stays usable */
    /* A rendezvous send always waits for its receiver: fix its deadline now. */
    if (c->capacity == 0) ferry__when_at(w);
    if (c->capacity == 0)
        for (uint32_t i = 0; i < m->nfds; i++) /* checked now: they are sent after the commit */
            if (fcntl(m->fds[i], F_GETFD) < 0) return -EINVAL;
    /* The common case, room in the ring without a wrap (what the producer knows of the
     * consumer's tail is enough): no call to tx_reserve. */
    shm_tx *t = &c->tx;
    uint64_t fp = ferry__rec_footprint(m->len), off = t->head & (t->size - 1);
    if (!(fp <= t->size - off && tx_fits(c, fp)) && (rc = tx_reserve(c, m->len, w)) < 0) return rc;
    if (m->nfds && c->capacity != 0) {
        /* The fds go first, so the consumer finds them queued when it reads the record. */
        ferry__link_msg lm = {
            .magic = FERRY__SETUP_MAGIC, .kind = FERRY__LINK_FDS, .seq = c->tx.seq + 1};
        rc = ferry__link_send(c->link, &lm, m->fds, m->nfds, ferry__when_at(w));
        if (rc < 0) return rc;
    }
    /* Clear the next slot before writing the record, while the consumer is still busy
     * with (or waiting on) the lines in front. In bench/ring_designs this ordering was
     * 20-30 ns per round trip faster than clearing just before the publication; in
     * ferry bench the difference is within the machine's noise. */
    tx_clear_next(&c->tx, c->tx.head + ferry__rec_footprint(m->len));
    tx_copy(c, (uint8_t *)rec_at(&c->tx, c->tx.head) + FERRY__FRAME_HDR, m->data, m->len);
    return tx_finish(c, m->type, m->len, m->nfds, m->fds, w);
}

FERRY__HOT int ferry__shm_loan(ferry_chan *ch, size_t len, void **buf, ferry__when *w)
{
    shm_chan *c = (shm_chan *)ch;
    int rc = tx_check(c, len, w);
    if (rc < 0) return rc;
    if (c->capacity == 0) ferry__when_at(w);
    rc = tx_reserve(c, len, w);
    if (rc < 0) return rc;
    shm_tx *t = &c->tx;
    /* The caller may write anywhere in its buffer, over slots a batch cleared: forget the
     * cleared frontier, so the commit clears the slot after its record itself, and the
     * next batch starts again at the head (test_shm_large: test_stale_laps). */
    t->clear_to = t->head;
    t->loaned = 1;
    t->loan_pos = t->head;
    t->loan_len = len;
    t->loan_when = *w;
    /* Records start on 64-byte boundaries and the payload follows the 32-byte header in
     * the same cache line (so a small message costs one line): 32-byte aligned. */
    *buf = (uint8_t *)rec_at(t, t->head) + FERRY__FRAME_HDR;
    return 0;
}

FERRY__HOT int ferry__shm_commit(ferry_chan *ch, int64_t type, size_t len)
{
    shm_chan *c = (shm_chan *)ch;
    shm_tx *t = &c->tx;
    if (!t->loaned || len > t->loan_len) return -EINVAL;
    t->loaned = 0;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    if (dead) return dead;
    tx_clear_next(t, t->head + ferry__rec_footprint(len));
    return tx_finish(c, type, len, 0, NULL, &t->loan_when);
}

void ferry__shm_tx_free(shm_chan *c)
{
    ferry__seg_unmap(&c->tx.grown);
}
