/*
 * obj.h — what every synchronization object (src/sync) is made of: a sealed memfd that
 * starts with a common header, made here, validated here when it comes from elsewhere
 * (an inherited or received descriptor, ferryd), and opened by name through ferryd.
 *
 * Rules:
 *  - The memfd is sealed against shrinking and growing (ferry__seg_create), so a mapping
 *    never faults on a truncated file; its size comes from fstat, never from the header.
 *  - The header is checked once, on a private copy (magic, kind, version, size == the
 *    file's size). Fields an object keeps in shared memory that say how large something
 *    is (an event queue's capacity) must likewise be read once and checked against the
 *    mapping; a peer that shares the object can still change any word later, so code
 *    that follows a shared index masks or bounds it on every use.
 *  - Sizes: at least the header, at most FERRY__OBJ_MAX.
 */
#ifndef FERRY_SYNC_OBJ_H
#define FERRY_SYNC_OBJ_H

#include "shm/segment.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY__OBJ_MAGIC   0x4e595346u /* "FSYN" */
#define FERRY__OBJ_VERSION 1u
#define FERRY__OBJ_MAX     ((size_t)64 << 20)

typedef struct ferry__obj_hdr {
    uint32_t magic;
    uint32_t kind;    /* FERRY_OBJ_* */
    uint32_t version; /* FERRY__OBJ_VERSION */
    uint32_t size;    /* of the whole object, header included */
} ferry__obj_hdr;

/* A new object of `size` bytes (header included; rounded up to a page), zeroed, with its
 * header written. *fd (FD_CLOEXEC) and *seg belong to the caller. -EINVAL, -ENOMEM,
 * -EMFILE. */
int ferry__obj_create(uint32_t kind, size_t size, int *fd, ferry__seg *seg);

/* Map the object behind fd after checking it is a ferry object of `kind` (seals, size,
 * header). The caller keeps fd in every case. -EBADMSG (not one), -ENOMEM. */
int ferry__obj_map(int fd, uint32_t kind, ferry__seg *seg);

/* A descriptor for the object published under name in ferryd (broker/client.c): the
 * caller owns *fd. Errors as ferry_connect, and -EPROTOTYPE (a name of another kind). */
int ferry__obj_open(const char *name, int kind, int *fd, int64_t timeout_ns);

#endif
