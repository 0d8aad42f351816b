// SPDX-License-Identifier: MIT
/*
 * test_bcast_kill — broadcast to 4 subscriber processes, one of which stops reading and
 * is killed (-9) while it blocks the publisher: the publisher goes on within 100 ms of
 * the victim's death (measured from when waitid sees it exited: under heavy load the
 * kernel may take a while to finish off a killed process; plus the time the publisher
 * waited for a CPU meanwhile, testutil.h's sched_wait_ns), and the 3 others get every
 * message, in order and intact, then -EPIPE at the end of the stream. Then the same with
 * a drop-oldest subscriber killed while it holds a peek (the only way such a subscriber
 * blocks the publisher). A full table reclaims the entries of killed subscribers; a
 * killed publisher gives its subscribers -EPIPE. No descriptor left behind.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define NSUB   4
#define NMSG   20000
#define VICTIM 2

static void reader(ferry_bcast *b, int ready_fd)
{
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    CHECK(write(ready_fd, "r", 1) == 1);
    unsigned char buf[64];
    for (uint64_t i = 0; i < NMSG; i++) {
        int64_t type = -1;
        ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, 20 * SEC);
        if (n < 0 || type != (int64_t)i || !body_ok(i, buf, (size_t)n)) {
            fprintf(stderr, "reader %d: message %llu: %zd type %lld\n", (int)getpid(),
                    (unsigned long long)i, n, (long long)type);
            _exit(1);
        }
    }
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 20 * SEC), -EPIPE);
    CHECK_EQ(ferry_sub_lost(s), 0);
    ferry_sub_close(s);
    _exit(0);
}

/* The victim reads 5 messages, says so with the type (= sequence) of the next message,
 * which it holds in a peek if drop-oldest, and then sleeps. A drop-oldest victim may have
 * lost messages before it began: the one it holds is then later than 5. */
static void victim(ferry_bcast *b, int ready_fd, uint32_t flags)
{
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, flags, &s), 0);
    CHECK(write(ready_fd, "r", 1) == 1);
    unsigned char buf[64];
    for (int i = 0; i < 5; i++) CHECK(ferry_sub_recv(s, buf, sizeof buf, NULL, 20 * SEC) > 0);
    int64_t held = 5;
    if (flags & FERRY_SUB_DROP_OLDEST) {
        ferry_msg m;
        CHECK_EQ(ferry_sub_peek(s, &m, 20 * SEC), 0);
        held = m.type;
        CHECK(held >= 5 && (uint64_t)held == 5 + ferry_sub_lost(s));
    }
    char msg[9] = "5";
    memcpy(msg + 1, &held, 8);
    CHECK(write(ready_fd, msg, 9) == 9);
    for (;;) pause();
}

/* The moment the victim is dead (a zombie: what the kernel, and a pidfd, call exited),
 * without reaping it. The bound is from that moment: under a heavy load the kernel may
 * take a while to finish off a process after SIGKILL. */
static pid_t watched;
static _Atomic int64_t dead_at;

static void *death_watch(void *arg)
{
    (void)arg;
    siginfo_t si;
    while (waitid(P_PID, (id_t)watched, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    atomic_store(&dead_at, now_ns());
    return NULL;
}

static void run(uint32_t victim_flags)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 16;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    int ready[2], five[2];
    CHECK(pipe(ready) == 0 && pipe(five) == 0);
    pid_t pids[NSUB];
    for (int k = 0; k < NSUB; k++) {
        pids[k] = fork();
        CHECK(pids[k] >= 0);
        if (pids[k] == 0) {
            if (k == VICTIM) victim(b, five[1], victim_flags);
            reader(b, ready[1]);
        }
    }
    char c;
    for (int k = 0; k < NSUB - 1; k++) CHECK(read(ready[0], &c, 1) == 1);
    CHECK(read(five[0], &c, 1) == 1 && c == 'r'); /* the victim subscribed */
    CHECK_EQ(ferry_bcast_subscribers(b), NSUB);

    unsigned char buf[64];
    int killed = 0, victim_read = 0;
    int64_t held = -1;
    int64_t kill_at = 0, resumed_at = -1, wait_at_kill = 0, wait_at_resume = 0;
    pthread_t watcher;
    uint64_t blocked_at = 0;
    for (uint64_t i = 0; i < NMSG; i++) {
        size_t n = body(i, buf);
        int rc;
        while ((rc = ferry_bcast_publish(b, (int64_t)i, buf, n, killed ? 10 * SEC : 50 * MS)) ==
               -ETIMEDOUT) {
            CHECK(!killed);
            /* blocked: by the victim once it has read its 5 and we are 16 past them */
            if (!victim_read) {
                char msg[9];
                CHECK(read(five[0], msg, 9) == 9 && msg[0] == '5');
                memcpy(&held, msg + 1, 8);
                victim_read = 1;
            }
            if (i >= (uint64_t)held + o.slots) {
                blocked_at = i;
                watched = pids[VICTIM];
                atomic_store(&dead_at, 0);
                CHECK(pthread_create(&watcher, NULL, death_watch, NULL) == 0);
                CHECK_EQ(kill(pids[VICTIM], SIGKILL), 0);
                kill_at = now_ns();
                wait_at_kill = sched_wait_ns(0);
                killed = 1;
            }
        }
        CHECK_EQ(rc, 0);
        if (killed && resumed_at < 0) {
            resumed_at = now_ns();
            wait_at_resume = sched_wait_ns(0);
        }
    }
    CHECK(killed);
    CHECK_EQ(blocked_at, (uint64_t)held + o.slots); /* exactly a ring past what it holds */
    if (!(victim_flags & FERRY_SUB_DROP_OLDEST)) CHECK_EQ(held, 5);
    CHECK(pthread_join(watcher, NULL) == 0);
    int64_t died = atomic_load(&dead_at);
    int64_t after = resumed_at > died ? resumed_at - died : 0; /* noticed before waitid */
    /* The time this thread waited for a CPU meanwhile is the machine's, not ours. */
    int64_t queued =
        wait_at_kill >= 0 && wait_at_resume >= wait_at_kill ? wait_at_resume - wait_at_kill : 0;
    fprintf(stderr,
            "victim flags %u: dead %.1f ms after the kill; the publisher resumed %.1f ms "
            "after the kill, %.1f ms after the death (%.1f ms of it waiting for a CPU)\n",
            victim_flags, (double)(died - kill_at) / 1e6, (double)(resumed_at - kill_at) / 1e6,
            (double)after / 1e6, (double)queued / 1e6);
    CHECK(after < 100 * MS + queued);
    CHECK_EQ(ferry_bcast_subscribers(b), NSUB - 1);
    ferry_bcast_close(b); /* end of stream */
    for (int k = 0; k < NSUB; k++) {
        if (k == VICTIM) {
            int st;
            CHECK(waitpid(pids[k], &st, 0) == pids[k]);
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        } else {
            wait_ok(pids[k]);
        }
    }
    close(ready[0]);
    close(ready[1]);
    close(five[0]);
    close(five[1]);
}

/* A full table: the entries of subscribers killed -9 (idle, so blocking nobody) are
 * reclaimed by the next subscribe; a live one's never. */
static void test_reclaim(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.max_subs = 3;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    ferry_sub *mine;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &mine), 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        CHECK(pids[k] >= 0);
        if (pids[k] == 0) {
            ferry_sub *s;
            CHECK_EQ(ferry_bcast_subscribe(b, k ? FERRY_SUB_DROP_OLDEST : 0, &s), 0);
            CHECK(ferry_sub_poll_fd(s) >= 0);
            CHECK(write(ready[1], "r", 1) == 1);
            for (;;) pause();
        }
    }
    char c;
    for (int k = 0; k < 2; k++) CHECK(read(ready[0], &c, 1) == 1);
    ferry_sub *more[2];
    CHECK_EQ(ferry_bcast_subscribers(b), 3);
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &more[0]), -ENOSPC); /* all alive */
    CHECK_EQ(kill(pids[0], SIGKILL), 0);
    CHECK(waitpid(pids[0], NULL, 0) == pids[0]);
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &more[0]), 0); /* the dead one's entry */
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &more[1]), -ENOSPC);
    CHECK_EQ(kill(pids[1], SIGKILL), 0); /* a zombie counts as dead */
    int64_t t0 = now_ns();
    int rc;
    while ((rc = ferry_bcast_subscribe(b, 0, &more[1])) == -ENOSPC && now_ns() - t0 < 5 * SEC)
        usleep(1000);
    CHECK_EQ(rc, 0);
    CHECK(waitpid(pids[1], NULL, 0) == pids[1]);
    CHECK_EQ(ferry_bcast_subscribers(b), 3);
    CHECK_EQ(ferry_bcast_publish(b, 5, "x", 1, FERRY_NOW), 0);
    for (int k = 0; k < 2; k++) {
        int64_t type;
        char buf[4];
        CHECK_EQ(ferry_sub_recv(more[k], buf, sizeof buf, &type, FERRY_NOW), 1);
        CHECK_EQ(type, 5);
        ferry_sub_close(more[k]);
    }
    ferry_sub_close(mine);
    ferry_bcast_close(b);
    close(ready[0]);
    close(ready[1]);
}

/* The publisher (a child that took over publishing) is killed -9: a subscriber gets what
 * was published, then -EPIPE within a few slices, not its 10 s deadline. */
static void test_publisher_death(void)
{
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, &b), 0);
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int64_t i = 0; i < 10; i++) CHECK_EQ(ferry_bcast_publish(b, i, "p", 1, FERRY_NOW), 0);
        CHECK(write(ready[1], "p", 1) == 1);
        for (;;) pause();
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    char buf[8];
    int64_t type;
    for (int64_t i = 0; i < 10; i++) {
        CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW), 1);
        CHECK_EQ(type, i);
    }
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 30 * MS), -ETIMEDOUT); /* alive */
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC), -EPIPE);
    int64_t dt = now_ns() - t0;
    CHECK(dt < 500 * MS);
    CHECK(waitpid(pid, NULL, 0) == pid);
    ferry_sub_close(s);
    ferry_bcast_close(b);
    close(ready[0]);
    close(ready[1]);
}

int main(void)
{
    int fds = fd_count();
    int64_t t0 = now_ns();
    run(0);
    run(FERRY_SUB_DROP_OLDEST);
    test_reclaim();
    test_publisher_death();
    CHECK(now_ns() - t0 < 30 * SEC);
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_kill: ok\n");
    return 0;
}
