// SPDX-License-Identifier: MIT
/*
 * test_scribble_event — issue 11, "a sharer scribbling the indices of an event queue": a
 * sharer running as another uid (a throwaway one), holding the queue through its
 * inherited descriptor, maps the memfd and for 1,000 rounds rewrites its words (head,
 * tail, capacity, counters, bell, futex words, slot sequence words and payloads) with
 * hostile values — random, 0, all ones, a neighbour's value, the word +/- 1 — while a
 * victim (root) posts, takes and polls with short deadlines.
 * The victim must: never crash (the test runs under ASan too), answer every call with
 * success or a documented error (post, next: -ETIMEDOUT, -EAGAIN, -EBADMSG), never return
 * later than its deadline plus a generous bound (LATE_MS: a loaded 2-core machine under
 * sanitizers) plus the time it waited runnable for a CPU during the call (sched_wait_ns:
 * the machine's load, not a loop of the victim's; a call that spins counts in full), and
 * leave no descriptor behind. Then the sharer stops, and a fresh queue
 * still works for the victim (the damage stays inside the object). Prints SKIP when not
 * root.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define ROUNDS   1000
#define DEADLINE (5 * MS)
#define LATE_MS  500 /* allowed lateness beyond the deadline */

static const ident SHARER = {60071, 60071, 0, {0}};

static int carrier_memfd(int carrier)
{
    char b[8];
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {b, sizeof b};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    CHECK(recvmsg(carrier, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 4);
    int got[4], n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && n < 4; i++)
            memcpy(&got[n++], CMSG_DATA(c) + i * sizeof(int), 4);
    }
    CHECK(n == 2);
    close(got[1]);
    return got[0];
}

typedef struct scribble_args {
    int carrier;              /* the queue's descriptor, inherited */
    _Atomic uint32_t *rounds; /* shared: rounds done */
} scribble_args;

/* The layout of src/sync/event.c's evshm, in 8-byte words: capacity (u32) in word 2, tail
 * in word 8, head in word 16, slots (seq, payload) from word 32. */
#define W_CAP   2
#define W_TAIL  8
#define W_HEAD  16
#define W_SLOTS 32

static uint64_t next_rnd(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

/* The sharer: as another uid, through the descriptor it holds, round after round (until
 * killed): make the queue look consistent at a random position (empty, partly full or
 * full: so that the victim goes deep — posts that wait for room, takes, merges), let the
 * victim work on it for a moment, then rewrite one to three words with hostile values. */
static void scribbler(void *arg)
{
    scribble_args *a = arg;
    int mfd = carrier_memfd(a->carrier);
    struct stat st;
    CHECK(fstat(mfd, &st) == 0);
    size_t size = (size_t)st.st_size, words = size / 8;
    volatile uint64_t *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(w != MAP_FAILED);
    uint32_t cap = (uint32_t)w[W_CAP];
    CHECK(cap >= 1 && W_SLOTS + 2 * (size_t)cap <= words);
    uint64_t r = 0x243f6a8885a308d3ull ^ (uint64_t)getpid();
    for (uint32_t round = 0;; round++) {
        uint64_t x = next_rnd(&r) % 4 ? next_rnd(&r) >> 4 : next_rnd(&r) % 1000;
        uint32_t fill = (uint32_t)(next_rnd(&r) % (cap + 1));
        for (uint64_t p = x; p < x + cap; p++)
            w[W_SLOTS + 2 * (p % cap)] = p < x + fill ? 2 * p + 1 : 2 * p;
        w[W_HEAD] = x;
        w[W_TAIL] = x + fill;
        usleep(100 + next_rnd(&r) % 300);
        for (int k = 0, n = 1 + (int)(next_rnd(&r) % 3); k < n; k++) {
            uint64_t v = next_rnd(&r);
            /* Mostly the indices and the slots' words; sometimes any word but the header. */
            size_t i = v & 1 ? (v >> 1 & 1 ? W_HEAD : W_TAIL)
                             : 2 + (size_t)(v >> 40) % (v & 2 ? 2 * cap + W_SLOTS - 2 : words - 2);
            volatile uint64_t *q = &w[i];
            switch ((v >> 8) % 7) {
            case 0:
                *q = v;
                break;
            case 1:
                *q = 0;
                break;
            case 2:
                *q = UINT64_MAX;
                break;
            case 3:
                *q = *q + 1;
                break;
            case 4:
                *q = *q - 1;
                break;
            case 5:
                *q = w[2 + (size_t)(v >> 20) % (words - 2)];
                break;
            default:
                *q = *q + cap;
                break;
            }
        }
        usleep(100 + next_rnd(&r) % 300);
        atomic_store(a->rounds, round + 1);
    }
}

static int doc_err(long rc)
{
    return rc == 0 || rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBADMSG;
}

int main(void)
{
    require_root();
    test_deadline(300);
    int fds = fd_count();
    ferry_event *e;
    CHECK_EQ(ferry_event_create(8, &e), 0);
    _Atomic uint32_t *rounds =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(rounds != MAP_FAILED);
    scribble_args sa = {.carrier = ferry_event_fd(e), .rounds = rounds};
    pid_t sharer = spawn_as(&SHARER, scribbler, &sa);

    /* The victim: this process (root), through its own handle. */
    int pfd = ferry_event_poll_fd(e);
    CHECK(pfd >= 0);
    int64_t worst = 0, worst_net = 0; /* raw; less the run-queue wait */
    long counts[4] = {0};             /* ok, timed out / again, bad message */
    int64_t t_start = now_ns();
    for (int i = 0; atomic_load(rounds) < ROUNDS; i++) {
        CHECK(now_ns() - t_start < 200 * SEC);
        for (int op = 0; op < 3; op++) {
            int64_t w0 = sched_wait_ns(0), t0 = now_ns();
            long rc;
            uint64_t v = 0;
            if (op == 0)
                rc = ferry_event_post(e, (uint64_t)i, i & 1 ? FERRY_EVENT_COALESCE : 0, DEADLINE);
            else if (op == 1)
                rc = ferry_event_next(e, &v, DEADLINE);
            else {
                struct pollfd p = {.fd = pfd, .events = POLLIN};
                CHECK(poll(&p, 1, 0) >= 0);
                rc = ferry_event_next(e, &v, FERRY_NOW);
            }
            int64_t late = now_ns() - t0 - (op == 2 ? 0 : DEADLINE);
            int64_t waited = sched_wait_delta(w0, sched_wait_ns(0));
            if (late > worst) worst = late;
            if (late - waited > worst_net) worst_net = late - waited;
            if (!doc_err(rc)) fprintf(stderr, "round %d op %d: %ld\n", i, op, rc);
            CHECK(doc_err(rc));
            counts[rc == 0 ? 0 : rc == -EBADMSG ? 2 : 1]++;
            if (late > LATE_MS * MS)
                fprintf(stderr,
                        "round %d op %d: %lld ms past the deadline, %lld ms of it waiting "
                        "for a CPU\n",
                        i, op, (long long)(late / MS), (long long)(waited / MS));
            CHECK(late - waited <= LATE_MS * MS);
        }
    }
    kill_wait(sharer);
    printf("event: %u scribble rounds; victim calls: %ld ok, %ld timed out, %ld -EBADMSG; worst "
           "lateness %.1f ms (%.1f ms less the run-queue wait)\n",
           atomic_load(rounds), counts[0], counts[1], counts[2], (double)worst / MS,
           (double)worst_net / MS);
    ferry_event_close(e);

    /* The damage stayed in that object: a new queue works. */
    CHECK_EQ(ferry_event_create(4, &e), 0);
    uint64_t v = 0;
    CHECK_EQ(ferry_event_post(e, 42, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 42);
    ferry_event_close(e);
    munmap(rounds, 4096);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
