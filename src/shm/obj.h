// SPDX-License-Identifier: MIT
/*
 * obj.h — what every object shared in memory (src/sync, src/mailbox, src/bcast) is made
 * of: a sealed memfd that starts with a common header, made here and validated here when
 * it comes from elsewhere (an inherited or received descriptor, ferryd). Beside the shm
 * segment code (segment.h), below the patterns and the broker, which both use it. Opening
 * one by name through ferryd is the broker client's (broker/client.h: ferry__obj_open).
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
 *  - Carriers. An event queue's and a mailbox's descriptor is not the memfd but a
 *    *carrier*: one end B of a SOCK_SEQPACKET socket pair (A, B) whose receive queue holds
 *    one message, sent on A: the kind's 4-byte magic with SCM_RIGHTS [memfd, A]
 *    (src/sync/event.c says why). ferry__carrier_open is the one check of a carrier, for
 *    the library's adopters and for ferryd's PUBLISH alike: it reads that message with
 *    MSG_PEEK (so it stays for the next adopter), into fixed buffers (room for one
 *    descriptor too many, which makes it refused), and requires the magic of the kind,
 *    exactly two descriptors, a memfd that is an object of the kind (ferry__obj_check),
 *    and as the second the very socket at the other end of B (its inode is B's peer's,
 *    asked of the kernel through sock_diag). So a connection to ferryd, any other socket,
 *    or a message with the wrong memfd or a foreign doorbell is refused.
 */
#ifndef FERRY_SHM_OBJ_H
#define FERRY_SHM_OBJ_H

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

/* Is fd an object of `kind` without mapping it (ferryd checks what it is given this way):
 * a regular file sealed against shrinking and growing and against further seals (as
 * ferry__obj_create seals it), of a size within the bounds, whose
 * header (read once with pread) has the magic, the kind, the version and the file's
 * size. 0 or -EBADMSG. */
int ferry__obj_check(int fd, uint32_t kind);

/* Read n bytes at off of the object behind fd (after ferry__obj_check) onto buf: a
 * private copy of words the caller then judges itself. 0 or -EBADMSG (short). */
int ferry__obj_read(int fd, size_t off, void *buf, size_t n);

/* The carrier's message: the magic of FERRY_OBJ_EVENT and FERRY_OBJ_MAILBOX carriers. */
#define FERRY__CARRIER_MAGIC_LEN 4
#define FERRY__EVENT_MAGIC       "FEV1"
#define FERRY__MAILBOX_MAGIC     "FMB1"

/* Check carrier fd (FERRY_OBJ_EVENT or FERRY_OBJ_MAILBOX; see "Carriers" above) and take
 * the duplicates its message installs: on success *memfd (an object of kind, checked
 * with ferry__obj_check, not mapped) and *ring (the doorbell's receiving end, fd's peer)
 * belong to the caller, FD_CLOEXEC; fd is the caller's in every case. Never blocks.
 * -EBADMSG: not a carrier of that kind (also when the process has no room for the two
 * duplicates: the kernel then truncates the message's descriptors). */
int ferry__carrier_open(int fd, uint32_t kind, int *memfd, int *ring);

/* Make a carrier for memfd, an object of kind (FERRY_OBJ_EVENT or FERRY_OBJ_MAILBOX):
 * a SOCK_SEQPACKET pair (A, B) and, on A into B's queue, the one message holding the
 * kind's magic and [memfd, A], where it stays. On success *ring is A (the doorbell's
 * receiving end) and *carrier is B (the object's descriptor), both the caller's,
 * FD_CLOEXEC; memfd stays the caller's in every case (the message holds a duplicate).
 * -EMFILE (also when the uid has too many descriptors in flight), -ENFILE, -ENOMEM. */
int ferry__carrier_make(uint32_t kind, int memfd, int *ring, int *carrier);

/* The offset of a mutex's flags word (FERRY_MUTEX_FAIR) in its object, right after the
 * header: ferryd reads it to tell a plain mutex from a fair one (mutex.c asserts it). */
#define FERRY__MUTEX_FLAGS_OFF sizeof(ferry__obj_hdr)

#endif
