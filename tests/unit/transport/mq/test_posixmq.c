// SPDX-License-Identifier: MIT
/*
 * test_posixmq — the posixmq:// transport (src/transport/posixmq.c) against the public
 * API, with exact error codes; every blocking call is bounded:
 *  - URLs and options: bad names -EINVAL / -ENAMETOOLONG, no queue -ENOENT, a name in
 *    use -EADDRINUSE, capacity 0 / FERRY_UNBOUNDED -EOPNOTSUPP, an unknown flag and
 *    every kernel limit exceeded (msg_max, msgsize_max) -EINVAL while the limits
 *    themselves work; the default shape (msg_default, msgsize_default); the mode;
 *  - a round trip between two processes (fork): 300 messages each way, in order, with
 *    the child closing its inherited listener first (which must unlink nothing);
 *  - sizes 0, 1, max, max+1 (-EMSGSIZE, nothing sent); a too-small receive buffer
 *    (-EMSGSIZE, the size needed, the message stays queued);
 *  - every type-filter rule, a filter waiting while other types arrive, and the bounded
 *    backlog of passed-over messages;
 *  - timeouts: FERRY_NOW -EAGAIN, bounded -ETIMEDOUT with elapsed >= bound (also under a
 *    storm of signals: EINTR does not shorten), FERRY_FOREVER released by a peer; the
 *    same for a send on a full queue (capacity N); a second accept;
 *  - -EOPNOTSUPP: fds, zero copy, peer credentials;
 *  - ferry_chan_poll_fd and ferry_listener_poll_fd readiness (backlog included);
 *  - peer death (kill -9): what it sent is still received, then receives time out;
 *  - FERRY_PERSIST: the queues survive close, can be opened and re-listened, then the
 *    test removes them;
 *  - garbage written by a raw mq_send: junk, bad length, bad priority, bad crc, fds,
 *    shm flags -> -EBADMSG and the channel stays broken; a good raw frame is accepted;
 *  - afterwards the queue list equals the one from before, and no fd leaked.
 */
#include "mqtest.h"

#include <mqueue.h>

static char base[64]; /* "/ferry-test-mq-<pid>" */
static long msg_max, msgsize_max, msg_default, msgsize_default;

/* "posixmq://" + base + suffix, in static storage (two at a time). */
static const char *url(const char *suffix)
{
    static char u[2][160];
    static int i;
    i ^= 1;
    snprintf(u[i], sizeof u[i], "posixmq://%s%s", base, suffix);
    return u[i];
}

/* The queue name base + suffix + dir (".c2s" / ".s2c"). */
static const char *qname(const char *suffix, const char *dir)
{
    static char n[160];
    snprintf(n, sizeof n, "%s%s%s", base, suffix, dir);
    return n;
}

static bool queue_exists(const char *suffix, const char *dir)
{
    mqd_t q = mq_open(qname(suffix, dir), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (q < 0) return false;
    mq_close(q);
    return true;
}

/* ---------------------------------------------------------------- URLs and options */

static void test_urls_and_options(void)
{
    STAGE("urls and options");
    ferry_listener *l = NULL;
    ferry_chan *ch = NULL;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);

    CHECK_EQ(ferry_listen("posixmq://", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_listen("posixmq://noslash", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_listen("posixmq:///", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_listen("posixmq:///a/b", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_chan_open("posixmq://", NULL, &ch, T5S), -EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "posixmq:///", 11);
    longname[11 + 252] = 0; /* 252 + ".c2s" > NAME_MAX */
    CHECK_EQ(ferry_listen(longname, NULL, &l), -ENAMETOOLONG);
    CHECK_EQ(ferry_chan_open(longname, NULL, &ch, T5S), -ENAMETOOLONG);
    longname[11 + 251] = 0; /* 251 + ".c2s" == NAME_MAX: fine */
    CHECK_EQ(ferry_listen(longname, NULL, &l), 0);
    ferry_listener_close(l);
    CHECK_EQ(ferry_chan_open(longname, NULL, &ch, T5S), -ENOENT); /* unlinked */
    CHECK_EQ(ferry_chan_open(url("-none"), NULL, &ch, T5S), -ENOENT);

    o.capacity = 0;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EOPNOTSUPP);
    o.capacity = FERRY_UNBOUNDED;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EOPNOTSUPP);
    ferry_chan_opts_init(&o);
    o.flags = 1u << 12;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EINVAL);

    /* Kernel limits: beyond -> -EINVAL, at -> fine. */
    ferry_chan_opts_init(&o);
    o.capacity = (uint32_t)msg_max + 1;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EINVAL);
    ferry_chan_opts_init(&o);
    o.max_msg = (size_t)msgsize_max - 32 + 1;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EINVAL);
    o.max_msg = FERRY_MAX_MSG_LIMIT + 1;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l), -EINVAL);
    CHECK(!queue_exists("-o", ".c2s") && !queue_exists("-o", ".s2c"));
    o.capacity = (uint32_t)msg_max;
    o.max_msg = (size_t)msgsize_max - 32;
    ferry_chan *srv, *cli;
    pair_make(url("-o"), &o, &l, &srv, &cli);
    CHECK_EQ(ferry_chan_max_msg(srv), (size_t)msgsize_max - 32);
    CHECK_EQ(ferry_chan_max_msg(cli), (size_t)msgsize_max - 32);
    struct mq_attr a;
    mqd_t q = mq_open(qname("-o", ".c2s"), O_RDONLY | O_CLOEXEC);
    CHECK(q >= 0);
    CHECK_EQ(mq_getattr(q, &a), 0);
    CHECK_EQ(a.mq_maxmsg, msg_max);
    CHECK_EQ(a.mq_msgsize, msgsize_max);
    mq_close(q);
    /* The name is taken while it lives. */
    ferry_listener *l2 = NULL;
    CHECK_EQ(ferry_listen(url("-o"), &o, &l2), -EADDRINUSE);
    pair_close(l, srv, cli);
    CHECK(!queue_exists("-o", ".c2s") && !queue_exists("-o", ".s2c"));

    /* The default shape, and the mode (exactly, whatever the umask). */
    mode_t old = umask(077);
    ferry_chan_opts_init(&o);
    o.mode = 0640;
    pair_make(url("-d"), &o, &l, &srv, &cli);
    umask(old);
    long depth = msg_default < msg_max ? msg_default : msg_max;
    CHECK_EQ(ferry_chan_max_msg(srv), (size_t)msgsize_default - 32);
    const char *dirs[2] = {".c2s", ".s2c"};
    for (int i = 0; i < 2; i++) {
        q = mq_open(qname("-d", dirs[i]), O_RDONLY | O_CLOEXEC);
        CHECK(q >= 0);
        CHECK_EQ(mq_getattr(q, &a), 0);
        CHECK_EQ(a.mq_maxmsg, depth);
        CHECK_EQ(a.mq_msgsize, msgsize_default);
        struct stat st;
        CHECK_EQ(fstat(q, &st), 0);
        CHECK_EQ(st.st_mode & 0777, 0640);
        mq_close(q);
    }
    /* FERRY_CAP_RING: exactly `depth` messages fit. */
    for (long i = 0; i < depth; i++) CHECK_EQ(ferry_send(srv, "x", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(srv, "x", 1, FERRY_NOW), -EAGAIN);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- two processes */

#define RT_N 300

static void test_round_trip(void)
{
    STAGE("round trip");
    ferry_listener *l;
    CHECK_EQ(ferry_listen(url("-rt"), NULL, &l), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        /* Closing the inherited listener in another process must unlink nothing. */
        ferry_listener_close(l);
        ferry_chan *ch;
        CHECK_EQ(ferry_chan_open(url("-rt"), NULL, &ch, T5S), 0);
        STAGE("child: send");
        for (uint64_t i = 0; i < RT_N; i++) send_seq_span(ch, i, 200);
        STAGE("child: receive");
        for (uint64_t i = 0; i < RT_N; i++) recv_seq_span(ch, i + 1000, 100, T5S);
        ferry_chan_counters st;
        CHECK_EQ(ferry_chan_stats(ch, &st), 0);
        CHECK_EQ(st.sent_msgs, RT_N);
        CHECK_EQ(st.recv_msgs, RT_N);
        ferry_chan_close(ch);
        child_exit();
    }
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    STAGE("parent: receive");
    for (uint64_t i = 0; i < RT_N; i++) recv_seq_span(ch, i, 200, T5S);
    STAGE("parent: send");
    for (uint64_t i = 0; i < RT_N; i++) send_seq_span(ch, i + 1000, 100);
    wait_ok(pid);
    CHECK(queue_exists("-rt", ".c2s"));
    ferry_chan_close(ch);
    CHECK(queue_exists("-rt", ".c2s")); /* the listener still holds the names */
    ferry_listener_close(l);
    CHECK(!queue_exists("-rt", ".c2s") && !queue_exists("-rt", ".s2c"));
}

/* ---------------------------------------------------------------- sizes */

static void test_sizes(void)
{
    STAGE("sizes");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = 100;
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(url("-sz"), &o, &l, &srv, &cli);
    CHECK_EQ(ferry_chan_max_msg(cli), 100);
    uint8_t buf[200], in[200];
    size_t sizes[3] = {0, 1, 100};
    for (int i = 0; i < 3; i++) {
        fill_seq(buf, sizes[i], (uint64_t)i);
        CHECK_EQ(ferry_send(cli, buf, sizes[i], T5S), 0);
    }
    CHECK_EQ(ferry_send(cli, buf, 101, T5S), -EMSGSIZE);
    CHECK_EQ(ferry_recv(srv, NULL, 0, T5S), 0); /* a zero-length message needs no buffer */
    CHECK_EQ(ferry_recv(srv, in, sizeof in, T5S), 1);
    CHECK(check_seq(in, 1, 1));
    /* Too small a buffer: -EMSGSIZE, the size needed, and it stays queued. */
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = in;
    m.cap = 99;
    CHECK_EQ(ferry_recvmsg(srv, &m, 0, T5S), -EMSGSIZE);
    CHECK_EQ(m.len, 100);
    CHECK_EQ(ferry_recv(srv, in, 99, T5S), -EMSGSIZE);
    CHECK_EQ(ferry_recv(srv, in, sizeof in, T5S), 100);
    CHECK(check_seq(in, 100, 2));
    CHECK_EQ(ferry_recv(srv, in, sizeof in, FERRY_NOW), -EAGAIN); /* max+1 never went */
    ferry_chan_counters st;
    CHECK_EQ(ferry_chan_stats(cli, &st), 0);
    CHECK_EQ(st.sent_msgs, 3);
    CHECK_EQ(st.sent_bytes, 101);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- types */

static void test_types(void)
{
    STAGE("types");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 8;
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(url("-ty"), &o, &l, &srv, &cli);
    send_typed(cli, 5, "m0");
    send_typed(cli, 3, "m1");
    send_typed(cli, 7, "m2");
    send_typed(cli, 3, "m3");
    send_typed(cli, 1, "m4");
    expect(srv, 3, T5S, 3, "m1");
    expect(srv, -4, T5S, 1, "m4");
    expect(srv, -4, T5S, 3, "m3");
    expect_err(srv, 9, FERRY_NOW, -EAGAIN);
    expect_err(srv, -2, FERRY_NOW, -EAGAIN);
    int64_t t0 = now_ns();
    expect_err(srv, 6, 50 * MS, -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    char small[1];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = small;
    m.cap = sizeof small;
    CHECK_EQ(ferry_recvmsg(srv, &m, 7, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(m.len, 2);
    CHECK_EQ(m.type, 7);
    expect(srv, 0, FERRY_NOW, 5, "m0"); /* passed over: still first, in order */
    expect(srv, 0, FERRY_NOW, 7, "m2");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);

    /* Negative types, INT64_MIN filter: -EINVAL, nothing sent. */
    memset(&m, 0, sizeof m);
    m.type = -1;
    m.data = "x";
    m.len = 1;
    CHECK_EQ(ferry_sendmsg(cli, &m, T5S), -EINVAL);
    m.type = INT64_MIN;
    CHECK_EQ(ferry_sendmsg(cli, &m, T5S), -EINVAL);
    expect_err(srv, INT64_MIN, FERRY_NOW, -EINVAL);
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);

    /* ferry_send is type 0; -1 prefers 0 over 1; INT64_MAX works; -INT64_MAX takes the
     * lowest; one type keeps its order. */
    send_typed(cli, 1, "one");
    CHECK_EQ(ferry_send(cli, "zero", 4, T5S), 0);
    send_typed(cli, INT64_MAX, "max");
    send_typed(cli, 4, "a");
    send_typed(cli, 4, "b");
    expect(srv, -1, FERRY_NOW, 0, "zero");
    expect(srv, INT64_MAX, FERRY_NOW, INT64_MAX, "max");
    expect(srv, -INT64_MAX, FERRY_NOW, 1, "one");
    expect(srv, 4, FERRY_NOW, 4, "a");
    expect(srv, 0, FERRY_NOW, 4, "b");

    /* A waiting filter: three type-1 messages arrive while it waits for a 2. */
    pid_t pid = fork_child();
    if (pid == 0) {
        ferry_chan *c2;
        CHECK_EQ(ferry_chan_open(url("-ty"), NULL, &c2, T5S), 0);
        sleep_ms(30);
        send_typed(c2, 1, "p");
        send_typed(c2, 1, "q");
        send_typed(c2, 1, "r");
        sleep_ms(30);
        send_typed(c2, 2, "two");
        ferry_chan_close(c2);
        child_exit();
    }
    STAGE("types: waiting filter");
    expect(srv, 2, T5S, 2, "two");
    wait_ok(pid);
    expect(srv, 0, FERRY_NOW, 1, "p");
    expect(srv, 1, FERRY_NOW, 1, "q");
    expect(srv, -1, FERRY_NOW, 1, "r");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);
    pair_close(l, srv, cli);

    /* The backlog of passed-over messages is bounded by the queue depth (2 here): the
     * sender may get 2 more in, then the typed receive is stuck and times out. */
    STAGE("types: bounded backlog");
    ferry_chan_opts_init(&o);
    o.capacity = 2;
    pair_make(url("-bl"), &o, &l, &srv, &cli);
    send_typed(cli, 1, "b0");
    send_typed(cli, 1, "b1");
    CHECK_EQ(ferry_send(cli, "no", 2, FERRY_NOW), -EAGAIN);
    expect_err(srv, 5, FERRY_NOW, -EAGAIN); /* both move to the backlog */
    send_typed(cli, 1, "b2");
    send_typed(cli, 1, "b3");
    CHECK_EQ(ferry_send(cli, "no", 2, FERRY_NOW), -EAGAIN);
    t0 = now_ns();
    expect_err(srv, 5, 50 * MS, -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    expect(srv, -3, FERRY_NOW, 1, "b0");
    expect(srv, 0, FERRY_NOW, 1, "b1");
    expect(srv, 1, FERRY_NOW, 1, "b2");
    expect(srv, 0, FERRY_NOW, 1, "b3");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- timeouts and capacity */

static void test_timeouts(void)
{
    STAGE("timeouts");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 3;
    ferry_listener *l;
    ferry_chan *srv, *cli;
    CHECK_EQ(ferry_listen(url("-to"), &o, &l), 0);
    int lfd = ferry_listener_poll_fd(l);
    CHECK(lfd >= 0);
    CHECK(readable(lfd)); /* the one channel waits to be accepted */
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    CHECK(!readable(lfd));
    ferry_chan *none = NULL;
    CHECK_EQ(ferry_accept(l, &none, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &none, 30 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 30 * MS);
    CHECK(none == NULL);
    CHECK_EQ(ferry_chan_open(url("-to"), NULL, &cli, T5S), 0);

    char buf[16];
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    t0 = now_ns();
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);

    /* EINTR does not shorten a bounded wait. */
    usr1_catch();
    mqtest_signals = 0;
    pid_t storm = usr1_storm(300);
    t0 = now_ns();
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, 200 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 200 * MS);
    CHECK(mqtest_signals > 0);
    wait_ok(storm);

    /* FERRY_FOREVER, released by a peer 100 ms later. */
    pid_t pid = fork_child();
    if (pid == 0) {
        ferry_chan *c2;
        CHECK_EQ(ferry_chan_open(url("-to"), NULL, &c2, T5S), 0);
        sleep_ms(100);
        CHECK_EQ(ferry_send(c2, "late", 4, T5S), 0);
        ferry_chan_close(c2);
        child_exit();
    }
    STAGE("timeouts: recv forever");
    t0 = now_ns();
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_FOREVER), 4);
    CHECK(now_ns() - t0 >= 90 * MS);
    CHECK(memcmp(buf, "late", 4) == 0);
    wait_ok(pid);

    /* Capacity 3: a full queue makes a send -EAGAIN / -ETIMEDOUT; FOREVER waits for room. */
    STAGE("timeouts: full queue");
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_send(cli, "c", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(cli, "d", 1, FERRY_NOW), -EAGAIN);
    t0 = now_ns();
    CHECK_EQ(ferry_send(cli, "d", 1, 50 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    mqtest_signals = 0;
    storm = usr1_storm(150);
    t0 = now_ns();
    CHECK_EQ(ferry_send(cli, "d", 1, 100 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 100 * MS);
    wait_ok(storm);
    pid = fork_child();
    if (pid == 0) {
        /* Take one through the inherited copy of the listener's end, then close that copy
         * (in another process: it unlinks nothing). */
        sleep_ms(100);
        char b[4];
        CHECK_EQ(ferry_recv(srv, b, sizeof b, T5S), 1);
        ferry_chan_close(srv);
        child_exit();
    }
    t0 = now_ns();
    CHECK_EQ(ferry_send(cli, "e", 1, FERRY_FOREVER), 0);
    CHECK(now_ns() - t0 >= 90 * MS);
    wait_ok(pid);
    ferry_chan_counters st;
    CHECK_EQ(ferry_chan_stats(cli, &st), 0);
    CHECK(st.send_waits >= 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), 1);
    CHECK_EQ(buf[0], 'e');
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- not supported */

static void test_unsupported(void)
{
    STAGE("unsupported");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(url("-un"), NULL, &l, &srv, &cli);
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = "f";
    m.len = 1;
    m.nfds = 1;
    m.fds[0] = p[0];
    CHECK_EQ(ferry_sendmsg(cli, &m, T5S), -EOPNOTSUPP);
    CHECK_EQ(ferry_recv(srv, NULL, 0, FERRY_NOW), -EAGAIN); /* nothing went */
    close(p[0]);
    close(p[1]);
    void *ptr;
    CHECK_EQ(ferry_loan(cli, 8, &ptr, T5S), -EOPNOTSUPP);
    CHECK_EQ(ferry_commit(cli, 0, 8), -EOPNOTSUPP);
    CHECK_EQ(ferry_peek(srv, 0, &m, T5S), -EOPNOTSUPP);
    CHECK_EQ(ferry_release(srv), -EOPNOTSUPP);
    ferry_cred cr;
    CHECK_EQ(ferry_chan_peer(srv, &cr), -EOPNOTSUPP);
    CHECK_EQ(ferry_chan_peer(cli, &cr), -EOPNOTSUPP);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- readiness fd */

static void test_chan_fd(void)
{
    STAGE("chan fd");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(url("-fd"), NULL, &l, &srv, &cli);
    int fd = ferry_chan_poll_fd(srv);
    CHECK(fd >= 0);
    CHECK_EQ(ferry_chan_poll_fd(srv), fd);
    CHECK(!readable(fd));
    send_typed(cli, 1, "x");
    CHECK(readable(fd));
    /* A typed receive moves it to the backlog: still readable. */
    expect_err(srv, 2, FERRY_NOW, -EAGAIN);
    CHECK(readable(fd));
    expect(srv, 0, FERRY_NOW, 1, "x");
    CHECK(!readable(fd));
    /* Armed after the message was moved to the backlog: readable too. */
    send_typed(srv, 3, "z");
    expect_err(cli, 4, FERRY_NOW, -EAGAIN);
    int fd2 = ferry_chan_poll_fd(cli);
    CHECK(fd2 >= 0);
    CHECK(readable(fd2));
    expect(cli, 3, FERRY_NOW, 3, "z");
    CHECK(!readable(fd2));
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- peer killed */

/* A queue outlives its writer: what a peer sent before kill -9 is received; then the
 * receive just times out (a queue cannot report the death). */
static void test_peer_killed(void)
{
    STAGE("peer killed");
    ferry_listener *l;
    ferry_chan *srv;
    CHECK_EQ(ferry_listen(url("-pk"), NULL, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    ctl c;
    ctl_init(&c);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_chan *ch;
        CHECK_EQ(ferry_chan_open(url("-pk"), NULL, &ch, T5S), 0);
        send_typed(ch, 1, "one");
        send_typed(ch, 2, "two");
        ctl_put(&c, 's');
        for (;;) pause(); /* killed here */
    }
    ctl_parent(&c);
    ctl_expect(&c, 's');
    kill(pid, SIGKILL);
    wait_signaled(pid, SIGKILL);
    ctl_close(&c);
    expect(srv, 2, FERRY_NOW, 2, "two");
    expect(srv, 0, FERRY_NOW, 1, "one");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);
    int64_t t0 = now_ns();
    expect_err(srv, 0, 50 * MS, -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    CHECK_EQ(ferry_send(srv, "x", 1, FERRY_NOW), 0); /* nobody will read it: no error */
    ferry_chan_close(srv);
    ferry_listener_close(l);
}

/* ---------------------------------------------------------------- persistence */

static void test_persist(void)
{
    STAGE("persist");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_PERSIST;
    o.max_msg = 200;
    o.capacity = 4;
    ferry_listener *l;
    ferry_chan *srv, *cli;
    CHECK_EQ(ferry_listen(url("-pe"), &o, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    send_typed(srv, 6, "kept");
    ferry_chan_close(srv);
    ferry_listener_close(l);
    CHECK(queue_exists("-pe", ".c2s") && queue_exists("-pe", ".s2c"));
    /* The message outlived its sender; the pair can be opened. */
    CHECK_EQ(ferry_chan_open(url("-pe"), NULL, &cli, T5S), 0);
    CHECK_EQ(ferry_chan_max_msg(cli), 200);
    expect(cli, 0, FERRY_NOW, 6, "kept");
    send_typed(cli, 2, "back");
    /* Listening again: without FERRY_PERSIST the name is taken; with it, the same shape
     * is reused and another shape refused. */
    ferry_chan_opts p;
    ferry_chan_opts_init(&p);
    p.max_msg = 200;
    p.capacity = 4;
    CHECK_EQ(ferry_listen(url("-pe"), &p, &l), -EADDRINUSE);
    p.flags = FERRY_PERSIST;
    p.max_msg = 100;
    CHECK_EQ(ferry_listen(url("-pe"), &p, &l), -EADDRINUSE);
    p.max_msg = 200;
    p.capacity = 3;
    CHECK_EQ(ferry_listen(url("-pe"), &p, &l), -EADDRINUSE);
    CHECK(queue_exists("-pe", ".c2s") && queue_exists("-pe", ".s2c"));
    CHECK_EQ(ferry_listen(url("-pe"), &o, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    expect(srv, 0, FERRY_NOW, 2, "back");
    pair_close(l, srv, cli);
    CHECK(queue_exists("-pe", ".c2s") && queue_exists("-pe", ".s2c"));
    /* The test removes them. */
    CHECK_EQ(mq_unlink(qname("-pe", ".c2s")), 0);
    CHECK_EQ(mq_unlink(qname("-pe", ".s2c")), 0);
    CHECK(!queue_exists("-pe", ".c2s") && !queue_exists("-pe", ".s2c"));
}

/* ---------------------------------------------------------------- garbage */

/* Write one raw message into the listener's incoming queue of "-gb". */
static void raw_send(const void *buf, size_t len, unsigned prio)
{
    mqd_t q = mq_open(qname("-gb", ".c2s"), O_WRONLY | O_CLOEXEC);
    CHECK(q >= 0);
    CHECK_EQ(mq_send(q, buf, len, prio), 0);
    mq_close(q);
}

static const junk junks[] = {
    {.what = "junk bytes", .raw = "garbage bytes"},
    {.what = "shorter than a header", .raw = "short"},
    {.what = "empty", .raw = ""},
    {.what = "length lies", .type = 1, .len = 3, .claim = 1},
    {.what = "length lies (short)", .type = 1, .len = 3, .claim = -1},
    {.what = "priority 1", .type = 1, .len = 3, .prio = 1},
    {.what = "bad crc", .type = 1, .len = 3, .flags = FERRY__F_CRC},
    {.what = "bad crc (checksummed)", .type = 1, .len = 3, .flags = FERRY__F_CRC, .checksum = 1},
    {.what = "fds", .type = 1, .len = 3, .nfds = 1},
    {.what = "shm flag", .type = 1, .len = 3, .flags = FERRY__F_WRAP},
    {.what = "unknown flag", .type = 1, .len = 3, .flags = 0x40},
};

static void test_garbage(void)
{
    STAGE("garbage");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    ferry_chan_opts o;
    uint8_t b[128];
    for (size_t v = 0; v < sizeof junks / sizeof junks[0]; v++) {
        const junk *j = &junks[v];
        STAGE(j->what);
        ferry_chan_opts_init(&o);
        if (j->checksum) o.flags = FERRY_CHECKSUM;
        pair_make(url("-gb"), &o, &l, &srv, &cli);
        int fd = ferry_chan_poll_fd(srv);
        CHECK(fd >= 0);
        send_typed(cli, 4, "before"); /* a good message first: it is still received */
        raw_send(b, junk_build(j, b), j->prio);
        if (j->prio == 0) expect(srv, 0, FERRY_NOW, 4, "before"); /* else it jumps ahead */
        /* Typed or not, a receive meets it: -EBADMSG, and the channel stays broken. */
        expect_err(srv, v % 2 ? 9 : 0, FERRY_NOW, -EBADMSG);
        expect_err(srv, 0, FERRY_NOW, -EBADMSG);
        expect_err(srv, -5, T5S, -EBADMSG);
        CHECK_EQ(ferry_send(srv, "x", 1, FERRY_NOW), -EBADMSG);
        CHECK(readable(fd)); /* an event loop finds out */
        pair_close(l, srv, cli);
    }
    /* A good frame from a raw writer is taken, with a crc too. */
    STAGE("garbage: a good raw frame");
    pair_make(url("-gb"), NULL, &l, &srv, &cli);
    junk good = {.type = 9, .len = 3, .flags = FERRY__F_CRC, .crc_ok = 1};
    raw_send(b, junk_build(&good, b), 0);
    expect(srv, 9, FERRY_NOW, 9, "JJJ");
    pair_close(l, srv, cli);
}

int main(void)
{
    watchdog_arm();
    snprintf(base, sizeof base, "/ferry-test-mq-%d", (int)getpid());
    msg_max = proc_num("/proc/sys/fs/mqueue/msg_max");
    msgsize_max = proc_num("/proc/sys/fs/mqueue/msgsize_max");
    msg_default = proc_num("/proc/sys/fs/mqueue/msg_default");
    msgsize_default = proc_num("/proc/sys/fs/mqueue/msgsize_default");
    (void)mq_dir(); /* may mount privately: before the fd count */
    char *before = mq_snapshot();
    int fds = fd_count();

    test_urls_and_options();
    test_round_trip();
    test_sizes();
    test_types();
    test_timeouts();
    test_unsupported();
    test_chan_fd();
    test_peer_killed();
    test_persist();
    test_garbage();

    STAGE("leftovers");
    CHECK_EQ(fd_count(), fds);
    snap_expect_equal(mq_snapshot, before, "POSIX queues (mqueue fs)");
    const char *sfx[] = {"-o",  "-d",  "-rt", "-sz", "-ty", "-bl",
                         "-to", "-un", "-fd", "-pk", "-pe", "-gb"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
        CHECK(!queue_exists(sfx[i], ".c2s") && !queue_exists(sfx[i], ".s2c"));
    free(before);
    printf("test_posixmq: ok\n");
    return 0;
}
