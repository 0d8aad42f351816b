// SPDX-License-Identifier: MIT
/*
 * test_event — ferry_event between processes (no ferryd): exact counts and order under a
 * 1,000,000-event load from two posting processes (one with the inherited handle, one
 * that adopted the descriptor); coalescing merges only equal payloads not yet taken; a
 * full queue waits (-EAGAIN with FERRY_NOW, -ETIMEDOUT) and never drops; the poll fd is
 * readable exactly while an event waits (level-triggered), also when another process
 * posts; timeouts hold against signals. No descriptor is left behind.
 */
#include "testutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* ferry_event_stats, into two counters (either may be NULL). */
static int event_stats(const ferry_event *e, uint64_t *posted, uint64_t *merged)
{
    ferry_event_counters st;
    ferry_event_counters_init(&st);
    int rc = ferry_event_stats(e, &st);
    if (rc == 0 && posted) *posted = st.posted;
    if (rc == 0 && merged) *merged = st.merged;
    return rc;
}

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_event: took too long\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    _exit(1);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    CHECK(n >= 0);
    return n > 0 && (p.revents & POLLIN);
}

/* Wait (up to 2 s) until fd polls readable. */
static int readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static pid_t fork_child(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    return pid;
}

/* ------------------------------------------------------------------ basics */

static void test_basic(void)
{
    ferry_event *e, *f;
    uint64_t v, posted, merged;
    CHECK_EQ(ferry_event_create(0, NULL), -EINVAL);
    CHECK_EQ(ferry_event_create(UINT32_MAX, &e), -EINVAL);
    CHECK_EQ(ferry_event_create(0, &e), 0);
    CHECK(ferry_event_fd(e) >= 0);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_event_next(e, NULL, FERRY_NOW), -EINVAL);
    CHECK_EQ(ferry_event_post(e, 1, 0x80, FERRY_NOW), -EINVAL);
    CHECK_EQ(ferry_event_post(NULL, 1, 0, FERRY_NOW), -EINVAL);
    /* A second handle on the same queue, as a receiver of the descriptor makes it. */
    int d = dup(ferry_event_fd(e));
    CHECK(d >= 0);
    CHECK_EQ(ferry_event_adopt(d, &f), 0);
    for (uint64_t i = 0; i < 5; i++) CHECK_EQ(ferry_event_post(f, 100 + i, 0, FERRY_NOW), 0);
    for (uint64_t i = 0; i < 5; i++) {
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, 100 + i);
    }
    CHECK_EQ(ferry_event_next(f, &v, FERRY_NOW), -EAGAIN);
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(posted, 5);
    CHECK_EQ(merged, 0);
    /* The default capacity is 1024. */
    for (uint64_t i = 0; i < 1024; i++) CHECK_EQ(ferry_event_post(e, i, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 1024, 0, FERRY_NOW), -EAGAIN);
    for (uint64_t i = 0; i < 1024; i++) {
        CHECK_EQ(ferry_event_next(f, &v, FERRY_NOW), 0);
        CHECK_EQ(v, i);
    }
    ferry_event_close(f);
    ferry_event_close(e);
    ferry_event_close(NULL);
    /* Capacity 1 works (no special case in the slot encoding). */
    CHECK_EQ(ferry_event_create(1, &e), 0);
    for (uint64_t i = 0; i < 10; i++) {
        CHECK_EQ(ferry_event_post(e, i, 0, FERRY_NOW), 0);
        CHECK_EQ(ferry_event_post(e, 99, 0, FERRY_NOW), -EAGAIN);
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, i);
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    }
    ferry_event_close(e);
}

/* ------------------------------------------------------------------ a million events */

#define STRESS_TOTAL 1000000u
#define STRESS_PER   (STRESS_TOTAL / 2)

static void stress_poster(ferry_event *e, uint64_t id)
{
    for (uint64_t i = 0; i < STRESS_PER; i++)
        CHECK_EQ(ferry_event_post(e, id << 32 | i, 0, 10 * SEC), 0);
}

static void test_million(void)
{
    ferry_event *e;
    CHECK_EQ(ferry_event_create(0, &e), 0);
    int64_t t0 = now_ns();
    pid_t p1 = fork_child();
    if (p1 == 0) { /* the handle inherited across fork */
        stress_poster(e, 1);
        _exit(0);
    }
    int d = dup(ferry_event_fd(e));
    CHECK(d >= 0);
    pid_t p2 = fork_child();
    if (p2 == 0) { /* a handle adopted from the descriptor */
        ferry_event *f;
        CHECK_EQ(ferry_event_adopt(d, &f), 0);
        stress_poster(f, 2);
        ferry_event_close(f);
        _exit(0);
    }
    close(d);
    uint64_t next[3] = {0, 0, 0};
    for (uint32_t k = 0; k < STRESS_TOTAL; k++) {
        uint64_t v;
        int rc = ferry_event_next(e, &v, 10 * SEC);
        if (rc != 0) fprintf(stderr, "event %u: %d\n", k, rc);
        CHECK_EQ(rc, 0);
        uint64_t id = v >> 32, i = v & 0xffffffffu;
        CHECK(id == 1 || id == 2);
        if (i != next[id])
            fprintf(stderr, "poster %llu: got %llu, expected %llu\n", (unsigned long long)id,
                    (unsigned long long)i, (unsigned long long)next[id]);
        CHECK_EQ(i, next[id]); /* each poster's order is kept, none lost, none twice */
        next[id]++;
    }
    wait_ok(p1);
    wait_ok(p2);
    uint64_t v, posted, merged;
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    CHECK_EQ(next[1], STRESS_PER);
    CHECK_EQ(next[2], STRESS_PER);
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(posted, STRESS_TOTAL);
    CHECK_EQ(merged, 0);
    printf("1,000,000 events from 2 processes: %.0f ms\n", (now_ns() - t0) / 1e6);
    ferry_event_close(e);
}

/* ------------------------------------------------------------------ coalescing */

static void test_coalesce(void)
{
    ferry_event *e;
    uint64_t v, posted, merged;
    CHECK_EQ(ferry_event_create(8, &e), 0);
    CHECK_EQ(ferry_event_post(e, 1, FERRY_EVENT_COALESCE, FERRY_NOW), 0); /* queued */
    CHECK_EQ(ferry_event_post(e, 1, FERRY_EVENT_COALESCE, FERRY_NOW), 0); /* merged */
    CHECK_EQ(ferry_event_post(e, 1, FERRY_EVENT_COALESCE, FERRY_NOW), 0); /* merged */
    CHECK_EQ(ferry_event_post(e, 2, 0, FERRY_NOW), 0);                    /* queued */
    CHECK_EQ(ferry_event_post(e, 2, 0, FERRY_NOW), 0); /* queued: no flag, no merge */
    CHECK_EQ(ferry_event_post(e, 2, FERRY_EVENT_COALESCE, FERRY_NOW), 0); /* merged */
    CHECK_EQ(ferry_event_post(e, 3, FERRY_EVENT_COALESCE, FERRY_NOW), 0); /* queued */
    CHECK_EQ(ferry_event_post(e, 1, 0, FERRY_NOW), 0);                    /* queued */
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(posted, 8);
    CHECK_EQ(merged, 3);
    const uint64_t want[] = {1, 2, 2, 3, 1};
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, want[i]);
    }
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    /* A taken event is no merge target. */
    CHECK_EQ(ferry_event_post(e, 1, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(merged, 3);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 1);
    /* Merging reaches past other payloads, anywhere in the queue (wrapped too). */
    for (uint64_t i = 0; i < 6; i++) CHECK_EQ(ferry_event_post(e, 10 + i, 0, FERRY_NOW), 0);
    for (uint64_t i = 0; i < 3; i++) CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    for (uint64_t i = 0; i < 5; i++) CHECK_EQ(ferry_event_post(e, 20 + i, 0, FERRY_NOW), 0);
    /* full now (13..15, 20..24); coalescing onto an untaken equal payload needs no room */
    CHECK_EQ(ferry_event_post(e, 99, 0, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_event_post(e, 22, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 14, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 12, FERRY_EVENT_COALESCE, FERRY_NOW), -EAGAIN); /* taken */
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(posted, 8 + 1 + 6 + 5 + 2);
    CHECK_EQ(merged, 5);
    const uint64_t rest[] = {13, 14, 15, 20, 21, 22, 23, 24};
    for (size_t i = 0; i < 8; i++) {
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, rest[i]);
    }
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    ferry_event_close(e);

    /* Concurrently: a process coalescing one payload while this one takes. Every post is
     * either delivered or merged, never both, never neither. */
    CHECK_EQ(ferry_event_create(4, &e), 0);
    enum { N = 200000 };
    pid_t pid = fork_child();
    if (pid == 0) {
        for (int i = 0; i < N; i++) {
            CHECK_EQ(ferry_event_post(e, 7, FERRY_EVENT_COALESCE, 10 * SEC), 0);
            if (i % 3 == 0) CHECK_EQ(ferry_event_post(e, 8, 0, 10 * SEC), 0);
        }
        CHECK_EQ(ferry_event_post(e, 9, 0, 10 * SEC), 0); /* the end */
        _exit(0);
    }
    uint64_t sevens = 0, eights = 0;
    for (;;) {
        CHECK_EQ(ferry_event_next(e, &v, 10 * SEC), 0);
        if (v == 9) break;
        CHECK(v == 7 || v == 8);
        if (v == 7)
            sevens++;
        else
            eights++;
    }
    wait_ok(pid);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    CHECK_EQ(event_stats(e, &posted, &merged), 0);
    CHECK_EQ(eights, (N + 2) / 3);
    CHECK_EQ(posted, N + eights + 1);
    CHECK_EQ(sevens + merged, N);
    CHECK(sevens >= 1);
    printf("coalescing under load: %llu of %d delivered, %llu merged\n", (unsigned long long)sevens,
           N, (unsigned long long)merged);
    ferry_event_close(e);
}

/* ------------------------------------------------------------------ a full queue */

static void test_full(void)
{
    ferry_event *e;
    uint64_t v;
    CHECK_EQ(ferry_event_create(4, &e), 0);
    for (uint64_t i = 0; i < 4; i++) CHECK_EQ(ferry_event_post(e, i, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 4, 0, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_event_post(e, 4, 0, 50 * MS), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 50 * MS && dt < 2 * SEC);
    /* A post waits for a take in another process, then goes in. */
    pid_t pid = fork_child();
    if (pid == 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t w;
        CHECK_EQ(ferry_event_next(e, &w, FERRY_NOW), 0);
        CHECK_EQ(w, 0);
        _exit(0);
    }
    t0 = now_ns();
    CHECK_EQ(ferry_event_post(e, 4, 0, 5 * SEC), 0);
    dt = now_ns() - t0;
    CHECK(dt >= 80 * MS);
    wait_ok(pid);
    /* Two posters waiting at once both get in as room comes. */
    pid_t w1 = fork_child();
    if (w1 == 0) {
        CHECK_EQ(ferry_event_post(e, 5, 0, 5 * SEC), 0);
        _exit(0);
    }
    pid_t w2 = fork_child();
    if (w2 == 0) {
        CHECK_EQ(ferry_event_post(e, 6, 0, 5 * SEC), 0);
        _exit(0);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    uint64_t got[8], n = 0;
    while (n < 6) {
        CHECK_EQ(ferry_event_next(e, &v, 5 * SEC), 0);
        got[n++] = v;
    }
    wait_ok(w1);
    wait_ok(w2);
    for (uint64_t i = 0; i < 4; i++) CHECK_EQ(got[i], i + 1);
    CHECK((got[4] == 5 && got[5] == 6) || (got[4] == 6 && got[5] == 5));
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    ferry_event_close(e);
}

/* ------------------------------------------------------------------ the poll fd */

static void test_poll(void)
{
    ferry_event *e;
    uint64_t v;
    CHECK_EQ(ferry_event_create(16, &e), 0);
    /* Events posted before anyone polls: readable at once. */
    CHECK_EQ(ferry_event_post(e, 1, 0, FERRY_NOW), 0);
    int pfd = ferry_event_poll_fd(e);
    CHECK(pfd >= 0);
    CHECK_EQ(ferry_event_poll_fd(e), pfd); /* the same descriptor each time */
    CHECK(readable(pfd));
    CHECK(readable(pfd)); /* level-triggered: still */
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 1);
    CHECK(!readable(pfd));
    for (int round = 0; round < 100; round++) {
        CHECK_EQ(ferry_event_post(e, 2, 0, FERRY_NOW), 0);
        CHECK(readable(pfd));
        CHECK_EQ(ferry_event_post(e, 3, 0, FERRY_NOW), 0);
        CHECK(readable(pfd));
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, 2);
        CHECK(readable(pfd)); /* one still waits */
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, 3);
        CHECK(!readable(pfd));
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
        CHECK(!readable(pfd));
    }
    /* Posts from another process wake a poll; a taker in another process empties it. */
    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        char c;
        for (int round = 0; round < 50; round++) {
            CHECK(read(go[0], &c, 1) == 1);
            if (c == 'p') {
                CHECK_EQ(ferry_event_post(e, (uint64_t)round, 0, FERRY_NOW), 0);
            } else {
                uint64_t w;
                CHECK_EQ(ferry_event_next(e, &w, FERRY_NOW), 0);
                CHECK_EQ(w, 1000 + (uint64_t)round);
            }
            CHECK(write(done[1], "k", 1) == 1);
        }
        _exit(0);
    }
    char c;
    for (int round = 0; round < 50; round++) {
        if (round % 2 == 0) {
            CHECK(!readable(pfd));
            CHECK(write(go[1], "p", 1) == 1);
            CHECK(readable_within(pfd, 2000));
            CHECK(read(done[0], &c, 1) == 1);
            CHECK(readable(pfd));
            CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
            CHECK_EQ(v, (uint64_t)round);
            CHECK(!readable(pfd));
        } else {
            CHECK_EQ(ferry_event_post(e, 1000 + (uint64_t)round, 0, FERRY_NOW), 0);
            CHECK(readable(pfd));
            CHECK(write(go[1], "t", 1) == 1); /* the child takes it */
            CHECK(read(done[0], &c, 1) == 1);
            CHECK(!readable(pfd));
        }
    }
    wait_ok(pid);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    /* A blocking next and the poll fd agree. */
    CHECK_EQ(ferry_event_next(e, &v, 20 * MS), -ETIMEDOUT);
    CHECK(!readable(pfd));
    CHECK_EQ(ferry_event_post(e, 5, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 5, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK(readable(pfd));
    CHECK_EQ(ferry_event_next(e, &v, 20 * MS), 0);
    CHECK(!readable(pfd));
    ferry_event_close(e);
}

/* ------------------------------------------------------------------ timeouts */

static volatile sig_atomic_t ticks;
static void on_tick(int sig)
{
    (void)sig;
    ticks++;
}

static void test_timeouts(void)
{
    ferry_event *e;
    uint64_t v;
    CHECK_EQ(ferry_event_create(1, &e), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_event_next(e, &v, 50 * MS), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 50 * MS && dt < 2 * SEC);
    /* Signals neither shorten nor lengthen a wait: a 10 ms interval timer interrupts a
     * 200 ms next and a 200 ms post about 20 times each. */
    struct sigaction sa = {.sa_handler = on_tick}; /* no SA_RESTART */
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 10000}, {0, 10000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    t0 = now_ns();
    CHECK_EQ(ferry_event_next(e, &v, 200 * MS), -ETIMEDOUT);
    dt = now_ns() - t0;
    CHECK(dt >= 200 * MS && dt < 2 * SEC);
    CHECK_EQ(ferry_event_post(e, 1, 0, FERRY_NOW), 0);
    t0 = now_ns();
    CHECK_EQ(ferry_event_post(e, 2, 0, 200 * MS), -ETIMEDOUT);
    dt = now_ns() - t0;
    CHECK(dt >= 200 * MS && dt < 2 * SEC);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
    CHECK(ticks >= 10);
    signal(SIGALRM, on_alarm); /* the interval timer replaced main's alarm: set it again */
    alarm(30);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 1);
    ferry_event_close(e);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(60);
    int fds = fd_count();
    test_basic();
    CHECK_EQ(fd_count(), fds);
    test_million();
    CHECK_EQ(fd_count(), fds);
    test_coalesce();
    CHECK_EQ(fd_count(), fds);
    test_full();
    CHECK_EQ(fd_count(), fds);
    test_poll();
    CHECK_EQ(fd_count(), fds);
    test_timeouts();
    CHECK_EQ(fd_count(), fds);
    printf("test_event: ok\n");
    return 0;
}
