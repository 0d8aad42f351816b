// SPDX-License-Identifier: MIT
/*
 * test_barrier.c — ferry_barrier: 4 processes x 1000 rounds (exactly one serial party
 * per round, nobody passes before everyone arrived), withdrawal on timeout (and the race
 * where the round completes as a party times out), adopting garbage, threads, and
 * sharing by name through a real ferryd. Every case runs in its own process.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include "testutil.h"
#include "brokerutil.h"

#include <ferry/ferry.h>

#include "sync/obj.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define SEC ((int64_t)1000000000)
#define MS  ((int64_t)1000000)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void run(const char *name, void (*fn)(void))
{
    int64_t t0 = now_ns();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn();
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s (%lld ms)\n", name, (long long)((now_ns() - t0) / MS));
}

static void *shared_mem(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

static void t_basics(void)
{
    ferry_barrier *b;
    CHECK_EQ(ferry_barrier_create(0, &b), -EINVAL);
    CHECK_EQ(ferry_barrier_create(1, NULL), -EINVAL);
    CHECK_EQ(ferry_barrier_create(1, &b), 0);
    CHECK(fcntl(ferry_barrier_fd(b), F_GETFD) & FD_CLOEXEC);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), 1);
        CHECK_EQ(ferry_barrier_wait(b, FERRY_FOREVER), 1);
    }
    ferry_barrier_close(b);
    ferry_barrier_close(NULL);
    CHECK_EQ(ferry_barrier_wait(NULL, 0), -EINVAL);
    CHECK_EQ(ferry_barrier_fd(NULL), -EINVAL);
}

/* Timeouts withdraw: afterwards the barrier still needs all count parties. */
static void t_timeout(void)
{
    ferry_barrier *b;
    CHECK_EQ(ferry_barrier_create(2, &b), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_barrier_wait(b, 100 * MS), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 100 * MS && dt < 100 * MS + SEC);
    /* Had the first arrival stayed, this one would complete the round (1). */
    CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), -EAGAIN);
    _Atomic int *serials = shared_mem(sizeof *serials);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int r = ferry_barrier_wait(b, 5 * SEC);
        CHECK(r == 0 || r == 1);
        atomic_fetch_add(serials, r);
        _exit(0);
    }
    int r = ferry_barrier_wait(b, 5 * SEC);
    CHECK(r == 0 || r == 1);
    atomic_fetch_add(serials, r);
    wait_ok(pid);
    CHECK_EQ(atomic_load(serials), 1);
    munmap(serials, sizeof *serials);
    ferry_barrier_close(b);
}

/* 4 processes x 1000 rounds. Each party counts its arrival in round r before waiting;
 * after the barrier all 4 arrivals of round r must be counted (nobody passed early), and
 * every round has exactly one serial party. */
#define PARTIES 4
#define ROUNDS  1000
typedef struct rounds {
    _Atomic int arrived[ROUNDS];
    _Atomic int serial[ROUNDS];
    _Atomic int passed[ROUNDS];
} rounds;

static void t_rounds(void)
{
    ferry_barrier *b;
    CHECK_EQ(ferry_barrier_create(PARTIES, &b), 0);
    rounds *sh = shared_mem(sizeof *sh);
    pid_t kids[PARTIES];
    for (int p = 0; p < PARTIES; p++) {
        kids[p] = fork();
        CHECK(kids[p] >= 0);
        if (kids[p] == 0) {
            for (int r = 0; r < ROUNDS; r++) {
                atomic_fetch_add(&sh->arrived[r], 1);
                int rc = ferry_barrier_wait(b, 10 * SEC);
                CHECK(rc == 0 || rc == 1);
                CHECK_EQ(atomic_load(&sh->arrived[r]), PARTIES);
                atomic_fetch_add(&sh->serial[r], rc);
                atomic_fetch_add(&sh->passed[r], 1);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PARTIES; p++) wait_ok(kids[p]);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(atomic_load(&sh->serial[r]), 1);
        CHECK_EQ(atomic_load(&sh->passed[r]), PARTIES);
    }
    munmap(sh, sizeof *sh);
    ferry_barrier_close(b);
}

/* The race of a timeout with the round's completion: one party waits with tiny timeouts
 * and retries, the other waits long. A timeout that withdrew after the round completed
 * (or a completed round reported as a timeout) would desynchronise the two: their round
 * numbers are checked against each other after every pass, and every round has exactly
 * one serial party. */
#define RACE_ROUNDS 2000
typedef struct race {
    _Atomic int round[2];
    _Atomic int serial[RACE_ROUNDS];
    _Atomic long timeouts;
} race;

static void race_party(ferry_barrier *b, race *sh, int me)
{
    int64_t deadline = now_ns() + 20 * SEC;
    for (int r = 0; r < RACE_ROUNDS; r++) {
        atomic_store(&sh->round[me], r);
        if (me == 1) { /* arrive after 0..60 us: around party 0's timeouts */
            int64_t until = now_ns() + (r * 31 % 61) * 1000;
            while (now_ns() < until) {
            }
        }
        int rc;
        for (;;) {
            int64_t t = me == 0 ? (int64_t)(1 + (r * 7919) % 50) * 1000 : 10 * SEC;
            rc = ferry_barrier_wait(b, t);
            if (rc != -ETIMEDOUT) break;
            atomic_fetch_add(&sh->timeouts, 1);
            CHECK(now_ns() < deadline);
        }
        CHECK(rc == 0 || rc == 1);
        /* The other party is in this round or, having passed it, in the next one. */
        int other = atomic_load(&sh->round[1 - me]);
        CHECK(other == r || other == r + 1);
        atomic_fetch_add(&sh->serial[r], rc);
    }
}

static void t_timeout_race(void)
{
    ferry_barrier *b;
    CHECK_EQ(ferry_barrier_create(2, &b), 0);
    race *sh = shared_mem(sizeof *sh);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        race_party(b, sh, 1);
        _exit(0);
    }
    race_party(b, sh, 0);
    wait_ok(pid);
    for (int r = 0; r < RACE_ROUNDS; r++) CHECK_EQ(atomic_load(&sh->serial[r]), 1);
    printf("  %ld timeouts withdrawn\n", (long)atomic_load(&sh->timeouts));
    CHECK(atomic_load(&sh->timeouts) > 0);
    munmap(sh, sizeof *sh);
    ferry_barrier_close(b);
}

/* Threads of one process share one handle. */
static ferry_barrier *g_b;
static _Atomic int g_serial, g_arrived;

static void *thread_party(void *arg)
{
    (void)arg;
    for (int r = 0; r < 500; r++) {
        atomic_fetch_add(&g_arrived, 1);
        int rc = ferry_barrier_wait(g_b, 10 * SEC);
        CHECK(rc == 0 || rc == 1);
        CHECK(atomic_load(&g_arrived) >= 4 * (r + 1));
        atomic_fetch_add(&g_serial, rc);
        /* A second barrier so that nobody counts round r + 1 before all checked r. */
        rc = ferry_barrier_wait(g_b, 10 * SEC);
        CHECK(rc == 0 || rc == 1);
    }
    return NULL;
}

static void t_threads(void)
{
    CHECK_EQ(ferry_barrier_create(4, &g_b), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, thread_party, NULL) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&g_serial), 500);
    ferry_barrier_close(g_b);
}

static int fake(uint32_t kind, uint32_t count, uint64_t state, int seal)
{
    int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 4096) == 0);
    struct {
        uint32_t magic, kind, version, size, count, pad;
        uint64_t state;
    } h = {FERRY__OBJ_MAGIC, kind, FERRY__OBJ_VERSION, 4096, count, 0, state};
    CHECK(pwrite(fd, &h, sizeof h, 0) == (ssize_t)sizeof h);
    if (seal) CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    return fd;
}

static void expect_bad(int fd)
{
    ferry_barrier *b = NULL;
    CHECK_EQ(ferry_barrier_adopt(fd, &b), -EBADMSG);
    CHECK(b == NULL);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

static void t_adopt(void)
{
    ferry_barrier *b;
    int fd = fake(FERRY_OBJ_BARRIER, 2, 1, 1);
    CHECK_EQ(ferry_barrier_adopt(fd, &b), 0); /* one party waiting already: we complete */
    CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), 1);
    ferry_barrier_close(b);
    int p[2];
    CHECK(pipe(p) == 0);
    expect_bad(p[0]);
    close(p[1]);
    expect_bad(fake(FERRY_OBJ_BARRIER, 2, 0, 0)); /* unsealed */
    expect_bad(fake(FERRY_OBJ_SEM, 2, 0, 1));     /* another kind */
    expect_bad(fake(FERRY_OBJ_BARRIER, 0, 0, 1)); /* no parties */
    expect_bad(fake(FERRY_OBJ_BARRIER, 2, 2, 1)); /* arrived >= count */
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(0, 0, &s), 0);
    expect_bad(fcntl(ferry_sem_fd(s), F_DUPFD_CLOEXEC, 0)); /* a real semaphore */
    ferry_sem_close(s);
    /* Garbage written later: -EBADMSG, nothing worse. */
    CHECK_EQ(ferry_barrier_create(3, &b), 0);
    uint64_t *state = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_barrier_fd(b), 0);
    CHECK(state != MAP_FAILED);
    state[3] = 7; /* arrived 7 of 3 */
    CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), -EBADMSG);
    state[3] = 0;
    CHECK_EQ(ferry_barrier_wait(b, FERRY_NOW), -EAGAIN);
    munmap(state, 4096);
    ferry_barrier_close(b);
}

static void t_named(void)
{
    test_broker br;
    broker_start(&br);
    ferry_barrier *b;
    ferry_pub *pub;
    CHECK_EQ(ferry_barrier_create(2, &b), 0);
    CHECK_EQ(ferry_publish("test.bar", ferry_barrier_fd(b), FERRY_OBJ_BARRIER, NULL, &pub, 5 * SEC),
             0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_barrier *c = NULL;
        CHECK_EQ(ferry_barrier_open("test.bar", &c, 5 * SEC), 0);
        for (int i = 0; i < 100; i++) CHECK(ferry_barrier_wait(c, 5 * SEC) >= 0);
        ferry_barrier_close(c);
        _exit(0);
    }
    for (int i = 0; i < 100; i++) CHECK(ferry_barrier_wait(b, 5 * SEC) >= 0);
    wait_ok(pid);
    ferry_barrier *c = NULL;
    CHECK_EQ(ferry_barrier_open("test.none", &c, 5 * SEC), -ENOENT);
    ferry_sem *s = NULL;
    CHECK_EQ(ferry_sem_open("test.bar", &s, 5 * SEC), -EPROTOTYPE);
    CHECK(c == NULL && s == NULL);
    ferry_pub_close(pub);
    ferry_barrier_close(b);
    broker_stop(&br);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    run("basics", t_basics);
    run("timeout", t_timeout);
    run("rounds", t_rounds);
    run("timeout_race", t_timeout_race);
    run("threads", t_threads);
    run("adopt", t_adopt);
    run("named", t_named);
    return 0;
}
