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
 *  - max_msg set by option (100): max at both ends, max+1 -EMSGSIZE, nothing sent;
 *  - the bounded backlog of passed-over messages (capacity 2: a typed receive that
 *    cannot match times out, nothing is lost);
 *  - timeouts under a storm of signals (EINTR does not shorten a bounded receive or a
 *    send on a full queue); a send on a full queue (capacity 3) -EAGAIN / -ETIMEDOUT, and
 *    FERRY_FOREVER freed by a receive through a forked copy of the end (stats.send_waits);
 *    accept: the one channel at once (the listener's poll fd readable), then -EAGAIN /
 *    -ETIMEDOUT;
 *  - ferry_chan_poll_fd and ferry_listener_poll_fd readiness (backlog included);
 *  - FERRY_PERSIST: the queues survive close, can be opened and re-listened, then the
 *    test removes them;
 *  - garbage written by a raw mq_send: junk, bad length, bad priority, bad crc, fds,
 *    shm flags -> -EBADMSG and the channel stays broken; a good raw frame is accepted;
 *  - afterwards the queue list equals the one from before, and no fd leaked.
 * What every transport does (sizes, type filters, plain timeouts, the -EOPNOTSUPP of fds,
 * zero copy and credentials, peer death) is checked by tests/conformance
 * (`conformance posixmq`).
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
        exchange_opener(ch);
        ferry_chan_counters st;
        ferry_chan_counters_init(&st);
        CHECK_EQ(ferry_chan_stats(ch, &st), 0);
        CHECK_EQ(st.sent_msgs, RT_N);
        CHECK_EQ(st.recv_msgs, RT_N);
        ferry_chan_close(ch);
        child_exit();
    }
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    exchange_accepter(ch);
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
    CHECK_EQ(ferry_chan_max_msg(srv), 100);
    uint8_t buf[200], in[200];
    fill_seq(buf, 100, 2);
    CHECK_EQ(ferry_send(cli, buf, 100, T5S), 0);
    CHECK_EQ(ferry_send(cli, buf, 101, T5S), -EMSGSIZE);
    CHECK_EQ(ferry_recv(srv, in, sizeof in, T5S), 100);
    CHECK(check_seq(in, 100, 2));
    CHECK_EQ(ferry_recv(srv, in, sizeof in, FERRY_NOW), -EAGAIN); /* max+1 never went */
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- types */

static void test_types(void)
{
    STAGE("types");
    ferry_chan_opts o;
    ferry_listener *l;
    ferry_chan *srv, *cli;
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
    int64_t t0 = now_ns();
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
    accept_bounds(l, &srv);
    CHECK_EQ(ferry_chan_open(url("-to"), NULL, &cli, T5S), 0);
    recv_eintr_bound(srv);

    char buf[16];

    /* Capacity 3: a full queue makes a send -EAGAIN / -ETIMEDOUT; FOREVER waits for room. */
    STAGE("timeouts: full queue");
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_send(cli, "c", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(cli, "d", 1, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_send(cli, "d", 1, 50 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    mqtest_signals = 0;
    pid_t storm = usr1_storm(150);
    t0 = now_ns();
    CHECK_EQ(ferry_send(cli, "d", 1, 100 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 100 * MS);
    wait_ok(storm);
    pid_t pid = fork_child();
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
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(cli, &st), 0);
    CHECK(st.send_waits >= 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), 1);
    CHECK_EQ(buf[0], 'e');
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), -EAGAIN);
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
        expect_broken(srv, v % 2 ? 9 : 0);
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
    test_chan_fd();
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
