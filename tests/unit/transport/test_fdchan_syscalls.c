// SPDX-License-Identifier: MIT
/*
 * test_fdchan_syscalls.c — how many system calls a send and a receive cost on the fd
 * transports (fdchan.c under pipe, fifo, tcp and unix), counted, not timed (issue 15,
 * item 4): the test traces itself with ptrace and counts every system call its channel
 * end makes between two markers, so the figures are the same on a loaded machine.
 *
 * Usage: test_fdchan_syscalls pipe|fifo|tcp|unix [N]
 * The tracer (this process) forks the tracee (PTRACE_TRACEME), which makes one channel
 * end and forks an untraced peer for the other end. For 64 B and 64 KiB messages, N each:
 *   send      the tracee sends N messages, the peer takes them as they come;
 *   recv      the peer sends N messages, the tracee takes them (blocking receives);
 *   pingpong  N round trips: the tracee waits for the peer's message (a blocking receive
 *             that finds nothing there, mostly) and answers it.
 * Bounds (a constant of SLACK for what a phase's first call may do once: a buffer's
 * first allocation, a first probe):
 *   send           <= N * 9 / 8 + 2W + SLACK (these sends have no deadline: one write
 *                  per send, and nothing asked of the kernel first; W is the number of
 *                  waits, polls for room when the kernel took part of a frame: each costs
 *                  the poll and the write after it, as a blocking write sleeps inside
 *                  its one call. W depends on how fast the peer takes, e.g. on the
 *                  machine's load, so it is counted, not assumed)
 *   recv           <= 2N + SLACK (one read when the data is there, poll + read when not)
 *   pingpong       <= 3N + SLACK (a blocking receive and a send per round; at 64 KiB
 *                  N / 8 more: a frame longer than a pipe's buffer is taken in parts,
 *                  and a send may wait for the reader between them)
 * tcp: a 64 KiB message is longer than a loopback segment and may arrive in two pieces;
 * a receive that has to wait for each costs a poll and a read per piece, so the 64 KiB
 * recv and pingpong bounds there are 2N higher (pieces are the sender's timing: under
 * load, half the messages of a run came in two). What holds everywhere instead: reads
 * that find nothing (EAGAIN: the read, EAGAIN, poll, read of before) are at most
 * N / 8 + SLACK in every phase (a receive that last found nothing polls first).
 * The memory allocator's calls (mmap, munmap, brk, madvise, mprotect) are listed but not
 * counted: they are malloc's (ASan's allocator maps a 64 KiB block each time), not the
 * channel's.
 * Any failed bound prints the phase's table of calls and exits 1. Exit 77 (skipped) when
 * the system does not allow ptrace. A table of the counts is printed either way.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define SLACK     12
#define NPHASES   6
#define MAXNR     512
#define MARK_BASE 7000 /* the markers: close(-(MARK_BASE + 2 * phase + end)) */

static const char *phase_name[NPHASES] = {"send 64 B",   "recv 64 B",   "pingpong 64 B",
                                          "send 64 KiB", "recv 64 KiB", "pingpong 64 KiB"};

static void mark(int phase, int end)
{
    syscall(SYS_close, -(MARK_BASE + 2 * phase + end)); /* EBADF; the tracer sees it */
}

static ssize_t xrecv(ferry_chan *ch, void *buf, size_t cap)
{
    ssize_t n = ferry_recv(ch, buf, cap, FERRY_FOREVER);
    if (n < 0) {
        fprintf(stderr, "recv: %zd\n", n);
        _exit(1);
    }
    return n;
}

static void xsend(ferry_chan *ch, const void *buf, size_t len)
{
    int rc = ferry_send(ch, buf, len, FERRY_FOREVER);
    if (rc < 0) {
        fprintf(stderr, "send: %d\n", rc);
        _exit(1);
    }
}

/* The peer: the other side of every phase, in order. */
static void peer(ferry_chan *ch, int n, uint8_t *buf, size_t cap)
{
    for (int s = 0; s < 2; s++) {
        size_t len = s ? 65536 : 64;
        for (int i = 0; i < n; i++) CHECK_EQ(xrecv(ch, buf, cap), len); /* send */
        xsend(ch, buf, 1);
        for (int i = 0; i < n; i++) xsend(ch, buf, len); /* recv */
        CHECK_EQ(xrecv(ch, buf, cap), 1);
        for (int i = 0; i < n; i++) { /* pingpong */
            xsend(ch, buf, len);
            CHECK_EQ(xrecv(ch, buf, cap), len);
        }
        CHECK_EQ(xrecv(ch, buf, cap), 1);
    }
}

/* The traced side, between markers. */
static void traced(ferry_chan *ch, int n, uint8_t *buf, size_t cap)
{
    for (int s = 0; s < 2; s++) {
        size_t len = s ? 65536 : 64;
        int p = s * 3;
        mark(p, 0);
        for (int i = 0; i < n; i++) xsend(ch, buf, len);
        mark(p, 1);
        CHECK_EQ(xrecv(ch, buf, cap), 1);
        mark(p + 1, 0);
        for (int i = 0; i < n; i++) CHECK_EQ(xrecv(ch, buf, cap), len);
        mark(p + 1, 1);
        xsend(ch, buf, 1);
        mark(p + 2, 0);
        for (int i = 0; i < n; i++) {
            CHECK_EQ(xrecv(ch, buf, cap), len);
            xsend(ch, buf, len);
        }
        mark(p + 2, 1);
        xsend(ch, buf, 1);
    }
}

/* The tracee: a channel end here, the other in a peer it forks (untraced: no
 * PTRACE_O_TRACEFORK), the phases, then both ends closed and the peer reaped. */
static int tracee(const char *tr, int n)
{
    size_t cap = 65536;
    uint8_t *buf = calloc(1, cap);
    CHECK(buf);
    char url[256], dir[] = "/tmp/ferry-syscalls-XXXXXX";
    ferry_chan *ch = NULL, *other = NULL;
    ferry_listener *l = NULL;
    int has_dir = 0;
    if (strcmp(tr, "pipe") == 0) {
        CHECK_EQ(ferry_pipe_pair(NULL, &ch, &other), 0);
    } else {
        if (strcmp(tr, "unix") == 0) {
            snprintf(url, sizeof url, "unix://@ferry-syscalls-%d", (int)getpid());
        } else if (strcmp(tr, "tcp") == 0) {
            snprintf(url, sizeof url, "tcp://127.0.0.1:0");
        } else if (strcmp(tr, "fifo") == 0) {
            CHECK(mkdtemp(dir));
            has_dir = 1;
            snprintf(url, sizeof url, "fifo://%s/ch", dir);
        } else {
            fprintf(stderr, "unknown transport %s\n", tr);
            return 2;
        }
        CHECK_EQ(ferry_listen(url, NULL, &l), 0);
        CHECK(ferry_listener_url(l, url, sizeof url) > 0);
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (other) {
            ferry_chan_close(ch);
            ch = other;
        } else {
            CHECK_EQ(ferry_chan_open(url, NULL, &ch, 10LL * 1000000000), 0);
        }
        peer(ch, n, buf, cap);
        ferry_chan_close(ch);
        _exit(0);
    }
    if (other) {
        ferry_chan_close(other);
    } else {
        CHECK_EQ(ferry_accept(l, &ch, 10LL * 1000000000), 0);
    }
    traced(ch, n, buf, cap);
    wait_ok(pid);
    ferry_chan_close(ch);
    if (l) ferry_listener_close(l);
    if (has_dir) rmdir(dir);
    free(buf);
    return 0;
}

static const char *sysname(long nr)
{
    switch (nr) {
    case SYS_read:
        return "read";
    case SYS_write:
        return "write";
    case SYS_readv:
        return "readv";
    case SYS_writev:
        return "writev";
    case SYS_pwritev2:
        return "pwritev2";
    case SYS_sendmsg:
        return "sendmsg";
    case SYS_recvmsg:
        return "recvmsg";
    case SYS_sendto:
        return "sendto";
    case SYS_recvfrom:
        return "recvfrom";
#ifdef SYS_poll
    case SYS_poll:
        return "poll";
#endif
    case SYS_ppoll:
        return "ppoll";
    case SYS_ioctl:
        return "ioctl";
    case SYS_fcntl:
        return "fcntl";
    case SYS_getsockopt:
        return "getsockopt";
    case SYS_rt_sigprocmask:
        return "rt_sigprocmask";
    case SYS_rt_sigpending:
        return "rt_sigpending";
    case SYS_rt_sigtimedwait:
        return "rt_sigtimedwait";
    case SYS_clock_gettime:
        return "clock_gettime";
    case SYS_futex:
        return "futex";
    case SYS_mmap:
        return "mmap";
    case SYS_munmap:
        return "munmap";
    case SYS_brk:
        return "brk";
    case SYS_nanosleep:
        return "nanosleep";
    case SYS_clock_nanosleep:
        return "clock_nanosleep";
    default:
        return NULL;
    }
}

/* The allocator's own calls (see the top comment). */
static int is_alloc(long nr)
{
    return nr == SYS_mmap || nr == SYS_munmap || nr == SYS_brk || nr == SYS_madvise ||
           nr == SYS_mprotect;
}

/* The waits of a phase: its polls (see the send bound above). */
static long waits(const long *counts)
{
    long w = counts[SYS_ppoll];
#ifdef SYS_poll
    w += counts[SYS_poll];
#endif
    return w;
}

static void print_table(int phase, const long *counts, long total, int n)
{
    printf("  %-16s %5ld calls for %d ops (%.2f per op):", phase_name[phase], total, n,
           (double)total / n);
    for (long nr = 0; nr < MAXNR; nr++) {
        if (!counts[nr]) continue;
        const char *s = sysname(nr);
        if (s)
            printf(" %s %ld", s, counts[nr]);
        else
            printf(" #%ld %ld", nr, counts[nr]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s pipe|fifo|tcp|unix [N]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 200;
    CHECK(n > 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) _exit(77);
        raise(SIGSTOP);
        _exit(tracee(argv[1], n));
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("SKIP: ptrace is not allowed here\n");
        return 77;
    }
    CHECK(WIFSTOPPED(st));
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, NULL,
                 (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) == 0);
    static long counts[NPHASES][MAXNR];
    long total[NPHASES] = {0}, eagain[NPHASES] = {0}, last_nr = -1;
    int in = -1, sig = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) < 0) break;
        sig = 0;
        if (waitpid(pid, &st, 0) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) break;
        if (!WIFSTOPPED(st)) continue;
        if (WSTOPSIG(st) != (SIGTRAP | 0x80)) { /* a signal for the tracee: pass it on */
            sig = WSTOPSIG(st) == SIGSTOP || WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
            continue;
        }
        struct __ptrace_syscall_info si;
        if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof si, &si) <= 0) continue;
        if (si.op == PTRACE_SYSCALL_INFO_EXIT) { /* a read that found nothing? */
            if (in >= 0 && si.exit.is_error && si.exit.rval == -EAGAIN &&
                (last_nr == SYS_read || last_nr == SYS_readv || last_nr == SYS_recvmsg ||
                 last_nr == SYS_recvfrom))
                eagain[in]++;
            continue;
        }
        if (si.op != PTRACE_SYSCALL_INFO_ENTRY) continue;
        long nr = last_nr = (long)si.entry.nr;
        if (nr == SYS_close) {
            long fd = -(long)(int)si.entry.args[0];
            if (fd >= MARK_BASE && fd < MARK_BASE + 2 * NPHASES) {
                int p = (int)(fd - MARK_BASE) / 2, end = (int)(fd - MARK_BASE) % 2;
                in = end ? -1 : p;
                continue;
            }
        }
        if (in >= 0) {
            if (!is_alloc(nr)) total[in]++;
            if (nr >= 0 && nr < MAXNR) counts[in][nr]++;
        }
    }
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    printf("%s: system calls of one channel end, N = %d\n", argv[1], n);
    int bad = 0;
    for (int p = 0; p < NPHASES; p++) {
        long bound = p % 3 == 2 ? 3L * n : 2L * n;
        if (p % 3 == 0) bound = (long)n * 9 / 8 + 2 * waits(counts[p]);
        if (p == 5) bound += n / 8; /* a 64 KiB send may wait for room now and then */
        if (p >= 4 && strcmp(argv[1], "tcp") == 0) bound += 2L * n; /* pieces (see above) */
        bound += SLACK;
        print_table(p, counts[p], total[p], n);
        printf("    reads that found nothing: %ld\n", eagain[p]);
        if (total[p] > bound) {
            printf("    FAIL: %ld > %ld\n", total[p], bound);
            bad = 1;
        }
        if (eagain[p] > n / 8 + SLACK) {
            printf("    FAIL: %ld reads found nothing (> %d)\n", eagain[p], n / 8 + SLACK);
            bad = 1;
        }
    }
    fflush(stdout);
    return bad;
}
