// SPDX-License-Identifier: MIT
/*
 * bcasttest.h — helpers shared by the broadcast tests: a monotonic clock in ns and a
 * message body that names its sequence number (so order and content can be checked
 * exactly).
 */
#ifndef FERRY_BCASTTEST_H
#define FERRY_BCASTTEST_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Message i: its length is 8 + i % 57 bytes, the first 8 are i, the rest i's low byte. */
static inline size_t body(uint64_t i, unsigned char *buf)
{
    size_t len = 8 + (size_t)(i % 57);
    memcpy(buf, &i, 8);
    memset(buf + 8, (int)(i & 0xff), len - 8);
    return len;
}

/* 1 if buf[0..len) is message i's body. */
static inline int body_ok(uint64_t i, const unsigned char *buf, size_t len)
{
    unsigned char want[64];
    size_t n = body(i, want);
    return n == len && memcmp(want, buf, len) == 0;
}

#endif
