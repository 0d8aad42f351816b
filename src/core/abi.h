// SPDX-License-Identifier: MIT
/*
 * abi.h — sized structs: the one place where the library reads a caller's options struct
 * (ferry_chan_opts, ferry_bcast_opts, ferry_mailbox_opts, ferry_policy) and writes a
 * caller's counters struct (ferry_X_counters), when the caller was compiled against
 * another version of ferry.h than this library was (the public rule is ferry.h's "Sized
 * structs"; docs/api.md has it in full).
 *
 * Every sized struct starts with `size_t size`: the sizeof(struct) of the caller's
 * program, recorded by the ferry_X_init inlines of ferry.h (so it is the caller's
 * compile-time size, not this library's). The model is Linux's copy_struct_from_user
 * (openat2, clone3, sched_setattr):
 *  - in:  size 0, below the first version's size (FERRY__X_V0) or above FERRY__SIZED_MAX is
 *         -EINVAL (a struct no init prepared). A caller's struct larger than ours is fine
 *         when every byte past our sizeof is zero (fields we do not know, left at their
 *         zero = "as before"), else -E2BIG (the caller asks for something we cannot do).
 *         We copy min(size, sizeof) bytes over a full struct of our defaults, so a field
 *         past an older caller's size keeps its default. The rest of the library then
 *         reads a full struct of this version, never the caller's.
 *  - out: size checked as above (-EINVAL); we write min(size, sizeof) bytes and set
 *         size to that, so a newer caller knows which of its fields were filled; its
 *         bytes past that are untouched.
 * Rules for changing a sized struct (whoever adds a field):
 *  - a field is added only at the end, at an offset >= the struct's sizeof in every
 *    earlier version on every ABI (add explicit padding rather than let the compiler put
 *    it into old tail padding, where an older library would not see it);
 *  - the zero value of a new field means what the version without it did (an older
 *    library accepts zeros it does not know, and a caller that never sets it gets zero);
 *  - the FERRY__X_V0 sizes below never change; nothing is ever removed or reordered.
 * The caller's struct is read once (its size copied out first) and no pointer in it is
 * followed here.
 */
#ifndef FERRY_CORE_ABI_H
#define FERRY_CORE_ABI_H

#include "ferry/ferry.h"

#include <stddef.h>

/* The largest size a caller may claim (Linux's PAGE_SIZE bound of copy_struct_from_user):
 * a struct that grew past it is not one, but garbage in an uninitialized size. */
#define FERRY__SIZED_MAX 4096u

/* The end of field f of type T. */
#define FERRY__OFFSETOFEND(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/* Each sized struct's first version (ferry 0.2): the end of its last field then. */
#define FERRY__CHAN_OPTS_V0        FERRY__OFFSETOFEND(ferry_chan_opts, max_map)
#define FERRY__BCAST_OPTS_V0       FERRY__OFFSETOFEND(ferry_bcast_opts, max_msg)
#define FERRY__MAILBOX_OPTS_V0     FERRY__OFFSETOFEND(ferry_mailbox_opts, max_msg)
#define FERRY__POLICY_V0           FERRY__OFFSETOFEND(ferry_policy, allow_gids)
#define FERRY__CHAN_COUNTERS_V0    FERRY__OFFSETOFEND(ferry_chan_counters, grows)
#define FERRY__MAILBOX_COUNTERS_V0 FERRY__OFFSETOFEND(ferry_mailbox_counters, max_msg)
#define FERRY__EVENT_COUNTERS_V0   FERRY__OFFSETOFEND(ferry_event_counters, merged)
#define FERRY__BCAST_COUNTERS_V0   FERRY__OFFSETOFEND(ferry_bcast_counters, max_msg)
/* Added in ferry 0.3 (tls://): their first version is 0.3's. */
#define FERRY__TLS_OPTS_V0  FERRY__OFFSETOFEND(ferry_tls_opts, handshake_timeout_ns)
#define FERRY__PEER_CERT_V0 FERRY__OFFSETOFEND(ferry_peer_cert, sans)

/* The first version of the sized structs added in ferry 0.3. */
#define FERRY__REGION_OPTS_V0 FERRY__OFFSETOFEND(ferry_region_opts, path)

/*
 * The library's half of a ferry_X_opts_init: zero `size` bytes at o (the caller's
 * struct), copy the first min(size, ksize) bytes of defaults (a full struct of ours)
 * over them, and record `size` in o->size. A size too small to hold the size field
 * only zeroes; o NULL is a no-op.
 */
void ferry__sized_init(void *o, size_t size, const void *defaults, size_t ksize);

/*
 * Read the caller's struct src (NULL: nothing to read, 0) into dst, a full struct of
 * ksize bytes that holds our defaults (its own size field is left as it is). v0 is the
 * struct's first-version size. 0, -EINVAL (size 0, < v0, > FERRY__SIZED_MAX) or -E2BIG
 * (a nonzero byte past ksize); dst is unchanged on an error.
 */
int ferry__sized_in(void *dst, size_t ksize, const void *src, size_t v0);

/* 0 if p (not NULL) holds a size a caller's struct may have (v0 .. FERRY__SIZED_MAX),
 * else -EINVAL: for a function that must refuse a bad struct before it does anything
 * else (ferry__sized_in and _out check again). */
int ferry__sized_check(const void *p, size_t v0);

/*
 * Write our full struct src (ksize bytes) into the caller's dst: min(dst->size, ksize)
 * bytes, then dst->size = that. 0 or -EINVAL (dst NULL, size 0, < v0, >
 * FERRY__SIZED_MAX: nothing written).
 */
int ferry__sized_out(void *dst, const void *src, size_t ksize, size_t v0);

#endif /* FERRY_CORE_ABI_H */
