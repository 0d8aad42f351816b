// SPDX-License-Identifier: MIT
/*
 * shm_live.c — the shm channel's liveness: is the peer still there (its control link not
 * hung up), and marking a channel broken. Below shm_tx.c, shm_rx.c and shm.c, which all
 * call it; it calls none of them (no circle).
 *
 * Rules: a channel's `dead` word only goes from 0 to one error (-EPIPE or -EBADMSG) and
 * stays; -EBADMSG (a peer that broke the rules) also shuts the link down.
 */
#define _GNU_SOURCE
#include "shm_chan.h"
#include "shm_link.h"

#include <errno.h>
#include <sys/socket.h>

int ferry__shm_fail(shm_chan *c, int err)
{
    int zero = 0;
    /* Relaxed: `dead` is a verdict, not a guard for other data; the first error wins. */
    atomic_compare_exchange_strong_explicit(&c->dead, &zero, err, memory_order_relaxed,
                                            memory_order_relaxed);
    /* A peer that broke the rules is cut off: it sees the link hang up. */
    if (err == -EBADMSG) shutdown(c->link, SHUT_RDWR);
    return atomic_load_explicit(&c->dead, memory_order_relaxed);
}

int ferry__shm_alive(void *chan)
{
    shm_chan *c = chan;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    if (dead) return dead;
    return ferry__link_alive(c->link) < 0 ? ferry__shm_fail(c, -EPIPE) : 0;
}
