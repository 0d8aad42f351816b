/*
 * crc32c.c — CRC-32C (Castagnoli), see crc32c.h.
 *
 * Two implementations of the same function (standard pre- and post-inversion; the crc
 * argument is the running value, 0 to start):
 *  - ferry__crc32c_sw: portable slicing-by-8 over tables built once (pthread_once).
 *  - ferry__crc32c_hw: the SSE4.2 crc32 instruction. Only this function is compiled for
 *    SSE4.2 (target attribute), so the file needs no -msse4.2 and the library still runs
 *    on CPUs without it; x86-64 only.
 * ferry__crc32c decides between them once, in the same pthread_once as the tables.
 * Rules: pure functions, thread-safe, any alignment, buf may be NULL when len == 0.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_HW 1
#else
#define HAVE_HW 0
#endif

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static int use_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

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
__attribute__((target("sse4.2"))) uint32_t ferry__crc32c_hw(uint32_t crc, const void *buf,
                                                            size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    for (; len > 0 && ((uintptr_t)p & 7) != 0; len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
    }
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
