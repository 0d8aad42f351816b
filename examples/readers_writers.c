// SPDX-License-Identifier: MIT
/*
 * readers_writers — the readers-writers problem between processes, with ferry_mutex
 * only, and no writer starvation.
 *
 * Mutexes have owners (only the process that locked one may unlock it), so the classic
 * "room empty" lock that the first reader takes and the last one gives back does not
 * fit. Instead every reader process has a seat of its own:
 *   reader r:  lock(turnstile); lock(seat[r]); unlock(turnstile); read; unlock(seat[r])
 *   writer:    lock(turnstile); lock(seat[0]) .. lock(seat[R-1]); write;
 *              unlock the seats; unlock(turnstile)
 * Readers sit on different seats, so they read at the same time. A writer holds the
 * turnstile while it collects every seat, and the turnstile is a FERRY_MUTEX_FAIR mutex
 * (FIFO): a reader arriving after a writer queues behind it, so the writer waits only for
 * the readers already reading — it cannot be starved however many readers keep coming.
 * Writers take the seats in one order under the turnstile, so there is no deadlock.
 *
 * The program runs R reader and W writer processes. Readers read in a loop until every
 * writer is done; each writer writes WRITES times. Shared counters check the invariants:
 * a writer is never inside with anyone else, readers never see a half-written record.
 * Exits 0 only when all writers finished (within the time bound) while the readers kept
 * reading, and no invariant was ever broken.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#include <ferry/ferry.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READERS 4
#define WRITERS 2
#define WRITES  200
#define WORDS   16
#define SEC     1000000000LL

typedef struct shared {
    _Atomic int readers_in, writers_in, max_readers_in;
    _Atomic int violations;
    _Atomic int writers_done;
    _Atomic int readers_started; /* readers that finished their first read */
    _Atomic long reads[READERS];
    _Atomic long reads_during_writes; /* reads made while some writer was still working */
    volatile uint64_t record[WORDS];  /* all words equal, when not half-written */
} shared;

static ferry_mutex *turnstile, *seat[READERS];
static shared *sh;

static void busy_us(int us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void lock(ferry_mutex *m)
{
    int rc = ferry_mutex_lock(m, 20 * SEC);
    if (rc != 0) {
        fprintf(stderr, "pid %d: lock: %s\n", (int)getpid(), ferry_strerror(rc));
        exit(1);
    }
}

static void unlock(ferry_mutex *m)
{
    if (ferry_mutex_unlock(m) != 0) exit(1);
}

static void reader(int r)
{
    int started = 0;
    while (atomic_load(&sh->writers_done) < WRITERS) {
        lock(turnstile);
        lock(seat[r]);
        unlock(turnstile);
        int in = atomic_fetch_add(&sh->readers_in, 1) + 1;
        int max = atomic_load(&sh->max_readers_in);
        while (in > max && !atomic_compare_exchange_weak(&sh->max_readers_in, &max, in)) {
        }
        if (atomic_load(&sh->writers_in) != 0) atomic_fetch_add(&sh->violations, 1);
        uint64_t first = sh->record[0];
        busy_us(20);
        for (int i = 1; i < WORDS; i++)
            if (sh->record[i] != first) atomic_fetch_add(&sh->violations, 1);
        atomic_fetch_sub(&sh->readers_in, 1);
        unlock(seat[r]);
        atomic_fetch_add(&sh->reads[r], 1);
        if (atomic_load(&sh->writers_done) < WRITERS) atomic_fetch_add(&sh->reads_during_writes, 1);
        if (!started) {
            atomic_fetch_add(&sh->readers_started, 1);
            started = 1;
        }
    }
}

static void writer(int w)
{
    /* Start once every reader is reading: the writers must get through a stream of
     * readers that never stops. */
    while (atomic_load(&sh->readers_started) < READERS) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    for (int n = 0; n < WRITES; n++) {
        lock(turnstile);
        for (int r = 0; r < READERS; r++) lock(seat[r]);
        if (atomic_fetch_add(&sh->writers_in, 1) != 0) atomic_fetch_add(&sh->violations, 1);
        if (atomic_load(&sh->readers_in) != 0) atomic_fetch_add(&sh->violations, 1);
        uint64_t v = ((uint64_t)w << 32) | (uint64_t)n;
        for (int i = 0; i < WORDS; i++) { /* slowly: a reader inside would see it torn */
            sh->record[i] = v;
            if (i == WORDS / 2) busy_us(10);
        }
        atomic_fetch_sub(&sh->writers_in, 1);
        for (int r = READERS - 1; r >= 0; r--) unlock(seat[r]);
        unlock(turnstile);
        busy_us(100); /* the readers get their turn between writes */
    }
    atomic_fetch_add(&sh->writers_done, 1);
}

int main(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return 1;
    int rc = ferry_mutex_create(FERRY_MUTEX_FAIR, &turnstile);
    for (int r = 0; r < READERS && rc == 0; r++) rc = ferry_mutex_create(0, &seat[r]);
    if (rc != 0) {
        fprintf(stderr, "create: %s\n", ferry_strerror(rc));
        return 1;
    }
    pid_t pids[READERS + WRITERS];
    for (int i = 0; i < READERS + WRITERS; i++) {
        pids[i] = fork(); /* the handles work in the children as they are */
        if (pids[i] < 0) return 1;
        if (pids[i] == 0) {
            alarm(60); /* a bug must not hang the example */
            if (i < READERS)
                reader(i);
            else
                writer(i - READERS);
            _exit(0);
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ok = 1;
    for (int i = 0; i < READERS + WRITERS; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s %d failed (status 0x%x)\n", i < READERS ? "reader" : "writer", i,
                    st);
            ok = 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    long reads = 0;
    for (int r = 0; r < READERS; r++) {
        reads += atomic_load(&sh->reads[r]);
        if (atomic_load(&sh->reads[r]) == 0) { /* every reader kept coming */
            fprintf(stderr, "reader %d never read\n", r);
            ok = 0;
        }
    }
    printf("readers_writers: %d writers wrote %d times each while %d readers read %ld times "
           "(%ld of them while writers were still working); up to %d readers at once; "
           "%d violations; %.2f s\n",
           WRITERS, WRITES, READERS, reads, atomic_load(&sh->reads_during_writes),
           atomic_load(&sh->max_readers_in), atomic_load(&sh->violations), secs);
    if (atomic_load(&sh->writers_done) != WRITERS) {
        fprintf(stderr, "not every writer finished\n");
        ok = 0;
    }
    if (atomic_load(&sh->violations) != 0) {
        fprintf(stderr, "an invariant was broken\n");
        ok = 0;
    }
    if (atomic_load(&sh->reads_during_writes) == 0) {
        fprintf(stderr, "no reads while the writers worked\n");
        ok = 0;
    }
    ferry_mutex_close(turnstile);
    for (int r = 0; r < READERS; r++) ferry_mutex_close(seat[r]);
    printf("readers_writers: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
