// SPDX-License-Identifier: MIT
/*
 * region.h — the insides of a ferry_region (src/region/region.c) and of a ferry_state
 * built on one (state.c), and the checks ferryd needs to publish them (a descriptor's
 * kind and rights, a read-only reopen). The public rules are ferry.h's "regions and
 * states"; docs/region.md has the layout and the reasons.
 *
 * Layout of the object (a memfd or a file): a FERRY__REGION_HDR-byte header, then the
 * user's bytes (a state's payload). The header's first words (magic .. max_len) are
 * written once by the creator before anyone else can hold the object and are read by
 * an adopter once, with pread, into a private copy that alone is judged and kept. The
 * words after them are live and shared: any holder with the write right can write them
 * at any time, so they are never trusted for a size, a pointer or a loop bound (the
 * handle's own copies are); the size of a mapping comes from fstat.
 *
 * Rules:
 *  - A volatile region's memfd is sealed F_SEAL_SHRINK | F_SEAL_SEAL, plus F_SEAL_GROW
 *    unless growable; its inode mode is 0444 (no other uid can reopen it writable).
 *  - Nothing shrinks a region (sealed, or never done by the library for a file), so no
 *    mapping of ours faults — except when a sharer with the write right truncates a file
 *    region, which is why files are adopted only from the caller's own uid.
 *  - The version word is 64 bits; futexes are 32: waiters sleep on its low half (its
 *    first four bytes on a little-endian machine) and re-read all 64 bits when woken.
 */
#ifndef FERRY_REGION_REGION_H
#define FERRY_REGION_REGION_H

#include "ferry/ferry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY__REGION_MAGIC  0x4e475246u /* "FRGN" */
#define FERRY__REGION_LAYOUT 1u
#define FERRY__REGION_HDR    4096u

/* Header flags (ferry__region_hdr.flags). */
#define FERRY__REGION_HF_GROWABLE 1u

typedef struct ferry__region_hdr {
    /* Written once by the creator; an adopter judges a private copy. */
    uint32_t magic;   /* FERRY__REGION_MAGIC */
    uint32_t layout;  /* FERRY__REGION_LAYOUT */
    uint32_t kind;    /* FERRY_OBJ_REGION or FERRY_OBJ_STATE */
    uint32_t flags;   /* FERRY__REGION_HF_* */
    uint64_t max_len; /* a state's max_len; 0 for a region */
    uint8_t pad0[40];
    /* Live words, each on its own cache line. */
    _Atomic uint64_t size; /* @64: user bytes as last set (informational: fstat rules) */
    uint8_t pad1[56];
    _Atomic uint64_t version; /* @128: bumped by ferry_region_notify; futex on its low half */
    uint8_t pad2[56];
    _Atomic uint64_t seq; /* @192: a state's seqlock word: odd while a write is on */
    _Atomic uint64_t len; /* @200: a state's value length (under seq) */
    uint8_t pad3[48];
} ferry__region_hdr;

_Static_assert(sizeof(ferry__region_hdr) == 256, "region header layout");

/* One mapping made by ferry_region_map. */
typedef struct ferry__rmap {
    char *base; /* what mmap returned */
    size_t len; /* what was mapped */
    char *user; /* what the caller got */
} ferry__rmap;

struct ferry_region {
    int fd;                 /* O_RDWR, or O_RDONLY for a read-only handle */
    int writable;           /* 1: the handle has the write right */
    int sealed_size;        /* 1: the size can never change (memfd sealed against growing) */
    uint32_t kind;          /* our copy of the header's */
    uint32_t hflags;        /* our copy of the header's */
    uint64_t max_len;       /* our copy (states) */
    size_t size0;           /* user bytes when the handle was made (fixed if sealed_size) */
    ferry__region_hdr *hdr; /* the header page, mapped (writable iff writable) */
    pthread_mutex_t lock;   /* maps, the poll thread */
    ferry__rmap *maps;
    size_t nmaps, capmaps;
    /* ferry_region_poll_fd */
    int poll_efd;     /* eventfd, or -1 */
    pid_t poll_pid;   /* the process that made it */
    int poll_running; /* a poll thread of this process runs */
    pthread_t poll_thr;
    uint64_t poll_seen;         /* the version when the descriptor was made (the thread's start) */
    _Atomic uint32_t poll_stop; /* private futex word: 1 tells the thread to end */
};

/* The futex word of the version: its low 32 bits. */
static inline _Atomic uint32_t *ferry__region_vword(ferry__region_hdr *h)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (_Atomic uint32_t *)((char *)&h->version + 4);
#else
    return (_Atomic uint32_t *)(void *)&h->version;
#endif
}

/* Make a region of kind (FERRY_OBJ_REGION or FERRY_OBJ_STATE) of `size` user bytes
 * (states: max_len recorded), as ferry_region_create describes; the caller owns *out. */
int ferry__region_make(uint32_t kind, size_t size, uint64_t max_len, const ferry_region_opts *opts,
                       ferry_region **out);

/* Adopt fd as a region of kind (ferry_region_adopt's rules; fd owned by the handle on
 * success, closed on failure). */
int ferry__region_adopt_kind(int fd, uint32_t kind, ferry_region **out);

/*
 * For ferryd and the tools: is fd a region or state? Validates as an adopter does
 * (seals, owner of a file, header read once with pread), without mapping. On success
 * *kind is FERRY_OBJ_REGION or FERRY_OBJ_STATE, *writable 1 if fd is open for writing,
 * *size the user bytes now (fstat), and *persistent 1 for a file. Any out may be NULL;
 * `uid` is the uid a file must be owned by (ferryd passes its client's). 0 or -EBADMSG.
 */
int ferry__region_check(int fd, uid_t uid, uint32_t *kind, int *writable, uint64_t *size,
                        int *persistent);

/* A read-only reopen of fd (a region or state descriptor, O_RDONLY | O_CLOEXEC through
 * /proc/self/fd): returns the new fd (the caller's) or -errno. */
int ferry__region_reopen_ro(int fd);

/* Wait until the version word differs from `seen` or the deadline (time.h) passes.
 * 0, -ETIMEDOUT, -EAGAIN (deadline 0). `check` (may be NULL) is asked first and after
 * every wake-up whether to return: a state waits for its own version this way. */
int ferry__region_wait_until(ferry_region *r, int (*check)(ferry_region *, uint64_t), uint64_t seen,
                             int64_t deadline);

#endif
