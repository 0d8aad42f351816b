// SPDX-License-Identifier: MIT
/*
 * test_ferryd_unpriv — ferryd with the credentials its systemd unit gives it
 * (dist/ferryd.service): an unprivileged uid of its own (DynamicUser=), CAP_KILL as its
 * only capability (ambient, and the bounding set), no_new_privs, and the listening
 * socket made by root and passed as fd 3 (socket activation). Root only (it changes
 * uids). With the ferryd this build made (a copy in a 0755 directory of its own: the
 * build may sit where the other uid cannot go):
 *  - it runs as that uid with CapEff = CAP_KILL alone, reads a 0644 policy file owned by
 *    root (uid 60313 may not own org.unpriv.*: -EACCES), and clients trust it (the
 *    listening socket is root's): a server (uid 60312) and a client (60313) meet.
 *  - ferry_kill of a name owned by uid 60312: root's call is delivered (ferryd cannot
 *    look at root's /proc/PID/ns/user, so it knows root's CAP_KILL counts from the
 *    namespace's maps); the owner's own uid's is delivered; another uid's is -EPERM;
 *    root in a user namespace of its own (uid_map "0 0 1": CAP_KILL there, not in
 *    ferryd's) is -EPERM, as kill(2) would say; root without CAP_KILL in its effective
 *    set is -EPERM. Only the delivered ones arrive, each sent by ferryd (ssi_pid).
 *  - SIGTERM: exit 0.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "daemonutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define FERRYD_UID 60311
#define OWNER_UID  60312
#define OTHER_UID  60313

static const ident OWNER = {OWNER_UID, OWNER_UID, 0, {0}};
static const ident OTHER = {OTHER_UID, OTHER_UID, 0, {0}};
static test_broker b;
/* A copy of this build's ferryd that uid FERRYD_UID may execute: the build tree may sit in
 * a 0700 directory (a CI clone), which another uid cannot enter. */
static char ferryd_dir[] = "/tmp/ferry-unpriv-XXXXXX";
static char ferryd_copy[sizeof ferryd_dir + 8];

/* Set this process's capability sets (effective, permitted, inheritable) to caps. */
static int set_caps(uint64_t caps)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)caps, (uint32_t)caps, (uint32_t)caps},
        {(uint32_t)(caps >> 32), (uint32_t)(caps >> 32), (uint32_t)(caps >> 32)}};
    return (int)syscall(SYS_capset, &h, d);
}

/* The child that becomes ferryd as its unit runs it, serving lfd. */
static pid_t start_ferryd(int lfd)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid != 0) return pid;
    for (int c = 0; c <= 63; c++) /* the bounding set: CAP_KILL alone */
        if (c != CAP_KILL && prctl(PR_CAPBSET_DROP, c) < 0 && errno != EINVAL) _exit(120);
    if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 ||
        setresgid(FERRYD_UID, FERRYD_UID, FERRYD_UID) < 0 ||
        setresuid(FERRYD_UID, FERRYD_UID, FERRYD_UID) < 0)
        _exit(121);
    if (set_caps(1ull << CAP_KILL) < 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) < 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(122);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    activation_env(lfd, 123);
    execl(ferryd_copy, "ferryd", "--foreground", "--policy", b.policy, (char *)NULL);
    _exit(127);
}

/* "Name:\tvalue" of /proc/pid/status, as text. */
static void status_field(pid_t pid, const char *field, char *out, size_t cap)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    out[0] = '\0';
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            snprintf(out, cap, "%s", line + n + 1);
            break;
        }
    fclose(f);
}

/* The signal target: owns org.unpriv.sig (0666) as OWNER, reports each SIGUSR1 it gets
 * (its sender's pid) on out. */
static int target_out;
static void target_main(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
    int sfd = signalfd(-1, &s, SFD_CLOEXEC);
    CHECK(sfd >= 0);
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666;
    ferry_listener *l;
    int rc = ferry_register("org.unpriv.sig", &pol, NULL, &l, 5 * SEC);
    CHECK(write(target_out, &rc, sizeof rc) == sizeof rc);
    CHECK_EQ(rc, 0);
    for (;;) {
        struct signalfd_siginfo si;
        CHECK(read(sfd, &si, sizeof si) == sizeof si);
        int from = (int)si.ssi_pid;
        CHECK(write(target_out, &from, sizeof from) == sizeof from);
    }
}

/* The next report from the target within ms: the sender's pid, or -1. */
static int next_signal(int in, int ms)
{
    struct pollfd p = {.fd = in, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return -1;
    int from;
    CHECK(read(in, &from, sizeof from) == sizeof from);
    return from;
}

static void kill_expect(void *arg)
{
    CHECK_EQ(ferry_kill("org.unpriv.sig", SIGUSR1, 5 * SEC), (int)(intptr_t)arg);
}

static void register_refused(void *arg)
{
    (void)arg;
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.unpriv.other", NULL, NULL, &l, 5 * SEC), -EACCES);
}

/* root in a user namespace of its own, uid and gid 0 mapped to 0 alone. */
static void write_map(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void root_in_userns(void *arg)
{
    (void)arg;
    CHECK(unshare(CLONE_NEWUSER) == 0);
    write_map("/proc/self/setgroups", "deny");
    write_map("/proc/self/uid_map", "0 0 1\n");
    write_map("/proc/self/gid_map", "0 0 1\n");
    kill_expect((void *)(intptr_t)-EPERM);
}

static void root_without_cap_kill(void *arg)
{
    (void)arg;
    CHECK(set_caps(~(1ull << CAP_KILL) & ((1ull << 41) - 1)) == 0 || set_caps(0) == 0);
    kill_expect((void *)(intptr_t)-EPERM);
}

int main(void)
{
    require_root();
    test_deadline(90);
    signal(SIGPIPE, SIG_IGN);
    broker_init(&b); /* FERRY_BROKER = b.sock, FERRY_NO_AUTOSPAWN=1 */
    copy_program(FERRYD_PATH, ferryd_dir, "ferryd", ferryd_copy, sizeof ferryd_copy);
    write_file(b.policy, "own org.unpriv.* "
                         "60312\n");
    CHECK(chmod(b.policy, 0644) == 0);

    /* systemd's part: the listening socket, root's, 0666. */
    int lfd = activation_socket(b.sock, 0666, 64);
    b.pid = start_ferryd(lfd);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.unpriv.none", &in, 10 * SEC), -ENOENT); /* it serves */
    char v[128];
    status_field(b.pid, "Uid", v, sizeof v);
    CHECK(strstr(v, "60311\t60311\t60311\t60311") != NULL);
    status_field(b.pid, "CapEff", v, sizeof v);
    CHECK(strstr(v, "0000000000000020") != NULL);
    status_field(b.pid, "CapBnd", v, sizeof v);
    CHECK(strstr(v, "0000000000000020") != NULL);
    status_field(b.pid, "NoNewPrivs", v, sizeof v);
    CHECK(strstr(v, "1") != NULL);

    /* It read the policy; a server and a client meet through it. */
    run_as(&OTHER, register_refused, NULL);
    ferry_policy open;
    ferry_policy_init(&open);
    open.mode = 0666;
    pid_t echo = start_server(&OWNER, "org.unpriv.echo", &open, SRV_SERVE);
    int client_ok = -1;
    pid_t cl = fork();
    CHECK(cl >= 0);
    if (cl == 0) {
        become(&OTHER, getppid());
        _exit(connect_check("org.unpriv.echo", FERRY_KIND_SHM, OWNER_UID, echo) == 0 ? 0 : 1);
    }
    int st;
    CHECK(waitpid(cl, &st, 0) == cl);
    client_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK(client_ok);

    /* ferry_kill through it. */
    int rep[2];
    CHECK(pipe2(rep, O_CLOEXEC) == 0);
    target_out = rep[1];
    pid_t target = spawn_as(&OWNER, target_main, NULL);
    close(rep[1]);
    int rc;
    CHECK(read(rep[0], &rc, sizeof rc) == sizeof rc);
    CHECK_EQ(rc, 0);

    kill_expect((void *)(intptr_t)0); /* root */
    CHECK_EQ(next_signal(rep[0], 5000), b.pid);
    run_as(&OWNER, kill_expect, (void *)(intptr_t)0);
    CHECK_EQ(next_signal(rep[0], 5000), b.pid);
    run_as(&OTHER, kill_expect, (void *)(intptr_t)-EPERM);
    run_as(&ROOT, root_in_userns, NULL);
    run_as(&ROOT, root_without_cap_kill, NULL);
    CHECK_EQ(next_signal(rep[0], 200), -1); /* none of the refused ones arrived */

    kill_wait(target);
    kill_wait(echo);
    close(rep[0]);
    CHECK_EQ(kill(b.pid, SIGTERM), 0);
    wait_ok(b.pid);
    b.pid = -1;
    close(lfd);
    CHECK(unlink(b.sock) == 0);
    broker_stop(&b); /* removes the directory */
    CHECK(unlink(ferryd_copy) == 0 && rmdir(ferryd_dir) == 0);
    printf("test_ferryd_unpriv: ok\n");
    return 0;
}
