// SPDX-License-Identifier: MIT
/*
 * test_bcast_hostile — a sharer that scribbles random words over the whole object (sizes,
 * head, wait words, subscriber entries, slots) while a publisher and subscribers of both
 * kinds keep calling with short deadlines: every call returns within its bound with one of
 * its documented results, nothing crashes or touches memory outside the object, and no
 * descriptor is left behind. Gaps (ferry_bcast_skip) and a subscriber joining and leaving
 * every round (the seqlock of head and extra, which a sharer may leave odd) too.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int allowed(long rc)
{
    return rc >= 0 || rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBADMSG || rc == -EPIPE ||
           rc == -EMSGSIZE || rc == -EBUSY || rc == -EINVAL;
}

int main(void)
{
    int fds = fd_count();
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 8;
    o.max_msg = 128;
    o.max_subs = 4;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    ferry_sub *s[3];
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s[0]), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &s[1]), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &s[2]), 0);
    CHECK(ferry_sub_poll_fd(s[2]) >= 0);
    struct stat st;
    CHECK(fstat(ferry_bcast_fd(b), &st) == 0);
    size_t size = (size_t)st.st_size;

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) { /* the scribbler: past the object header, random words, forever */
        uint64_t *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_bcast_fd(b), 0);
        CHECK(w != MAP_FAILED);
        uint64_t x = 88172645463325252ull;
        size_t n = size / 8;
        for (;;) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t i = 2 + (size_t)(x % (n - 2));
            /* Mostly spare the publisher's identity and the end flag (words 4 and 5), or
             * every call soon says -EPIPE and the rest goes unexercised. */
            if ((i == 4 || i == 5) && (x & 0xf0) != 0) continue;
            uint64_t v = x;
            if (x & 1) v &= 0xff; /* small values too: they pass more checks */
            if ((x & 6) == 2) v |= (uint64_t)1 << 63;
            __atomic_store_n(&w[i], v, __ATOMIC_RELAXED);
            if ((x & 0x3) == 0) usleep(1000); /* slow enough that many calls succeed */
        }
    }
    unsigned char buf[128];
    int64_t t_end = now_ns() + 1 * SEC;
    uint64_t calls = 0, ok = 0, bad = 0;
    while (now_ns() < t_end) {
        int64_t t0 = now_ns();
        long rc = ferry_bcast_publish(b, 1, buf, 64, 2 * MS);
        CHECK(allowed(rc));
        if (calls % 4 == 0) {
            rc = ferry_bcast_skip(b, 3, 2 * MS);
            CHECK(allowed(rc) || rc == -EOVERFLOW);
        }
        ferry_sub *j = NULL;
        rc = ferry_bcast_subscribe(b, calls & 1 ? FERRY_SUB_DROP_OLDEST : 0, &j);
        CHECK(rc == 0 || rc == -ENOSPC);
        if (rc == 0) {
            (void)ferry_sub_seq(j);
            ferry_sub_close(j);
        }
        ferry_bcast_counters bst;
        ferry_bcast_counters_init(&bst);
        CHECK_EQ(ferry_bcast_stats(b, &bst), 0);
        for (int k = 0; k < 3; k++) {
            ferry_msg m;
            if (k == 1) {
                rc = ferry_sub_peek(s[k], &m, 2 * MS);
                CHECK(allowed(rc));
                if (rc == 0) {
                    CHECK(m.len <= 128);
                    volatile unsigned char sink = 0;
                    for (size_t i = 0; i < m.len; i++) sink ^= ((unsigned char *)m.data)[i];
                    (void)sink;
                    CHECK_EQ(ferry_sub_release(s[k]), 0);
                }
            } else {
                rc = ferry_sub_recv(s[k], buf, sizeof buf, NULL, 2 * MS);
                CHECK(allowed(rc) && rc <= 128);
                ok += rc >= 0;
                bad += rc == -EBADMSG;
            }
        }
        CHECK(now_ns() - t0 < 1 * SEC); /* each call within its bound (plus slack) */
        calls++;
        usleep(100); /* calls that fail at once must not hog a CPU other tests need */
    }
    kill(pid, SIGKILL);
    int wst;
    CHECK(waitpid(pid, &wst, 0) == pid);
    CHECK(calls > 10);
    for (int k = 0; k < 3; k++) ferry_sub_close(s[k]);
    ferry_bcast_close(b);
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_hostile: %llu rounds, %llu messages taken, %llu -EBADMSG: ok\n",
           (unsigned long long)calls, (unsigned long long)ok, (unsigned long long)bad);
    return 0;
}
