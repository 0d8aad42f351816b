// SPDX-License-Identifier: MIT
/*
 * internal.h — hooks into a mailbox for the tests only (never part of the API; compiled
 * only with FERRY_TEST_HOOKS, into ferry_test_static, never installed): they
 * let a test die holding the lock, and scribble on the derived structures, to exercise
 * the recovery paths deterministically (mailbox.c, "The state word is the truth").
 */
#ifndef FERRY_MAILBOX_INTERNAL_H
#define FERRY_MAILBOX_INTERNAL_H

#include <ferry/ferry.h>

#include <stdint.h>

/* Take the mailbox's lock and keep it (the caller is expected to die holding it). */
int ferry__mailbox_lock_and_keep(ferry_mailbox *mb);

/* Under the lock: overwrite the queue's and the free stack's links and the cached
 * counts with values derived from seed (in range or not), as a hostile sharer could. */
void ferry__mailbox_scribble(ferry_mailbox *mb, uint32_t seed);

/* Where the shared words are, for tests that play a hostile sharer writing the object
 * directly (tests/security/test_scribble_mailbox.c): byte offsets into the memfd. */
typedef struct ferry__mailbox_layout {
    size_t lock_off, lock_len;       /* the lock (plock.h: word, state) */
    size_t guarded_off, guarded_len; /* the fields the lock guards, the waiter FIFO too */
    size_t table_off, entry_len;     /* the slot table */
    uint32_t nslots;
    size_t size;                   /* of the object */
    size_t rx_wait_off;            /* the count of sleeping receivers (uint32_t) */
    size_t rxq_off, rxq_entry_len; /* the FIFO of waiters: {ticket u64, owner u64, ...} */
    uint32_t rxq_n;
} ferry__mailbox_layout;

void ferry__mailbox_get_layout(const ferry_mailbox *mb, ferry__mailbox_layout *l);

#endif
