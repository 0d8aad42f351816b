// SPDX-License-Identifier: MIT
/*
 * test_time.c — deadlines (core/time.h): FERRY_FOREVER (-1) is no deadline, 0 has
 * already passed, a bound is now + bound and saturates instead of overflowing for huge
 * bounds; every other negative timeout is exactly -EINVAL, from ferry__deadline and
 * ferry__when_from alike; a lazy deadline is fixed once, at its first need, and then
 * stays; ferry__remaining of the two special deadlines; both clocks never go back.
 * The vDSO's clock_gettime (core/vdso.c) is found wherever the kernel maps a vDSO (not
 * under valgrind, which hides it: then none, and the clocks still work), and the clocks
 * read through it agree with glibc's: each read lies between two of glibc's.
 */
#define _GNU_SOURCE /* nanosleep */
#include "core/time.h"
#include "core/vdso.h"
#include "testutil.h"

#include <stdint.h>
#include <sys/auxv.h>
#include <time.h>

static void test_deadline(void)
{
    int64_t d = 12345;
    CHECK_EQ(ferry__deadline(-1, &d), 0);
    CHECK(d == FERRY__NO_DEADLINE);
    CHECK_EQ(ferry__deadline(0, &d), 0);
    CHECK_EQ(d, 0);

    int64_t before = ferry__now_ns();
    CHECK_EQ(ferry__deadline(1000000, &d), 0);
    int64_t after = ferry__now_ns();
    CHECK(d >= before + 1000000 && d <= after + 1000000);
    CHECK(ferry__remaining(d) <= 1000000);

    /* Huge bounds saturate below FERRY__NO_DEADLINE: a deadline, never a wrap to the past. */
    int64_t huge[] = {INT64_MAX, INT64_MAX - 1, INT64_MAX / 2 + 1, (int64_t)1 << 62};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        CHECK_EQ(ferry__deadline(huge[i], &d), 0);
        CHECK(d > after);
        CHECK(d <= FERRY__NO_DEADLINE - 1);
        CHECK(ferry__remaining(d) > 0);
    }
    CHECK_EQ(ferry__deadline(INT64_MAX, &d), 0);
    CHECK(d == FERRY__NO_DEADLINE - 1);

    /* Only -1 means forever; the deadline is not written on refusal. */
    int64_t bad[] = {-2, -3, -1000000000, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = 777;
        CHECK_EQ(ferry__deadline(bad[i], &d), -EINVAL);
        CHECK_EQ(d, 777);
        CHECK(!ferry__timeout_ok(bad[i]));
    }
    CHECK(ferry__timeout_ok(-1) && ferry__timeout_ok(0) && ferry__timeout_ok(INT64_MAX));
}

static void test_deadline_in(void)
{
    CHECK_EQ(ferry__deadline_in(0), 0);
    CHECK(ferry__deadline_in(-5) == FERRY__NO_DEADLINE); /* (internal bounds are >= 0) */
    CHECK(ferry__deadline_in(INT64_MAX) == FERRY__NO_DEADLINE - 1);
    int64_t before = ferry__now_ns();
    int64_t d = ferry__deadline_in(5000);
    CHECK(d >= before + 5000 && d <= ferry__now_ns() + 5000);
}

static void test_remaining(void)
{
    CHECK(ferry__remaining(FERRY__NO_DEADLINE) == INT64_MAX);
    CHECK_EQ(ferry__remaining(0), 0);
    int64_t now = ferry__now_ns();
    CHECK(ferry__remaining(now - 1000) < 0);
    CHECK(ferry__remaining(1) < 0); /* long passed */
    int64_t r = ferry__remaining(now + 1000000000);
    CHECK(r > 0 && r <= 1000000000);
}

static void test_when(void)
{
    ferry__when w;
    CHECK_EQ(ferry__when_from(0, &w), 0);
    CHECK_EQ(w.at, 0);
    CHECK_EQ(ferry__when_at(&w), 0);
    CHECK_EQ(ferry__when_from(-1, &w), 0);
    CHECK(w.at == FERRY__NO_DEADLINE);
    CHECK(ferry__when_at(&w) == FERRY__NO_DEADLINE);

    /* A bound stays lazy (no clock read) until first needed, then is fixed once. */
    CHECK_EQ(ferry__when_from(2000000, &w), 0);
    CHECK(w.at == FERRY__LAZY);
    CHECK_EQ(w.timeout, 2000000);
    int64_t before = ferry__now_ns();
    int64_t at = ferry__when_at(&w);
    CHECK(at >= before + 2000000 && at <= ferry__now_ns() + 2000000);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    CHECK(ferry__when_at(&w) == at); /* fixed: a later call does not move it */

    CHECK_EQ(ferry__when_from(INT64_MAX, &w), 0);
    CHECK(ferry__when_at(&w) == FERRY__NO_DEADLINE - 1);

    int64_t bad[] = {-2, -100, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(ferry__when_from(bad[i], &w), -EINVAL);

    w = ferry__when_in(0);
    CHECK_EQ(w.at, 0);
    w = ferry__when_in(3000);
    CHECK(w.at == FERRY__LAZY);
    before = ferry__now_ns();
    at = ferry__when_at(&w);
    CHECK(at >= before + 3000);
}

static void test_clocks(void)
{
    int64_t a = ferry__now_ns(), c = ferry__coarse_ns();
    CHECK(a > 0 && c > 0);
    for (int i = 0; i < 10000; i++) {
        int64_t b = ferry__now_ns(), d = ferry__coarse_ns();
        CHECK(b >= a);
        CHECK(d >= c);
        a = b;
        c = d;
    }
}

static int64_t glibc_ns(clockid_t id)
{
    struct timespec ts;
    CHECK(clock_gettime(id, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_vdso(void)
{
    ferry__vdso_gettime_fn fn = ferry__vdso_gettime();
    if (!getauxval(AT_SYSINFO_EHDR)) {
        CHECK(fn == NULL);
        printf("no vDSO here (valgrind?): glibc's clock_gettime is used\n");
    } else {
        CHECK(fn != NULL);
        CHECK(ferry__vdso_gettime() == fn); /* looked up once */
        clockid_t ids[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME};
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            for (int k = 0; k < 1000; k++) {
                int64_t before = glibc_ns(ids[i]);
                struct timespec ts;
                CHECK_EQ(fn(ids[i], &ts), 0);
                int64_t v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                CHECK(v >= before && v <= glibc_ns(ids[i]));
            }
        }
    }
    /* Whichever way: the library's clocks are glibc's clocks. */
    for (int k = 0; k < 1000; k++) {
        int64_t b = glibc_ns(CLOCK_MONOTONIC), v = ferry__now_ns();
        CHECK(v >= b && v <= glibc_ns(CLOCK_MONOTONIC));
        b = glibc_ns(CLOCK_MONOTONIC_COARSE);
        v = ferry__coarse_ns();
        CHECK(v >= b && v <= glibc_ns(CLOCK_MONOTONIC_COARSE));
    }
}

int main(void)
{
    test_deadline();
    test_deadline_in();
    test_remaining();
    test_when();
    test_clocks();
    test_vdso();
    printf("ok: time\n");
    return 0;
}
