// SPDX-License-Identifier: MIT
/*
 * test_event_threads — one handle shared by threads (for TSan as much as for itself):
 * four posting threads, two taking with blocking ferry_event_next and one taking through
 * the poll fd (poll, then FERRY_NOW takes), coalescing posts mixed in: every plain event
 * arrives exactly once, each coalesced post is either delivered or merged, and the counts
 * add up.
 */
#include "testutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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

#define SEC ((int64_t)1000000000)

enum { POSTERS = 4, PER = 50000, MARK = 1u << 31 };

static ferry_event *E;
static _Atomic uint32_t seen[POSTERS][PER];
static _Atomic uint64_t coalesced_taken, taken_total;
static _Atomic int stop;

static void *poster(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < PER; i++) {
        CHECK_EQ(ferry_event_post(E, id << 32 | i, 0, 10 * SEC), 0);
        if (i % 16 == 0) CHECK_EQ(ferry_event_post(E, MARK, FERRY_EVENT_COALESCE, 10 * SEC), 0);
    }
    return NULL;
}

static void account(uint64_t v)
{
    atomic_fetch_add(&taken_total, 1);
    if (v == MARK) {
        atomic_fetch_add(&coalesced_taken, 1);
        return;
    }
    uint64_t id = v >> 32, i = v & 0xffffffffu;
    CHECK(id < POSTERS && i < PER);
    CHECK_EQ(atomic_fetch_add(&seen[id][i], 1), 0); /* once */
}

static void *taker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        uint64_t v;
        int rc = ferry_event_next(E, &v, 20 * 1000 * 1000);
        if (rc == -ETIMEDOUT) continue;
        CHECK_EQ(rc, 0);
        account(v);
    }
    return NULL;
}

static void *poll_taker(void *arg)
{
    (void)arg;
    int pfd = ferry_event_poll_fd(E);
    CHECK(pfd >= 0);
    while (!atomic_load(&stop)) {
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        CHECK(poll(&p, 1, 20) >= 0);
        uint64_t v;
        int rc;
        while ((rc = ferry_event_next(E, &v, FERRY_NOW)) == 0) account(v);
        CHECK_EQ(rc, -EAGAIN);
    }
    return NULL;
}

int main(void)
{
    alarm(60);
    int fds = fd_count();
    CHECK_EQ(ferry_event_create(64, &E), 0);
    pthread_t p[POSTERS], t[3];
    CHECK(pthread_create(&t[0], NULL, taker, NULL) == 0);
    CHECK(pthread_create(&t[1], NULL, taker, NULL) == 0);
    CHECK(pthread_create(&t[2], NULL, poll_taker, NULL) == 0);
    for (uintptr_t i = 0; i < POSTERS; i++)
        CHECK(pthread_create(&p[i], NULL, poster, (void *)i) == 0);
    for (int i = 0; i < POSTERS; i++) CHECK(pthread_join(p[i], NULL) == 0);
    /* Everything posted is in or through the queue: wait until it is all taken. */
    uint64_t posted, merged;
    for (;;) {
        CHECK_EQ(event_stats(E, &posted, &merged), 0);
        if (atomic_load(&taken_total) + merged == posted) break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) CHECK(pthread_join(t[i], NULL) == 0);
    uint64_t marks = POSTERS * ((PER + 15) / 16);
    CHECK_EQ(posted, (uint64_t)POSTERS * PER + marks);
    CHECK_EQ(atomic_load(&coalesced_taken) + merged, marks);
    for (int id = 0; id < POSTERS; id++)
        for (int i = 0; i < PER; i++) CHECK_EQ(atomic_load(&seen[id][i]), 1);
    printf("threads: %llu marks delivered, %llu merged\n",
           (unsigned long long)atomic_load(&coalesced_taken), (unsigned long long)merged);
    uint64_t v;
    CHECK_EQ(ferry_event_next(E, &v, FERRY_NOW), -EAGAIN);
    ferry_event_close(E);
    CHECK_EQ(fd_count(), fds);
    printf("test_event_threads: ok\n");
    return 0;
}
