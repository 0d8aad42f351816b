// SPDX-License-Identifier: MIT
/*
 * segment.h — shared-memory segments: anonymous memfds (never a name in /dev/shm),
 * sealed against shrinking and growing, mapped shared.
 *
 * Rules: a segment received from a peer is checked before it is mapped — it must be a
 * memfd (it answers F_GET_SEALS), carry F_SEAL_SHRINK and F_SEAL_GROW, and have exactly
 * the announced size; anything else is -EBADMSG. Sealing means the peer can never make
 * our mapping shorter (no SIGBUS), whatever else it does.
 */
#ifndef FERRY_SHM_SEGMENT_H
#define FERRY_SHM_SEGMENT_H

#include <stddef.h>

typedef struct ferry__seg {
    void *base;
    size_t size;
} ferry__seg;

/* Make a sealed memfd of size bytes and map it. On success *fd is the memfd (owned by
 * the caller, FD_CLOEXEC) and *out the mapping. On failure nothing is left. */
int ferry__seg_create(size_t size, int *fd, ferry__seg *out);

/* Check that fd is a sealed memfd of exactly size bytes (-EBADMSG otherwise), then map
 * it. The caller keeps fd in every case. */
int ferry__seg_map_checked(int fd, size_t size, ferry__seg *out);

/* Unmap (no-op on an empty segment). */
void ferry__seg_unmap(ferry__seg *s);

#endif
