// SPDX-License-Identifier: MIT
/*
 * test_bcast_stats — ferry_bcast_stats and ferry_bcast_list: the counters (published,
 * subscribers, max_lag, the shape, ended) and each subscriber's pid, flags, lag, holding
 * and liveness, from the publisher's handle and from another process's adopted handle;
 * the sized-struct rules (-EINVAL for NULL, size 0, too small, above 4096; an older
 * caller's prefix); -EINVAL for NULL arguments; a cap smaller than the subscribers; a
 * dead subscriber shown as not alive; and values a hostile sharer writes into an entry
 * (pos past head or far behind, unknown flags, a zero or bogus identity) kept within
 * their documented ranges. No descriptor is left behind.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* bcast.c's layout: subscriber entries of 64 bytes from byte 256: {state u32 (2 active),
 * flags u32, id u64, pos u64 (bit 63: a peek holds it), ...}. */
#define SUBS_OFF   256
#define SUB_BYTES  64
#define E_FLAGS    4
#define E_ID       8
#define E_POS      16
#define SUB_ACTIVE 2u

static ferry_bcast *make(uint32_t slots, uint32_t max_subs)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = slots;
    o.max_subs = max_subs;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    return b;
}

static ferry_bcast_counters stats(const ferry_bcast *b)
{
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(b, &st), 0);
    CHECK_EQ(st.size, sizeof st);
    return st;
}

static void publish(ferry_bcast *b, int n)
{
    for (int i = 0; i < n; i++) CHECK_EQ(ferry_bcast_publish(b, 1, "x", 1, FERRY_NOW), 0);
}

static void t_errors(void)
{
    ferry_bcast *b = make(8, 4);
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(NULL, &st), -EINVAL);
    CHECK_EQ(ferry_bcast_stats(b, NULL), -EINVAL);
    st.size = 0;
    CHECK_EQ(ferry_bcast_stats(b, &st), -EINVAL);
    st.size = offsetof(ferry_bcast_counters, max_msg); /* below the first version */
    CHECK_EQ(ferry_bcast_stats(b, &st), -EINVAL);
    st.size = 4097;
    CHECK_EQ(ferry_bcast_stats(b, &st), -EINVAL);
    CHECK_EQ(st.published, 0); /* nothing written on an error */
    ferry_bcast_sub_info info[2];
    CHECK_EQ(ferry_bcast_list(NULL, info, 2), -EINVAL);
    CHECK_EQ(ferry_bcast_list(b, NULL, 1), -EINVAL);
    CHECK_EQ(ferry_bcast_list(b, NULL, 0), 0);
    CHECK_EQ(ferry_bcast_list(b, info, 2), 0);
    /* a newer caller's larger struct: the library's part is written, size says how much */
    struct {
        ferry_bcast_counters c;
        uint64_t later;
    } big;
    memset(&big, 0, sizeof big);
    big.c.size = sizeof big;
    big.later = 77;
    publish(b, 2);
    CHECK_EQ(ferry_bcast_stats(b, &big.c), 0);
    CHECK_EQ(big.c.size, sizeof(ferry_bcast_counters));
    CHECK_EQ(big.c.published, 2);
    CHECK_EQ(big.later, 77);
    ferry_bcast_close(b);
}

static void t_counts(void)
{
    ferry_bcast *b = make(8, 4);
    ferry_bcast_counters st = stats(b);
    CHECK_EQ(st.published, 0);
    CHECK_EQ(st.subscribers, 0);
    CHECK_EQ(st.max_lag, 0);
    CHECK_EQ(st.slots, 8);
    CHECK_EQ(st.max_subs, 4);
    CHECK_EQ(st.max_msg, 64);
    CHECK_EQ(st.ended, 0);
    publish(b, 3); /* nobody subscribed: not anyone's lag */
    ferry_sub *blk, *drp;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &blk), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &drp), 0);
    st = stats(b);
    CHECK_EQ(st.published, 3);
    CHECK_EQ(st.subscribers, 2);
    CHECK_EQ(st.max_lag, 0);
    publish(b, 5);
    char buf[64];
    int64_t type;
    CHECK_EQ(ferry_sub_recv(drp, buf, sizeof buf, &type, FERRY_NOW), 1);
    CHECK_EQ(ferry_sub_recv(drp, buf, sizeof buf, &type, FERRY_NOW), 1);
    ferry_msg m;
    CHECK_EQ(ferry_sub_peek(drp, &m, FERRY_NOW), 0); /* holds its third */
    st = stats(b);
    CHECK_EQ(st.published, 8);
    CHECK_EQ(st.max_lag, 5);
    ferry_bcast_sub_info info[4];
    memset(info, 0xa5, sizeof info);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 2);
    /* entries in table order: the blocking one joined first */
    CHECK_EQ(info[0].pid, getpid());
    CHECK_EQ(info[0].flags, 0);
    CHECK_EQ(info[0].lag, 5);
    CHECK_EQ(info[0].holding, 0);
    CHECK_EQ(info[0].alive, 1);
    CHECK_EQ(info[1].pid, getpid());
    CHECK_EQ(info[1].flags, FERRY_SUB_DROP_OLDEST);
    CHECK_EQ(info[1].lag, 3); /* the peeked one is not released yet */
    CHECK_EQ(info[1].holding, 1);
    CHECK_EQ(info[1].alive, 1);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 4; r++) CHECK_EQ(info[k].reserved[r], 0);
    CHECK_EQ(info[2].pid, (pid_t)0xa5a5a5a5); /* past the count: untouched */
    CHECK_EQ(ferry_sub_release(drp), 0);
    CHECK_EQ(ferry_bcast_list(b, info, 1), 1); /* cap below the count */
    CHECK_EQ(info[0].lag, 5);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 2);
    CHECK_EQ(info[1].lag, 2);
    CHECK_EQ(info[1].holding, 0);
    /* the blocking subscriber 8 behind holds the publisher: lag = slots */
    publish(b, 3);
    CHECK_EQ(ferry_bcast_publish(b, 1, "x", 1, FERRY_NOW), -EAGAIN);
    st = stats(b);
    CHECK_EQ(st.max_lag, 8);
    CHECK_EQ(st.published, 11);
    /* another process's handle sees the same, and its own subscriber */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_bcast *c;
        CHECK_EQ(ferry_bcast_adopt(dup(ferry_bcast_fd(b)), &c), 0);
        ferry_sub *mine;
        CHECK_EQ(ferry_bcast_subscribe(c, 0, &mine), 0);
        ferry_bcast_counters cs = stats(c);
        CHECK_EQ(cs.published, 11);
        CHECK_EQ(cs.subscribers, 3);
        CHECK_EQ(cs.max_lag, 8);
        ferry_bcast_sub_info ci[4];
        CHECK_EQ(ferry_bcast_list(c, ci, 4), 3);
        CHECK_EQ(ci[2].pid, getpid());
        CHECK_EQ(ci[2].lag, 0);
        _exit(0); /* dies subscribed */
    }
    wait_ok(pid);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 3);
    CHECK_EQ(info[2].pid, pid);
    CHECK_EQ(info[2].alive, 0); /* reaped: certainly gone */
    CHECK_EQ(info[0].alive, 1);
    ferry_sub_close(blk);
    ferry_sub_close(drp);
    CHECK_EQ(ferry_bcast_end(b), 0);
    st = stats(b);
    CHECK_EQ(st.ended, 1);
    CHECK_EQ(st.subscribers, 1); /* the dead one's entry (never in the way since) */
    ferry_bcast_close(b);
}

/* What a sharer writes into an entry stays within range. */
static void t_hostile(void)
{
    ferry_bcast *b = make(8, 4);
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &s), 0);
    publish(b, 20); /* drop-oldest: never blocks; head 20 */
    struct stat fs;
    CHECK_EQ(fstat(ferry_bcast_fd(b), &fs), 0);
    uint8_t *m =
        mmap(NULL, (size_t)fs.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_bcast_fd(b), 0);
    CHECK(m != MAP_FAILED);
    uint8_t *e = m + SUBS_OFF; /* our entry: the first */
    CHECK_EQ(__atomic_load_n((uint32_t *)e, __ATOMIC_RELAXED), SUB_ACTIVE);
    CHECK_EQ(__atomic_load_n((uint64_t *)(e + E_POS), __ATOMIC_RELAXED), 12); /* 20 - 8 */
    ferry_bcast_sub_info info[4];
    CHECK_EQ(ferry_bcast_list(b, info, 4), 1);
    CHECK_EQ(info[0].lag, 8);
    static const struct {
        uint64_t pos, lag;
        uint32_t holding;
    } cases[] = {
        {0, 8, 0},                        /* 20 behind: clamped to slots */
        {UINT64_MAX >> 1, 0, 0},          /* past head: 0 */
        {UINT64_MAX, 0, 1},               /* HOLD and past head */
        {(UINT64_C(1) << 63) | 19, 1, 1}, /* HOLD on message 19 */
        {20, 0, 0},                       /* caught up */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        __atomic_store_n((uint64_t *)(e + E_POS), cases[i].pos, __ATOMIC_RELAXED);
        CHECK_EQ(ferry_bcast_list(b, info, 4), 1);
        CHECK_EQ(info[0].lag, cases[i].lag);
        CHECK_EQ(info[0].holding, cases[i].holding);
        ferry_bcast_counters st = stats(b);
        CHECK_EQ(st.max_lag, cases[i].lag);
    }
    __atomic_store_n((uint32_t *)(e + E_FLAGS), UINT32_MAX, __ATOMIC_RELAXED);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 1);
    CHECK_EQ(info[0].flags, FERRY_SUB_DROP_OLDEST); /* only the flags that exist */
    uint64_t id = __atomic_load_n((uint64_t *)(e + E_ID), __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(e + E_ID), 0, __ATOMIC_RELAXED);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 1);
    CHECK_EQ(info[0].pid, 0);
    CHECK_EQ(info[0].alive, 0);
    __atomic_store_n((uint64_t *)(e + E_ID), UINT64_MAX, __ATOMIC_RELAXED);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 1);
    CHECK(info[0].pid >= 0 && info[0].pid < (1 << 22)); /* a pid, whatever the word */
    /* every entry active (a sharer's writes): bounded by the private max_subs */
    for (int k = 0; k < 4; k++)
        __atomic_store_n((uint32_t *)(m + SUBS_OFF + k * SUB_BYTES), SUB_ACTIVE, __ATOMIC_RELAXED);
    CHECK_EQ(ferry_bcast_list(b, info, 4), 4);
    CHECK_EQ(stats(b).subscribers, 4);
    for (int k = 1; k < 4; k++)
        __atomic_store_n((uint32_t *)(m + SUBS_OFF + k * SUB_BYTES), 0, __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(e + E_ID), id, __ATOMIC_RELAXED);
    __atomic_store_n((uint32_t *)(e + E_FLAGS), FERRY_SUB_DROP_OLDEST, __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(e + E_POS), 20, __ATOMIC_RELAXED);
    munmap(m, (size_t)fs.st_size);
    ferry_sub_close(s);
    ferry_bcast_close(b);
}

static void run(const char *name, void (*fn)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn();
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s\n", name);
}

int main(void)
{
    run("errors", t_errors);
    run("counts", t_counts);
    run("hostile", t_hostile);
    return 0;
}
