// SPDX-License-Identifier: MIT
/*
 * watch.h — hearing of a dead peer without waking up: the process's link watcher.
 *
 * A waiter asleep on a futex word in shared memory (wait.h) is woken by its peer's
 * publication, or by the peer's close (which wakes it on the way out). A peer killed by a
 * signal wakes nobody; its only trace is its end of the control link hanging up. Without
 * a watcher, a waiter therefore sleeps in slices (FERRY__WAIT_SLICE_NS) and looks at the
 * link after each: an hrtimer armed and cancelled per sleep, and ~200 wake-ups a second
 * for a waiter that waits long.
 *
 * The watcher is one thread per process, started on first need, that holds the links of
 * the channel ends that sleep in one epoll set (hang-up only, one shot). When a link hangs
 * up, it sets the entry's `hup` word (release), then bumps each of the entry's futex words
 * and wakes every sleeper on them. A waiter on a watched entry sleeps without a timeout
 * (or to its own deadline) and, after reading its futex word, reads `hup`: either it sees
 * the bump in the word it read, and then `hup` too (the acquire on the word pairs with the
 * watcher's bump), or its FUTEX_WAIT finds the word changed or is woken. So no death is
 * missed, and a live channel's sleeps cost one FUTEX_WAIT each, like a pipe's read.
 *
 * Rules:
 * - An entry lives inside its owner's channel end (ferry__watch_init at setup); it is
 *   joined (registered) by a waiter before its first untimed sleep, from any thread, and
 *   must leave (ferry__watch_leave) before its fd is closed or its words unmapped. The
 *   watcher touches an entry only under the registry lock, and only while it is
 *   registered, so a leave that returned ends every use of it.
 * - The words are bumped (a spurious wake-up for whoever sleeps on them; their protocol
 *   allows that: wait.h) and never read for anything else. hup only goes 0 -> 1.
 * - Fork: the child has no watcher thread and does not share the parent's (its copy of the
 *   epoll descriptor is closed in the child); entries joined in the parent are not joined
 *   in the child (its fork handler clears their `joined`, walking the registry, which the
 *   parent's fork handler holds still across the fork), and join again on first need.
 * - Where the watcher cannot run (no thread, no epoll: ferry__watch_join returns 0), and
 *   after an entry fired, waiters sleep in slices as before.
 * - The epoll descriptor lives until the process exits (ferry__watch_fd).
 */
#ifndef FERRY_SHM_WATCH_H
#define FERRY_SHM_WATCH_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct ferry__watch {
    _Atomic uint32_t hup;       /* 1 once the watcher saw fd hang up */
    _Atomic uint32_t joined;    /* 1 while registered with this process's watcher */
    uint32_t slot;              /* its place in the registry (under the registry lock) */
    int fd;                     /* the link watched for a hang-up (not owned) */
    _Atomic uint32_t *words[2]; /* bumped and woken on a hang-up (NULL: none) */
} ferry__watch;

/* Set up an entry that is not joined: fd is watched for a hang-up, w0 and w1 (either may
 * be NULL) are the futex words its waiters sleep on. Owns nothing. */
void ferry__watch_init(ferry__watch *e, int fd, _Atomic uint32_t *w0, _Atomic uint32_t *w1);

int ferry__watch_join_slow(ferry__watch *e);

/* May a waiter on e sleep without a timeout? 1 when e is registered with this process's
 * watcher (registering it on first call, which may start the watcher thread), 0 when not
 * (no watcher here, or e already fired: the waiter sleeps in slices). Thread-safe. */
static inline int ferry__watch_join(ferry__watch *e)
{
    /* Acquire pairs with the release in ferry__watch_join_slow: a joined entry is in the
     * epoll set. No global is read (a fork child's entries were unjoined by its fork
     * handler, watch.c): with more processes than CPUs, libferry's data page would be
     * one more TLB miss per sleep. */
    if (__builtin_expect(atomic_load_explicit(&e->joined, memory_order_acquire) != 0, 1))
        return !atomic_load_explicit(&e->hup, memory_order_relaxed);
    return ferry__watch_join_slow(e);
}

/* Did the watcher see e's fd hang up? Acquire: see watch.h's protocol. */
static inline int ferry__watch_fired(ferry__watch *e)
{
    return atomic_load_explicit(&e->hup, memory_order_acquire) != 0;
}

/* Unregister e (if joined in this process): on return the watcher no longer uses it. */
void ferry__watch_leave(ferry__watch *e);

/* The watcher's epoll descriptor, or -1 when this process has none (for fd accounting in
 * tests: it is the one descriptor the library keeps for the process's lifetime). */
int ferry__watch_fd(void);

#endif
