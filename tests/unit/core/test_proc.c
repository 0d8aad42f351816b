// SPDX-License-Identifier: MIT
/*
 * test_proc.c — process identity and death (core/proc.h), on real processes: this
 * process's id (its pid in the low 22 bits, its start time above) is alive; a fork child
 * gets its own id (re-read after fork) that the parent computes the same way, alive
 * while it runs — even with ')' and spaces in its command name — and dead once killed,
 * both as a zombie and once reaped; an id whose start time does not match the live
 * process with that pid (a recycled pid) is dead; pid 0 and a pid nobody has are dead;
 * ferry__proc_stat of a missing pid is exactly -ENOENT.
 */
#define _GNU_SOURCE
#include "core/proc.h"
#include "testutil.h"

#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>

#define PID_BITS 22
#define PID_MASK ((UINT64_C(1) << PID_BITS) - 1)

static uint64_t id_of(pid_t pid)
{
    char st;
    uint64_t start;
    CHECK_EQ(ferry__proc_stat(pid, &st, &start), 0);
    return (start & ((UINT64_C(1) << 41) - 1)) << PID_BITS | (uint64_t)pid;
}

/* A pid with no process (checked with kill at the time of the call). */
static pid_t free_pid(void)
{
    for (pid_t p = 32000; p > 2; p--)
        if (kill(p, 0) < 0 && errno == ESRCH) return p;
    CHECK(!"no free pid");
    return 0;
}

static void test_self(void)
{
    uint64_t id = ferry__proc_self();
    CHECK(id != 0);
    CHECK_EQ(id & PID_MASK, getpid());
    CHECK(id == ferry__proc_self()); /* read once, the same after */
    CHECK(id == id_of(getpid()));
    CHECK_EQ(ferry__proc_dead(id), 0);
    char st = 0;
    uint64_t start = 0;
    CHECK_EQ(ferry__proc_stat(0, &st, &start), 0);
    CHECK_EQ(st, 'R');
    CHECK(start > 0);
    CHECK(start == id >> PID_BITS); /* pid 0: this process */
}

static void test_child(void)
{
    int up[2], go[2];
    CHECK_EQ(pipe(up), 0);
    CHECK_EQ(pipe(go), 0);
    uint64_t parent_id = ferry__proc_self();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* A name that would fool a parser splitting on the first ')' or on spaces. */
        prctl(PR_SET_NAME, "x) Z 1 (y", 0, 0, 0);
        uint64_t mine = ferry__proc_self();
        CHECK(mine != parent_id);
        CHECK_EQ(mine & PID_MASK, getpid());
        CHECK_EQ(write(up[1], &mine, sizeof mine), (ssize_t)sizeof mine);
        char c;
        CHECK_EQ(read(go[0], &c, 1), 1);
        _exit(0);
    }
    close(up[1]);
    close(go[0]);
    uint64_t child_id = 0;
    CHECK_EQ(read(up[0], &child_id, sizeof child_id), (ssize_t)sizeof child_id);
    CHECK(child_id == id_of(pid)); /* the parser got past the hostile name */
    char st;
    uint64_t start;
    CHECK_EQ(ferry__proc_stat(pid, &st, &start), 0);
    CHECK(st == 'S' || st == 'R');
    CHECK_EQ(ferry__proc_dead(child_id), 0);
    CHECK_EQ(ferry__proc_dead((uint64_t)pid), 0); /* no start time known: the pid alone */

    /* The same pid with another start time: a recycled pid, another process. */
    uint64_t start_bits = child_id >> PID_BITS;
    CHECK_EQ(ferry__proc_dead((start_bits + 1) << PID_BITS | (uint64_t)pid), 1);
    CHECK_EQ(ferry__proc_dead((start_bits - 1) << PID_BITS | (uint64_t)pid), 1);

    /* Killed, not yet reaped: a zombie is dead. */
    CHECK_EQ(kill(pid, SIGKILL), 0);
    siginfo_t si;
    CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    CHECK_EQ(ferry__proc_dead(child_id), 1);
    CHECK_EQ(ferry__proc_dead((uint64_t)pid), 1);
    /* Reaped: no such pid. */
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(ferry__proc_dead(child_id), 1);
    CHECK_EQ(ferry__proc_stat(pid, &st, &start), -ENOENT);
    close(up[0]);
    close(go[1]);
}

static void test_child_exits(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(3);
    uint64_t id = (uint64_t)pid; /* start time unknown */
    siginfo_t si;
    CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    CHECK_EQ(ferry__proc_dead(id), 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(WEXITSTATUS(status), 3);
    CHECK_EQ(ferry__proc_dead(id), 1);
}

static void test_garbage(void)
{
    uint64_t self = ferry__proc_self();
    CHECK_EQ(ferry__proc_dead(0), 1);
    CHECK_EQ(ferry__proc_dead(self & ~PID_MASK), 1); /* a start time with pid 0 */
    CHECK_EQ(ferry__proc_dead(UINT64_MAX), 1);       /* pid bits 4194303 > pid_max here */
    pid_t p = free_pid();
    CHECK_EQ(ferry__proc_dead((uint64_t)p), 1);
    CHECK_EQ(ferry__proc_dead((self & ~PID_MASK) | (uint64_t)p), 1);
    char st;
    uint64_t start;
    CHECK_EQ(ferry__proc_stat(p, &st, &start), -ENOENT);
    /* pid 1 lives (init, or the container's first process), whatever its start time. */
    CHECK_EQ(ferry__proc_dead(1), 0);
    CHECK_EQ(ferry__proc_dead(id_of(1)), 0);
}

int main(void)
{
    int fds = fd_count();
    test_self();
    test_child();
    test_child_exits();
    test_garbage();
    CHECK_EQ(fd_count(), fds);
    printf("ok: proc\n");
    return 0;
}
