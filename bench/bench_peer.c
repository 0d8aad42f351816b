// SPDX-License-Identifier: MIT
/*
 * bench_peer.c — the second process of a measurement: fork it, pin it, share one control
 * page with it, and reap it within a bounded time.
 *
 * Rules: the peer runs its function and leaves with _exit() (never exit(): it must not
 * flush stdio buffers it inherited, nor run the parent's atexit handlers). It reports a
 * failure as exit status 1 plus a reason in the shared page. A peer that does not exit
 * within PEER_REAP_NS after the driver is done with it is killed (SIGKILL), and a
 * watchdog alarm() kills a peer stuck for much longer than its budget, so no measurement
 * can hang the run.
 *
 * bench_run_apart() runs the measuring side in a child of its own as well, for peer
 * libraries that must not be initialised in the driver: they start threads that a later
 * fork would not copy (ZeroMQ, NNG), or keep a per-process runtime that cannot be made
 * twice (iceoryx). The driver then only waits: the measuring child stays on the driver's
 * CPU and writes its figures into a shared page.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET, MAP_ANONYMOUS */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

bench_netns bench_netns_now = {-1, -1, NULL};

#define PEER_REAP_NS ((int64_t)10 * 1000 * 1000 * 1000)

int bench_fail(bench_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->err, sizeof res->err, fmt, ap);
    va_end(ap);
    return -1;
}

int bench_peer_fail(bench_shared *sh, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->err, sizeof sh->err, fmt, ap);
    va_end(ap);
    return -1;
}

void bench_child_signals(void)
{
    /* The driver catches these to stop between measurements; a child dies of them. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

static int pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static cpu_set_t allowed; /* before bench_pin_setup pinned us */
static int have_allowed;

void bench_unpin(void)
{
    if (have_allowed) sched_setaffinity(0, sizeof allowed, &allowed); /* best effort */
}

int bench_pin_setup(int *self_cpu)
{
    cpu_set_t set;
    int first = -1, second = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    allowed = set;
    have_allowed = 1;
    for (int c = 0; c < CPU_SETSIZE && second < 0; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        if (first < 0)
            first = c;
        else
            second = c;
    }
    if (second < 0 || pin_to(first) != 0) return -1;
    *self_cpu = first;
    return second;
}

int bench_peer_start(bench_peer *p, const bench_job *job, bench_peer_fn fn, void *ctx,
                     bench_result *res)
{
    p->pid = -1;
    p->sh = mmap(NULL, sizeof *p->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->sh == MAP_FAILED) {
        p->sh = NULL;
        return bench_fail(res, "mmap: %s", strerror(errno));
    }
    /* Before fork: fork itself orders these stores before anything the child does. */
    atomic_init(&p->sh->stop, 0);
    atomic_init(&p->sh->line, 0);

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        munmap(p->sh, sizeof *p->sh);
        p->sh = NULL;
        return bench_fail(res, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        const bench_budget *b = job->budget;
        bench_child_signals();
        alarm((unsigned)((b->warm_ns + b->run_ns) / 1000000000 + 60)); /* watchdog */
        if (job->peer_cpu >= 0 && pin_to(job->peer_cpu) != 0) {
            bench_peer_fail(p->sh, "peer: pin to cpu %d: %s", job->peer_cpu, strerror(errno));
            _exit(1);
        }
        if (bench_netns_now.b >= 0 && setns(bench_netns_now.b, CLONE_NEWNET) != 0) {
            bench_peer_fail(p->sh, "peer: setns: %s", strerror(errno)); /* the other host */
            _exit(1);
        }
        _exit(fn(ctx, p->sh) == 0 ? 0 : 1);
    }
    p->pid = pid;
    return 0;
}

static void describe_failure(const bench_peer *p, int status, bench_result *res)
{
    if (WIFEXITED(status) && p->sh->err[0])
        bench_fail(res, "%.240s", p->sh->err);
    else if (WIFSIGNALED(status))
        bench_fail(res, "peer killed by signal %d (%s)", WTERMSIG(status),
                   strsignal(WTERMSIG(status)));
    else
        bench_fail(res, "peer failed (status %d)", status);
}

int bench_peer_finish(bench_peer *p, bench_result *res)
{
    int status = 0, rc = 0;
    int64_t deadline = bench_now_ns() + PEER_REAP_NS;
    if (p->pid > 0) {
        for (;;) {
            pid_t r = waitpid(p->pid, &status, WNOHANG);
            if (r == p->pid) break;
            if (r < 0 && errno != EINTR) {
                rc = res->err[0] ? -1 : bench_fail(res, "waitpid: %s", strerror(errno));
                break;
            }
            if (bench_now_ns() > deadline) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &status, 0);
                rc = res->err[0] ? -1 : bench_fail(res, "peer did not finish: killed");
                break;
            }
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        /* The child has exited: waitpid orders everything it wrote before our reads. */
        if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            rc = -1;
            if (!res->err[0]) describe_failure(p, status, res); /* the driver's own first */
        }
    }
    if (p->sh) munmap(p->sh, sizeof *p->sh);
    p->sh = NULL;
    p->pid = -1;
    return rc;
}

int bench_run_apart(const bench_job *job, bench_peer_fn peer, bench_measure_fn measure, void *ctx,
                    bench_result *res)
{
    bench_peer p;
    int status = 0, rc = 0;
    if (bench_peer_start(&p, job, peer, ctx, res) != 0) return -1;
    bench_result *out =
        mmap(NULL, sizeof *out, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (out == MAP_FAILED) {
        bench_fail(res, "mmap: %s", strerror(errno));
        kill(p.pid, SIGKILL);
        bench_peer_finish(&p, res);
        return -1;
    }
    *out = *res; /* before fork: fork orders it before the child's reads */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        const bench_budget *b = job->budget;
        bench_child_signals();
        alarm((unsigned)((b->warm_ns + b->run_ns) / 1000000000 + 60)); /* watchdog */
        _exit(measure(ctx, p.sh, out) == 0 ? 0 : 1);
    }
    if (pid < 0) {
        rc = bench_fail(res, "fork: %s", strerror(errno));
    } else {
        /* Blocking: the child's watchdog bounds this wait. */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        /* The child has exited: waitpid orders everything it wrote before our reads. */
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            *res = *out;
        else if (WIFEXITED(status) && out->err[0])
            rc = bench_fail(res, "%.250s", out->err);
        else if (WIFSIGNALED(status))
            rc = bench_fail(res, "measuring process killed by signal %d (%s)", WTERMSIG(status),
                            strsignal(WTERMSIG(status)));
        else
            rc = bench_fail(res, "measuring process failed (status %d)", status);
    }
    if (rc != 0) kill(p.pid, SIGKILL); /* it may be waiting for a message forever */
    munmap(out, sizeof *out);
    if (bench_peer_finish(&p, res) != 0) rc = -1;
    return rc;
}
