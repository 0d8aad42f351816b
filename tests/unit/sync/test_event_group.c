// SPDX-License-Identifier: MIT
/*
 * test_event_group — groups of event queues by name pattern (ferry_event_open
 * "org.grp.*") with a real ferryd: the group holds exactly the published queues under the
 * prefix that the caller may open (not the prefix's own name, not names beside it, not
 * servers or objects of another kind, not names it may not see or connect to); a post
 * reaches each queue (coalescing in each); a take takes from any, and the group's poll fd
 * is readable exactly while one of its queues has an event; a group larger than a page
 * of ferry_list; -ENOENT when nothing matches, -EINVAL for a bad pattern.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "../../integration/secutil.h"
#include "sync/obj.h"

#include <ferry/ferry.h>

/* ferry_event_stats, into two counters (either may be NULL). */
static int event_stats(const ferry_event *e, uint64_t *posted, uint64_t *merged)
{
    ferry_event_counters st;
    ferry_event_counters_init(&st);
    int rc = ferry_event_stats(e, &st);
    if (rc == 0 && posted) *posted = st.posted;
    if (rc == 0 && merged) *merged = st.merged;
    return rc;
}

static test_broker B;
static const ident OTHER = {60051, 60051, 0, {0}};   /* publishes beside the group */
static const ident GROUPER = {60052, 60052, 0, {0}}; /* opens the group (root opens all) */

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

static void publish(const char *name, ferry_event *e, unsigned mode, ferry_pub **p)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = mode;
    CHECK_EQ(ferry_publish(name, ferry_event_fd(e), FERRY_OBJ_EVENT, &pol, p, 5 * SEC), 0);
}

/* Another uid's queues: one it shows but does not let open (0604), one hidden (0600). */
static void other_publisher(void *arg)
{
    int *pp = arg; /* read end, write end; and the ends that are the parent's */
    close(pp[2]);
    close(pp[3]);
    ferry_event *e;
    ferry_pub *p1, *p2;
    CHECK_EQ(ferry_event_create(4, &e), 0);
    publish("org.grp.other", e, 0604, &p1);
    publish("org.grp.hidden", e, 0600, &p2);
    CHECK(write(pp[1], "r", 1) == 1);
    char c;
    CHECK(read(pp[0], &c, 1) == 0); /* until the test closes the pipe */
    uint64_t v;
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN); /* no post reached it */
}

static void group_side(void *arg)
{
    int go = ((int *)arg)[0], done = ((int *)arg)[1];
    char c;
    ferry_event *g;
    CHECK_EQ(ferry_event_open("org.grp.*", &g, 5 * SEC), 0);
    CHECK_EQ(ferry_event_fd(g), -EINVAL); /* several objects */
    CHECK_EQ(ferry_event_post(g, 42, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(g, 43, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(g, 43, FERRY_EVENT_COALESCE, FERRY_NOW), 0);
    uint64_t posted, merged, v;
    CHECK_EQ(event_stats(g, &posted, &merged), 0);
    CHECK_EQ(posted, 9);
    CHECK_EQ(merged, 3);
    CHECK(write(done, "1", 1) == 1);
    /* The other side took them all; now it posts to single queues. */
    CHECK(read(go, &c, 1) == 1);
    int pfd = ferry_event_poll_fd(g);
    CHECK(pfd >= 0);
    CHECK_EQ(ferry_event_poll_fd(g), pfd);
    CHECK(!readable(pfd, 0));
    CHECK(write(done, "2", 1) == 1);
    CHECK(readable(pfd, 5000)); /* 7 into the second queue */
    CHECK(readable(pfd, 0));
    CHECK_EQ(ferry_event_next(g, &v, FERRY_NOW), 0);
    CHECK_EQ(v, 7);
    CHECK(!readable(pfd, 0));
    CHECK_EQ(ferry_event_next(g, &v, FERRY_NOW), -EAGAIN);
    CHECK(write(done, "3", 1) == 1);
    /* Blocking takes: 8 and 9 come into the first and third queues later. */
    uint64_t a, b;
    CHECK_EQ(ferry_event_next(g, &a, 5 * SEC), 0);
    CHECK_EQ(ferry_event_next(g, &b, 5 * SEC), 0);
    CHECK((a == 8 && b == 9) || (a == 9 && b == 8));
    CHECK(!readable(pfd, 0));
    CHECK_EQ(ferry_event_next(g, &v, 20 * MS), -ETIMEDOUT);
    ferry_event_close(g);
}

static void test_group(void)
{
    ferry_event *q[3], *sem_like;
    ferry_pub *p[3], *px[4];
    const char *names[3] = {"org.grp.a", "org.grp.b", "org.grp.c.d"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_event_create(8, &q[i]), 0);
        publish(names[i], q[i], 0606, &p[i]);
    }
    /* Beside the group: the prefix's own name, a name sorting just before the prefix, one
     * just after, a server and a semaphore under the prefix. */
    CHECK_EQ(ferry_event_create(8, &sem_like), 0);
    publish("org.grp", sem_like, 0606, &px[0]);
    publish("org.grp-z", sem_like, 0606, &px[1]);
    publish("org.grpz.a", sem_like, 0606, &px[2]);
    ferry_listener *l;
    ferry_policy open;
    ferry_policy_init(&open);
    open.mode = 0606;
    CHECK_EQ(ferry_register("org.grp.srv", &open, NULL, &l, 5 * SEC), 0);
    int m;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_SEM, 4096, &m, &seg), 0);
    CHECK_EQ(ferry_publish("org.grp.sem", m, FERRY_OBJ_SEM, &open, &px[3], 5 * SEC), 0);
    int op[2] = {-1, -1}, cl[2] = {-1, -1};
    pid_t other = -1;
    if (geteuid() == 0) {
        CHECK(pipe(op) == 0 && pipe(cl) == 0);
        int args[4] = {cl[0], op[1], cl[1], op[0]};
        other = spawn_as(&OTHER, other_publisher, args);
        close(op[1]);
        close(cl[0]);
        char c;
        CHECK_EQ(read(op[0], &c, 1), 1);
        close(op[0]);
    } else {
        printf("SKIP (not root): another uid's queues are not in the group\n");
    }

    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0);
    int ends[2] = {go[0], done[1]};
    pid_t pid = spawn_as(geteuid() == 0 ? &GROUPER : &ROOT, group_side, ends);
    char c;
    uint64_t v, posted, merged;
    CHECK_EQ(read(done[0], &c, 1), 1);
    for (int i = 0; i < 3; i++) { /* each queue got each post */
        CHECK_EQ(ferry_event_next(q[i], &v, FERRY_NOW), 0);
        CHECK_EQ(v, 42);
        CHECK_EQ(ferry_event_next(q[i], &v, FERRY_NOW), 0);
        CHECK_EQ(v, 43);
        CHECK_EQ(ferry_event_next(q[i], &v, FERRY_NOW), -EAGAIN);
        CHECK_EQ(event_stats(q[i], &posted, &merged), 0);
        CHECK_EQ(posted, 3);
        CHECK_EQ(merged, 1);
    }
    CHECK_EQ(ferry_event_next(sem_like, &v, FERRY_NOW), -EAGAIN); /* not in the group */
    CHECK(write(go[1], "g", 1) == 1);
    CHECK_EQ(read(done[0], &c, 1), 1);
    CHECK_EQ(ferry_event_post(q[1], 7, 0, FERRY_NOW), 0);
    CHECK_EQ(read(done[0], &c, 1), 1);
    sleep_ms(50); /* the group side is (probably) asleep in ferry_event_next */
    CHECK_EQ(ferry_event_post(q[0], 8, 0, FERRY_NOW), 0);
    sleep_ms(20);
    CHECK_EQ(ferry_event_post(q[2], 9, 0, FERRY_NOW), 0);
    wait_ok(pid);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    if (other > 0) {
        close(cl[1]);
        wait_ok(other);
    }

    /* Nothing matches; bad patterns. */
    ferry_event *g;
    CHECK_EQ(ferry_event_open("org.nothing.*", &g, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_event_open("org.grp.srv.*", &g, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_event_open("org.gr*", &g, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_event_open("org.*.a", &g, 5 * SEC), -EINVAL);
    CHECK_EQ(ferry_event_open(".*", &g, 5 * SEC), -EINVAL);
    /* "*": everything this process may open: the 3, org.grp, org.grp-z, org.grpz.a. */
    CHECK_EQ(ferry_event_open("*", &g, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(g, 1, 0, FERRY_NOW), 0);
    CHECK_EQ(event_stats(g, &posted, &merged), 0);
    /* Counts add up over members: the 3 queues have had 5 posts each (3 from the group,
     * 7, 8 or 9, and this one); sem_like, 3 members (published three times), 3 posts. */
    CHECK_EQ(posted, 3 * 5 + 3 * 3);
    ferry_event_close(g);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_event_next(q[i], &v, FERRY_NOW), 0);
        CHECK_EQ(v, 1);
    }
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_event_next(sem_like, &v, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_next(sem_like, &v, FERRY_NOW), -EAGAIN);

    for (int i = 0; i < 4; i++) ferry_pub_close(px[i]);
    for (int i = 0; i < 3; i++) {
        ferry_pub_close(p[i]);
        ferry_event_close(q[i]);
    }
    ferry_listener_close(l);
    ferry__seg_unmap(&seg);
    close(m);
    ferry_event_close(sem_like);
}

/* More queues than one page of ferry_list (32 names per page in event.c). */
static void test_many(void)
{
    enum { N = 70 };
    ferry_event *q[N], *g;
    ferry_pub *p[N];
    for (int i = 0; i < N; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "org.many.q%02d", i);
        CHECK_EQ(ferry_event_create(2, &q[i]), 0);
        publish(nm, q[i], 0600, &p[i]);
    }
    CHECK_EQ(ferry_event_open("org.many.*", &g, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(g, 5, 0, FERRY_NOW), 0);
    uint64_t v, posted;
    CHECK_EQ(event_stats(g, &posted, NULL), 0);
    CHECK_EQ(posted, N);
    int pfd = ferry_event_poll_fd(g);
    CHECK(readable(pfd, 0));
    for (int i = 0; i < N; i++) { /* taken through each queue's own handle */
        CHECK_EQ(ferry_event_next(q[i], &v, FERRY_NOW), 0);
        CHECK_EQ(v, 5);
    }
    CHECK(!readable(pfd, 0));
    for (int i = 0; i < N; i++) CHECK_EQ(ferry_event_post(q[i], (uint64_t)i, 0, FERRY_NOW), 0);
    CHECK(readable(pfd, 0));
    uint64_t seen = 0, bits[2] = {0, 0};
    while (ferry_event_next(g, &v, FERRY_NOW) == 0) {
        CHECK(v < N);
        CHECK(!(bits[v / 64] & (1ull << (v % 64))));
        bits[v / 64] |= 1ull << (v % 64);
        seen++;
    }
    CHECK_EQ(seen, N);
    CHECK(!readable(pfd, 0));
    ferry_event_close(g);
    for (int i = 0; i < N; i++) {
        ferry_pub_close(p[i]);
        ferry_event_close(q[i]);
    }
}

int main(void)
{
    test_deadline(30);
    int fds = fd_count();
    broker_start(&B);
    test_group();
    CHECK_EQ(fd_count(), fds);
    test_many();
    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("test_event_group: ok\n");
    return 0;
}
