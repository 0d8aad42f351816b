// SPDX-License-Identifier: MIT
/*
 * test_sysvmq — the sysvmq:// transport (src/transport/sysvmq.c) against the public API,
 * with exact error codes; every blocking call is bounded:
 *  - URLs and options: bad keys and ids -EINVAL, no queue -ENOENT, a key in use
 *    -EADDRINUSE, a foreign queue at the key -ECONNREFUSED, capacity 0 / FERRY_UNBOUNDED
 *    -EOPNOTSUPP, an unknown flag and the kernel limits exceeded (msgmax, msgmnb)
 *    -EINVAL while the limits themselves work; the default shape; the mode;
 *  - a round trip between two processes over KEY (300 messages each way, in order; the
 *    child closes its inherited listener first, which must remove nothing), one peer
 *    only (a second opener -ECONNREFUSED), FERRY_CHECKSUM;
 *  - IPC_PRIVATE: a forked child opens "sysvmq://", another one "sysvmq://#MSQID";
 *  - max_msg set by option (100): max at both ends, max+1 -EMSGSIZE, nothing sent;
 *  - a too-small buffer holds the message at the front (-EMSGSIZE, its size and type):
 *    how the same, a negative and an untyped filter meet it; the type range 0..INT64_MAX-2
 *    (INT64_MAX, INT64_MAX - 1 and a filter beyond it -EINVAL);
 *  - timeouts under a storm of signals (EINTR does not shorten a bounded receive or a
 *    send on a full queue); a full queue (capacity 3 of max_msg 100) -EAGAIN (also for 0
 *    bytes) / -ETIMEDOUT, FERRY_FOREVER freed by a receive through a forked copy
 *    (stats.send_waits); capacity counted in bytes; accept: the one channel at once (the
 *    listener's poll fd readable), then -EAGAIN / -ETIMEDOUT;
 *  - peer gone: the listener's side closing gives the opener -EPIPE (a typed receive that
 *    cannot match at once, what it sent still arrives), also while it waits, and the last
 *    party out removes the queues; an opener killed (kill -9): the channel cannot be
 *    opened again (the hello died with it) and the queues go with the listener;
 *  - FERRY_PERSIST: the queues survive close, are opened and re-listened, then the test
 *    removes them; a re-listen from another process rewrites both records to name it;
 *  - ferry's records (read with MSG_COPY, nothing taken): the door holds one hello naming
 *    the back queue and the listener; the back queue (mode without group/other write)
 *    one owner record naming the door and the listener; an attached opener replaces the
 *    hello with an attach record naming both, and its close puts the same hello back;
 *  - garbage from a raw msgsnd (junk, short, length lie, mtype != type + 1, missing or
 *    bad crc, fds, shm flags, too long, empty) -> -EBADMSG and the channel stays broken;
 *    a junk hello -> -EBADMSG at open, and it is left in place; a message of the records'
 *    type longer than a hello first in line -> -ECONNREFUSED, left in place; a good raw
 *    frame is taken;
 *  - afterwards `ipcs -q` lists exactly what it listed before, and no fd leaked.
 * What every transport does (sizes, type filters, plain timeouts, the -EOPNOTSUPP of fds,
 * ferry_chan_poll_fd, zero copy and credentials, peer death by kill -9) is checked by
 * tests/conformance (`conformance sysvmq`).
 */
#include "mqtest.h"

#include "core/proc.h"
#include "transport/sysvmq_rec.h"

#include <limits.h>
#include <sys/msg.h>

static key_t key; /* a free key for this run */
static char key_url[64];
static long msgmax, msgmnb;

typedef struct raw_msg {
    long mtype;
    uint8_t text[16384];
} raw_msg;

/* A key nobody uses, from base upwards. */
static key_t free_key(key_t base)
{
    for (key_t k = base;; k++)
        if (msgget(k, 0) < 0 && errno == ENOENT) return k;
}

static const char *key_str(key_t k)
{
    static char u[2][64];
    static int i;
    i ^= 1;
    snprintf(u[i], sizeof u[i], "sysvmq://0x%x", (unsigned)k);
    return u[i];
}

static struct msqid_ds stat_of(int id)
{
    struct msqid_ds ds;
    CHECK_EQ(msgctl(id, IPC_STAT, &ds), 0);
    return ds;
}

/* The door of our newest private listener: a key-0 queue holding one 40-byte message
 * (the hello; the back queue holds a 32-byte owner record) last sent by this process. */
static int find_private_door(void)
{
    FILE *f = fopen("/proc/sysvipc/msg", "r");
    CHECK(f != NULL);
    char line[512];
    int found = -1;
    CHECK(fgets(line, sizeof line, f) != NULL); /* header */
    while (fgets(line, sizeof line, f)) {
        long k, id, qnum, lspid;
        unsigned long perms, cbytes;
        if (sscanf(line, "%ld %ld %lo %lu %ld %ld", &k, &id, &perms, &cbytes, &qnum, &lspid) != 6)
            continue;
        if (k == 0 && qnum == 1 && cbytes == 40 && lspid == getpid()) found = (int)id;
    }
    fclose(f);
    CHECK(found >= 0);
    return found;
}

/* ---------------------------------------------------------------- URLs and options */

static void test_urls_and_options(void)
{
    STAGE("urls and options");
    ferry_listener *l = NULL;
    ferry_chan *ch = NULL;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);

    /* No private listener yet in this process. */
    CHECK_EQ(ferry_chan_open("sysvmq://", NULL, &ch, T5S), -ENOENT);
    const char *bad[] = {"sysvmq://0",          "sysvmq://12ab",       "sysvmq://0x",
                         "sysvmq://-5",         "sysvmq://0xg",        "sysvmq:// 1",
                         "sysvmq://4294967296", "sysvmq://0x100000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(ferry_listen(bad[i], NULL, &l), -EINVAL);
        CHECK_EQ(ferry_chan_open(bad[i], NULL, &ch, T5S), -EINVAL);
    }
    CHECK_EQ(ferry_listen("sysvmq://#5", NULL, &l), -EINVAL); /* a listener makes queues */
    CHECK_EQ(ferry_chan_open("sysvmq://#", NULL, &ch, T5S), -EINVAL);
    CHECK_EQ(ferry_chan_open("sysvmq://#x1", NULL, &ch, T5S), -EINVAL);
    CHECK_EQ(ferry_chan_open("sysvmq://#2147483648", NULL, &ch, T5S), -EINVAL);
    key_t nokey = free_key(key + 100);
    CHECK_EQ(ferry_chan_open(key_str(nokey), NULL, &ch, T5S), -ENOENT);
    CHECK_EQ(ferry_chan_open("sysvmq://#2147483000", NULL, &ch, T5S), -ENOENT);

    o.capacity = 0;
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EOPNOTSUPP);
    o.capacity = FERRY_UNBOUNDED;
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EOPNOTSUPP);
    ferry_chan_opts_init(&o);
    o.flags = 1u << 12;
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EINVAL);
    ferry_chan_opts_init(&o);
    o.max_msg = (size_t)msgmax - 32 + 1;
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EINVAL);
    o.max_msg = 100;
    o.capacity = (uint32_t)((msgmnb - 48) / 132) + 1; /* 48: room for ferry's record */
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EINVAL);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT); /* nothing was made */

    /* At the limits. */
    o.capacity = (uint32_t)((msgmnb - 48) / 132);
    ferry_chan *srv, *cli;
    pair_make(key_url, &o, &l, &srv, &cli);
    CHECK_EQ(stat_of(msgget(key, 0)).msg_qbytes, (msglen_t)(o.capacity * 132 + 48));
    pair_close(l, srv, cli);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
    ferry_chan_opts_init(&o);
    o.max_msg = (size_t)msgmax - 32;
    o.mode = 0640;
    pair_make(key_url, &o, &l, &srv, &cli);
    CHECK_EQ(ferry_chan_max_msg(srv), (size_t)msgmax - 32);
    CHECK_EQ(ferry_chan_max_msg(cli), (size_t)msgmax - 32);
    struct msqid_ds ds = stat_of(msgget(key, 0));
    CHECK_EQ(ds.msg_perm.mode & 0777, 0640);
    CHECK_EQ(ds.msg_qbytes, (msglen_t)msgmnb); /* FERRY_CAP_RING: the kernel default */
    /* The key is taken while it lives. */
    ferry_listener *l2;
    CHECK_EQ(ferry_listen(key_url, NULL, &l2), -EADDRINUSE);
    o.flags = FERRY_PERSIST; /* its hello is taken: not reusable either */
    CHECK_EQ(ferry_listen(key_url, &o, &l2), -EADDRINUSE);
    pair_close(l, srv, cli);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);

    /* Defaults. */
    pair_make(key_url, NULL, &l, &srv, &cli);
    CHECK_EQ(ferry_chan_max_msg(cli), (size_t)msgmax - 32);
    CHECK_EQ(stat_of(msgget(key, 0)).msg_perm.mode & 0777, 0600);
    pair_close(l, srv, cli);

    /* A queue at the key that ferry did not make. */
    int foreign = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(foreign >= 0);
    CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), -ECONNREFUSED);
    CHECK_EQ(ferry_listen(key_url, NULL, &l), -EADDRINUSE);
    ferry_chan_opts_init(&o);
    o.flags = FERRY_PERSIST;
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EADDRINUSE);
    CHECK_EQ(stat_of(foreign).msg_qnum, 0); /* left as it was */
    CHECK_EQ(msgctl(foreign, IPC_RMID, NULL), 0);
}

/* ---------------------------------------------------------------- two processes */

static void test_round_trip(void)
{
    STAGE("round trip");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_CHECKSUM;
    o.max_msg = 512;
    ferry_listener *l;
    CHECK_EQ(ferry_listen(key_url, &o, &l), 0);
    ctl c;
    ctl_init(&c);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_listener_close(l); /* in another process: removes nothing */
        ferry_chan *ch;
        CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), 0);
        CHECK_EQ(ferry_chan_max_msg(ch), 512);
        exchange_opener(ch);
        ctl_put(&c, 'd');
        ctl_expect(&c, 'q'); /* the parent tried a second opener meanwhile */
        ferry_chan_close(ch);
        ctl_close(&c);
        child_exit();
    }
    ctl_parent(&c);
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    exchange_accepter(ch);
    ctl_expect(&c, 'd');
    ferry_chan *second;
    CHECK_EQ(ferry_chan_open(key_url, NULL, &second, T5S), -ECONNREFUSED);
    ctl_put(&c, 'q');
    wait_ok(pid);
    ctl_close(&c);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(ch, &st), 0);
    CHECK_EQ(st.recv_msgs, RT_N);
    CHECK_EQ(st.sent_msgs, RT_N);
    ferry_chan_close(ch);
    CHECK(msgget(key, 0) >= 0); /* the listener still holds the queues */
    ferry_listener_close(l);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
}

/* Child side of a private-queue exchange: open url, answer "ping" with "pong". */
static void private_child(const char *url)
{
    ferry_chan *ch;
    int rc = ferry_chan_open(url, NULL, &ch, T5S);
    if (rc < 0) fprintf(stderr, "open %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
    expect(ch, 0, T5S, 3, "ping");
    send_typed(ch, 4, "pong");
    ferry_chan_close(ch);
    child_exit();
}

static void test_private(void)
{
    STAGE("private");
    ferry_listener *l;
    ferry_chan *ch;
    for (int by_id = 0; by_id < 2; by_id++) {
        CHECK_EQ(ferry_listen("sysvmq://", NULL, &l), 0);
        char url[64] = "sysvmq://";
        if (by_id) snprintf(url, sizeof url, "sysvmq://#%d", find_private_door());
        pid_t pid = fork_child();
        if (pid == 0) private_child(url);
        CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
        send_typed(ch, 3, "ping");
        expect(ch, 0, T5S, 4, "pong");
        wait_ok(pid);
        ferry_chan_close(ch);
        ferry_listener_close(l);
    }
    /* No private listener open any more. */
    CHECK_EQ(ferry_chan_open("sysvmq://", NULL, &ch, T5S), -ENOENT);
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
    pair_make(key_url, &o, &l, &srv, &cli);
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

#define TYPE_MAX (INT64_MAX - 2)

static void test_types(void)
{
    STAGE("types");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(key_url, NULL, &l, &srv, &cli);
    /* -EMSGSIZE holds the message at the front: the same filter gets it again, a negative
     * filter only when nothing lower waits, an untyped receive first of all. */
    send_typed(cli, 5, "a5");
    send_typed(cli, 7, "b7");
    send_typed(cli, 2, "c2");
    char small[1];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = small;
    m.cap = sizeof small;
    CHECK_EQ(ferry_recvmsg(srv, &m, 7, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(m.len, 2);
    CHECK_EQ(m.type, 7);
    expect_err(srv, 8, FERRY_NOW, -EAGAIN);
    expect(srv, -9, FERRY_NOW, 2, "c2"); /* lower than the held 7 */
    expect(srv, 7, FERRY_NOW, 7, "b7");
    expect(srv, 0, FERRY_NOW, 5, "a5");
    send_typed(cli, 5, "d5");
    send_typed(cli, 7, "e7");
    CHECK_EQ(ferry_recvmsg(srv, &m, 7, FERRY_NOW), -EMSGSIZE);
    expect(srv, -9, FERRY_NOW, 5, "d5");
    expect(srv, -9, FERRY_NOW, 7, "e7");
    send_typed(cli, 5, "f5");
    send_typed(cli, 7, "g7");
    CHECK_EQ(ferry_recvmsg(srv, &m, -7, FERRY_NOW), -EMSGSIZE); /* takes f5 */
    CHECK_EQ(m.type, 5);
    expect(srv, 0, FERRY_NOW, 5, "f5");
    expect(srv, 0, FERRY_NOW, 7, "g7");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);

    /* The type range: 0..INT64_MAX-2. */
    memset(&m, 0, sizeof m);
    m.data = "x";
    m.len = 1;
    m.type = INT64_MAX;
    CHECK_EQ(ferry_sendmsg(cli, &m, T5S), -EINVAL);
    m.type = INT64_MAX - 1;
    CHECK_EQ(ferry_sendmsg(cli, &m, T5S), -EINVAL);
    expect_err(srv, TYPE_MAX + 1, FERRY_NOW, -EINVAL);
    send_typed(cli, TYPE_MAX, "top");
    expect(srv, TYPE_MAX, FERRY_NOW, TYPE_MAX, "top");
    expect_err(srv, 0, FERRY_NOW, -EAGAIN);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- timeouts and capacity */

static void test_timeouts(void)
{
    STAGE("timeouts");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = 100;
    o.capacity = 3; /* msg_qbytes = 3 * 132 + 48 (the attach record's room) */
    ferry_listener *l;
    ferry_chan *srv, *cli;
    CHECK_EQ(ferry_listen(key_url, &o, &l), 0);
    accept_bounds(l, &srv);
    CHECK_EQ(ferry_chan_open(key_url, NULL, &cli, T5S), 0);
    recv_eintr_bound(srv);

    char buf[128];

    /* Capacity: three messages of max_msg fill the queue. */
    STAGE("timeouts: full queue");
    memset(buf, 'c', sizeof buf);
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_send(cli, buf, 100, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(cli, buf, 100, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_send(cli, buf, 0, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_send(cli, buf, 100, 50 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    mqtest_signals = 0;
    pid_t storm = usr1_storm(150);
    t0 = now_ns();
    CHECK_EQ(ferry_send(cli, buf, 100, 100 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 100 * MS);
    wait_ok(storm);
    pid_t pid = fork_child();
    if (pid == 0) {
        sleep_ms(100);
        char b[128];
        CHECK_EQ(ferry_recv(srv, b, sizeof b, T5S), 100);
        ferry_chan_close(srv); /* a copy in another process: removes nothing */
        child_exit();
    }
    t0 = now_ns();
    buf[0] = 'e';
    CHECK_EQ(ferry_send(cli, buf, 100, FERRY_FOREVER), 0);
    CHECK(now_ns() - t0 >= 90 * MS);
    wait_ok(pid);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(cli, &st), 0);
    CHECK(st.send_waits >= 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), 100);
    CHECK_EQ(buf[0], 'e');
    /* System V counts bytes: smaller messages fit in greater number (396 / 32). */
    int n = 0;
    while (ferry_send(cli, "", 0, FERRY_NOW) == 0) n++;
    CHECK_EQ(n, 396 / 32);
    for (int i = 0; i < n; i++) CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), 0);
    CHECK_EQ(ferry_recv(srv, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    pair_close(l, srv, cli);
}

/* ---------------------------------------------------------------- peer death */

static void test_peer_gone(void)
{
    STAGE("peer gone");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(key_url, NULL, &l, &srv, &cli);
    send_typed(srv, 1, "last");
    send_typed(srv, 2, "very last");
    ferry_chan_close(srv);
    /* An opener is attached: the listener leaves (its back queue's owner write bit goes)
     * and the queues stay, with what it sent, until the opener closes. */
    ferry_listener_close(l);
    int door = msgget(key, 0);
    CHECK(door >= 0);
    char buf[16];
    expect_err(cli, 3, FERRY_NOW, -EPIPE);         /* a type that never comes */
    expect(cli, 2, FERRY_FOREVER, 2, "very last"); /* what it sent still arrives */
    expect(cli, 0, FERRY_NOW, 1, "last");
    CHECK_EQ(ferry_recv(cli, buf, sizeof buf, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_send(cli, "x", 1, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_recv(cli, buf, sizeof buf, FERRY_FOREVER), -EPIPE);
    ferry_chan_close(cli); /* the last party out removes the queues */
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
    CHECK(msgctl(door, IPC_STAT, &(struct msqid_ds){0}) < 0);

    /* While the opener waits. */
    CHECK_EQ(ferry_listen(key_url, NULL, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        ferry_chan *c2;
        CHECK_EQ(ferry_chan_open(key_url, NULL, &c2, T5S), 0);
        int64_t t0 = now_ns();
        CHECK_EQ(ferry_recv(c2, buf, sizeof buf, T5S), -EPIPE);
        CHECK(now_ns() - t0 < 4 * SEC);
        ferry_chan_close(c2);
        child_exit();
    }
    sleep_ms(100);
    ferry_chan_close(srv);
    ferry_listener_close(l);
    wait_ok(pid);

    /* An opener killed (kill -9): the hello died with it, so nobody can open the channel
     * again (what it sent is still received, then receives time out: conformance
     * "peer death"). */
    CHECK_EQ(ferry_listen(key_url, NULL, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    ctl c;
    ctl_init(&c);
    pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_chan *c2;
        CHECK_EQ(ferry_chan_open(key_url, NULL, &c2, T5S), 0);
        ctl_put(&c, 's');
        for (;;) pause(); /* killed here */
    }
    ctl_parent(&c);
    ctl_expect(&c, 's');
    kill(pid, SIGKILL);
    wait_signaled(pid, SIGKILL);
    ctl_close(&c);
    ferry_chan *again;
    CHECK_EQ(ferry_chan_open(key_url, NULL, &again, T5S), -ECONNREFUSED);
    ferry_chan_close(srv);
    ferry_listener_close(l);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
}

/* ---------------------------------------------------------------- ferry's records */

/* The records (mtype LONG_MAX) of queue id, read with MSG_COPY (nothing is taken), into
 * out; each must decode. Returns how many. */
static int records_of(int id, ferry__svq_rec *out, int max)
{
    raw_msg *r = malloc(sizeof *r);
    CHECK(r != NULL);
    int n = 0;
    for (long pos = 0;; pos++) {
        ssize_t len = msgrcv(id, r, sizeof r->text, pos, IPC_NOWAIT | MSG_COPY);
        if (len < 0) {
            CHECK_EQ(errno, ENOMSG);
            break;
        }
        if (r->mtype != LONG_MAX) continue;
        CHECK(n < max);
        CHECK_EQ(svq_rec_decode(r->text, (size_t)len, &out[n]), 0);
        n++;
    }
    free(r);
    return n;
}

static pid_t id_pid(uint64_t id)
{
    return (pid_t)(id & ((UINT64_C(1) << 22) - 1));
}

/* Does this kernel have MSG_COPY (CONFIG_CHECKPOINT_RESTORE)? */
static int have_msg_copy(void)
{
    int q = msgget(IPC_PRIVATE, 0600);
    CHECK(q >= 0);
    raw_msg *r = malloc(sizeof *r);
    CHECK(r != NULL);
    r->mtype = 1;
    CHECK_EQ(msgsnd(q, r, 1, 0), 0);
    int ok = msgrcv(q, r, 16, 0, IPC_NOWAIT | MSG_COPY) == 1;
    free(r);
    CHECK_EQ(msgctl(q, IPC_RMID, NULL), 0);
    return ok;
}

static void test_records(void)
{
    STAGE("records");
    if (!have_msg_copy()) {
        printf("test_sysvmq: records not checked: no MSG_COPY in this kernel\n");
        return;
    }
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_CHECKSUM;
    o.max_msg = 100;
    o.mode = 0666;
    ferry_listener *l;
    CHECK_EQ(ferry_listen(key_url, &o, &l), 0);
    int door = msgget(key, 0);
    CHECK(door >= 0);
    ferry__svq_rec hello[4], rec[4];
    CHECK_EQ(records_of(door, hello, 4), 1);
    CHECK_EQ(hello[0].kind, FERRY__SVQ_HELLO);
    CHECK_EQ(hello[0].crc, 1);
    CHECK_EQ(hello[0].max_msg, 100);
    CHECK_EQ(hello[0].listener, ferry__proc_self());
    int back = hello[0].back;
    CHECK_EQ(stat_of(door).msg_perm.mode & 0777, 0666);
    CHECK_EQ(stat_of(back).msg_perm.mode & 0777, 0644); /* only the owner writes to it */
    CHECK_EQ(records_of(back, rec, 4), 1);
    CHECK_EQ(rec[0].kind, FERRY__SVQ_OWNER);
    CHECK_EQ(rec[0].door, door);
    CHECK_EQ(rec[0].listener, ferry__proc_self());

    /* An opener in another process: its attach record in the hello's place. */
    ctl c;
    ctl_init(&c);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_chan *ch;
        CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), 0);
        ctl_put(&c, 'o');
        ctl_expect(&c, 'q');
        ferry_chan_close(ch);
        child_exit();
    }
    ctl_parent(&c);
    ctl_expect(&c, 'o');
    CHECK_EQ(records_of(door, rec, 4), 1);
    CHECK_EQ(rec[0].kind, FERRY__SVQ_ATTACH);
    CHECK_EQ(rec[0].back, back);
    CHECK_EQ(rec[0].door, door);
    CHECK_EQ(rec[0].listener, ferry__proc_self());
    CHECK_EQ(id_pid(rec[0].opener), pid);
    CHECK(!ferry__proc_dead(rec[0].opener));
    ferry_chan *second;
    CHECK_EQ(ferry_chan_open(key_url, NULL, &second, T5S), -ECONNREFUSED);
    CHECK_EQ(records_of(door, rec, 4), 1);
    CHECK_EQ(rec[0].kind, FERRY__SVQ_ATTACH);
    ctl_put(&c, 'q');
    wait_ok(pid);
    ctl_close(&c);
    CHECK_EQ(records_of(door, rec, 4), 1); /* the same hello is back */
    CHECK(memcmp(&rec[0], &hello[0], sizeof rec[0]) == 0);
    CHECK_EQ(stat_of(door).msg_qnum, 1);
    ferry_listener_close(l);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
    CHECK(msgctl(back, IPC_STAT, &(struct msqid_ds){0}) < 0);
}

/* The listener's close with an opener attached (sysvmq.c, "Lifetime"): it leaves (the
 * back queue loses its owner write bit, the queues and what it sent stay); the opener
 * drains, gets -EPIPE, and its close removes both queues. Then CLOSE_ROUNDS rounds where
 * the listener and the opener (another process) close at the same moment: whichever
 * order the kernel sees, nothing is left (and the opener's receive, if it came first,
 * got the reply). */
#define CLOSE_ROUNDS 100

static void test_leave(void)
{
    STAGE("leave");
    if (!have_msg_copy()) {
        printf("test_sysvmq: leave not checked: no MSG_COPY in this kernel\n");
        return;
    }
    for (int round = -1; round < CLOSE_ROUNDS; round++) {
        ferry_listener *l;
        ferry_chan *srv;
        CHECK_EQ(ferry_listen(key_url, NULL, &l), 0);
        int door = msgget(key, 0);
        CHECK(door >= 0);
        ferry__svq_rec rec[4];
        CHECK_EQ(records_of(door, rec, 4), 1);
        int back = rec[0].back;
        CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
        ctl c;
        ctl_init(&c);
        pid_t pid = fork_child();
        if (pid == 0) {
            ctl_child(&c);
            ferry_chan *ch;
            CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), 0);
            ctl_put(&c, 'o');
            ctl_expect(&c, 'g');
            if (round < 0) { /* the listener has left: its reply, then -EPIPE */
                expect(ch, 0, T5S, 1, "reply");
                expect_err(ch, 0, FERRY_FOREVER, -EPIPE);
                CHECK_EQ(ferry_send(ch, "x", 1, FERRY_NOW), -EPIPE);
            } else if (round % 2) {
                sched_yield();
            }
            ferry_chan_close(ch);
            child_exit();
        }
        ctl_parent(&c);
        ctl_expect(&c, 'o');
        send_typed(srv, 1, "reply");
        if (round >= 0) ctl_put(&c, 'g');
        ferry_chan_close(srv);
        ferry_listener_close(l);
        if (round < 0) {
            struct msqid_ds ds = stat_of(back);
            CHECK_EQ(ds.msg_perm.mode & 0777, 0400); /* the "left" mark */
            CHECK_EQ(ds.msg_qnum, 2);                /* the owner record and the reply */
            CHECK_EQ(records_of(back, rec, 4), 1);
            CHECK_EQ(rec[0].kind, FERRY__SVQ_OWNER);
            CHECK(msgget(key, 0) == door);
            ctl_put(&c, 'g');
        }
        wait_ok(pid);
        ctl_close(&c);
        CHECK(msgget(key, 0) < 0 && errno == ENOENT);
        CHECK(msgctl(back, IPC_STAT, &(struct msqid_ds){0}) < 0);
    }
}

/* ---------------------------------------------------------------- persistence */

/* The System V queues in `now` that are not in `before`, by msqid. */
static int new_queues(const char *before, int *ids, int max)
{
    char *now = ipcs_snapshot();
    int n = 0;
    for (char *line = strtok(now, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(before, line)) continue;
        CHECK(n < max);
        CHECK_EQ(sscanf(line, "%*s %d", &ids[n]), 1);
        n++;
    }
    free(now);
    return n;
}

static void test_persist(void)
{
    STAGE("persist");
    char *before = ipcs_snapshot();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_PERSIST;
    o.max_msg = 200;
    ferry_listener *l;
    ferry_chan *srv, *cli;
    pair_make(key_url, &o, &l, &srv, &cli);
    send_typed(srv, 6, "kept");
    send_typed(cli, 2, "back");
    ferry_chan_close(srv);
    ferry_listener_close(l); /* the queues stay */
    ferry_chan_close(cli);   /* the opener gives the hello back */
    int ids[4];
    CHECK_EQ(new_queues(before, ids, 4), 2); /* door and back queue */
    CHECK(msgget(key, 0) >= 0);

    /* Open again: the message waits; one peer at a time. */
    CHECK_EQ(ferry_chan_open(key_url, NULL, &cli, T5S), 0);
    CHECK_EQ(ferry_chan_max_msg(cli), 200);
    expect(cli, 0, FERRY_NOW, 6, "kept");
    ferry_chan *cli2;
    CHECK_EQ(ferry_chan_open(key_url, NULL, &cli2, T5S), -ECONNREFUSED);
    CHECK_EQ(ferry_listen(key_url, &o, &l), -EADDRINUSE); /* a peer is attached */
    ferry_chan_close(cli);

    /* Listen again: another shape, or no FERRY_PERSIST, is refused; the same shape
     * reuses the queues, with what they hold. */
    ferry_chan_opts p = o;
    p.max_msg = 100;
    CHECK_EQ(ferry_listen(key_url, &p, &l), -EADDRINUSE);
    p = o;
    p.flags = FERRY_PERSIST | FERRY_CHECKSUM;
    CHECK_EQ(ferry_listen(key_url, &p, &l), -EADDRINUSE);
    p = o;
    p.flags = 0;
    CHECK_EQ(ferry_listen(key_url, &p, &l), -EADDRINUSE);
    CHECK_EQ(new_queues(before, ids, 4), 2);
    CHECK_EQ(ferry_listen(key_url, &o, &l), 0);
    CHECK_EQ(ferry_accept(l, &srv, FERRY_NOW), 0);
    expect(srv, 0, FERRY_NOW, 2, "back");
    CHECK_EQ(ferry_chan_open(key_url, NULL, &cli, T5S), 0);
    send_typed(cli, 3, "again");
    expect(srv, 0, FERRY_NOW, 3, "again");
    send_typed(srv, 4, "reply");
    expect(cli, 0, FERRY_NOW, 4, "reply");
    pair_close(l, srv, cli);
    CHECK_EQ(new_queues(before, ids, 4), 2);

    /* A re-listen from another process makes it the listener in both records. */
    if (have_msg_copy()) {
        pid_t pid = fork_child();
        if (pid == 0) {
            ferry_listener *l2;
            CHECK_EQ(ferry_listen(key_url, &o, &l2), 0);
            ferry_listener_close(l2);
            child_exit();
        }
        wait_ok(pid);
        ferry__svq_rec rec[4];
        int door = msgget(key, 0);
        CHECK_EQ(records_of(door, rec, 4), 1);
        CHECK_EQ(rec[0].kind, FERRY__SVQ_HELLO);
        CHECK_EQ(id_pid(rec[0].listener), pid);
        int back = rec[0].back;
        CHECK_EQ(records_of(back, rec, 4), 1);
        CHECK_EQ(rec[0].kind, FERRY__SVQ_OWNER);
        CHECK_EQ(rec[0].door, door);
        CHECK_EQ(id_pid(rec[0].listener), pid);
        CHECK(ferry__proc_dead(rec[0].listener));
    }

    /* The test removes them. */
    for (int i = 0; i < 2; i++) CHECK_EQ(msgctl(ids[i], IPC_RMID, NULL), 0);
    CHECK_EQ(new_queues(before, ids, 4), 0);
    CHECK(msgget(key, 0) < 0 && errno == ENOENT);
    free(before);
}

/* ---------------------------------------------------------------- garbage */

static void raw_send(long mtype, const void *buf, size_t len)
{
    static raw_msg r;
    int door = msgget(key, 0);
    CHECK(door >= 0);
    r.mtype = mtype;
    memcpy(r.text, buf, len);
    CHECK_EQ(msgsnd(door, &r, len, IPC_NOWAIT), 0);
}

/* The channels under attack have max_msg 100. */
static const junk junks[] = {
    {.what = "junk bytes", .raw = "garbage bytes", .mtype = 2},
    {.what = "shorter than a header", .raw = "short", .mtype = 2},
    {.what = "empty", .raw = "", .mtype = 2},
    {.what = "length lies", .type = 1, .len = 3, .claim = 1},
    {.what = "length lies (short)", .type = 1, .len = 3, .claim = -1},
    {.what = "type != mtype - 1", .type = 7, .len = 3, .mtype = 2},
    {.what = "crc missing (checksummed)", .type = 1, .len = 3, .checksum = 1},
    {.what = "bad crc (checksummed)", .type = 1, .len = 3, .flags = FERRY__F_CRC, .checksum = 1},
    {.what = "bad crc", .type = 1, .len = 3, .flags = FERRY__F_CRC},
    {.what = "fds", .type = 1, .len = 3, .nfds = 2},
    {.what = "shm flag", .type = 1, .len = 3, .flags = FERRY__F_JUMP},
    {.what = "longer than 32 + max_msg", .type = 1, .len = 140, .claim = -40},
    {.what = "payload_len > max_msg", .type = 1, .len = 100, .claim = 1},
};

static void test_garbage(void)
{
    STAGE("garbage");
    ferry_listener *l;
    ferry_chan *srv, *cli;
    static uint8_t b[1024];
    ferry_chan_opts o;
    for (size_t v = 0; v < sizeof junks / sizeof junks[0]; v++) {
        const junk *j = &junks[v];
        STAGE(j->what);
        ferry_chan_opts_init(&o);
        o.max_msg = 100;
        if (j->checksum) o.flags = FERRY_CHECKSUM;
        pair_make(key_url, &o, &l, &srv, &cli);
        send_typed(cli, 4, "before"); /* a good message first: it is still received */
        raw_send(j->mtype ? j->mtype : (long)j->type + 1, b, junk_build(j, b));
        expect(srv, 0, FERRY_NOW, 4, "before");
        /* Typed (mtype 2 is type 1) or not, a receive meets it: -EBADMSG, for good. */
        expect_broken(srv, v % 2 ? 1 : -9);
        pair_close(l, srv, cli);
        CHECK(msgget(key, 0) < 0 && errno == ENOENT);
    }
    /* A good frame from a raw writer is taken, with a crc too. */
    STAGE("garbage: a good raw frame");
    ferry_chan_opts_init(&o);
    o.flags = FERRY_CHECKSUM;
    pair_make(key_url, &o, &l, &srv, &cli);
    junk good = {.type = 9, .len = 3, .flags = FERRY__F_CRC, .crc_ok = 1};
    raw_send(10, b, junk_build(&good, b));
    expect(srv, 9, FERRY_NOW, 9, "JJJ");
    pair_close(l, srv, cli);

    /* A junk hello: -EBADMSG at open, and it stays where it was. */
    int q = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    CHECK(q >= 0);
    raw_msg *r = malloc(sizeof *r);
    CHECK(r != NULL);
    r->mtype = LONG_MAX;
    memset(r->text, 0x5a, 24);
    CHECK_EQ(msgsnd(q, r, 24, 0), 0);
    ferry_chan *ch;
    CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), -EBADMSG);
    CHECK_EQ(stat_of(q).msg_qnum, 1);
    CHECK_EQ(msgsnd(q, r, 30, 0), 0); /* and a longer one of that type first in line */
    CHECK_EQ(msgrcv(q, r, 24, LONG_MAX, IPC_NOWAIT), 24);
    CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), -EBADMSG);
    CHECK_EQ(stat_of(q).msg_qnum, 1);
    /* Longer than a hello (as an attach record is): refused, and nothing is taken. */
    CHECK_EQ(msgrcv(q, r, 30, LONG_MAX, IPC_NOWAIT), 30);
    CHECK_EQ(msgsnd(q, r, 41, 0), 0);
    CHECK_EQ(ferry_chan_open(key_url, NULL, &ch, T5S), -ECONNREFUSED);
    CHECK_EQ(stat_of(q).msg_qnum, 1);
    CHECK_EQ(stat_of(q).msg_cbytes, 41);
    free(r);
    CHECK_EQ(msgctl(q, IPC_RMID, NULL), 0);
}

int main(void)
{
    watchdog_arm();
    msgmax = proc_num("/proc/sys/kernel/msgmax");
    msgmnb = proc_num("/proc/sys/kernel/msgmnb");
    key = free_key((key_t)(0x7e000000u | ((unsigned)getpid() & 0xfffffu) << 4));
    snprintf(key_url, sizeof key_url, "%s", key_str(key));
    char *before = ipcs_snapshot();
    int fds = fd_count();

    test_urls_and_options();
    test_round_trip();
    test_private();
    test_sizes();
    test_types();
    test_timeouts();
    test_peer_gone();
    test_records();
    test_leave();
    test_persist();
    test_garbage();

    STAGE("leftovers");
    CHECK_EQ(fd_count(), fds);
    snap_expect_equal(ipcs_snapshot, before, "System V queues (ipcs -q)");
    free(before);
    printf("test_sysvmq: ok\n");
    return 0;
}
