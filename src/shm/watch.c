// SPDX-License-Identifier: MIT
/*
 * watch.c — the process's link watcher (see watch.h for what it is for and its rules).
 *
 * State: one registry under one mutex: the epoll descriptor, the watcher thread's
 * existence, and a table of slots, each the entry registered in it and a sequence number
 * that changes whenever the slot is freed. An epoll event carries (sequence << 32 | slot),
 * so an event for an entry that left (and whose memory may be gone) is recognised and
 * dropped under the lock instead of followed.
 */
#define _GNU_SOURCE
#include "watch.h"
#include "core/futex.h"
#include "core/thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct slot {
    ferry__watch *e; /* NULL: free */
    uint32_t seq;    /* changes when freed: an older event no longer matches */
    uint32_t next;   /* free list */
} slot;

static struct {
    pthread_mutex_t mu;
    int epfd;   /* -1: no watcher (yet, or since fork) */
    int failed; /* it could not be started: waiters here sleep in slices */
    slot *slots;
    uint32_t n, cap; /* slots in use (high water), allocated */
    uint32_t free;   /* first free slot below n, or UINT32_MAX */
} W = {PTHREAD_MUTEX_INITIALIZER, -1, 0, NULL, 0, 0, UINT32_MAX};

void ferry__watch_init(ferry__watch *e, int fd, _Atomic uint32_t *w0, _Atomic uint32_t *w1)
{
    atomic_init(&e->hup, 0);
    atomic_init(&e->joined, 0);
    e->slot = 0;
    e->fd = fd;
    e->words[0] = w0;
    e->words[1] = w1;
}

/* The link hung up (under the lock, e registered): tell its waiters. hup first, with
 * release, then each word bumped: a waiter that reads a bumped word (acquire) also reads
 * hup = 1; one that read the word before the bump finds it changed in FUTEX_WAIT, or is
 * asleep and woken here. */
static void fire(ferry__watch *e)
{
    atomic_store_explicit(&e->hup, 1, memory_order_release);
    for (int i = 0; i < 2; i++) {
        if (!e->words[i]) continue;
        atomic_fetch_add_explicit(e->words[i], 1, memory_order_seq_cst);
        ferry__futex_wake(e->words[i], INT32_MAX);
    }
}

static void slot_put(uint32_t s);

static void *watch_main(void *arg)
{
    int epfd = (int)(intptr_t)arg;
    struct epoll_event ev[32];
    for (;;) {
        int n = epoll_wait(epfd, ev, 32, -1);
        if (n < 0 && errno == EINTR) continue;
        pthread_mutex_lock(&W.mu);
        if (n < 0) {
            /* Cannot happen with a valid descriptor; if it does, nobody hears of a hang-up
             * any more: wake every waiter (each re-checks its peer), and make every later
             * sleep a sliced one (every entry leaves the registry, unjoined). */
            for (uint32_t i = 0; i < W.n; i++)
                if (W.slots[i].e) {
                    fire(W.slots[i].e); /* hup first: a waiter then sleeps in slices */
                    atomic_store_explicit(&W.slots[i].e->joined, 0, memory_order_relaxed);
                    slot_put(i);
                }
            W.failed = 1;
            pthread_mutex_unlock(&W.mu);
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            uint32_t s = (uint32_t)ev[i].data.u64, seq = (uint32_t)(ev[i].data.u64 >> 32);
            /* Still the entry the event was for? (It may have left since epoll_wait.) */
            if (s < W.n && W.slots[s].e && W.slots[s].seq == seq) fire(W.slots[s].e);
        }
        pthread_mutex_unlock(&W.mu);
    }
}

/* Fork: the parent holds the lock across it (as glibc's malloc holds its arenas), so the
 * child's copy of the registry is whole. */
static void watch_prepare(void)
{
    pthread_mutex_lock(&W.mu);
}

static void watch_parent(void)
{
    pthread_mutex_unlock(&W.mu);
}

/* A fork child (one thread): the watcher thread stayed in the parent, and the epoll set is
 * the parent's (closing our copy leaves it alone). Every entry registered there is
 * unjoined here (the entries are the child's copies, at the same addresses), so it joins
 * this process's watcher when it needs to; the registry starts empty. */
static void watch_forked(void)
{
    for (uint32_t i = 0; i < W.n; i++)
        if (W.slots[i].e) atomic_store_explicit(&W.slots[i].e->joined, 0, memory_order_relaxed);
    pthread_mutex_init(&W.mu, NULL);
    if (W.epfd >= 0) close(W.epfd);
    W.epfd = -1;
    W.failed = 0;
    W.n = 0;
    W.free = UINT32_MAX;
}

static void watch_once(void)
{
    pthread_atfork(watch_prepare, watch_parent, watch_forked);
}

/* Under the lock: make the epoll set and the thread. 0, or -1 (W.failed set). */
static int start(void)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        W.failed = 1;
        return -1;
    }
    /* The thread takes no signal (core/thread.h). */
    sigset_t all, old;
    ferry__thread_sigmask(&all);
    pthread_attr_t a;
    pthread_t t;
    int e = pthread_attr_init(&a);
    if (e == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024); /* a loop over epoll_wait */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        e = pthread_create(&t, &a, watch_main, (void *)(intptr_t)epfd);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&a);
    }
    if (e != 0) {
        close(epfd);
        W.failed = 1;
        return -1;
    }
    pthread_setname_np(t, "ferry-watch");
    W.epfd = epfd;
    return 0;
}

/* Under the lock: a free slot's index, or UINT32_MAX (no memory). */
static uint32_t slot_take(void)
{
    if (W.free != UINT32_MAX) {
        uint32_t s = W.free;
        W.free = W.slots[s].next;
        return s;
    }
    if (W.n == W.cap) {
        uint32_t cap = W.cap ? W.cap * 2 : 64;
        if (cap < W.cap) return UINT32_MAX;
        slot *p = realloc(W.slots, (size_t)cap * sizeof *p);
        if (!p) return UINT32_MAX;
        W.slots = p;
        W.cap = cap;
    }
    W.slots[W.n].seq = 0;
    return W.n++;
}

static void slot_put(uint32_t s)
{
    W.slots[s].e = NULL;
    W.slots[s].seq++;
    W.slots[s].next = W.free;
    W.free = s;
}

int ferry__watch_join_slow(ferry__watch *e)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, watch_once);
    int ok = 0;
    pthread_mutex_lock(&W.mu);
    if (atomic_load_explicit(&e->joined, memory_order_relaxed) != 0) {
        ok = 1; /* another thread of this end joined it meanwhile */
    } else if (!W.failed && (W.epfd >= 0 || start() == 0)) {
        uint32_t s = slot_take();
        if (s != UINT32_MAX) {
            /* Hang-up only (EPOLLHUP and EPOLLERR are always reported): what the peer
             * sends on the link (EPOLLIN) must not wake us. One shot: an entry fires once,
             * and its waiters then fall back to slices. A link that already hung up is
             * reported at once. */
            struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT,
                                     .data.u64 = (uint64_t)W.slots[s].seq << 32 | s};
            if (epoll_ctl(W.epfd, EPOLL_CTL_ADD, e->fd, &ev) == 0) {
                W.slots[s].e = e;
                e->slot = s;
                /* Release pairs with ferry__watch_join's acquire: a waiter that finds the
                 * entry joined finds it in the epoll set. */
                atomic_store_explicit(&e->joined, 1, memory_order_release);
                ok = 1;
            } else {
                slot_put(s);
            }
        }
    }
    pthread_mutex_unlock(&W.mu);
    return ok && !atomic_load_explicit(&e->hup, memory_order_relaxed);
}

void ferry__watch_leave(ferry__watch *e)
{
    /* Not joined in this process (never, or only in a parent before fork: the child's
     * fork handler unjoined it): nothing here refers to it. Relaxed: the owner's own
     * earlier join is ordered by program order or by whatever handed the end from thread
     * to thread. */
    if (atomic_load_explicit(&e->joined, memory_order_relaxed) == 0) return;
    pthread_mutex_lock(&W.mu);
    if (atomic_load_explicit(&e->joined, memory_order_relaxed) != 0 && e->slot < W.n &&
        W.slots[e->slot].e == e) {
        (void)epoll_ctl(W.epfd, EPOLL_CTL_DEL, e->fd, NULL);
        slot_put(e->slot);
    }
    atomic_store_explicit(&e->joined, 0, memory_order_relaxed);
    pthread_mutex_unlock(&W.mu);
}

int ferry__watch_fd(void)
{
    pthread_mutex_lock(&W.mu);
    int fd = W.epfd;
    pthread_mutex_unlock(&W.mu);
    return fd;
}
