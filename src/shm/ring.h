// SPDX-License-Identifier: MIT
/*
 * ring.h — the layout of one direction of a shm channel, shared by both processes.
 *
 * A direction has a control block (the first FERRY__RING_CTL_BYTES of its first segment)
 * and a data ring (the rest of the first segment; for FERRY_UNBOUNDED, later segments
 * that hold only a ring). Rings are powers of two. Records are written in place:
 *
 *   [32-byte header (frame.h layout) | payload | padding to 64 bytes]
 *
 * Positions are free-running 64-bit byte counts over the life of the direction (they
 * continue across segments); a ring index is pos & (size - 1). Records start on 64-byte
 * boundaries and never cross the ring's end (a WRAP record pads to the end instead).
 *
 * Publication: the header's seq word is the commit word. The producer writes header and
 * payload, sets the *next* header slot's seq to 0, then stores seq with release order.
 * The consumer, waiting at a slot, acquires seq; it must read 0 (not yet) or exactly the
 * seq it expects — anything else is corruption. Because every slot is zeroed before the
 * record in front of it is published, stale bytes from earlier laps can never look
 * committed. So the consumer waits on the record's own cache line, not on an index.
 * The producer always keeps 64 bytes free beyond a record for that next slot.
 *
 * Capacity 0 (rendezvous): the consumer claims a record by CAS on seq (adding
 * SEQ_CLAIMED) before it uses it; a producer whose send timed out withdraws it by CAS
 * (adding SEQ_CANCELLED). Exactly one of the two wins.
 *
 * Who writes what (each group on its own cache line, so a line is written by one side):
 *   producer: data_futex; space_waiting, space_fence
 *   consumer: data_waiting, armed, data_fence
 *   consumer: tail, taken (per message)            consumer: space_futex
 *   both:     ready (eventfd state: set by the producer, src/transport/shm_tx.c; cleared
 *             and re-armed by the consumer, rx_update_ready in shm_rx.c)
 *   producer: wprog; consumer: rprog (per chunk of a large record, FERRY__CHUNK)
 *
 * The producer's side of this protocol is src/transport/shm_tx.c, the consumer's
 * src/transport/shm_rx.c; setup and the checks of a peer's segments, shm.c.
 */
#ifndef FERRY_SHM_RING_H
#define FERRY_SHM_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/frame.h"

#define FERRY__RING_CTL_BYTES 4096u
#define FERRY__REC_ALIGN      64u
#define FERRY__RING_MIN       4096u
#define FERRY__RING_MAX       ((uint64_t)1 << 33) /* 8 GiB */

#define FERRY__SEQ_CLAIMED   ((uint64_t)1 << 63)
#define FERRY__SEQ_CANCELLED ((uint64_t)1 << 62)
#define FERRY__SEQ_MASK      (FERRY__SEQ_CANCELLED - 1)

typedef struct ferry__ring_ctl {
    /* Producer-written. */
    alignas(64) _Atomic uint32_t data_futex;    /* bumped to wake a consumer waiting for data */
    alignas(64) _Atomic uint32_t space_waiting; /* producer sleeps for space / a take */
    _Atomic uint32_t space_fence;               /* producer asks the consumer to fence (wait.h) */
    /* Consumer-written, rarely; read by the producer after every commit. */
    alignas(64) _Atomic uint32_t data_waiting; /* consumer sleeps for data */
    _Atomic uint32_t armed;                    /* consumer polls an eventfd for data */
    _Atomic uint32_t data_fence;               /* consumer asks the producer to fence (wait.h) */
    /* Consumer-written, per message; read by the producer only when the ring looks full. */
    alignas(64) _Atomic uint64_t tail; /* position of the oldest record not yet taken */
    _Atomic uint64_t taken;            /* messages taken (capacity counting) */
    /* Consumer-written, rarely. */
    alignas(64) _Atomic uint32_t space_futex; /* bumped to wake a producer waiting for space */
    /* Written by both (eventfd readiness). */
    alignas(64) _Atomic uint32_t ready;
    /* Producer-written, once per chunk of a large record: its progress (FERRY__PROG). */
    alignas(64) _Atomic uint64_t wprog;
    /* Consumer-written, once per chunk of a large record it copies out (FERRY__PROG). */
    alignas(64) _Atomic uint64_t rprog;
} ferry__ring_ctl;

/* Large records move in chunks: a producer that writes (a consumer that copies out) a
 * payload of more than FERRY__CHUNK bytes stores, after each chunk, the record's seq (its
 * low 32 bits) and the bytes done so far in wprog (rprog). The other side, waiting on
 * that record, keeps spinning while the count grows instead of going to sleep: a 1 MiB
 * copy outlasts any fixed spin. Only a hint: nothing is read through it, and each side
 * bounds how many extensions it grants per record (a peer that lies about its progress
 * buys at most max_msg / FERRY__CHUNK + 2 more spin budgets per record). */
#define FERRY__CHUNK           ((uint64_t)32 << 10)
#define FERRY__PROG(seq, done) ((uint64_t)(uint32_t)(seq) << 32 | (uint32_t)(done))

_Static_assert(sizeof(ferry__ring_ctl) <= FERRY__RING_CTL_BYTES, "ctl block too large");

/* The record header as it lies in the ring (same bytes as frame.h, little-endian host). */
typedef struct ferry__rec {
    uint32_t magic;
    uint8_t version, flags, nfds, reserved;
    int64_t type;
    _Atomic uint64_t seq;
    uint32_t len, crc;
} ferry__rec;

_Static_assert(sizeof(ferry__rec) == FERRY__FRAME_HDR, "record header must be 32 bytes");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ring records are little-endian");

/* The header's first 8 bytes as one little-endian word: magic, version, flags, nfds, and
 * the reserved byte (0). Written and read as a whole word (shm_tx.c, shm_rx.c). */
static inline uint64_t ferry__rec_word0(uint8_t flags, uint8_t nfds)
{
    return (uint64_t)FERRY__FRAME_MAGIC | (uint64_t)FERRY__FRAME_VERSION << 32 |
           (uint64_t)flags << 40 | (uint64_t)nfds << 48;
}

/* Bytes a record of len payload bytes occupies. */
static inline uint64_t ferry__rec_footprint(uint64_t len)
{
    return (FERRY__FRAME_HDR + len + FERRY__REC_ALIGN - 1) & ~(uint64_t)(FERRY__REC_ALIGN - 1);
}

/* The largest max_msg a ring of size bytes can carry: any record plus a possible WRAP and
 * the next header slot must fit in an empty ring (2 * footprint + 64 <= size). */
static inline uint64_t ferry__ring_max_msg(uint64_t size)
{
    return size / 2 - 2 * FERRY__REC_ALIGN;
}

#endif
