// SPDX-License-Identifier: MIT
/*
 * test_mailbox_exclusive_kill — an exclusive mailbox whose holder is killed (SIGKILL) at
 * a random point while it receives: the receiver waiting in ferry_mailbox_attach takes
 * over within 200 ms of the kill, never while the old holder lives (two holders at once
 * would show in `holder`), and with FERRY_MAILBOX_AT_LEAST_ONCE every message is still
 * received (what the dead holder had taken comes back). 40 rounds.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define ROUNDS 40
#define MSGS   64
#define SEC    ((int64_t)1000000000)

typedef struct shared {
    _Atomic int holder; /* pid of the live holder, 0 when none */
    _Atomic int killed[ROUNDS];
    _Atomic int64_t took_over_at;
    _Atomic uint32_t count[ROUNDS * MSGS];
} shared;

static int was_killed(shared *sh, int pid)
{
    for (int i = 0; i < ROUNDS; i++)
        if (atomic_load(&sh->killed[i]) == pid) return 1;
    return 0;
}

/* Attach, check nobody else lives holding it, then take messages (peek, count, release)
 * until told to stop by -EAGAIN (second), or forever (first: killed). */
static void receiver(ferry_mailbox *mb, shared *sh, int second)
{
    CHECK_EQ(ferry_mailbox_attach(mb, 10 * SEC), 0);
    int prev = atomic_exchange(&sh->holder, (int)getpid());
    CHECK(prev == 0 || was_killed(sh, prev));
    if (second) atomic_store(&sh->took_over_at, ferry__now_ns());
    for (;;) {
        const void *d;
        size_t len;
        int rc = ferry_mailbox_peek(mb, 0, &d, &len, NULL, second ? 50 * 1000 * 1000 : 10 * SEC);
        if (rc == -ETIMEDOUT && second) break;
        CHECK_EQ(rc, 0);
        uint32_t id;
        memcpy(&id, d, sizeof id);
        CHECK(id < ROUNDS * MSGS);
        atomic_fetch_add(&sh->count[id], 1);
        if (!second) { /* slow down, holding the message: the kill comes while it works */
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
        CHECK_EQ(ferry_mailbox_release(mb), 0);
    }
    atomic_store(&sh->holder, 0);
    CHECK_EQ(ferry_mailbox_detach(mb), 0);
    _exit(0);
}

int main(void)
{
    int fds = fd_count();
    srand((unsigned)time(NULL));
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = 128;
    o.max_msg = 16;
    o.flags = FERRY_MAILBOX_EXCLUSIVE | FERRY_MAILBOX_AT_LEAST_ONCE;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    int64_t worst = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (uint32_t i = 0; i < MSGS; i++) {
            uint32_t id = (uint32_t)r * MSGS + i;
            CHECK_EQ(ferry_mailbox_send(mb, 0, &id, sizeof id, FERRY_NOW), 0);
        }
        pid_t a = fork();
        CHECK(a >= 0);
        if (a == 0) receiver(mb, sh, 0);
        while (atomic_load(&sh->holder) != a) { /* a holds it */
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
        pid_t b = fork();
        CHECK(b >= 0);
        if (b == 0) receiver(mb, sh, 1);
        struct timespec ts = {0, (rand() % 3000) * 1000L};
        nanosleep(&ts, NULL);
        atomic_store(&sh->killed[r], a); /* before the kill: b may see a's pid after it */
        atomic_store(&sh->took_over_at, 0);
        int64_t t_kill = ferry__now_ns();
        kill(a, SIGKILL);
        int st;
        CHECK_EQ(waitpid(a, &st, 0), a);
        CHECK(WIFSIGNALED(st));
        wait_ok(b);
        int64_t lat = atomic_load(&sh->took_over_at) - t_kill;
        CHECK(lat > 0 && lat < 200 * 1000 * 1000);
        if (lat > worst) worst = lat;
    }
    /* every message was received (at least once: a's taken one came back) */
    for (uint32_t i = 0; i < ROUNDS * MSGS; i++) CHECK(atomic_load(&sh->count[i]) >= 1);
    ferry_mailbox_counters s;
    ferry_mailbox_counters_init(&s);
    CHECK_EQ(ferry_mailbox_stats(mb, &s), 0);
    CHECK_EQ(s.queued, 0);
    CHECK_EQ(s.lost, 0);
    CHECK(s.returned >= ROUNDS / 2); /* most kills hit a holder holding a message */
    printf("worst takeover %.1f ms, returned %llu\n", worst / 1e6, (unsigned long long)s.returned);
    munmap(sh, sizeof *sh);
    ferry_mailbox_close(mb);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
