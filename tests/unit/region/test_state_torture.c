// SPDX-License-Identifier: MIT
/*
 * test_state_torture — the seqlock under fire: one writer process publishes values
 * without pause (lengths vary from 16 to 256 bytes; each carries its own sequence number
 * and a checksum over all its bytes) while 3 reader processes take 10 M copies in all.
 * Every copy must be whole: its checksum right, its sequence number equal to the version
 * the read returned, versions never going back in one reader. -EAGAIN (a write was in
 * progress on every try) is counted and retried. Bounded in time (90 s); under a
 * sanitizer (slow by 5-20x) the readers take 300 k copies in all instead.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define READERS 3
#define MAXLEN  256

static uint64_t sum(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t make(unsigned char *v, uint64_t k)
{
    size_t n = 16 + (size_t)(k * 7919 % (MAXLEN - 16 + 1));
    memcpy(v, &k, 8);
    for (size_t i = 8; i < n - 8; i++) v[i] = (unsigned char)(k * 31 + i);
    uint64_t h = sum(v, n - 8);
    memcpy(v + n - 8, &h, 8);
    return n;
}

static int64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
    const long total = SANITIZED ? 300000 : 10000000;
    const long each = (total + READERS - 1) / READERS;
    ferry_state *s;
    CHECK_EQ(ferry_state_create(MAXLEN, NULL, &s), 0);
    unsigned char v[MAXLEN];
    CHECK_EQ(ferry_state_write(s, v, make(v, 1)), 0); /* version 1 carries k = 1 */

    pid_t writer = fork();
    CHECK(writer >= 0);
    if (writer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no writer behind */
        if (getppid() == 1) _exit(1);
        for (uint64_t k = 2;; k++) CHECK_EQ(ferry_state_write(s, v, make(v, k)), 0);
    }
    pid_t rd[READERS];
    int64_t t0 = now();
    for (int i = 0; i < READERS; i++) {
        rd[i] = fork();
        CHECK(rd[i] >= 0);
        if (rd[i] == 0) {
            unsigned char c[MAXLEN];
            uint64_t last = 0, eagain = 0;
            int64_t end = now() + 90LL * 1000000000;
            long got = 0;
            while (got < each) {
                size_t n;
                uint64_t ver;
                int rc = ferry_state_read(s, c, sizeof c, &n, &ver);
                if (rc == -EAGAIN) {
                    eagain++;
                    continue;
                }
                CHECK_EQ(rc, 0);
                CHECK(n >= 16 && n <= MAXLEN);
                uint64_t h, k;
                memcpy(&h, c + n - 8, 8);
                memcpy(&k, c, 8);
                CHECK(h == sum(c, n - 8)); /* whole */
                CHECK_EQ(k, ver);          /* of the version it says */
                CHECK_EQ(n, 16 + (size_t)(k * 7919 % (MAXLEN - 16 + 1)));
                CHECK(ver >= last); /* never back */
                last = ver;
                got++;
                if ((got & 0xffff) == 0 && now() > end) break;
            }
            printf("reader %d: %ld copies, last version %llu, %llu -EAGAIN\n", i, got,
                   (unsigned long long)last, (unsigned long long)eagain);
            fflush(stdout);
            CHECK(got == each || SANITIZED || got >= 1000000);
            _exit(0);
        }
    }
    for (int i = 0; i < READERS; i++) wait_ok(rd[i]);
    double secs = (double)(now() - t0) / 1e9;
    kill(writer, SIGKILL);
    int st;
    CHECK_EQ(waitpid(writer, &st, 0), writer);
    CHECK(WIFSIGNALED(st));
    printf("%ld reads checked in %.2f s; the writer reached version %llu\n", each * READERS, secs,
           (unsigned long long)ferry_state_version(s));
    CHECK(ferry_state_version(s) > 1000); /* the writer really wrote meanwhile */
    ferry_state_close(s);
    puts("ok");
    return 0;
}
