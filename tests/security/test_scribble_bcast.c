// SPDX-License-Identifier: MIT
/*
 * test_scribble_bcast — issue 11, "a sharer scribbling the indices of a broadcast ring": a
 * sharer running as another uid (a throwaway one), holding the ring through its inherited
 * descriptor, maps the memfd and for 1,000 rounds rewrites its words — head, the end flag,
 * the publisher's identity, the wait and doorbell words, subscriber entries (state,
 * identity, pos with and without the HOLD bit, token), slot headers (seq, type, len) —
 * with hostile values (random, 0, all ones, +/- 1, another word's value), while a victim
 * (root) publishes and receives through a blocking and a drop-oldest subscription, with
 * short deadlines, subscribing again whenever a subscription is broken.
 * The victim must: never crash (the test runs under ASan too), answer every call with
 * data or a documented error, receive only valid data (a length within the buffer and
 * max_msg, a type >= 0), never return later than its deadline plus a generous bound
 * (LATE_MS) plus the time it waited runnable for a CPU during the call (sched_wait_ns: the
 * machine's load, not a loop of the victim's; a call that spins still counts in full),
 * and leave no descriptor behind. Prints SKIP when not root.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ROUNDS   1000
#define DEADLINE (5 * MS)
#define LATE_MS  500 /* allowed lateness beyond the deadline */
#define SLOTS    8
#define MAX_MSG  64
#define SUBS     4

static const ident SHARER = {60072, 60072, 0, {0}};

/* The layout of src/bcast/bcast.c, in bytes: the header's words up to 72 (the
 * publisher's identity at 32, the end flag at 40), head at 128;
 * entries of 64 bytes from 256 (state, flags, id, pos, token, bell); then slots of stride
 * 32 + MAX_MSG rounded to 64, each a header (seq, type, len) and the bytes. */
#define HDR_END   72
#define PUB_ID    32 /* the publisher's identity */
#define CLOSED    40 /* the end of stream (u32) */
#define HEAD      128
#define SUBS_OFF  256
#define SLOTS_OFF (SUBS_OFF + SUBS * 64)
#define STRIDE    ((32 + MAX_MSG + 63) / 64 * 64)
#define HOLD      ((uint64_t)1 << 63)

typedef struct scribble_args {
    int fd;                   /* the ring's descriptor, inherited */
    _Atomic uint32_t *rounds; /* shared: rounds done */
} scribble_args;

static uint64_t next_rnd(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

/* A word the sharer aims at: mostly the indices (head, positions, slot seqs). */
static size_t aim(uint64_t v)
{
    switch (v % 8) {
    case 0:
        return HEAD;
    case 1:
    case 2:
        return SUBS_OFF + (v >> 8) % SUBS * 64 + 16; /* pos */
    case 3:
        return SUBS_OFF + (v >> 8) % SUBS * 64 + (v >> 16) % 5 * 8; /* an entry's word */
    case 4:
        return SLOTS_OFF + (v >> 8) % SLOTS * STRIDE + (v >> 16) % 3 * 8; /* slot header */
    case 5:
        return 16 + (v >> 8) % ((HDR_END - 16) / 8) * 8; /* a header word */
    default:
        return 16 + (v >> 8) % ((SLOTS_OFF + SLOTS * STRIDE - 16) / 8) * 8;
    }
}

static void scribbler(void *arg)
{
    scribble_args *a = arg;
    struct stat st;
    CHECK(fstat(a->fd, &st) == 0);
    size_t size = (size_t)st.st_size;
    CHECK(size >= SLOTS_OFF + SLOTS * STRIDE);
    uint8_t *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
    CHECK(base != MAP_FAILED);
    uint64_t r = 0x13198a2e03707344ull ^ (uint64_t)getpid();
    uint64_t pub_id = *(volatile uint64_t *)(base + PUB_ID);
    for (uint32_t round = 0;; round++) {
        /* Mostly undo the end of stream and a forged publisher's identity of the last
         * rounds (else the victim's stream would stay ended), then let the victim work. */
        if (next_rnd(&r) % 8) {
            *(volatile uint32_t *)(base + CLOSED) = 0;
            *(volatile uint64_t *)(base + PUB_ID) = pub_id;
        }
        usleep(200 + next_rnd(&r) % 400);
        for (int k = 0, n = 1 + (int)(next_rnd(&r) % 3); k < n; k++) {
            uint64_t v = next_rnd(&r);
            volatile uint64_t *q = (volatile uint64_t *)(base + aim(v));
            uint64_t other = *(volatile uint64_t *)(base + aim(next_rnd(&r)));
            switch ((v >> 32) % 8) {
            case 0:
                *q = next_rnd(&r);
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
                *q = other;
                break;
            case 6:
                *q = *q | HOLD;
                break;
            default:
                *q = *q + SLOTS;
                break;
            }
        }
        atomic_store(a->rounds, round + 1);
    }
}

/* A call that began at t0, when this thread's run-queue wait was w0: its lateness past
 * the deadline less the time it waited for a CPU within <= LATE_MS. worst[0] is the worst
 * raw lateness, worst[1] the worst after that allowance. */
static int late_check(int64_t t0, int64_t w0, int64_t deadline, int64_t *worst, const char *what)
{
    int64_t late = now_ns() - t0 - deadline;
    int64_t waited = sched_wait_delta(w0, sched_wait_ns(0));
    if (late > worst[0]) worst[0] = late;
    if (late - waited > worst[1]) worst[1] = late - waited;
    if (late > LATE_MS * MS)
        fprintf(stderr, "%s: %lld ms past the deadline, %lld ms of it waiting for a CPU\n", what,
                (long long)(late / MS), (long long)(waited / MS));
    CHECK(late - waited <= LATE_MS * MS);
    return 0;
}

int main(void)
{
    require_root();
    test_deadline(300);
    int fds = fd_count();
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = SLOTS;
    o.max_msg = MAX_MSG;
    o.max_subs = SUBS;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    _Atomic uint32_t *rounds =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(rounds != MAP_FAILED);
    scribble_args sa = {.fd = ferry_bcast_fd(b), .rounds = rounds};
    pid_t sharer = spawn_as(&SHARER, scribbler, &sa);

    ferry_sub *s[2] = {NULL, NULL};
    const uint32_t flags[2] = {0, FERRY_SUB_DROP_OLDEST};
    long pub_ok = 0, pub_err = 0, got = 0, bad = 0, resub = 0;
    int64_t worst[2] = {0, 0};
    uint8_t buf[MAX_MSG], msg[MAX_MSG];
    for (int i = 0; atomic_load(rounds) < ROUNDS; i++) {
        for (int k = 0; k < 2; k++) {
            if (s[k]) continue;
            int rc = ferry_bcast_subscribe(b, flags[k], &s[k]);
            if (rc != 0 && rc != -ENOSPC) fprintf(stderr, "subscribe: %d\n", rc);
            CHECK(rc == 0 || rc == -ENOSPC);
            if (rc != 0) s[k] = NULL;
            resub++;
        }
        size_t len = (size_t)(i * 7) % (MAX_MSG + 1);
        memset(msg, i, len);
        int64_t w0 = sched_wait_ns(0), t0 = now_ns();
        int rc = ferry_bcast_publish(b, i % 5, msg, len, DEADLINE);
        late_check(t0, w0, DEADLINE, worst, "publish");
        if (rc != 0 && rc != -ETIMEDOUT && rc != -EPIPE && rc != -EBADMSG)
            fprintf(stderr, "publish: %d\n", rc);
        CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EPIPE || rc == -EBADMSG);
        if (rc == 0)
            pub_ok++;
        else
            pub_err++;
        for (int k = 0; k < 2; k++) {
            if (!s[k]) continue;
            w0 = sched_wait_ns(0);
            t0 = now_ns();
            long n;
            int64_t type = -1;
            if (i % 3 == 0) {
                ferry_msg m;
                n = ferry_sub_peek(s[k], &m, DEADLINE);
                if (n == 0) {
                    CHECK(m.len <= MAX_MSG && m.nfds == 0);
                    volatile uint8_t sink = 0;
                    for (size_t j = 0; j < m.len; j++) sink ^= ((const uint8_t *)m.data)[j];
                    (void)sink;
                    type = m.type;
                    CHECK_EQ(ferry_sub_release(s[k]), 0);
                    n = (long)m.len;
                }
            } else {
                n = ferry_sub_recv(s[k], buf, i % 2 ? sizeof buf : 16, &type, DEADLINE);
                if (n >= 0) CHECK((size_t)n <= (i % 2 ? sizeof buf : 16));
            }
            late_check(t0, w0, DEADLINE, worst, "receive");
            if (n < 0 && n != -ETIMEDOUT && n != -EPIPE && n != -EBADMSG && n != -EMSGSIZE)
                fprintf(stderr, "receive: %ld\n", n);
            CHECK(n >= 0 || n == -ETIMEDOUT || n == -EPIPE || n == -EBADMSG || n == -EMSGSIZE);
            if (n >= 0) {
                if (type < 0) fprintf(stderr, "received a message of type %lld\n", (long long)type);
                CHECK(type >= 0); /* valid data: types are >= 0 */
                got++;
            }
            if (n == -EBADMSG || n == -EPIPE) { /* broken for us: leave, and join again */
                bad++;
                ferry_sub_close(s[k]);
                s[k] = NULL;
            }
        }
        if (i % 64 == 63) sched_yield();
    }
    kill_wait(sharer);
    printf("bcast: %u scribble rounds; publish %ld ok, %ld failed; %ld received, %ld broken "
           "subscriptions, %ld subscribes; worst lateness %.1f ms (%.1f ms less the run-queue "
           "wait)\n",
           atomic_load(rounds), pub_ok, pub_err, got, bad, resub, (double)worst[0] / MS,
           (double)worst[1] / MS);
    for (int k = 0; k < 2; k++) ferry_sub_close(s[k]);
    ferry_bcast_close(b);
    munmap(rounds, 4096);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
