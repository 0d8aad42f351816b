// SPDX-License-Identifier: MIT
/*
 * test_signal — ferry_signal_poll_fd and ferry_kill with a real ferryd:
 *   - ferry_signal_poll_fd: -EINVAL for an empty mask, SIGKILL, SIGSTOP, glibc's signals; the
 *     fd is CLOEXEC and non-blocking, readable exactly while a signal of the mask is
 *     pending; a real-time signal sent three times is read three times;
 *   - ferry_kill: the process that registered a name, or published one, gets the signal
 *     (sent by ferryd: its pid is the sender's); -ENOENT for a missing name or a dead
 *     owner's, -EINVAL for a bad signal; as root, another uid gets -ENOENT for a name it
 *     may not see (0600), -EACCES for one it may see but not connect to (0604), and may
 *     signal one it may connect to (0606).
 */
#include "testutil.h"

#include "brokerutil.h"
#include "../../integration/secutil.h"

#include <ferry/ferry.h>
#include <sys/signalfd.h>

#define BIT(sig) (1ull << ((sig)-1))

static test_broker B;

typedef struct report {
    int signo, code;
    pid_t pid;
    uid_t uid;
} report;

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void test_signal_fd(void)
{
    CHECK_EQ(ferry_signal_poll_fd(0), -EINVAL);
    CHECK_EQ(ferry_signal_poll_fd(BIT(SIGKILL)), -EINVAL);
    CHECK_EQ(ferry_signal_poll_fd(BIT(SIGSTOP) | BIT(SIGUSR1)), -EINVAL);
    CHECK_EQ(ferry_signal_poll_fd(BIT(32)), -EINVAL); /* glibc's */
    sigset_t cur;
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0);
    CHECK(!sigismember(&cur, SIGUSR1)); /* a refused mask blocks nothing */

    int fd = ferry_signal_poll_fd(BIT(SIGUSR1) | BIT(SIGRTMIN + 1));
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0);
    CHECK(sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGRTMIN + 1));
    struct signalfd_siginfo si;
    CHECK(!readable(fd, 0));
    CHECK(read(fd, &si, sizeof si) < 0 && errno == EAGAIN);
    CHECK(raise(SIGUSR1) == 0);
    CHECK(readable(fd, 0));
    CHECK(readable(fd, 0)); /* level-triggered */
    CHECK_EQ(read(fd, &si, sizeof si), sizeof si);
    CHECK_EQ(si.ssi_signo, SIGUSR1);
    CHECK_EQ(si.ssi_pid, getpid());
    CHECK(!readable(fd, 0));
    /* Real-time signals queue: three sent, three read, with their values. */
    for (int i = 0; i < 3; i++)
        CHECK(sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = 10 + i}) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(read(fd, &si, sizeof si), sizeof si);
        CHECK_EQ(si.ssi_signo, SIGRTMIN + 1);
        CHECK_EQ(si.ssi_int, 10 + i);
    }
    CHECK(!readable(fd, 0));
    close(fd);
    /* Leave the mask as the test found it. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN + 1);
    CHECK(pthread_sigmask(SIG_UNBLOCK, &s, NULL) == 0);
}

/* ------------------------------------------------------------------ ferry_kill */

/* The target: owns org.sig.srv (registered, 0606, anyone may signal), publishes org.sig.ev (0604)
 * and org.sig.priv (0600); reports every signal it reads on its signal fd until SIGUSR2. */
static void target(int ready, int out)
{
    int sfd = ferry_signal_poll_fd(BIT(SIGUSR1) | BIT(SIGUSR2) | BIT(SIGRTMIN));
    CHECK(sfd >= 0);
    ferry_policy pol;
    ferry_listener *l;
    ferry_event *e;
    ferry_pub *p1, *p2;
    ferry_policy_init(&pol);
    pol.mode = 0606;
    pol.flags = FERRY_SIGNAL_ANYONE; /* kill(2) would not let another uid signal root */
    CHECK_EQ(ferry_register("org.sig.srv", &pol, NULL, &l, 5 * SEC), 0);
    pol.flags = 0;
    CHECK_EQ(ferry_event_create(4, &e), 0);
    pol.mode = 0604;
    CHECK_EQ(ferry_publish("org.sig.ev", ferry_event_fd(e), FERRY_OBJ_EVENT, &pol, &p1, 5 * SEC),
             0);
    pol.mode = 0600;
    CHECK_EQ(ferry_publish("org.sig.priv", ferry_event_fd(e), FERRY_OBJ_EVENT, &pol, &p2, 5 * SEC),
             0);
    CHECK(write(ready, "r", 1) == 1);
    for (;;) {
        CHECK(readable(sfd, 10000));
        struct signalfd_siginfo si;
        CHECK_EQ(read(sfd, &si, sizeof si), sizeof si);
        report r = {(int)si.ssi_signo, si.ssi_code, (pid_t)si.ssi_pid, (uid_t)si.ssi_uid};
        CHECK(write(out, &r, sizeof r) == sizeof r);
        if (si.ssi_signo == SIGUSR2) break;
    }
    /* exits: the names go with it */
}

static report next_report(int in)
{
    report r;
    CHECK(readable(in, 5000));
    CHECK_EQ(read(in, &r, sizeof r), sizeof r);
    return r;
}

static int report_pipe;

static void as_other(void *arg)
{
    (void)arg;
    CHECK_EQ(ferry_kill("org.sig.priv", SIGUSR1, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_kill("org.sig.ev", SIGUSR1, 5 * SEC), -EACCES);
    CHECK_EQ(ferry_kill("org.sig.srv", SIGUSR1, 5 * SEC), 0);
}

static const ident OTHER = {60041, 60041, 0, {0}};

static void test_kill(void)
{
    int ready[2], rep[2];
    CHECK(pipe(ready) == 0 && pipe(rep) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        close(rep[0]);
        target(ready[1], rep[1]);
        _exit(0);
    }
    close(ready[1]);
    close(rep[1]);
    report_pipe = rep[0];
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);

    CHECK_EQ(ferry_kill("org.sig.none", SIGUSR1, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_kill("org.sig.srv", 0, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_kill("org.sig.srv", 65, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_kill("org.sig.srv", -1, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_kill("org..srv", SIGUSR1, 5 * SEC), -EINVAL);
    CHECK(!readable(rep[0], 50)); /* nothing was sent */

    /* A registered name's owner, then a published one's. */
    CHECK_EQ(ferry_kill("org.sig.srv", SIGUSR1, 5 * SEC), 0);
    report r = next_report(rep[0]);
    CHECK_EQ(r.signo, SIGUSR1);
    CHECK_EQ(r.pid, B.pid); /* ferryd sent it */
    CHECK_EQ(r.code, SI_USER);
    CHECK_EQ(ferry_kill("org.sig.ev", SIGUSR1, 5 * SEC), 0);
    r = next_report(rep[0]);
    CHECK_EQ(r.signo, SIGUSR1);
    CHECK_EQ(r.pid, B.pid);
    /* A real-time signal, three times: three arrive. */
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_kill("org.sig.priv", SIGRTMIN, 5 * SEC), 0);
    for (int i = 0; i < 3; i++) CHECK_EQ(next_report(rep[0]).signo, SIGRTMIN);

    if (geteuid() == 0) {
        run_as(&OTHER, as_other, NULL);
        r = next_report(rep[0]); /* only the one to org.sig.srv */
        CHECK_EQ(r.signo, SIGUSR1);
        CHECK_EQ(r.pid, B.pid);
        CHECK_EQ(r.uid, getuid()); /* ferryd's uid, not the asker's */
        CHECK(!readable(rep[0], 50));
    } else {
        printf("SKIP (not root): ferry_kill by another uid\n");
    }

    CHECK_EQ(ferry_kill("org.sig.srv", SIGUSR2, 5 * SEC), 0);
    CHECK_EQ(next_report(rep[0]).signo, SIGUSR2);
    wait_ok(pid);
    close(rep[0]);
    /* The owner is gone, and so are its names. */
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        if ((rc = ferry_kill("org.sig.srv", SIGUSR1, 5 * SEC)) == 0) sleep_ms(5);
    CHECK_EQ(rc, -ENOENT);
    CHECK_EQ(ferry_kill("org.sig.ev", SIGUSR1, 5 * SEC), -ENOENT);
}

int main(void)
{
    test_deadline(30);
    int fds = fd_count();
    test_signal_fd();
    CHECK_EQ(fd_count(), fds);
    broker_start(&B);
    test_kill();
    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("test_signal: ok\n");
    return 0;
}
