/*
 * internal.h — hooks into a mailbox for the tests only (never part of the API): they
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

#endif
