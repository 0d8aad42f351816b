// SPDX-License-Identifier: MIT
/*
 * fuzzutil.h — the pieces the libFuzzer harnesses share (fuzz_region.c, fuzz_adopt.c,
 * fuzz_stream.c, fuzz_broker.c): the entry point's prototype, REQUIRE (an invariant:
 * abort with its text when broken, which libFuzzer and the replay report as a crash),
 * a count of the descriptors open now (to check that nothing leaks), CLOCK_MONOTONIC in
 * ns, and a cursor over the input that the harness reads its fields from (a take of k
 * bytes and a byte: what is past the end reads as missing / zero).
 *
 * Rules: header only (static inline, so that a harness that does not use a piece pays
 * nothing and gets no unused-function warning); nothing here allocates or keeps state.
 * FUZZ_NOCOV marks the harness's own bookkeeping that coverage tracing need not follow.
 */
#ifndef FERRY_TESTS_FUZZ_FUZZUTIL_H
#define FERRY_TESTS_FUZZ_FUZZUTIL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(x)                                                                                 \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #x);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The harness's own bookkeeping (building inputs, models, counting fds) is not what is
 * fuzzed: without coverage tracing it costs a fraction of the run. */
#if defined(__clang__)
#define FUZZ_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NOCOV
#endif

/* The descriptors this process has open now (entries of /proc/self/fd but "." and "..",
 * the directory's own descriptor included, so compare two counts, not a count and 0). */
FUZZ_NOCOV static inline int fuzz_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    REQUIRE(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static inline int64_t fuzz_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The unread rest of the input: n bytes at p. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

/* Copy the next k bytes to out and step over them: 1; 0 (nothing taken, out unchanged)
 * when fewer than k are left. */
static inline int fuzz_take(fuzz_in *s, void *out, size_t k)
{
    if (s->n < k) return 0;
    memcpy(out, s->p, k);
    s->p += k;
    s->n -= k;
    return 1;
}

/* The next byte, or 0 past the end. */
static inline uint8_t fuzz_byte(fuzz_in *s)
{
    uint8_t b = 0;
    fuzz_take(s, &b, 1);
    return b;
}

#endif
