// SPDX-License-Identifier: MIT
/*
 * sysvmq_rec.h — ferry's own records in System V queues (the sysvmq transport,
 * src/transport/sysvmq.c, writes them; `ferry ls`, tools/ferry/ls.c, reads them with
 * MSG_COPY). One definition of the format for both.
 *
 * Every record is a message of mtype LONG_MAX (the one mtype ferry frames never use),
 * little-endian, of an exact length per kind:
 *   hello   (door, while no opener is attached), 40 bytes:
 *           u32 'FRYQ' | u8 2 | u8 flags (bit 0: FERRY_CHECKSUM) | u16 0 | i32 back msqid |
 *           u32 0 | u64 max_msg | u64 listener | u64 0
 *   attach  (door, while an opener holds the hello), 48 bytes:
 *           u32 'FRYA' | u8 2 | u8 0 | u16 0 | i32 back msqid | i32 door msqid |
 *           u64 listener | u64 opener | u64 0 | u64 0
 *   owner   (back queue, for its whole life), 32 bytes:
 *           u32 'FRYB' | u8 2 | u8 0 | u16 0 | i32 door msqid | u32 0 | u64 listener | u64 0
 * listener and opener are process identities (src/core/proc.h: start time << 22 | pid).
 * An attach record is longer than a hello on purpose: an opener asks msgrcv for at most a
 * hello's length, so an attach record first in line fails with E2BIG and stays put.
 * Version 1 (a 24-byte hello, no identities, no other records) is recognised by `ferry
 * ls` only.
 *
 * Rules: decoding checks the exact length, magic, version, every reserved field, ids
 * >= 0, max_msg <= FERRY_MAX_MSG_LIMIT and a pid in every identity; anything else is not
 * a record (-EBADMSG). The bytes come from a queue anybody with write permission fills:
 * a decoded record says what its writer claims, nothing more.
 */
#ifndef FERRY_TRANSPORT_SYSVMQ_REC_H
#define FERRY_TRANSPORT_SYSVMQ_REC_H

#include <ferry/ferry.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FERRY__SVQ_REC_MTYPE  LONG_MAX
#define FERRY__SVQ_HELLO_LEN  40
#define FERRY__SVQ_ATTACH_LEN 48
#define FERRY__SVQ_OWNER_LEN  32
#define FERRY__SVQ_REC_MAX    48 /* the longest record: the room kept for it in each queue */
#define FERRY__SVQ_HELLO1_LEN 24 /* version 1 */

#define FERRY__SVQ_HELLO_MAGIC  0x51595246u /* "FRYQ" */
#define FERRY__SVQ_ATTACH_MAGIC 0x41595246u /* "FRYA" */
#define FERRY__SVQ_OWNER_MAGIC  0x42595246u /* "FRYB" */
#define FERRY__SVQ_VERSION      2
#define FERRY__SVQ_HELLO_CRC    0x01u

enum { FERRY__SVQ_HELLO = 1, FERRY__SVQ_ATTACH, FERRY__SVQ_OWNER };

typedef struct ferry__svq_rec {
    int kind;          /* FERRY__SVQ_HELLO, _ATTACH or _OWNER */
    int crc;           /* hello: the channel has FERRY_CHECKSUM */
    int32_t back;      /* hello, attach: the back queue */
    int32_t door;      /* attach, owner: the door queue */
    uint64_t max_msg;  /* hello */
    uint64_t listener; /* every kind: the listener's process identity */
    uint64_t opener;   /* attach: the opener's */
} ferry__svq_rec;

static inline void svq_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t svq_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void svq_put64(uint8_t *p, uint64_t v)
{
    svq_put32(p, (uint32_t)v);
    svq_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t svq_get64(const uint8_t *p)
{
    return svq_get32(p) | (uint64_t)svq_get32(p + 4) << 32;
}

/* The length of a record of this kind (0: no such kind). */
static inline size_t svq_rec_len(int kind)
{
    return kind == FERRY__SVQ_HELLO    ? FERRY__SVQ_HELLO_LEN
           : kind == FERRY__SVQ_ATTACH ? FERRY__SVQ_ATTACH_LEN
           : kind == FERRY__SVQ_OWNER  ? FERRY__SVQ_OWNER_LEN
                                       : 0;
}

/* Write r into out (FERRY__SVQ_REC_MAX bytes, the caller's); returns its length. */
static inline size_t svq_rec_encode(const ferry__svq_rec *r, uint8_t *out)
{
    memset(out, 0, FERRY__SVQ_REC_MAX);
    out[4] = FERRY__SVQ_VERSION;
    switch (r->kind) {
    case FERRY__SVQ_HELLO:
        svq_put32(out, FERRY__SVQ_HELLO_MAGIC);
        out[5] = r->crc ? FERRY__SVQ_HELLO_CRC : 0;
        svq_put32(out + 8, (uint32_t)r->back);
        svq_put64(out + 16, r->max_msg);
        svq_put64(out + 24, r->listener);
        break;
    case FERRY__SVQ_ATTACH:
        svq_put32(out, FERRY__SVQ_ATTACH_MAGIC);
        svq_put32(out + 8, (uint32_t)r->back);
        svq_put32(out + 12, (uint32_t)r->door);
        svq_put64(out + 16, r->listener);
        svq_put64(out + 24, r->opener);
        break;
    default:
        svq_put32(out, FERRY__SVQ_OWNER_MAGIC);
        svq_put32(out + 8, (uint32_t)r->door);
        svq_put64(out + 16, r->listener);
        break;
    }
    return svq_rec_len(r->kind);
}

/* Are the n bytes at p all zero? */
static inline int svq_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* A process identity as a record may carry it: a pid in the low 22 bits. */
static inline int svq_id_ok(uint64_t id)
{
    return (id & ((UINT64_C(1) << 22) - 1)) != 0 && id >> 63 == 0;
}

/* Decode the n bytes at text (a message of mtype LONG_MAX): 0 and *r, or -EBADMSG. */
static inline int svq_rec_decode(const uint8_t *text, size_t n, ferry__svq_rec *r)
{
    if (n < 8 || n > FERRY__SVQ_REC_MAX || text[4] != FERRY__SVQ_VERSION || text[6] || text[7])
        return -EBADMSG;
    memset(r, 0, sizeof *r);
    uint32_t magic = svq_get32(text);
    int32_t a = (int32_t)svq_get32(text + 8), b = (int32_t)svq_get32(text + 12);
    if (magic == FERRY__SVQ_HELLO_MAGIC && n == FERRY__SVQ_HELLO_LEN) {
        r->kind = FERRY__SVQ_HELLO;
        r->crc = (text[5] & FERRY__SVQ_HELLO_CRC) != 0;
        r->back = a;
        r->max_msg = svq_get64(text + 16);
        r->listener = svq_get64(text + 24);
        if ((text[5] & ~FERRY__SVQ_HELLO_CRC) || b || !svq_zero(text + 32, 8) ||
            r->max_msg > FERRY_MAX_MSG_LIMIT)
            return -EBADMSG;
    } else if (magic == FERRY__SVQ_ATTACH_MAGIC && n == FERRY__SVQ_ATTACH_LEN) {
        r->kind = FERRY__SVQ_ATTACH;
        r->back = a;
        r->door = b;
        r->listener = svq_get64(text + 16);
        r->opener = svq_get64(text + 24);
        if (text[5] || !svq_zero(text + 32, 16) || b < 0 || !svq_id_ok(r->opener)) return -EBADMSG;
    } else if (magic == FERRY__SVQ_OWNER_MAGIC && n == FERRY__SVQ_OWNER_LEN) {
        r->kind = FERRY__SVQ_OWNER;
        r->door = a;
        r->listener = svq_get64(text + 16);
        if (text[5] || b || !svq_zero(text + 24, 8) || a < 0) return -EBADMSG;
    } else {
        return -EBADMSG;
    }
    if ((r->kind != FERRY__SVQ_OWNER && r->back < 0) || !svq_id_ok(r->listener)) return -EBADMSG;
    return 0;
}

#endif
