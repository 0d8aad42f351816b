// SPDX-License-Identifier: MIT
/*
 * test_shm_nomembarrier.c — the fallback when membarrier() is not available (old kernel,
 * or a seccomp policy that forbids it, as some container runtimes have): a seccomp
 * filter makes membarrier fail with ENOSYS in this process and its children, then two
 * processes ping-pong 2,000 messages with FERRY_NO_SPIN (every wait sleeps, so every
 * wait takes the fallback path) and capacity 1 (so the sender sleeps for room too). All
 * messages arrive in order; the waiters raised the "fence yourself" flags in both
 * directions' control blocks; and the process registered as unavailable.
 */
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/wait.h"
#include "transport/shm_chan.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define ROUNDS 2000

static void forbid_membarrier(void)
{
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fp = {.len = sizeof prog / sizeof prog[0], .filter = prog};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) == 0);
    CHECK(syscall(__NR_membarrier, 0, 0, 0) < 0 && errno == ENOSYS);
}

int main(void)
{
    forbid_membarrier();
    int before = fd_count();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_NO_SPIN;
    o.capacity = 1;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    CHECK_EQ(atomic_load(&ferry__mb_state), -1);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        for (uint64_t i = 0; i < ROUNDS; i++) {
            uint64_t v;
            CHECK_EQ(ferry_recv(b, &v, sizeof v, 5000000000LL), (long long)sizeof v);
            CHECK_EQ(v, i);
            CHECK_EQ(ferry_send(b, &v, sizeof v, 5000000000LL), 0);
        }
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint64_t v = i;
        CHECK_EQ(ferry_send(a, &v, sizeof v, 5000000000LL), 0);
        CHECK_EQ(ferry_recv(a, &v, sizeof v, 5000000000LL), (long long)sizeof v);
        CHECK_EQ(v, i);
    }
    /* Both sides slept waiting for data, so both raised the flag that makes their
     * publisher fence. */
    shm_chan *c = (shm_chan *)a;
    CHECK_EQ(atomic_load(&c->rx.ctl->data_fence), 1);
    CHECK_EQ(atomic_load(&c->tx.ctl->data_fence), 1);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    CHECK(st.recv_waits > 0);
    ferry_chan_close(a);
    wait_ok(pid);
    CHECK_EQ(fd_count(), before);
    printf("%d round trips without membarrier: ok (%llu sleeps)\n", ROUNDS,
           (unsigned long long)st.recv_waits);
    return 0;
}
