// SPDX-License-Identifier: MIT
/*
 * test_frame.c — the 32-byte frame header: exact little-endian layout, encode/decode
 * round trip, every invalid field rejected with exactly -EBADMSG (and the boundaries
 * accepted), and the crc: good, a flipped payload byte, a changed header byte, no flag.
 */
#include "core/crc32c.h"
#include "core/frame.h"
#include "testutil.h"

#include <stdint.h>

enum { MAX = 1000 };

static ferry__frame sample(void)
{
    ferry__frame f = {.flags = FERRY__F_CRC | FERRY__F_JUMP,
                      .nfds = 16,
                      .type = 0x0102030405060708,
                      .seq = 0x1112131415161718u,
                      .len = MAX,
                      .crc = 0xA1B2C3D4u};
    return f;
}

static void check_same(const ferry__frame *a, const ferry__frame *b)
{
    CHECK_EQ(a->flags, b->flags);
    CHECK_EQ(a->nfds, b->nfds);
    CHECK_EQ(a->type, b->type);
    CHECK(a->seq == b->seq);
    CHECK_EQ(a->len, b->len);
    CHECK_EQ(a->crc, b->crc);
}

/* Encode f, apply one byte change, decode: expect `want`. */
static int decode_with(const ferry__frame *f, int off, uint8_t val, uint32_t max)
{
    uint8_t h[FERRY__FRAME_HDR];
    ferry__frame d;
    ferry__frame_encode(f, h);
    if (off >= 0) h[off] = val;
    return ferry__frame_decode(h, max, &d);
}

static void test_layout_and_round_trip(void)
{
    static const uint8_t want[FERRY__FRAME_HDR] = {
        'F',  'R',  'Y',  '1',  1,    0x05, 16,   0,    /* magic, version, flags, nfds, rsv */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* type */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* seq */
        0xE8, 0x03, 0x00, 0x00, 0xD4, 0xC3, 0xB2, 0xA1, /* len 1000, crc */
    };
    ferry__frame f = sample(), d;
    uint8_t h[FERRY__FRAME_HDR];
    memset(h, 0xEE, sizeof h);
    ferry__frame_encode(&f, h);
    CHECK(memcmp(h, want, sizeof h) == 0);
    memset(&d, 0, sizeof d);
    CHECK_EQ(ferry__frame_decode(h, MAX, &d), 0);
    check_same(&d, &f);

    /* Extremes survive the round trip. */
    ferry__frame g = {.flags = FERRY__F_ALL,
                      .nfds = 0,
                      .type = INT64_MAX,
                      .seq = UINT64_MAX,
                      .len = UINT32_MAX,
                      .crc = UINT32_MAX};
    ferry__frame_encode(&g, h);
    CHECK_EQ(ferry__frame_decode(h, UINT32_MAX, &d), 0);
    check_same(&d, &g);
    ferry__frame z = {0};
    ferry__frame_encode(&z, h);
    CHECK_EQ(ferry__frame_decode(h, 0, &d), 0);
    check_same(&d, &z);
}

static void test_rejects(void)
{
    ferry__frame f = sample();
    CHECK_EQ(decode_with(&f, -1, 0, MAX), 0);
    /* magic: each byte */
    for (int i = 0; i < 4; i++) CHECK_EQ(decode_with(&f, i, 'X', MAX), -EBADMSG);
    /* version */
    CHECK_EQ(decode_with(&f, 4, 0, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 4, 2, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 4, 0xff, MAX), -EBADMSG);
    /* reserved */
    CHECK_EQ(decode_with(&f, 7, 1, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 7, 0x80, MAX), -EBADMSG);
    /* unknown flag bits, each alone and with the known ones */
    for (int b = 3; b < 8; b++) {
        CHECK_EQ(decode_with(&f, 5, (uint8_t)(1u << b), MAX), -EBADMSG);
        CHECK_EQ(decode_with(&f, 5, (uint8_t)(FERRY__F_ALL | 1u << b), MAX), -EBADMSG);
    }
    CHECK_EQ(decode_with(&f, 5, FERRY__F_ALL, MAX), 0);
    /* nfds */
    CHECK_EQ(decode_with(&f, 6, 16, MAX), 0);
    CHECK_EQ(decode_with(&f, 6, 17, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 6, 255, MAX), -EBADMSG);
    /* len against max */
    CHECK_EQ(decode_with(&f, -1, 0, MAX - 1), -EBADMSG);
    CHECK_EQ(decode_with(&f, -1, 0, 0), -EBADMSG);
    f.len = UINT32_MAX;
    CHECK_EQ(decode_with(&f, -1, 0, UINT32_MAX - 1), -EBADMSG);
    CHECK_EQ(decode_with(&f, -1, 0, UINT32_MAX), 0);
    f = sample();
    /* type < 0: the top byte's sign bit */
    CHECK_EQ(decode_with(&f, 15, 0x80, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 15, 0xff, MAX), -EBADMSG);
    CHECK_EQ(decode_with(&f, 15, 0x7f, MAX), 0);
    f.type = -1;
    CHECK_EQ(decode_with(&f, -1, 0, MAX), -EBADMSG);
    f.type = INT64_MIN;
    CHECK_EQ(decode_with(&f, -1, 0, MAX), -EBADMSG);
    f.type = 0;
    CHECK_EQ(decode_with(&f, -1, 0, MAX), 0);

    /* validate: the same field rules on a decoded struct */
    f = sample();
    CHECK_EQ(ferry__frame_validate(&f, MAX), 0);
    f.flags = 0x08;
    CHECK_EQ(ferry__frame_validate(&f, MAX), -EBADMSG);
    f = sample();
    f.nfds = 17;
    CHECK_EQ(ferry__frame_validate(&f, MAX), -EBADMSG);
    f = sample();
    f.len = MAX + 1;
    CHECK_EQ(ferry__frame_validate(&f, MAX), -EBADMSG);
    f = sample();
    f.type = -1;
    CHECK_EQ(ferry__frame_validate(&f, MAX), -EBADMSG);
}

static void test_crc(void)
{
    static uint8_t payload[MAX];
    uint8_t h[FERRY__FRAME_HDR];
    ferry__frame f = sample(), d;
    for (int i = 0; i < MAX; i++) payload[i] = (uint8_t)(i * 7 + 3);

    /* The definition: crc32c of the header with crc = 0, then the payload. */
    f.crc = 0;
    ferry__frame_encode(&f, h);
    uint32_t want = ferry__crc32c_sw(ferry__crc32c_sw(0, h, sizeof h), payload, MAX);
    f.crc = 0xdeadbeef; /* ignored by ferry__frame_crc */
    CHECK_EQ(ferry__frame_crc(&f, payload), want);

    f.crc = want;
    CHECK_EQ(ferry__frame_check_crc(&f, payload), 0);
    ferry__frame_encode(&f, h);
    CHECK_EQ(ferry__frame_decode(h, MAX, &d), 0);
    CHECK_EQ(ferry__frame_check_crc(&d, payload), 0);

    /* Any flipped payload byte. */
    for (int i = 0; i < MAX; i++) {
        payload[i] ^= 0x01;
        CHECK_EQ(ferry__frame_check_crc(&f, payload), -EBADMSG);
        payload[i] ^= 0x01;
    }
    /* A changed header byte in type, seq or len (values the decoder still accepts). */
    for (int off = 8; off < 25; off++) {
        if (off == 15) continue; /* would make the type negative */
        ferry__frame_encode(&f, h);
        h[off] ^= 0x40;
        CHECK_EQ(ferry__frame_decode(h, MAX, &d), 0);
        CHECK_EQ(ferry__frame_check_crc(&d, payload), -EBADMSG);
    }
    d = f;
    d.len = MAX - 1;
    CHECK_EQ(ferry__frame_check_crc(&d, payload), -EBADMSG);
    d = f;
    d.nfds = 3;
    CHECK_EQ(ferry__frame_check_crc(&d, payload), -EBADMSG);
    d = f;
    d.flags |= FERRY__F_WRAP;
    CHECK_EQ(ferry__frame_check_crc(&d, payload), -EBADMSG);
    d = f;
    d.crc ^= 1;
    CHECK_EQ(ferry__frame_check_crc(&d, payload), -EBADMSG);

    /* Without FERRY__F_CRC nothing is checked. */
    d = f;
    d.flags &= (uint8_t)~FERRY__F_CRC;
    d.crc = 0x12345678u;
    CHECK_EQ(ferry__frame_check_crc(&d, payload), 0);

    /* Empty payload: NULL is fine. */
    ferry__frame e = {.flags = FERRY__F_CRC, .type = 5, .seq = 1};
    e.crc = ferry__frame_crc(&e, NULL);
    CHECK_EQ(ferry__frame_check_crc(&e, NULL), 0);
    e.seq = 2;
    CHECK_EQ(ferry__frame_check_crc(&e, NULL), -EBADMSG);
}

int main(void)
{
    test_layout_and_round_trip();
    test_rejects();
    test_crc();
    printf("ok: frame\n");
    return 0;
}
