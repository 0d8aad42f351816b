// SPDX-License-Identifier: MIT
/*
 * test_publish — publishing objects by name through a real ferryd (ferry_publish,
 * ferry_pub_close, ferry__obj_open), with an event queue as the object:
 *   - a published queue opens by name and works across the handles; -EEXIST on a taken
 *     name; -EINVAL for a bad kind, fd or name (the library), and from ferryd for what is
 *     not an object of the kind (a pipe, a memfd without seals, a sealed memfd or a
 *     stream socket as an event queue);
 *   - -EPROTOTYPE: ferry_connect to an object's name, opening a server's name or an
 *     object of another kind; -ENOENT for a missing name;
 *   - the name goes with ferry_pub_close and with its publisher (kill -9: gone within
 *     100 ms), while queues already opened keep working;
 *   - as root: the policy (0600 unseen, 0604 seen but -EACCES, 0606 opens) for another
 *     uid, and the fds quota counts the object's descriptor;
 * ferryd's descriptors and ours are back where they started.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "../../integration/secutil.h"
#include "sync/obj.h"

#include <ferry/ferry.h>
#include <sys/mman.h>

static test_broker B;

static ferry_event *open_event(const char *name)
{
    int fd;
    CHECK_EQ(ferry__obj_open(name, FERRY_OBJ_EVENT, &fd, 5 * SEC), 0);
    ferry_event *e;
    CHECK_EQ(ferry_event_adopt(fd, &e), 0);
    return e;
}

/* The name's lookup says -ENOENT within ms milliseconds (a release travels on its own
 * connection). Returns the time it took. */
static int64_t gone_within(const char *name, int ms)
{
    int64_t t0 = now_ns();
    ferry_name_info in;
    int rc;
    while ((rc = ferry_lookup(name, &in, 5 * SEC)) == 0 && now_ns() - t0 < ms * MS) sleep_ms(1);
    if (rc != -ENOENT) fprintf(stderr, "%s still there after %d ms (%d)\n", name, ms, rc);
    CHECK_EQ(rc, -ENOENT);
    return now_ns() - t0;
}

static void test_basic(void)
{
    ferry_event *e, *o;
    ferry_pub *p, *p2;
    uint64_t v;
    CHECK_EQ(ferry_event_create(8, &e), 0);
    int efd = ferry_event_fd(e);
    CHECK_EQ(ferry_publish("org.pub.ev", efd, FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), 0);
    /* Taken. */
    CHECK_EQ(ferry_publish("org.pub.ev", efd, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC), -EEXIST);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.pub.ev", NULL, NULL, &l, 5 * SEC), -EEXIST);
    /* Bad arguments, refused by the library. */
    CHECK_EQ(ferry_publish("org.pub.x", efd, 0, NULL, &p2, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org.pub.x", efd, FERRY_OBJ_STATE + 1, NULL, &p2, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org.pub.x", -1, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org..x", efd, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org.pub.x", efd, FERRY_OBJ_EVENT, NULL, NULL, 5 * SEC), -EINVAL);
    ferry_policy bad;
    ferry_policy_init(&bad);
    bad.mode = 01000;
    CHECK_EQ(ferry_publish("org.pub.x", efd, FERRY_OBJ_EVENT, &bad, &p2, 5 * SEC), -EINVAL);

    /* Opened by name: the same queue. */
    o = open_event("org.pub.ev");
    CHECK_EQ(ferry_event_post(o, 41, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 41);
    ferry_event_close(o);
    CHECK_EQ(ferry_event_open("org.pub.ev", &o, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(e, 42, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(o, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 42);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.pub.ev", &in, 5 * SEC), 0);
    CHECK_EQ(in.pid, getpid());
    CHECK_EQ(in.connects, 2); /* each open counts */

    /* Wrong kinds. */
    int fd = -1;
    CHECK_EQ(ferry__obj_open("org.pub.ev", FERRY_OBJ_SEM, &fd, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(fd, -1);
    ferry_chan *ch;
    CHECK_EQ(ferry_connect("org.pub.ev", FERRY_KIND_UNIX, NULL, &ch, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_connect("org.pub.ev", FERRY_KIND_SHM, NULL, &ch, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_register("org.pub.srv", NULL, NULL, &l, 5 * SEC), 0);
    CHECK_EQ(ferry__obj_open("org.pub.srv", FERRY_OBJ_EVENT, &fd, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_event_open("org.pub.srv", &o, 5 * SEC), -EPROTOTYPE);
    ferry_listener_close(l);
    CHECK_EQ(ferry__obj_open("org.pub.none", FERRY_OBJ_EVENT, &fd, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry__obj_open("org..none", FERRY_OBJ_EVENT, &fd, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry__obj_open("org.pub.ev", 0, &fd, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry__obj_open("org.pub.ev", 99, &fd, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_kill("org.pub.none", SIGUSR1, 5 * SEC), -ENOENT);

    /* Unpublished: the name goes, the queues stay. */
    ferry_pub_close(p);
    ferry_pub_close(NULL);
    gone_within("org.pub.ev", 1000);
    CHECK_EQ(ferry__obj_open("org.pub.ev", FERRY_OBJ_EVENT, &fd, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_event_post(o, 43, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 43);
    /* Published again, under the same name. */
    CHECK_EQ(ferry_publish("org.pub.ev", efd, FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), 0);
    ferry_pub_close(p);
    ferry_event_close(o);
    ferry_event_close(e);
    gone_within("org.pub.ev", 1000);
}

/* What is not an object of its kind: the library says -EBADMSG for the memfd kinds (it
 * maps and checks the object first); ferryd says -EINVAL for an event queue that is not
 * a SEQPACKET socket. */
static void test_not_objects(void)
{
    ferry_pub *p;
    int pp[2];
    CHECK(pipe(pp) == 0);
    CHECK_EQ(ferry_publish("org.pub.bad", pp[0], FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org.pub.bad", pp[1], FERRY_OBJ_SEM, NULL, &p, 5 * SEC), -EBADMSG);
    close(pp[0]);
    close(pp[1]);
    /* A memfd without seals. */
    int m = memfd_create("x", MFD_CLOEXEC);
    CHECK(m >= 0);
    CHECK(ftruncate(m, 4096) == 0);
    CHECK_EQ(ferry_publish("org.pub.bad", m, FERRY_OBJ_SEM, NULL, &p, 5 * SEC), -EBADMSG);
    CHECK_EQ(ferry_publish("org.pub.bad", m, FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), -EINVAL);
    close(m);
    /* A sealed memfd is a semaphore's kind of descriptor, not an event queue's. */
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_SEM, 4096, &m, &seg), 0);
    CHECK_EQ(ferry_publish("org.pub.bad", m, FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_publish("org.pub.sem", m, FERRY_OBJ_MUTEX, NULL, &p, 5 * SEC), -EBADMSG);
    CHECK_EQ(ferry_publish("org.pub.sem", m, FERRY_OBJ_SEM, NULL, &p, 5 * SEC), 0);
    int fd;
    CHECK_EQ(ferry__obj_open("org.pub.sem", FERRY_OBJ_EVENT, &fd, 5 * SEC), -EPROTOTYPE);
    ferry_pub_close(p);
    ferry__seg_unmap(&seg);
    close(m);
    /* A stream socket, and a datagram one, are not event queues either. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK_EQ(ferry_publish("org.pub.bad", sv[0], FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), -EINVAL);
    close(sv[0]);
    close(sv[1]);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK_EQ(ferry_publish("org.pub.bad", sv[0], FERRY_OBJ_EVENT, NULL, &p, 5 * SEC), -EINVAL);
    close(sv[0]);
    close(sv[1]);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.pub.bad", &in, 5 * SEC), -ENOENT);
    gone_within("org.pub.sem", 1000);
}

/* The name dies with its publisher; opened queues live on. */
static void test_publisher_dies(void)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_event *e;
        ferry_pub *p;
        CHECK_EQ(ferry_event_create(4, &e), 0);
        CHECK_EQ(
            ferry_publish("org.pub.dies", ferry_event_fd(e), FERRY_OBJ_EVENT, NULL, &p, 5 * SEC),
            0);
        CHECK(write(ready[1], "r", 1) == 1);
        for (;;) pause();
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    ferry_event *o = open_event("org.pub.dies");
    CHECK_EQ(ferry_event_post(o, 1, 0, FERRY_NOW), 0);
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, NULL, 0) == pid);
    int64_t dt = gone_within("org.pub.dies", 100);
    printf("the name was gone %.1f ms after the publisher's death\n", dt / 1e6);
    /* The queue outlives its creator: it lives while a holder lives. */
    uint64_t v;
    CHECK_EQ(ferry_event_post(o, 2, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(o, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(ferry_event_next(o, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 2);
    int pfd = ferry_event_poll_fd(o);
    CHECK(pfd >= 0);
    CHECK_EQ(ferry_event_post(o, 3, 0, FERRY_NOW), 0);
    struct pollfd pl = {.fd = pfd, .events = POLLIN};
    CHECK_EQ(poll(&pl, 1, 0), 1);
    CHECK_EQ(ferry_event_next(o, &v, FERRY_NOW), 0);
    CHECK_EQ(poll(&pl, 1, 0), 0);
    ferry_event_close(o);
}

/* ------------------------------------------------------------------ as other uids */

static const ident OTHER = {60031, 60031, 0, {0}};
static const ident QUOTA = {60032, 60032, 0, {0}};

static void as_other(void *arg)
{
    (void)arg;
    int fd;
    ferry_event *o;
    CHECK_EQ(ferry__obj_open("org.pub.p600", FERRY_OBJ_EVENT, &fd, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry__obj_open("org.pub.p604", FERRY_OBJ_EVENT, &fd, 5 * SEC), -EACCES);
    CHECK_EQ(ferry_event_open("org.pub.p604", &o, 5 * SEC), -EACCES);
    CHECK_EQ(ferry_event_open("org.pub.p606", &o, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(o, 606, 0, FERRY_NOW), 0);
    ferry_event_close(o);
}

static void test_policy(void)
{
    ferry_event *e;
    ferry_pub *p[3];
    const unsigned modes[3] = {0600, 0604, 0606};
    const char *names[3] = {"org.pub.p600", "org.pub.p604", "org.pub.p606"};
    CHECK_EQ(ferry_event_create(4, &e), 0);
    for (int i = 0; i < 3; i++) {
        ferry_policy pol;
        ferry_policy_init(&pol);
        pol.mode = modes[i];
        CHECK_EQ(ferry_publish(names[i], ferry_event_fd(e), FERRY_OBJ_EVENT, &pol, &p[i], 5 * SEC),
                 0);
    }
    run_as(&OTHER, as_other, NULL);
    uint64_t v;
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 606);
    for (int i = 0; i < 3; i++) ferry_pub_close(p[i]);
    ferry_event_close(e);
    for (int i = 0; i < 3; i++) gone_within(names[i], 1000);
}

/* With `quota fds 4`: one publish holds three descriptors in ferryd (its connection, the
 * object, and the publisher's pidfd), so a second publish (a fourth and a fifth: the
 * pidfd is shared by the process's connections) is refused, while a register (a
 * connection, no object) still fits. */
static void as_quota(void *arg)
{
    (void)arg;
    ferry_event *e;
    ferry_pub *p1, *p2;
    ferry_listener *l;
    CHECK_EQ(ferry_event_create(4, &e), 0);
    int fd = ferry_event_fd(e);
    CHECK_EQ(ferry_publish("org.pub.q1", fd, FERRY_OBJ_EVENT, NULL, &p1, 5 * SEC), 0);
    CHECK_EQ(ferry_publish("org.pub.q2", fd, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC), -EDQUOT);
    CHECK_EQ(ferry_publish("org.pub.q2", fd, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC), -EDQUOT);
    int rc = -EDQUOT; /* the refused publish's connection may not be gone yet */
    for (int i = 0; i < 200 && rc == -EDQUOT; i++)
        if ((rc = ferry_register("org.pub.qsrv", NULL, NULL, &l, 5 * SEC)) == -EDQUOT) sleep_ms(5);
    CHECK_EQ(rc, 0);
    ferry_listener_close(l);
    ferry_pub_close(p1); /* frees all three */
    rc = -EDQUOT;
    for (int i = 0; i < 200 && rc == -EDQUOT; i++)
        if ((rc = ferry_publish("org.pub.q2", fd, FERRY_OBJ_EVENT, NULL, &p2, 5 * SEC)) == -EDQUOT)
            sleep_ms(5);
    CHECK_EQ(rc, 0);
    ferry_pub_close(p2);
    ferry_event_close(e);
}

static void test_quota(void)
{
    run_as(&QUOTA, as_quota, NULL);
}

int main(void)
{
    test_deadline(60);
    int fds = fd_count();
    broker_init(&B);
    char conf[128];
    snprintf(conf, sizeof conf, "quota fds 4 %u\n", (unsigned)QUOTA.uid);
    write_file(B.policy, conf);
    broker_run(&B, NULL);
    sleep_ms(20);
    int dfds = proc_fd_count(B.pid);

    test_basic();
    test_not_objects();
    test_publisher_dies();
    if (geteuid() == 0) {
        test_policy();
        test_quota();
    } else {
        printf("SKIP (not root): policy for other uids, quotas\n");
    }
    /* ferryd keeps nothing of what is gone. */
    int left = proc_fd_count(B.pid);
    for (int i = 0; i < 100 && left != dfds; i++) {
        sleep_ms(10);
        left = proc_fd_count(B.pid);
    }
    CHECK_EQ(left, dfds);
    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("test_publish: ok\n");
    return 0;
}
