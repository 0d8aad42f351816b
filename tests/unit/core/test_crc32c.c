// SPDX-License-Identifier: MIT
/*
 * test_crc32c.c — CRC-32C: the standard vectors (RFC 3720 B.4 and "123456789") for the
 * software, hardware (when the CPU has SSE4.2) and dispatching versions; sw == hw ==
 * a bitwise reference on pseudo-random buffers of every length 0..4096 at every
 * alignment; hw == sw for every length 0..20000 at four alignments (this crosses every
 * block size and tail of the multi-chain hardware path) and for random lengths up to
 * 1 MiB, all-zero and all-one buffers included; and incremental use equals one shot,
 * also with random cut points in a long buffer. Deterministic (fixed seed).
 */
#include "core/crc32c.h"
#include "testutil.h"

#include <stdint.h>

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Bit-at-a-time reference, straight from the definition. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint8_t rnd8(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

static void check_vectors(crc_fn fn)
{
    uint8_t b[32];
    CHECK_EQ(fn(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(fn(0, NULL, 0), 0);
    CHECK_EQ(fn(0x12345678u, NULL, 0), 0x12345678u);
    memset(b, 0, sizeof b);
    CHECK_EQ(fn(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    CHECK_EQ(fn(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    CHECK_EQ(fn(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    CHECK_EQ(fn(0, b, 32), 0x113FDB5Cu);
}

static uint32_t rnd32(void)
{
    rnd8();
    return (uint32_t)(rng >> 16);
}

/* hw == sw (the hardware path splits long buffers into blocks; the software one never
 * does, so it is the independent reference). Seeds alternate between 0 and others. */
static void check_hw_vs_sw(const uint8_t *big, size_t bigsize, size_t every_len_to)
{
    static const size_t aligns[] = {0, 1, 4, 7};
    for (size_t len = 0; len <= every_len_to; len++)
        for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
            const uint8_t *p = big + aligns[a];
            uint32_t seed = a & 1 ? (uint32_t)len * 0x9E3779B1u : 0;
            CHECK_EQ(ferry__crc32c_hw(seed, p, len), ferry__crc32c_sw(seed, p, len));
        }
    for (int i = 0; i < 64; i++) {
        size_t len = rnd32() % (bigsize - 8 + 1), off = rnd32() % 8;
        uint32_t seed = i & 1 ? rnd32() : 0;
        CHECK_EQ(ferry__crc32c_hw(seed, big + off, len), ferry__crc32c_sw(seed, big + off, len));
    }
    CHECK_EQ(ferry__crc32c_hw(0, big, bigsize - 8), ferry__crc32c_sw(0, big, bigsize - 8));
}

static void check_incremental(crc_fn fn, const uint8_t *buf, size_t len)
{
    uint32_t whole = fn(0, buf, len);
    for (size_t i = 0; i <= len; i++) {
        CHECK_EQ(fn(fn(0, buf, i), buf + i, len - i), whole);
        size_t j = i + (len - i) / 3;
        CHECK_EQ(fn(fn(fn(0, buf, i), buf + i, j - i), buf + j, len - j), whole);
    }
}

/* Cut [0, len) at random points (including empty pieces) and chain the pieces. */
static void check_incremental_random(crc_fn fn, const uint8_t *buf, size_t len)
{
    uint32_t whole = fn(0, buf, len);
    for (int i = 0; i < 200; i++) {
        uint32_t crc = 0;
        size_t at = 0, step = 1 + rnd32() % 20000;
        while (at < len) {
            size_t n = rnd32() % (step + 1);
            if (n > len - at) n = len - at;
            crc = fn(crc, buf + at, n);
            at += n;
        }
        CHECK_EQ(crc, whole);
    }
}

int main(void)
{
    enum { MAXLEN = 4096, BIG = (1 << 20) + 8 };
    static uint8_t buf[MAXLEN + 8];
    uint8_t *big = malloc(BIG);
    int hw = ferry__crc32c_hw_available();
    CHECK(big != NULL);

    check_vectors(ferry__crc32c_sw);
    check_vectors(ferry__crc32c);
    if (hw)
        check_vectors(ferry__crc32c_hw);
    else
        printf("SKIP hardware crc32c: the CPU lacks SSE4.2\n");

    for (size_t i = 0; i < sizeof buf; i++) buf[i] = rnd8();
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t align = 0; align < 8; align++) {
            const uint8_t *p = buf + align;
            uint32_t seed = align & 1 ? 0 : (uint32_t)len * 0x01000193u;
            uint32_t sw = ferry__crc32c_sw(seed, p, len);
            if (align == len % 8) CHECK_EQ(sw, crc_ref(seed, p, len));
            CHECK_EQ(ferry__crc32c(seed, p, len), sw);
            if (hw) CHECK_EQ(ferry__crc32c_hw(seed, p, len), sw);
        }
    }

    check_incremental(ferry__crc32c_sw, buf + 3, 300);
    check_incremental(ferry__crc32c, buf + 1, 300);
    if (hw) check_incremental(ferry__crc32c_hw, buf + 5, 300);

    for (size_t i = 0; i < BIG; i++) big[i] = rnd8();
    check_incremental_random(ferry__crc32c, big + 3, 100000);
    if (hw) {
        check_hw_vs_sw(big, BIG, 20000);
        check_incremental_random(ferry__crc32c_hw, big + 1, 100000);
        memset(big, 0, BIG);
        check_hw_vs_sw(big, BIG, 2000);
        memset(big, 0xff, BIG);
        check_hw_vs_sw(big, BIG, 2000);
    }
    free(big);

    printf("ok: crc32c (hardware %s)\n", hw ? "checked" : "skipped");
    return 0;
}
