// SPDX-License-Identifier: MIT
/*
 * state.c — ferry_state: one writer publishes a value of up to max_len bytes, any number
 * of readers take torn-free copies (ferry.h "regions and states"; docs/region.md).
 *
 * A state is a region of kind FERRY_OBJ_STATE: the header's seq and len words (region.h)
 * and the payload, max_len bytes rounded up to 8, at the start of the user bytes. It is
 * a seqlock in C11 atomics (Boehm, "Can seqlocks get along with programming language
 * memory models?", 2012):
 *  - the writer makes seq odd, writes the payload and len, makes seq even again;
 *  - a reader reads seq (even), copies, reads seq again, and keeps the copy only if seq
 *    did not change. The payload is copied with relaxed atomic 8-byte loads and written
 *    with relaxed atomic stores (a copy racing with a write is then no data race: the
 *    words may be of two versions, which the second seq read rejects).
 * Hostile input: seq, len and the payload are shared words a write holder may scribble.
 * len is bounded by our private max_len before it steers any copy; retries are bounded
 * (READ_TRIES, and YIELD_NS for the tries that yield), so a writer that died with seq
 * odd, or a scribbler flipping seq, costs a
 * reader -EAGAIN, never a hang. The state's version is seq / 2 (a write in progress
 * shows the version before it).
 * Waiting: ferry_state_write ends with ferry_region_notify (the region's version bump
 * and futex wake); ferry_state_wait sleeps on that futex and re-checks seq.
 * Test seam (FERRY_TEST_HOOKS): ferry__state_write_hook is called in the middle of a
 * write, with seq odd and half the payload written (the writer-killed test stops there).
 */
#define _GNU_SOURCE /* sched_yield */
#include "region/region.h"

#include "core/abi.h"
#include "core/time.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define relax() __builtin_ia32_pause()
#else
#define relax() atomic_signal_fence(memory_order_seq_cst)
#endif

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics in shared memory");

/* A read tries this many times: the first SPIN_TRIES with a pause between them (a write
 * of a small value takes tens of ns), then with sched_yield (a writer preempted on this
 * CPU gets it back). Then -EAGAIN. */
#define READ_TRIES 256
#define SPIN_TRIES 64
#define YIELD_NS   (2 * 1000 * 1000) /* and the yields stop after 2 ms */

#ifdef FERRY_TEST_HOOKS /* only in ferry_test_static, never in an installed library */
void (*ferry__state_write_hook)(void);
#endif

struct ferry_state {
    ferry_region *r;
    _Atomic uint64_t *payload; /* the user bytes, mapped (writable iff r->writable) */
    size_t max_len;            /* our copy, validated against the mapping */
    pthread_mutex_t wlock;     /* one writing thread of this process at a time */
};

static int state_wrap(ferry_region *r, ferry_state **out)
{
    ferry_state *s = calloc(1, sizeof *s);
    if (!s) {
        ferry_region_close(r);
        return -ENOMEM;
    }
    void *p;
    int rc = ferry_region_map(
        r, r->writable ? FERRY_REGION_READ | FERRY_REGION_WRITE : FERRY_REGION_READ, &p);
    if (rc == 0 && pthread_mutex_init(&s->wlock, NULL) != 0) rc = -ENOMEM;
    if (rc < 0) {
        free(s);
        ferry_region_close(r);
        return rc;
    }
    s->r = r;
    s->payload = p;
    s->max_len = (size_t)r->max_len; /* judged at adoption: <= FERRY_STATE_MAX_LEN, fits */
    *out = s;
    return 0;
}

int ferry_state_create(size_t max_len, const ferry_region_opts *opts, ferry_state **out)
{
    if (!out) return -EINVAL;
    *out = NULL;
    if (max_len == 0 || max_len > FERRY_STATE_MAX_LEN) return -EINVAL;
    if (opts) {
        /* GROWABLE makes no sense for a state (checked here; the rest by the region). */
        ferry_region_opts o;
        ferry_region_opts_init(&o);
        int rc = ferry__sized_in(&o, sizeof o, opts, FERRY__REGION_OPTS_V0); /* core/abi.h */
        if (rc < 0) return rc;
        if (o.flags & FERRY_REGION_GROWABLE) return -EINVAL;
    }
    ferry_region *r;
    size_t payload = (max_len + 7) & ~(size_t)7;
    int rc = ferry__region_make(FERRY_OBJ_STATE, payload, max_len, opts, &r);
    if (rc < 0) return rc;
    return state_wrap(r, out);
}

int ferry_state_adopt(int fd, ferry_state **out)
{
    if (!out) {
        if (fd >= 0) close(fd);
        return -EINVAL;
    }
    *out = NULL;
    ferry_region *r;
    int rc = ferry__region_adopt_kind(fd, FERRY_OBJ_STATE, &r);
    if (rc < 0) return rc;
    return state_wrap(r, out);
}

int ferry_state_fd(const ferry_state *s)
{
    return s ? ferry_region_fd(s->r) : -EINVAL;
}

int ferry_state_fd_readonly(const ferry_state *s, int *fd)
{
    return s ? ferry_region_fd_readonly(s->r, fd) : -EINVAL;
}

size_t ferry_state_max_len(const ferry_state *s)
{
    return s ? s->max_len : 0;
}

ferry_region *ferry_state_region(ferry_state *s)
{
    return s ? s->r : NULL;
}

int ferry_state_write(ferry_state *s, const void *buf, size_t len)
{
    if (!s || (!buf && len > 0)) return -EINVAL;
    if (len > s->max_len) return -EMSGSIZE;
    if (!s->r->writable) return -EACCES;
    ferry__region_hdr *h = s->r->hdr;
    const unsigned char *src = buf;
    pthread_mutex_lock(&s->wlock);
    /* relaxed: we are the one writer; a writer that died mid-write left it odd, and we
     * go on from there (odd stays odd, then the next even). */
    uint64_t base = atomic_load_explicit(&h->seq, memory_order_relaxed) & ~(uint64_t)1;
    atomic_store_explicit(&h->seq, base + 1, memory_order_relaxed);
    /* release fence: orders the odd seq before every payload store below, so a reader
     * that reads any of them (and then does its acquire fence) reads seq != its s1. */
    atomic_thread_fence(memory_order_release);
    size_t words = (len + 7) / 8;
    for (size_t i = 0; i < words; i++) {
#ifdef FERRY_TEST_HOOKS
        if (i == words / 2 && ferry__state_write_hook) ferry__state_write_hook();
#endif
        uint64_t w = 0;
        size_t n = len - i * 8 < 8 ? len - i * 8 : 8;
        memcpy(&w, src + i * 8, n);
        atomic_store_explicit(&s->payload[i], w, memory_order_relaxed);
    }
#ifdef FERRY_TEST_HOOKS
    if (words == 0 && ferry__state_write_hook) ferry__state_write_hook();
#endif
    atomic_store_explicit(&h->len, (uint64_t)len, memory_order_relaxed);
    /* seq_cst store (a release and more): the payload and len stores above happen before
     * a reader's acquire load that sees the even seq; and it precedes the notify's RMW
     * in the total order that ferry_state_wait's seq_cst loads take part in, so a waiter
     * that saw the old seq sleeps on the old version word and is woken. */
    atomic_store_explicit(&h->seq, base + 2, memory_order_seq_cst);
    pthread_mutex_unlock(&s->wlock);
    return ferry_region_notify(s->r);
}

int ferry_state_read(const ferry_state *s, void *buf, size_t cap, size_t *len, uint64_t *version)
{
    if (!s || !len || (!buf && cap > 0)) return -EINVAL;
    ferry__region_hdr *h = s->r->hdr;
    unsigned char *dst = buf;
    int64_t give_up = 0; /* the yield phase's deadline, taken at its first yield */
    for (int t = 0; t < READ_TRIES; t++) {
        if (t > 0 && t < SPIN_TRIES) {
            relax();
        } else if (t > 0) {
            /* On a loaded machine one sched_yield can hand the CPU away for a whole
             * slice: the yields are bounded in time too (YIELD_NS). */
            int64_t now = ferry__now_ns();
            if (give_up == 0)
                give_up = now + YIELD_NS;
            else if (now > give_up)
                break;
            sched_yield();
        }
        /* acquire: pairs with the writer's seq_cst (release) store of the even seq, so
         * the payload and len it covers are visible to the loads below. */
        uint64_t s1 = atomic_load_explicit(&h->seq, memory_order_acquire);
        if (s1 & 1) continue; /* a write is in progress (or its writer died) */
        uint64_t n = atomic_load_explicit(&h->len, memory_order_relaxed);
        int fits = n <= s->max_len && n <= cap;
        if (fits) {
            size_t words = (size_t)(n + 7) / 8;
            for (size_t i = 0; i + 1 < words; i++) {
                uint64_t w = atomic_load_explicit(&s->payload[i], memory_order_relaxed);
                memcpy(dst + i * 8, &w, 8);
            }
            if (words > 0) {
                uint64_t w = atomic_load_explicit(&s->payload[words - 1], memory_order_relaxed);
                memcpy(dst + (words - 1) * 8, &w, (size_t)n - (words - 1) * 8);
            }
        }
        /* acquire fence: the loads above (len, payload) are ordered before the seq load
         * below; if any of them saw a store of a later write, this seq load sees at
         * least that write's odd seq (the writer's release fence pairs with this). */
        atomic_thread_fence(memory_order_acquire);
        uint64_t s2 = atomic_load_explicit(&h->seq, memory_order_relaxed);
        if (s2 != s1) continue;              /* torn: try again */
        if (n > s->max_len) return -EBADMSG; /* a stable length no writer writes */
        *len = (size_t)n;
        if (n > cap) return -EMSGSIZE;
        if (version) *version = s1 >> 1;
        return 0;
    }
    return -EAGAIN;
}

uint64_t ferry_state_version(const ferry_state *s)
{
    /* acquire, as ferry_state_read's first load. */
    return s ? atomic_load_explicit(&s->r->hdr->seq, memory_order_acquire) >> 1 : 0;
}

static int state_changed(ferry_region *r, uint64_t seen)
{
    /* seq_cst: see ferry__region_wait_until and ferry_state_write's last store. */
    return (atomic_load_explicit(&r->hdr->seq, memory_order_seq_cst) >> 1) != seen;
}

int ferry_state_wait(ferry_state *s, uint64_t seen, int64_t timeout_ns)
{
    int64_t deadline;
    if (!s || ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    return ferry__region_wait_until(s->r, state_changed, seen, deadline);
}

void ferry_state_close(ferry_state *s)
{
    if (!s) return;
    ferry_region_close(s->r); /* unmaps the payload too */
    pthread_mutex_destroy(&s->wlock);
    free(s);
}
