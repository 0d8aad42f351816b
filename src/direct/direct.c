// SPDX-License-Identifier: MIT
/*
 * direct.c — direct communication by name: ferry_send_to (Send(P, m)) and the inbox's
 * ferry_recv_from (Receive(Q, m)), on top of ferry_connect / ferry_register channels.
 *
 * Rules:
 *  - Senders: one cached channel per destination name and process. The cache is guarded
 *    by a mutex, each destination by its own (a channel end allows one sending thread at
 *    a time). After fork the child finds the cache made by another pid and closes those
 *    channels (its copies) before making its own: two processes never send into one ring.
 *  - Before a send on a cached channel, its link is asked whether the receiver hung up
 *    (one poll); if so, or if the send says -EPIPE, nothing was delivered: the channel is
 *    dropped, the name connected again and the message sent once more. A send on a
 *    fresh channel is never retried, so nothing is sent twice. A message sent at the very
 *    moment the receiver closes can still be lost with its ring, as any message queued
 *    to a receiver that closes.
 *  - Inbox: a listener from ferry_register plus every channel it accepted, with each
 *    sender's kernel-stamped identity. ferry_recv_from(from) looks `from` up in ferryd
 *    only while no channel of its current owner is known (the owner's pid is kept), then
 *    takes from that sender's channel; NULL takes from any, round robin, so one busy
 *    sender cannot starve the others. One receiving thread per inbox.
 */
#define _GNU_SOURCE /* epoll, pthread */
#include "chan/chan.h"
#include "core/time.h"
#include "ferry/ferry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ------------------------------------------------------------------ send_to */

typedef struct dest {
    struct dest *next;
    pthread_mutex_t lock; /* one sender at a time on ch */
    ferry_chan *ch;       /* NULL until connected (or after a failure) */
    char name[];
} dest;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static dest *cache;
static pid_t cache_pid;

/* Close and free every cached channel (the caller holds cache_lock). */
static void cache_clear(void)
{
    while (cache) {
        dest *d = cache;
        cache = d->next;
        ferry_chan_close(d->ch);
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
}

static dest *cache_get(const char *name)
{
    pthread_mutex_lock(&cache_lock);
    if (cache_pid != getpid()) { /* made by our parent before a fork: not ours to use */
        cache_clear();
        cache_pid = getpid();
    }
    dest *d = cache;
    while (d && strcmp(d->name, name) != 0) d = d->next;
    if (!d && (d = calloc(1, sizeof *d + strlen(name) + 1))) {
        strcpy(d->name, name);
        pthread_mutex_init(&d->lock, NULL);
        d->next = cache;
        cache = d;
    }
    pthread_mutex_unlock(&cache_lock);
    return d;
}

int ferry_send_to(const char *name, const ferry_msg *m, int64_t timeout_ns)
{
    if (!name || !m) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    dest *d = cache_get(name);
    if (!d) return -ENOMEM;
    pthread_mutex_lock(&d->lock);
    int rc = -EPIPE;
    for (int attempt = 0; attempt < 2 && rc == -EPIPE; attempt++) {
        int fresh = 0;
        if (!d->ch) {
            int64_t left = ferry__remaining(deadline);
            rc = ferry_connect(name, FERRY_KIND_SHM, NULL, &d->ch, left < 0 ? 0 : left);
            if (rc < 0) {
                d->ch = NULL;
                break;
            }
            fresh = 1;
        }
        /* Ask the kernel whether the receiver is still there (a hang-up on the channel's
         * link) before sending: a send into the ring of a receiver that closed a moment
         * ago would otherwise succeed and be lost. */
        if (!fresh && ferry__chan_alive(d->ch) < 0) {
            ferry_chan_close(d->ch);
            d->ch = NULL;
            rc = -EPIPE;
            continue;
        }
        int64_t left = ferry__remaining(deadline);
        rc = ferry_sendmsg(d->ch, m,
                           deadline == FERRY__NO_DEADLINE ? FERRY_FOREVER
                           : left < 0                     ? 0
                                                          : left);
        if (rc == -EPIPE || rc == -EBADMSG) { /* this channel is over */
            ferry_chan_close(d->ch);
            d->ch = NULL;
            if (fresh) break; /* a new owner that went at once: say so, do not loop */
            rc = -EPIPE;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void ferry_send_to_reset(void)
{
    pthread_mutex_lock(&cache_lock);
    cache_clear();
    pthread_mutex_unlock(&cache_lock);
}

/* ------------------------------------------------------------------ inbox */

struct ferry_inbox {
    ferry_listener *l;
    int ep; /* ferry_inbox_poll_fd: the listener's fd and every channel's */
    ferry_chan **ch;
    ferry_cred *who;
    size_t n, cap, next; /* next: where a round-robin pass starts */
    char from[256];      /* the last `from` looked up, and its owner's pid */
    pid_t from_pid;
};

int ferry_inbox_open(const char *name, const ferry_policy *policy, const ferry_chan_opts *opts,
                     ferry_inbox **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    ferry_inbox *in = calloc(1, sizeof *in);
    if (!in) return -ENOMEM;
    int rc = ferry_register(name, policy, opts, &in->l, timeout_ns);
    if (rc == 0 && (in->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) rc = -errno;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(in->ep, EPOLL_CTL_ADD, ferry_listener_poll_fd(in->l), &ev) < 0) rc = -errno;
    }
    if (rc < 0) {
        if (in->l) {
            if (in->ep > 0) close(in->ep);
            ferry_listener_close(in->l);
        }
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

static void drop_chan(ferry_inbox *in, size_t i)
{
    epoll_ctl(in->ep, EPOLL_CTL_DEL, ferry_chan_poll_fd(in->ch[i]), NULL);
    ferry_chan_close(in->ch[i]);
    in->n--;
    in->ch[i] = in->ch[in->n];
    in->who[i] = in->who[in->n];
}

/* Take every sender waiting to be accepted. */
static int take_new(ferry_inbox *in)
{
    ferry_chan *ch;
    int rc;
    while ((rc = ferry_accept(in->l, &ch, FERRY_NOW)) == 0) {
        if (in->n == in->cap) {
            size_t cap = in->cap ? in->cap * 2 : 8;
            ferry_chan **c = realloc(in->ch, cap * sizeof *c);
            if (c) in->ch = c;
            ferry_cred *w = c ? realloc(in->who, cap * sizeof *w) : NULL;
            if (w) in->who = w;
            if (!c || !w) {
                ferry_chan_close(ch);
                return -ENOMEM;
            }
            in->cap = cap;
        }
        int fd = ferry_chan_poll_fd(ch);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ch};
        if (fd < 0 || epoll_ctl(in->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            ferry_chan_close(ch);
            return fd < 0 ? fd : -errno;
        }
        ferry_cred c = {0};
        ferry_chan_peer(ch, &c);
        in->ch[in->n] = ch;
        in->who[in->n++] = c;
    }
    return rc == -EAGAIN ? 0 : rc;
}

/* Is channel i's sender the owner of `from` (as last looked up)? */
static int from_matches(ferry_inbox *in, size_t i)
{
    return in->who[i].pid == in->from_pid;
}

static int lookup_from(ferry_inbox *in, const char *from, int64_t deadline)
{
    if (strcmp(in->from, from) == 0)
        for (size_t i = 0; i < in->n; i++)
            if (from_matches(in, i)) return 0; /* still there: no need to ask */
    ferry_name_info info;
    int64_t left = ferry__remaining(deadline);
    int rc = ferry_lookup(from, &info, left > 0 ? left : 0);
    if (rc < 0) return rc;
    snprintf(in->from, sizeof in->from, "%s", from);
    in->from_pid = info.pid;
    return 0;
}

ssize_t ferry_recv_from(ferry_inbox *in, const char *from, ferry_msg *m, int64_t filter,
                        ferry_cred *sender, int64_t timeout_ns)
{
    if (!in || !m) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int busy = 0; /* the last wait said "ready", yet the pass after it found nothing */
    for (;;) {
        int rc = take_new(in);
        if (rc < 0) return rc;
        if (from && (rc = lookup_from(in, from, deadline)) < 0) return rc;
        for (size_t k = 0; k < in->n; k++) {
            size_t i = (in->next + k) % in->n;
            if (from && !from_matches(in, i)) continue;
            ssize_t got = ferry_recvmsg(in->ch[i], m, filter, FERRY_NOW);
            if (got >= 0 || got == -EMSGSIZE) {
                if (sender) *sender = in->who[i];
                in->next = i + 1;
                return got;
            }
            if (got != -EAGAIN) { /* the sender is gone (or broke the rules) */
                drop_chan(in, i);
                k--;
            }
        }
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        /* Sleep until something may have come (at most 100 ms, so that a `from` that
         * changes owner is looked up again). A channel holding only messages the filter
         * passes over, or another sender's when `from` is given, stays readable: then
         * look once a millisecond instead of spinning. */
        if (busy) usleep(1000);
        int ms = left > 100000000 ? 100 : (int)((left + 999999) / 1000000);
        struct epoll_event ev;
        busy = epoll_wait(in->ep, &ev, 1, ms) > 0;
    }
}

int ferry_inbox_poll_fd(const ferry_inbox *in)
{
    return in ? in->ep : -EINVAL;
}

void ferry_inbox_close(ferry_inbox *in)
{
    if (!in) return;
    while (in->n) drop_chan(in, in->n - 1);
    free(in->ch);
    free(in->who);
    close(in->ep);
    ferry_listener_close(in->l);
    free(in);
}
