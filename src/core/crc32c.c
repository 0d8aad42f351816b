// SPDX-License-Identifier: MIT
/*
 * crc32c.c — CRC-32C (Castagnoli), see crc32c.h.
 *
 * Two implementations of the same function (standard pre- and post-inversion; the crc
 * argument is the running value, 0 to start):
 *  - ferry__crc32c_sw: portable slicing-by-8 over tables built once (pthread_once).
 *  - ferry__crc32c_hw: the SSE4.2 crc32 instruction. Only this function is compiled for
 *    SSE4.2 (target attribute), so the file needs no -msse4.2 and the library still runs
 *    on CPUs without it; x86-64 only. The instruction has a latency of about 3 cycles but
 *    can start one or two per cycle, so a long buffer is cut into rounds of six adjacent
 *    blocks whose crcs run as six independent chains, then are merged with the shift
 *    rule explained above shift_init() (tables built in the same pthread_once).
 *    On CPUs with AVX-512 and VPCLMULQDQ (checked once at init; Ice Lake and Zen 4 on,
 *    where 512-bit integer work costs little clock) it first runs the whole 256-byte
 *    rounds of a buffer of FOLD_MIN bytes or more through carry-less multiplication
 *    (fold_rounds, explained above fold_init): about 12 against 45 us per MiB on the
 *    Xeon of docs/performance.md, where crc32 starts once a cycle.
 * ferry__crc32c decides between them once, in the same pthread_once as the tables.
 * Rules: pure functions, thread-safe, any alignment, buf may be NULL when len == 0.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <nmmintrin.h>
#define HAVE_HW 1
#else
#define HAVE_HW 0
#endif

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static int use_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if HAVE_HW
/*
 * The multi-chain hardware path.
 *
 * Notation. The raw crc register r (between the pre- and the post-inversion) is a
 * polynomial over GF(2) of degree < 32, stored bit-reflected: bit k of the word is the
 * coefficient of x^(31-k), so 0x80000000 is 1 and 0x40000000 is x. Feeding a message M
 * of n bytes to a register r gives
 *     R(r, M) = (r * x^(8n) + M(x) * x^32) mod P
 * where P is the Castagnoli polynomial and M(x) has M's first bit (bit 0 of byte 0, the
 * reflected order) as its highest coefficient. Two consequences:
 *   - R is linear in (r, M): R(r, M) = R(r, 0^n) ^ R(0, M), and R(r, 0^n), feeding n zero
 *     bytes, is r * x^(8n) mod P: "shifting" r over n bytes.
 *   - For M = A || B with |B| = n: R(r, A || B) = R(R(r, A), B)
 *                                             = R(r, A) * x^(8n) mod P  ^  R(0, B).
 * So for NCHAIN adjacent blocks B_0 .. B_{NCHAIN-1} of n bytes each, run as independent
 * chains c_0 = R(r, B_0) and c_i = R(0, B_i) for i > 0, applying the last rule again and
 * again gives
 *     R(r, B_0 || ... || B_{NCHAIN-1}) = xor over i of  c_i * x^(8n * (NCHAIN-1-i)) mod P
 * i.e. each chain's register is shifted over the blocks that follow its own (three chains
 * over A, B, C: a * x^(16n) ^ b * x^(8n) ^ c). The pre- and post-inversion only touch the
 * first and the last register, so they stay where they are: the caller's ~crc seeds c_0,
 * and ~ is applied once at the end.
 *
 * Why six chains: the latency of crc32 is 3 cycles, so 3 chains keep one instruction in
 * flight per cycle; CPUs that can issue two per cycle (the AMD EPYC this was measured on:
 * 1 chain 115, 3 chains 41, 6 chains 21 us/MiB in a loop without the merge) need 6. On a
 * CPU that issues one per cycle the extra chains cost only the merge.
 *
 * Multiplying by a constant K = x^(8n) mod P is linear in the other factor, so it is a
 * sum (xor) over the eight 4-bit digits of r: r * K = xor over j of (digit_j << 4j) * K.
 * shift_tab holds those 8 x 16 products for each constant (512 bytes, one cache line per
 * digit): eight lookups per multiply, NCHAIN-1 independent multiplies per round of
 * NCHAIN * n bytes, which is small next to the round's NCHAIN * n / 8 crc32 instructions.
 * The constants themselves come from gf_mulmod (plain shift-and-add) and gf_xpow
 * (square-and-multiply), once, at init.
 */
enum { NCHAIN = 6, NBLK = 3 };
static const size_t blk_len[NBLK] = {4096, 512, 64}; /* bytes per chain, largest first */
/* shift_tab[b][s][j][d] = (d << 4j) * x^(8 * blk_len[b] * (s + 1)) mod P: the constant
 * that moves a register over s + 1 blocks of blk_len[b] bytes */
static uint32_t shift_tab[NBLK][NCHAIN - 1][8][16];

/* a * b mod P, both reflected: walk a's coefficients from x^0 (bit 31) up, adding in b
 * times the matching power of x; b * x is a right shift, and the x^32 term that falls
 * off bit 0 is replaced by x^32 mod P, which is POLY (P without its x^32 term). */
static uint32_t gf_mulmod(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (int i = 0; i < 32; i++) {
        prod ^= b & (0u - ((a >> (31 - i)) & 1));
        b = (b >> 1) ^ (POLY & (0u - (b & 1)));
    }
    return prod;
}

/* x^e mod P by square-and-multiply over the bits of e. */
static uint32_t gf_xpow(uint64_t e)
{
    uint32_t r = 0x80000000u, sq = 0x40000000u; /* 1 and x^(2^0) */
    for (; e != 0; e >>= 1) {
        if (e & 1) r = gf_mulmod(r, sq);
        sq = gf_mulmod(sq, sq); /* x^(2^(i+1)) = (x^(2^i))^2 */
    }
    return r;
}

static void shift_init(void)
{
    for (int b = 0; b < NBLK; b++)
        for (int s = 0; s < NCHAIN - 1; s++) {
            uint32_t k = gf_xpow(8 * (uint64_t)blk_len[b] * (uint64_t)(s + 1));
            for (int j = 0; j < 8; j++)
                for (uint32_t d = 0; d < 16; d++)
                    shift_tab[b][s][j][d] = gf_mulmod(d << (4 * j), k);
        }
}

/* r * K mod P with K's digit table t (see above). */
static inline uint32_t shift(const uint32_t t[8][16], uint32_t r)
{
    return t[0][r & 15] ^ t[1][(r >> 4) & 15] ^ t[2][(r >> 8) & 15] ^ t[3][(r >> 12) & 15] ^
           t[4][(r >> 16) & 15] ^ t[5][(r >> 20) & 15] ^ t[6][(r >> 24) & 15] ^ t[7][r >> 28];
}
#endif

#if HAVE_HW
/*
 * The folding path (CPUs with AVX-512 and VPCLMULQDQ): carry-less multiplication instead
 * of the crc32 instruction, four 64-byte accumulators wide, about four times the crc32
 * instruction's 8 bytes a cycle (Intel CPUs start one crc32 a cycle).
 *
 * Same notation as above. Load 16 message bytes into a 128-bit lane: lane bit q (q = 0 is
 * bit 0 of byte 0) is the coefficient of x^(127-q), so the lane's low qword holds the high
 * half H and the high qword the low half L of the lane's polynomial A = H x^64 + L, each
 * bit-reflected as a 64-bit value (bit j <-> x^(63-j)). Feeding a 32-bit register r into
 * a message is xoring it into the message's first four bytes, so the caller's register
 * seeds the first lane that way. Moving a lane forward over N more message bits is
 * multiplying it by x^N, and only A mod P matters (the crc of a message is M(x) x^32 mod
 * P), so   A x^N = H x^(N+64) + L x^N  ==  H (x^(N+64) mod P) + L (x^N mod P)   (mod P),
 * two 64 x 32-bit carry-less products of degree < 96 that fit the lane again. pclmulqdq on
 * two bit-reflected qwords gives the reflected product times x (bit m of the result is the
 * coefficient of x^(126-m), the lane reads it as x^(127-m)), so the constants are taken one
 * power lower: K_H(N) = x^(N+63) mod P and K_L(N) = x^(N-1) mod P, each a 32-bit reflected
 * register placed in the upper half of its qword (bit j <-> x^(63-j)). When the data is
 * used up, the lanes are moved over what follows them and added, which leaves one lane
 * congruent to the whole prefix: its 16 bytes, fed to the crc32 instruction from 0, give
 * the register after the prefix. The tail goes on from there as before.
 */
/* Both written once, in init (pthread_once orders them before every use). */
static int use_fold;
/* fold_k[i] = {K_H(N), K_L(N)} for N = 128 * (i + 1), i = 0..15 (2048 bits: the stride) */
static uint64_t fold_k[16][2];

static void fold_init(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 10))) return; /* VPCLMULQDQ */
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("pclmul")) return;
    for (int i = 0; i < 16; i++) {
        uint64_t n = 128 * (uint64_t)(i + 1);
        fold_k[i][0] = (uint64_t)gf_xpow(n + 63) << 32;
        fold_k[i][1] = (uint64_t)gf_xpow(n - 1) << 32;
    }
    use_fold = 1;
}

#define FOLD_MIN 1024 /* shorter buffers: the crc32 chains (the final merge costs) */

/* One lane (or four, in a zmm) moved over N bits with k = {K_H(N), K_L(N)} per lane. */
__attribute__((target("avx512f,vpclmulqdq"))) static inline __m512i fold512(__m512i v, __m512i k)
{
    return _mm512_xor_si512(_mm512_clmulepi64_epi128(v, k, 0x00),
                            _mm512_clmulepi64_epi128(v, k, 0x11));
}

__attribute__((target("pclmul,sse4.2"))) static inline __m128i fold128(__m128i v, int i)
{
    __m128i k = _mm_loadu_si128((const __m128i *)fold_k[i]);
    return _mm_xor_si128(_mm_clmulepi64_si128(v, k, 0x00), _mm_clmulepi64_si128(v, k, 0x11));
}

/* Feed the whole 256-byte rounds of p[0 .. *len) (at least FOLD_MIN bytes) to the raw
 * register c; advances *pp and *len past them. */
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2"))) static uint64_t
fold_rounds(uint64_t c, const uint8_t **pp, size_t *len)
{
    const uint8_t *p = *pp;
    size_t n = *len & ~(size_t)255;
    __m512i z0 = _mm512_loadu_si512((const void *)p),
            z1 = _mm512_loadu_si512((const void *)(p + 64)),
            z2 = _mm512_loadu_si512((const void *)(p + 128)),
            z3 = _mm512_loadu_si512((const void *)(p + 192));
    z0 = _mm512_xor_si512(z0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)(uint32_t)c)));
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fold_k[15]));
    for (size_t off = 256; off < n; off += 256) {
        z0 = _mm512_xor_si512(fold512(z0, k2048), _mm512_loadu_si512((const void *)(p + off)));
        z1 = _mm512_xor_si512(fold512(z1, k2048), _mm512_loadu_si512((const void *)(p + off + 64)));
        z2 =
            _mm512_xor_si512(fold512(z2, k2048), _mm512_loadu_si512((const void *)(p + off + 128)));
        z3 =
            _mm512_xor_si512(fold512(z3, k2048), _mm512_loadu_si512((const void *)(p + off + 192)));
    }
    /* z0 .. z3 over the 192, 128, 64 bytes after them (1536, 1024, 512 bits), added. */
    __m512i z = _mm512_xor_si512(
        _mm512_xor_si512(
            fold512(z0, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fold_k[11]))),
            fold512(z1, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fold_k[7])))),
        _mm512_xor_si512(
            fold512(z2, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fold_k[3]))), z3));
    /* its four lanes over the 48, 32, 16 bytes after them, added */
    __m128i x = _mm_xor_si128(_mm_xor_si128(fold128(_mm512_extracti32x4_epi32(z, 0), 2),
                                            fold128(_mm512_extracti32x4_epi32(z, 1), 1)),
                              _mm_xor_si128(fold128(_mm512_extracti32x4_epi32(z, 2), 0),
                                            _mm512_extracti32x4_epi32(z, 3)));
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(x, 1));
    *pp = p + n;
    *len -= n;
    return r;
}
#endif

/* Runs exactly once; pthread_once orders its writes before every caller's reads. */
static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if HAVE_HW
    __builtin_cpu_init(); /* required if we run before the cpu-model constructor */
    use_hw = __builtin_cpu_supports("sse4.2") != 0;
    if (use_hw) shift_init();
    if (use_hw) fold_init();
#endif
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t ferry__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&once, init);
    crc = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = crc ^ le32(p), hi = le32(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    }
    while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

int ferry__crc32c_hw_available(void)
{
    pthread_once(&once, init);
    return use_hw;
}

#if HAVE_HW
static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

__attribute__((target("sse4.2"))) uint32_t ferry__crc32c_hw(uint32_t crc, const void *buf,
                                                            size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    if (len >= FOLD_MIN) {
        pthread_once(&once, init); /* use_fold, fold_k (as shift_tab below) */
        if (use_fold) c = fold_rounds(c, &p, &len);
    }
    if (len >= NCHAIN * blk_len[NBLK - 1]) {
        pthread_once(&once, init); /* shift_tab; normally done by hw_available() already */
        /* Rounds of NCHAIN blocks of n bytes: chain c (c_0 above) carries the running crc
         * through the first block, c1..c5 start from 0 on the next ones; then each is
         * shifted over the blocks after its own (c by 5, c1 by 4, ..., c5 by none) and
         * they are added. The largest n that fits goes first, then the smaller ones. */
        for (int b = 0; b < NBLK; b++) {
            const size_t n = blk_len[b];
            const uint32_t(*t)[8][16] = shift_tab[b];
            for (; len >= NCHAIN * n; len -= NCHAIN * n) {
                uint64_t c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
                for (const uint8_t *end = p + n; p < end; p += 8) {
                    c = _mm_crc32_u64(c, ld64(p));
                    c1 = _mm_crc32_u64(c1, ld64(p + n));
                    c2 = _mm_crc32_u64(c2, ld64(p + 2 * n));
                    c3 = _mm_crc32_u64(c3, ld64(p + 3 * n));
                    c4 = _mm_crc32_u64(c4, ld64(p + 4 * n));
                    c5 = _mm_crc32_u64(c5, ld64(p + 5 * n));
                }
                p += (NCHAIN - 1) * n;
                c = shift(t[4], (uint32_t)c) ^ shift(t[3], (uint32_t)c1) ^
                    shift(t[2], (uint32_t)c2) ^ shift(t[1], (uint32_t)c3) ^
                    shift(t[0], (uint32_t)c4) ^ c5;
            }
        }
    }
    for (; len >= 8; p += 8, len -= 8) c = _mm_crc32_u64(c, ld64(p));
    for (; len > 0; len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#else
/* Never called (ferry__crc32c_hw_available() is 0); kept correct anyway. */
uint32_t ferry__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return ferry__crc32c_sw(crc, buf, len);
}
#endif

uint32_t ferry__crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return use_hw ? ferry__crc32c_hw(crc, buf, len) : ferry__crc32c_sw(crc, buf, len);
}
