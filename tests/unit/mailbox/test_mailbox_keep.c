// SPDX-License-Identifier: MIT
/*
 * test_mailbox_keep — FERRY_POLICY_KEEP through a real ferryd (docs/broker.md, "Kept
 * names"), with mailboxes (what ferry-bridge keeps its JetStream imports in):
 *   - a publisher killed with -9: its kept name stays an orphan (ferry_lookup: pid 0, the
 *     publisher's uid and kind), watchers hear FERRY_EV_DIED, the name still opens and the
 *     mailbox still holds every message queued, and the message the dead publisher had
 *     peeked comes back (FERRY_MAILBOX_AT_LEAST_ONCE: returned 1, lost 0);
 *   - ferry_kill of an orphan is -ESRCH; ferry_pub_leave orphans a kept name as a death does;
 *   - the same uid takes the orphan over (ferry_publish with FERRY_TAKEOVER: 0, pid back),
 *     and ferry_pub_close then frees it (-ENOENT);
 *   - without FERRY_POLICY_KEEP the name is freed when its publisher dies, as before;
 *   - -EINVAL: FERRY_POLICY_KEEP on ferry_register, and without FERRY_TAKEOVER;
 *   - a ferryd started with --exit-idle stays up while it holds an orphan, and exits once
 *     the orphan is taken over and freed;
 *   - as root: another uid's takeover of an orphan is -EEXIST (the takeover rule), and a
 *     kept orphan still counts against its uid's names quota (`quota names 1`: another
 *     name -EDQUOT, the takeover of its own orphan 0);
 * and ferryd's descriptors are back where they started.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "../../integration/secutil.h"

#include <ferry/ferry.h>

#include <sys/wait.h>

static test_broker B;

static const ident OTHER = {60051, 60051, 0, {0}};
static const ident QUOTA = {60052, 60052, 0, {0}};

/* Wait (up to 5 s) until name is an orphan: ferry_lookup shows pid 0. */
static void orphan_within(const char *name, uid_t uid)
{
    ferry_name_info in;
    int rc = 0;
    for (int i = 0; i < 500; i++) {
        rc = ferry_lookup(name, &in, 5 * SEC);
        if (rc == 0 && in.pid == 0) break;
        sleep_ms(10);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(in.pid, 0);
    CHECK_EQ(in.uid, uid);
    CHECK_EQ(in.kind, FERRY_OBJ_MAILBOX);
}

/* Wait (up to 5 s) until name is gone. */
static void gone_within(const char *name)
{
    ferry_name_info in;
    int rc = 0;
    for (int i = 0; i < 500 && (rc = ferry_lookup(name, &in, 5 * SEC)) == 0; i++) sleep_ms(10);
    CHECK_EQ(rc, -ENOENT);
}

static void keep_policy(ferry_policy *pol, unsigned mode)
{
    ferry_policy_init(pol);
    pol->mode = mode;
    pol->flags = FERRY_POLICY_KEEP | FERRY_TAKEOVER;
}

/* A child publishes a fresh mailbox under name (kept or not), sends n numbers into it,
 * peeks the first when peek, says so on a pipe and waits to be killed (-9). */
static void publish_and_die(const char *name, int keep, int n, int peek)
{
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pp[0]);
        ferry_mailbox_opts o;
        ferry_mailbox_opts_init(&o);
        o.capacity = 16;
        o.flags = FERRY_MAILBOX_AT_LEAST_ONCE;
        ferry_mailbox *mb;
        CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
        ferry_policy pol;
        keep_policy(&pol, 0600);
        if (!keep) pol.flags = 0;
        ferry_pub *p;
        CHECK_EQ(ferry_publish(name, ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
                 0);
        for (int i = 0; i < n; i++) CHECK_EQ(ferry_mailbox_send(mb, 1, &i, sizeof i, FERRY_NOW), 0);
        if (peek) {
            const void *d;
            size_t len;
            CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, NULL, FERRY_NOW), 0);
            CHECK_EQ(len, sizeof(int));
        }
        CHECK_EQ(write(pp[1], "x", 1), 1);
        for (;;) pause();
    }
    close(pp[1]);
    char c;
    CHECK_EQ(read(pp[0], &c, 1), 1);
    close(pp[0]);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st));
}

static void test_kept(void)
{
    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.keep.*", &w, 5 * SEC), 0);
    publish_and_die("org.keep.a", 1, 5, 1);
    orphan_within("org.keep.a", geteuid());
    /* the watcher heard it got an owner, and that the owner died */
    ferry_watch_event ev;
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_DIED);
    CHECK_EQ(strcmp(ev.info.name, "org.keep.a"), 0);
    CHECK(ev.info.pid > 0); /* the owner that died */
    ferry_watch_close(w);
    /* nobody to signal */
    CHECK_EQ(ferry_kill("org.keep.a", SIGTERM, 5 * SEC), -ESRCH);
    /* it opens; the four queued come first, then the one the dead peeked comes back */
    ferry_mailbox *m;
    CHECK_EQ(ferry_mailbox_open("org.keep.a", &m, 5 * SEC), 0);
    int seen[5] = {0};
    for (int k = 0; k < 5; k++) {
        int v = -1;
        CHECK_EQ(ferry_mailbox_recv(m, 0, NULL, &v, sizeof v, 2 * SEC), sizeof v);
        CHECK(v >= 0 && v < 5);
        seen[v]++;
    }
    for (int k = 0; k < 5; k++) CHECK_EQ(seen[k], 1);
    int v;
    CHECK_EQ(ferry_mailbox_recv(m, 0, NULL, &v, sizeof v, FERRY_NOW), -EAGAIN);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(m, &st), 0);
    CHECK_EQ(st.sent, 5);
    CHECK_EQ(st.received, 5);
    CHECK_EQ(st.returned, 1);
    CHECK_EQ(st.lost, 0);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.flags, FERRY_MAILBOX_AT_LEAST_ONCE); /* the shape a bridge checks */
    /* the same uid takes the orphan over, with that very object */
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_pub *p;
    CHECK_EQ(ferry_publish("org.keep.a", ferry_mailbox_fd(m), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
             0);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.keep.a", &in, 5 * SEC), 0);
    CHECK_EQ(in.pid, getpid());
    /* ferry_pub_leave orphans it again; a takeover and ferry_pub_close free it */
    ferry_pub_leave(p);
    orphan_within("org.keep.a", geteuid());
    CHECK_EQ(ferry_publish("org.keep.a", ferry_mailbox_fd(m), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
             0);
    ferry_pub_close(p);
    gone_within("org.keep.a");
    ferry_mailbox_close(m);
    /* without the flag: freed on death, as before */
    publish_and_die("org.keep.b", 0, 1, 0);
    gone_within("org.keep.b");
}

static void test_invalid(void)
{
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.keep.srv", &pol, NULL, &l, 5 * SEC), -EINVAL);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    ferry_pub *p;
    pol.flags = FERRY_POLICY_KEEP; /* no way out for its orphan */
    CHECK_EQ(
        ferry_publish("org.keep.c", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        -EINVAL);
    pol.flags = FERRY_POLICY_KEEP | FERRY_TAKEOVER | (1u << 7); /* unknown bit */
    CHECK_EQ(
        ferry_publish("org.keep.c", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        -EINVAL);
    CHECK_EQ(ferry_lookup("org.keep.c", &(ferry_name_info){0}, 5 * SEC), -ENOENT);
    ferry_mailbox_close(mb);
}

/* ------------------------------------------------------------------ as other uids */

static void other_takeover(void *arg)
{
    (void)arg;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_pub *p;
    CHECK_EQ(
        ferry_publish("org.keep.o", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        -EEXIST);
    ferry_mailbox_close(mb);
}

/* uid QUOTA (`quota names 1`): a kept orphan holds its one name */
static void quota_orphan(void *arg)
{
    (void)arg;
    publish_and_die("org.keep.q", 1, 0, 0);
    orphan_within("org.keep.q", QUOTA.uid);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_pub *p;
    CHECK_EQ(
        ferry_publish("org.keep.q2", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        -EDQUOT);
    CHECK_EQ(
        ferry_publish("org.keep.q", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC), 0);
    ferry_pub_close(p);
    gone_within("org.keep.q");
    ferry_mailbox_close(mb);
}

static void test_uids(void)
{
    publish_and_die("org.keep.o", 1, 0, 0);
    orphan_within("org.keep.o", geteuid());
    run_as(&OTHER, other_takeover, NULL);
    /* still ours: taken over and freed */
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_open("org.keep.o", &mb, 5 * SEC), 0);
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_pub *p;
    CHECK_EQ(
        ferry_publish("org.keep.o", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC), 0);
    ferry_pub_close(p);
    gone_within("org.keep.o");
    ferry_mailbox_close(mb);
    run_as(&QUOTA, quota_orphan, NULL);
}

/* A second ferryd with --exit-idle 1: an orphan keeps it up; it exits once that goes. */
static void test_exit_idle(void)
{
    test_broker X;
    const char *extra[] = {"--exit-idle", "1", NULL};
    broker_init(&X); /* FERRY_BROKER: X's now */
    broker_run(&X, extra);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    ferry_policy pol;
    keep_policy(&pol, 0600);
    ferry_pub *p;
    CHECK_EQ(
        ferry_publish("org.keep.idle", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        0);
    ferry_pub_leave(p); /* no connection left, one orphan */
    sleep_ms(2500);     /* over twice the idle time */
    CHECK_EQ(waitpid(X.pid, NULL, WNOHANG), 0);
    CHECK_EQ(
        ferry_publish("org.keep.idle", ferry_mailbox_fd(mb), FERRY_OBJ_MAILBOX, &pol, &p, 5 * SEC),
        0);
    ferry_pub_close(p);
    ferry_mailbox_close(mb);
    int st = -1;
    for (int i = 0; i < 500 && waitpid(X.pid, &st, WNOHANG) == 0; i++) sleep_ms(10);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* gone by itself, cleanly */
    X.pid = -1;
    broker_stop(&X);
    setenv("FERRY_BROKER", B.sock, 1); /* back to the test's ferryd */
    broker_current = &B;
}

int main(void)
{
    test_deadline(60);
    int fds = fd_count();
    broker_init(&B);
    char conf[128];
    snprintf(conf, sizeof conf, "quota names 1 %u\n", (unsigned)QUOTA.uid);
    write_file(B.policy, conf);
    broker_run(&B, NULL);
    sleep_ms(20);
    int dfds = proc_fd_count(B.pid);
    test_invalid();
    test_kept();
    test_exit_idle();
    if (geteuid() == 0)
        test_uids();
    else
        printf("SKIP (not root): takeover by another uid, quotas\n");
    int left = proc_fd_count(B.pid);
    for (int i = 0; i < 500 && left != dfds; i++) {
        sleep_ms(20);
        left = proc_fd_count(B.pid);
    }
    CHECK_EQ(left, dfds);
    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
