// SPDX-License-Identifier: MIT
/*
 * test_kill_deputy — ferry_kill must not make ferryd a confused deputy (issue 11, finding
 * 1): ferryd sends signals with its own privilege (root here), so without an explicit
 * signal right it refuses whatever the caller's own kill(2) would refuse.
 *   - A root service registered 0666 (anyone may connect): uid 60051 asking for SIGKILL
 *     gets -EPERM, exactly as its own kill(2) does, and the service lives on;
 *   - a name it may see but not connect to (0644): -EACCES; one it may not see: -ENOENT;
 *   - policy grants work: FERRY_SIGNAL_ANYONE, FERRY_SIGNAL_GROUP (a member of the
 *     policy's group may, a non-member gets -EPERM), FERRY_SIGNAL_ALLOWED (the allow list
 *     may, even on a 0600 name), and the system policy file's `signal` rule;
 *   - the same uid works with the default policy (kill(2) would allow it), and so does
 *     root;
 *   - a process that connected to ferryd as root and dropped to uid 60051 afterwards gets
 *     -EPERM: its credentials now count, not only the stamp at connect.
 * The target reports every signal it receives; each refusal is checked to have sent
 * nothing. Needs root; otherwise prints SKIP.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <sys/signalfd.h>

#define BIT(sig) (1ull << ((sig)-1))

static const ident ATTACKER = {60051, 60051, 0, {0}};
static const ident SVC = {60052, 60052, 0, {0}};
static const ident MEMBER = {60054, 60054, 1, {60060}};
static const ident STRANGER = {60053, 60053, 0, {0}};

static test_broker B;

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* ------------------------------------------------------------------ the targets */

typedef struct target_args {
    int ready, out; /* pipes: "r" once registered; each signal number received (int) */
    int as_svc;     /* 1: the uid-60052 service, 0: the root one */
} target_args;

static void reg(const char *nm, unsigned mode, uint32_t flags, gid_t gid, uid_t allow)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = mode;
    pol.flags = flags;
    pol.gid = gid;
    if (allow) {
        pol.n_uids = 1;
        pol.allow_uids[0] = allow;
    }
    ferry_listener *l; /* kept until the process exits */
    CHECK_EQ(ferry_register(nm, &pol, NULL, &l, 5 * SEC), 0);
}

static void target_main(void *arg)
{
    target_args *a = arg;
    int sfd = ferry_signal_poll_fd(BIT(SIGUSR1) | BIT(SIGUSR2) | BIT(SIGTERM));
    CHECK(sfd >= 0);
    if (a->as_svc) {
        reg("org.kd.svc", 0600, 0, (gid_t)-1, 0);
        reg("org.kd.svc.open", 0606, 0, (gid_t)-1, 0);
    } else {
        reg("org.kd.root", 0666, 0, (gid_t)-1, 0);
        reg("org.kd.see", 0644, 0, (gid_t)-1, 0);
        reg("org.kd.hidden", 0600, 0, (gid_t)-1, 0);
        reg("org.kd.anyone", 0606, FERRY_SIGNAL_ANYONE, (gid_t)-1, 0);
        reg("org.kd.group", 0666, FERRY_SIGNAL_GROUP, 60060, 0);
        reg("org.kd.allowed", 0600, FERRY_SIGNAL_ALLOWED, (gid_t)-1, ATTACKER.uid);
        reg("org.kd.sys.x", 0606, 0, (gid_t)-1, 0);
    }
    CHECK(write(a->ready, "r", 1) == 1);
    for (;;) {
        CHECK(readable(sfd, 30000));
        struct signalfd_siginfo si;
        CHECK_EQ(read(sfd, &si, sizeof si), sizeof si);
        int sig = (int)si.ssi_signo;
        CHECK(write(a->out, &sig, sizeof sig) == sizeof sig);
        if (sig == SIGTERM) break;
    }
}

typedef struct target {
    pid_t pid;
    int in; /* the signals it reports */
} target;

static target start_target(const ident *id, int as_svc)
{
    int ready[2], rep[2];
    CHECK(pipe(ready) == 0 && pipe(rep) == 0);
    target_args a = {.ready = ready[1], .out = rep[1], .as_svc = as_svc};
    target t = {.pid = spawn_as(id, target_main, &a), .in = rep[0]};
    close(ready[1]);
    close(rep[1]);
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    return t;
}

/* The next signal the target reports (within 5 s). */
static int next_sig(const target *t)
{
    int sig;
    CHECK(readable(t->in, 5000));
    CHECK_EQ(read(t->in, &sig, sizeof sig), sizeof sig);
    return sig;
}

/* Nothing reached the target (and it still lives). */
static void nothing_sent(const target *t)
{
    CHECK(!readable(t->in, 50));
    CHECK_EQ(waitpid(t->pid, NULL, WNOHANG), 0);
}

static void stop_target(target *t)
{
    CHECK_EQ(kill(t->pid, SIGTERM), 0);
    CHECK_EQ(next_sig(t), SIGTERM);
    wait_ok(t->pid);
    close(t->in);
}

/* ------------------------------------------------------------------ the callers */

static pid_t root_pid, svc_pid;

/* uid 60051: what ferryd lets it do must not exceed what kill(2) lets it do. */
static void as_attacker(void *arg)
{
    (void)arg;
    CHECK(kill(root_pid, SIGKILL) < 0 && errno == EPERM); /* its own kill(2) */
    CHECK_EQ(ferry_kill("org.kd.root", SIGKILL, 5 * SEC), -EPERM);
    CHECK_EQ(ferry_kill("org.kd.root", SIGUSR1, 5 * SEC), -EPERM);
    CHECK_EQ(ferry_kill("org.kd.see", SIGUSR1, 5 * SEC), -EACCES);
    CHECK_EQ(ferry_kill("org.kd.hidden", SIGUSR1, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_kill("org.kd.group", SIGUSR1, 5 * SEC), -EPERM); /* not a member */
    CHECK_EQ(ferry_kill("org.kd.svc.open", SIGUSR1, 5 * SEC), -EPERM);
    CHECK_EQ(ferry_kill("org.kd.svc", SIGUSR1, 5 * SEC), -ENOENT);
}

/* One ferry_kill as another uid, with the result it must have. (Standard signals do
 * not queue: the test waits for each one that must arrive before sending the next.) */
typedef struct kill_req {
    const char *name;
    int sig, expect;
} kill_req;

static void kill_one(void *arg)
{
    const kill_req *k = arg;
    CHECK_EQ(ferry_kill(k->name, k->sig, 5 * SEC), k->expect);
}

static void kill_as(const ident *id, const char *name, int sig, int expect)
{
    kill_req k = {name, sig, expect};
    run_as(id, kill_one, &k);
}

static void as_member(void *arg)
{
    (void)arg;
    CHECK_EQ(ferry_kill("org.kd.allowed", SIGUSR1, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_kill("org.kd.sys.x", SIGUSR1, 5 * SEC), -EPERM); /* rule names 60051 */
}

static void as_svc_peer(void *arg)
{
    (void)arg;
    CHECK(kill(svc_pid, 0) == 0); /* kill(2) allows it ... */
}

static void as_stranger(void *arg)
{
    (void)arg;
    CHECK_EQ(ferry_kill("org.kd.svc", SIGUSR1, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_kill("org.kd.svc.open", SIGUSR1, 5 * SEC), -EPERM);
}

/* Connected as root, then dropped to 60051 on the same connection. */
static void connected_then_dropped(void)
{
    fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int s = raw_dial(&B);
        become(&ATTACKER, parent);
        uint8_t req[300], buf[FERRY__BMSG_MAX];
        ferry__bw w = {.p = req, .cap = sizeof req};
        ferry__bw_str(&w, "org.kd.root");
        ferry__bw_u32(&w, SIGUSR1);
        ferry__br r;
        CHECK_EQ(raw_call(s, FERRY__OP_KILL, &w, buf, &r, NULL), -EPERM);
        close(s);
        _exit(0);
    }
    wait_ok(pid);
}

int main(void)
{
    require_root();
    test_deadline(60);
    int fds = fd_count();
    broker_init(&B);
    write_file(B.policy, "signal org.kd.sys.* 60051\n");
    broker_run(&B, NULL);

    target root = start_target(&ROOT, 0);
    target svc = start_target(&SVC, 1);
    root_pid = root.pid;
    svc_pid = svc.pid;

    run_as(&ATTACKER, as_attacker, NULL);
    nothing_sent(&root);
    nothing_sent(&svc);

    /* Granted: by the name's policy, by the system policy file. */
    kill_as(&ATTACKER, "org.kd.anyone", SIGUSR1, 0);
    CHECK_EQ(next_sig(&root), SIGUSR1);
    kill_as(&ATTACKER, "org.kd.allowed", SIGUSR2, 0);
    CHECK_EQ(next_sig(&root), SIGUSR2);
    kill_as(&ATTACKER, "org.kd.sys.x", SIGUSR1, 0);
    CHECK_EQ(next_sig(&root), SIGUSR1);
    nothing_sent(&root);

    kill_as(&MEMBER, "org.kd.group", SIGUSR2, 0);
    CHECK_EQ(next_sig(&root), SIGUSR2);
    run_as(&MEMBER, as_member, NULL);
    nothing_sent(&root);

    /* The same uid, with the default policy (0600, no grant): kill(2) would, so ferryd
     * does. */
    run_as(&SVC, as_svc_peer, NULL);
    kill_as(&SVC, "org.kd.svc", SIGUSR1, 0);
    CHECK_EQ(next_sig(&svc), SIGUSR1);
    run_as(&STRANGER, as_stranger, NULL);
    nothing_sent(&svc);

    connected_then_dropped();
    nothing_sent(&root);

    /* root may signal anyone, with no grant. */
    CHECK_EQ(ferry_kill("org.kd.svc", SIGUSR2, 5 * SEC), 0);
    CHECK_EQ(next_sig(&svc), SIGUSR2);
    CHECK_EQ(ferry_kill("org.kd.root", SIGUSR1, 5 * SEC), 0);
    CHECK_EQ(next_sig(&root), SIGUSR1);

    stop_target(&root);
    stop_target(&svc);
    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("test_kill_deputy: ok\n");
    return 0;
}
