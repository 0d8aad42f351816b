// SPDX-License-Identifier: MIT
/*
 * frame.c — the 32-byte frame header (see frame.h and docs/architecture.md).
 *
 * Rules: fields are written and read byte by byte as little-endian, so the code is the
 * same on any host. The decoder first copies the 32 bytes into a private buffer (the
 * input may be shared memory a peer can still change) and reads and validates only that
 * copy. Every rejection is -EBADMSG.
 */
#include "frame.h"

#include "crc32c.h"

#include <ferry/ferry.h>

#include <errno.h>
#include <string.h>

_Static_assert(FERRY_MAX_FDS == 16, "frame.h hard-codes the fd limit in ferry__frame_validate");

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

void ferry__frame_encode(const ferry__frame *f, uint8_t out[FERRY__FRAME_HDR])
{
    put32(out + 0, FERRY__FRAME_MAGIC);
    out[4] = FERRY__FRAME_VERSION;
    out[5] = f->flags;
    out[6] = f->nfds;
    out[7] = 0; /* reserved */
    put64(out + 8, (uint64_t)f->type);
    put64(out + 16, f->seq);
    put32(out + 24, f->len);
    put32(out + 28, f->crc);
}

int ferry__frame_decode(const uint8_t in[FERRY__FRAME_HDR], uint32_t max_len, ferry__frame *f)
{
    uint8_t h[FERRY__FRAME_HDR];
    memcpy(h, in, sizeof h);
    /* Compiler barrier: the copy must really be made, so that no field is read from `in`
     * twice (once to validate, once to use) — a peer may change `in` in between. */
    __asm__ __volatile__("" : : "r"(h) : "memory");

    if (get32(h + 0) != FERRY__FRAME_MAGIC) return -EBADMSG;
    if (h[4] != FERRY__FRAME_VERSION) return -EBADMSG;
    if (h[7] != 0) return -EBADMSG; /* reserved */
    f->flags = h[5];
    f->nfds = h[6];
    /* Two's complement conversion; the validation below rejects negative types. */
    uint64_t t = get64(h + 8);
    f->type = t > INT64_MAX ? -(int64_t)(~t) - 1 : (int64_t)t;
    f->seq = get64(h + 16);
    f->len = get32(h + 24);
    f->crc = get32(h + 28);
    return ferry__frame_validate(f, max_len);
}

uint32_t ferry__frame_crc(const ferry__frame *f, const void *payload)
{
    ferry__frame z = *f;
    uint8_t h[FERRY__FRAME_HDR];
    z.crc = 0;
    ferry__frame_encode(&z, h);
    return ferry__crc32c(ferry__crc32c(0, h, sizeof h), payload, f->len);
}

int ferry__frame_check_crc(const ferry__frame *f, const void *payload)
{
    if (!(f->flags & FERRY__F_CRC)) return 0;
    return ferry__frame_crc(f, payload) == f->crc ? 0 : -EBADMSG;
}
