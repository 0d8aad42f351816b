// SPDX-License-Identifier: MIT
/*
 * test_abi_api — ferry.h's "Sized structs" rule through every public function that takes
 * an options struct or a policy, fills counters, or fills a record, with a real ferryd for
 * the naming service's functions.
 *  - Options (ferry_chan_opts: ferry_pair, ferry_pair_fd, ferry_pipe_pair,
 *    ferry_pipe_pair_fd, ferry_chan_adopt, ferry_listen, ferry_chan_open, ferry_register,
 *    ferry_connect, ferry_inbox_open, ferry_rpc_connect, ferry_serve; ferry_bcast_opts:
 *    ferry_bcast_create; ferry_mailbox_opts: ferry_mailbox_create; ferry_region_opts:
 *    ferry_region_create, ferry_state_create; ferry_policy:
 *    ferry_register, ferry_publish, ferry_inbox_open, ferry_serve): a prepared struct, NULL,
 *    the first version's size, and a newer caller's larger struct whose extra bytes are
 *    zero (up to 4096) all work; a nonzero byte past this library's struct is exactly
 *    -E2BIG; size 0, below the first version's, above 4096 and a never-prepared
 *    (0xEE-filled) struct are exactly -EINVAL; a refused call makes nothing (no socket
 *    file, no name, no descriptor: ferry_chan_adopt closes its fd as it says).
 *  - ferry_X_opts_init_sized and ferry_policy_init_sized: a larger caller's extra bytes
 *    are zeroed and its size recorded, a smaller one gets only its prefix (canary bytes
 *    after it untouched), both with the defaults of ferry_X_init.
 *  - Counters (ferry_chan_stats, ferry_mailbox_stats, ferry_event_stats): exact and larger
 *    callers get this library's struct with size = its sizeof and the canary bytes past it
 *    untouched; a bad size is exactly -EINVAL with nothing written.
 *  - Records: ferry_lookup, ferry_list, ferry_watch_next and ferry_recv_request zero the
 *    reserved room of what they fill.
 *  - No descriptor leaks.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "core/abi.h"

#include <fcntl.h>
#include <ferry/ferry.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* A caller's struct of any claimed size. */
typedef union buf {
    max_align_t align;
    unsigned char b[FERRY__SIZED_MAX + 64];
} buf;

static void set_size(buf *u, size_t size)
{
    memcpy(u->b, &size, sizeof size);
}

static size_t get_size(const buf *u)
{
    size_t s;
    memcpy(&s, u->b, sizeof s);
    return s;
}

static int all_ee_from(const buf *u, size_t from)
{
    for (size_t i = from; i < sizeof u->b; i++)
        if (u->b[i] != 0xEE) return 0;
    return 1;
}

/* ------------------------------------------------------------------ fixtures */

static test_broker broker;
static char dir[80];
static char unix_url[200], unix_path[100];
static ferry_listener *unix_l;  /* ferry_chan_open's peer */
static ferry_listener *named_l; /* "org.abi.srv": ferry_connect's and ferry_rpc_connect's */
static ferry_sem *sem;          /* ferry_publish's object */
static atomic_int stop;

/* Accept on both listeners until stop, keeping the channels (closing one at once could
 * end its handshake with -EPIPE on the opener's side); closed at the end. A round of
 * accepts holds accept_lock, which refused() takes while it counts descriptors: the
 * accept of an earlier, successful connect must not land between its two counts (it
 * did once: 23 before, 25 after a refused ferry_connect). */
#define MAX_ACCEPTED 512
static ferry_chan *accepted[MAX_ACCEPTED];
static int naccepted;
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static void *acceptor(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        ferry_listener *ls[2] = {unix_l, named_l};
        pthread_mutex_lock(&accept_lock);
        for (int i = 0; i < 2; i++) {
            ferry_chan *ch;
            if (ferry_accept(ls[i], &ch, 10 * MS) != 0) continue;
            CHECK(naccepted < MAX_ACCEPTED);
            accepted[naccepted++] = ch;
        }
        pthread_mutex_unlock(&accept_lock);
    }
    return NULL;
}

static void handler(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx)
{
    (void)conn, (void)rq, (void)ctx;
}

/* ------------------------------------------------------------------ input families */

/* The calls: each uses the struct at p (the options or the policy), returns its result,
 * and on success undoes what it made. */
static int c_pair(const void *p)
{
    ferry_chan *a, *b;
    int rc = ferry_pair(p, &a, &b);
    if (rc == 0) ferry_chan_close(a), ferry_chan_close(b);
    return rc;
}

static int c_pair_fd(const void *p)
{
    ferry_chan *a;
    int fd;
    int rc = ferry_pair_fd(p, &a, &fd);
    if (rc == 0) ferry_chan_close(a), close(fd);
    return rc;
}

static int c_pipe_pair(const void *p)
{
    ferry_chan *a, *b;
    int rc = ferry_pipe_pair(p, &a, &b);
    if (rc == 0) ferry_chan_close(a), ferry_chan_close(b);
    return rc;
}

static int c_pipe_pair_fd(const void *p)
{
    ferry_chan *a;
    int fds[2];
    int rc = ferry_pipe_pair_fd(p, &a, fds);
    if (rc == 0) ferry_chan_close(a), close(fds[0]), close(fds[1]);
    return rc;
}

static int c_adopt(const void *p)
{
    ferry_chan *a, *b;
    int fd;
    CHECK_EQ(ferry_pair_fd(NULL, &a, &fd), 0);
    int rc = ferry_chan_adopt(fd, p, &b);
    if (rc == 0) {
        ferry_chan_close(b);
    } else {
        CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF); /* "on failure fd is closed" */
    }
    ferry_chan_close(a);
    return rc;
}

static int c_listen(const void *p)
{
    char url[200], path[100];
    snprintf(path, sizeof path, "%s/listen.sock", dir);
    snprintf(url, sizeof url, "unix://%s", path);
    ferry_listener *l;
    int rc = ferry_listen(url, p, &l);
    if (rc == 0) {
        ferry_listener_close(l);
        unlink(path);
    }
    CHECK(access(path, F_OK) < 0); /* refused: no socket file made */
    return rc;
}

static int c_open(const void *p)
{
    ferry_chan *ch;
    int rc = ferry_chan_open(unix_url, p, &ch, 5 * SEC);
    if (rc == 0) ferry_chan_close(ch);
    return rc;
}

static int c_register(const void *p)
{
    ferry_listener *l;
    int rc = ferry_register("org.abi.reg", NULL, p, &l, 5 * SEC);
    if (rc == 0) ferry_listener_close(l);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.abi.reg", &in, 5 * SEC), -ENOENT); /* released, or never made */
    return rc;
}

static int c_register_policy(const void *p)
{
    ferry_listener *l;
    int rc = ferry_register("org.abi.reg", p, NULL, &l, 5 * SEC);
    if (rc == 0) ferry_listener_close(l);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.abi.reg", &in, 5 * SEC), -ENOENT);
    return rc;
}

static int c_connect(const void *p)
{
    ferry_chan *ch;
    int rc = ferry_connect("org.abi.srv", FERRY_KIND_SHM, p, &ch, 5 * SEC);
    if (rc == 0) ferry_chan_close(ch);
    return rc;
}

static int c_inbox(const void *p)
{
    ferry_inbox *in;
    int rc = ferry_inbox_open("org.abi.inbox", NULL, p, &in, 5 * SEC);
    if (rc == 0) ferry_inbox_close(in);
    return rc;
}

static int c_inbox_policy(const void *p)
{
    ferry_inbox *in;
    int rc = ferry_inbox_open("org.abi.inbox", p, NULL, &in, 5 * SEC);
    if (rc == 0) ferry_inbox_close(in);
    return rc;
}

static int c_rpc_connect(const void *p)
{
    ferry_rpc_client *c;
    int rc = ferry_rpc_connect("org.abi.srv", FERRY_KIND_SHM, p, &c, 5 * SEC);
    if (rc == 0) ferry_rpc_client_close(c);
    return rc;
}

static int c_serve(const void *p)
{
    ferry_rpc_service *s;
    int rc = ferry_serve("org.abi.serve", handler, NULL, 1, NULL, p, &s, 5 * SEC);
    if (rc == 0) ferry_rpc_service_close(s);
    return rc;
}

static int c_serve_policy(const void *p)
{
    ferry_rpc_service *s;
    int rc = ferry_serve("org.abi.serve", handler, NULL, 1, p, NULL, &s, 5 * SEC);
    if (rc == 0) ferry_rpc_service_close(s);
    return rc;
}

static int c_publish(const void *p)
{
    ferry_pub *pub;
    int rc = ferry_publish("org.abi.pub", ferry_sem_fd(sem), FERRY_OBJ_SEM, p, &pub, 5 * SEC);
    if (rc == 0) ferry_pub_close(pub);
    return rc;
}

static int c_bcast(const void *p)
{
    ferry_bcast *b;
    int rc = ferry_bcast_create(p, &b);
    if (rc == 0) ferry_bcast_close(b);
    return rc;
}

static int c_mailbox(const void *p)
{
    ferry_mailbox *mb;
    int rc = ferry_mailbox_create(p, &mb);
    if (rc == 0) ferry_mailbox_close(mb);
    return rc;
}

static int c_region(const void *p)
{
    ferry_region *r;
    int rc = ferry_region_create(4096, p, &r);
    if (rc == 0) ferry_region_close(r);
    return rc;
}

static int c_state(const void *p)
{
    ferry_state *st;
    int rc = ferry_state_create(64, p, &st);
    if (rc == 0) ferry_state_close(st);
    return rc;
}

static void i_region(void *p)
{
    ferry_region_opts_init(p);
}

static void i_chan(void *p)
{
    ferry_chan_opts_init(p);
}
static void i_bcast(void *p)
{
    ferry_bcast_opts_init(p);
}
static void i_mailbox(void *p)
{
    ferry_mailbox_opts_init(p);
}
static void i_policy(void *p)
{
    ferry_policy_init(p);
}

typedef struct in_family {
    const char *name;
    size_t ksize, v0;
    void (*init)(void *);
    int (*call)(const void *);
} in_family;

#define CHAN(fn)                                                                                   \
    {                                                                                              \
#fn, sizeof(ferry_chan_opts), FERRY__CHAN_OPTS_V0, i_chan, fn                              \
    }
#define POLICY(fn)                                                                                 \
    {                                                                                              \
#fn, sizeof(ferry_policy), FERRY__POLICY_V0, i_policy, fn                                  \
    }

static const in_family in_families[] = {
    CHAN(c_pair),
    CHAN(c_pair_fd),
    CHAN(c_pipe_pair),
    CHAN(c_pipe_pair_fd),
    CHAN(c_adopt),
    CHAN(c_listen),
    CHAN(c_open),
    CHAN(c_register),
    CHAN(c_connect),
    CHAN(c_inbox),
    CHAN(c_rpc_connect),
    CHAN(c_serve),
    {"c_bcast", sizeof(ferry_bcast_opts), FERRY__BCAST_OPTS_V0, i_bcast, c_bcast},
    {"c_mailbox", sizeof(ferry_mailbox_opts), FERRY__MAILBOX_OPTS_V0, i_mailbox, c_mailbox},
    {"c_region", sizeof(ferry_region_opts), FERRY__REGION_OPTS_V0, i_region, c_region},
    {"c_state", sizeof(ferry_region_opts), FERRY__REGION_OPTS_V0, i_region, c_state},
    POLICY(c_register_policy),
    POLICY(c_publish),
    POLICY(c_inbox_policy),
    POLICY(c_serve_policy),
};

/* A prepared struct of the family in u: zeros past it. */
static void prepare(const in_family *f, buf *u)
{
    memset(u->b, 0, sizeof u->b);
    f->init(u->b);
    CHECK_EQ(get_size(u), f->ksize);
}

/* A refused call: exactly want, and no descriptor made (or left). */
static void refused(const in_family *f, const buf *u, int want)
{
    pthread_mutex_lock(&accept_lock); /* no accept between the counts */
    int fds = fd_count();
    CHECK_EQ(f->call(u->b), want);
    CHECK_EQ(fd_count(), fds);
    pthread_mutex_unlock(&accept_lock);
}

static void check_in(const in_family *f)
{
    fprintf(stderr, "in: %s\n", f->name);
    buf u;

    prepare(f, &u);
    CHECK_EQ(f->call(u.b), 0);
    CHECK_EQ(f->call(NULL), 0);

    /* the first version's size (this version's, but for tail padding) */
    prepare(f, &u);
    set_size(&u, f->v0);
    CHECK_EQ(f->call(u.b), 0);

    /* a newer caller: larger, its fields this library does not know left zero */
    size_t larger[] = {f->ksize + 8, f->ksize + 64, FERRY__SIZED_MAX};
    for (size_t i = 0; i < sizeof larger / sizeof larger[0]; i++) {
        prepare(f, &u);
        set_size(&u, larger[i]);
        CHECK_EQ(f->call(u.b), 0);
        /* ... and one of them set: exactly -E2BIG */
        u.b[f->ksize] = 1;
        refused(f, &u, -E2BIG);
        u.b[f->ksize] = 0;
        u.b[larger[i] - 1] = 0x80;
        refused(f, &u, -E2BIG);
    }

    /* not prepared: exactly -EINVAL */
    size_t bad[] = {0, 1, f->v0 - 1, FERRY__SIZED_MAX + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prepare(f, &u);
        set_size(&u, bad[i]);
        refused(f, &u, -EINVAL);
    }
    memset(u.b, 0xEE, sizeof u.b);
    refused(f, &u, -EINVAL);
}

/* ------------------------------------------------------------------ the inits */

static void s_chan(void *p, size_t n)
{
    ferry_chan_opts_init_sized(p, n);
}
static void s_bcast(void *p, size_t n)
{
    ferry_bcast_opts_init_sized(p, n);
}
static void s_mailbox(void *p, size_t n)
{
    ferry_mailbox_opts_init_sized(p, n);
}
static void s_region(void *p, size_t n)
{
    ferry_region_opts_init_sized(p, n);
}
static void s_policy(void *p, size_t n)
{
    ferry_policy_init_sized(p, n);
}

static void check_init_sized(const char *name, void (*sized)(void *, size_t), void (*init)(void *),
                             size_t ksize)
{
    fprintf(stderr, "init: %s\n", name);
    buf ref, u;
    memset(ref.b, 0, sizeof ref.b);
    init(ref.b);
    /* a larger caller */
    memset(u.b, 0xEE, sizeof u.b);
    sized(u.b, ksize + 32);
    CHECK_EQ(get_size(&u), ksize + 32);
    CHECK(memcmp(u.b + sizeof(size_t), ref.b + sizeof(size_t), ksize - sizeof(size_t)) == 0);
    for (size_t i = ksize; i < ksize + 32; i++) CHECK_EQ(u.b[i], 0);
    CHECK(all_ee_from(&u, ksize + 32));
    /* a smaller caller: its prefix only */
    size_t small = 2 * sizeof(size_t);
    memset(u.b, 0xEE, sizeof u.b);
    sized(u.b, small);
    CHECK_EQ(get_size(&u), small);
    CHECK(memcmp(u.b + sizeof(size_t), ref.b + sizeof(size_t), small - sizeof(size_t)) == 0);
    CHECK(all_ee_from(&u, small));
    sized(NULL, ksize); /* a no-op */
}

/* ------------------------------------------------------------------ counters */

static ferry_chan *pa, *pb;
static ferry_mailbox *mbox;
static ferry_event *ev;

static int o_chan(void *p)
{
    return ferry_chan_stats(pa, p);
}
static int o_mailbox(void *p)
{
    return ferry_mailbox_stats(mbox, p);
}
static int o_event(void *p)
{
    return ferry_event_stats(ev, p);
}

typedef struct out_family {
    const char *name;
    size_t ksize, v0;
    int (*call)(void *);
} out_family;

static const out_family out_families[] = {
    {"ferry_chan_stats", sizeof(ferry_chan_counters), FERRY__CHAN_COUNTERS_V0, o_chan},
    {"ferry_mailbox_stats", sizeof(ferry_mailbox_counters), FERRY__MAILBOX_COUNTERS_V0, o_mailbox},
    {"ferry_event_stats", sizeof(ferry_event_counters), FERRY__EVENT_COUNTERS_V0, o_event},
};

/* The value checks: one message sent on the pair and to the mailbox, two events posted. */
static void check_values(const out_family *f, const buf *u)
{
    if (f->call == o_chan) {
        ferry_chan_counters c;
        memcpy(&c, u->b, sizeof c);
        CHECK(c.sent_msgs == 1 && c.sent_bytes == 3 && c.recv_msgs == 0 && c.grows == 0);
    } else if (f->call == o_mailbox) {
        ferry_mailbox_counters c;
        memcpy(&c, u->b, sizeof c);
        CHECK(c.sent == 1 && c.queued == 1 && c.capacity == 64 && c.max_msg == 4096);
    } else {
        ferry_event_counters c;
        memcpy(&c, u->b, sizeof c);
        CHECK(c.posted == 2 && c.merged == 0);
    }
}

static void check_out(const out_family *f)
{
    fprintf(stderr, "out: %s\n", f->name);
    buf u;
    size_t sizes[] = {f->v0, f->ksize, f->ksize + 8, f->ksize + 64, FERRY__SIZED_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memset(u.b, 0xEE, sizeof u.b);
        set_size(&u, sizes[i]);
        CHECK_EQ(f->call(u.b), 0);
        size_t wrote = sizes[i] < f->ksize ? sizes[i] : f->ksize;
        CHECK_EQ(get_size(&u), wrote);
        CHECK(all_ee_from(&u, wrote)); /* nothing past what this library has */
        check_values(f, &u);
    }
    /* the ferry_X_counters_init way */
    if (f->call == o_chan) {
        ferry_chan_counters c;
        ferry_chan_counters_init(&c);
        CHECK_EQ(ferry_chan_stats(pa, &c), 0);
        CHECK(c.size == sizeof c && c.sent_msgs == 1);
    } else if (f->call == o_mailbox) {
        ferry_mailbox_counters c;
        ferry_mailbox_counters_init(&c);
        CHECK_EQ(ferry_mailbox_stats(mbox, &c), 0);
        CHECK(c.size == sizeof c && c.sent == 1);
    } else {
        ferry_event_counters c;
        ferry_event_counters_init(&c);
        CHECK_EQ(ferry_event_stats(ev, &c), 0);
        CHECK(c.size == sizeof c && c.posted == 2);
    }
    size_t bad[] = {0, 1, f->v0 - 1, FERRY__SIZED_MAX + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(u.b, 0xEE, sizeof u.b);
        set_size(&u, bad[i]);
        CHECK_EQ(f->call(u.b), -EINVAL);
        CHECK_EQ(get_size(&u), bad[i]);
        CHECK(all_ee_from(&u, sizeof(size_t))); /* nothing written */
    }
    memset(u.b, 0xEE, sizeof u.b); /* never prepared */
    CHECK_EQ(f->call(u.b), -EINVAL);
    CHECK(all_ee_from(&u, 0));
    CHECK_EQ(f->call(NULL), -EINVAL);
}

/* ------------------------------------------------------------------ records */

static void check_records(void)
{
    fprintf(stderr, "records\n");
    static const uint64_t zero[8];
    ferry_name_info in;
    memset(&in, 0xEE, sizeof in);
    CHECK_EQ(ferry_lookup("org.abi.srv", &in, 5 * SEC), 0);
    CHECK(strcmp(in.name, "org.abi.srv") == 0 && in.pid == getpid());
    CHECK(memcmp(in.reserved, zero, sizeof in.reserved) == 0);

    ferry_name_info all[8];
    memset(all, 0xEE, sizeof all);
    ssize_t n = ferry_list(NULL, all, 8, 5 * SEC);
    CHECK(n >= 1);
    for (ssize_t i = 0; i < n; i++)
        CHECK(memcmp(all[i].reserved, zero, sizeof all[i].reserved) == 0);

    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.abi.w.*", &w, 5 * SEC), 0);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.abi.w.x", NULL, NULL, &l, 5 * SEC), 0);
    ferry_watch_event e;
    memset(&e, 0xEE, sizeof e);
    CHECK_EQ(ferry_watch_next(w, &e, 5 * SEC), 0);
    CHECK_EQ(e.kind, FERRY_EV_OWNED);
    CHECK(strcmp(e.info.name, "org.abi.w.x") == 0);
    CHECK_EQ(e.reserved, 0);
    CHECK(memcmp(e.reserved2, zero, sizeof e.reserved2) == 0);
    CHECK(memcmp(e.info.reserved, zero, sizeof e.info.reserved) == 0);
    ferry_listener_close(l);
    ferry_watch_close(w);

    /* ferry_recv_request: a request and a one-way message */
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    ferry_rpc_client *c;
    ferry_rpc_server *s;
    CHECK_EQ(ferry_rpc_client_create(a, &c), 0);
    CHECK_EQ(ferry_rpc_server_create(b, &s), 0);
    char rbuf[16], qbuf[16];
    ferry_msg req = {.data = "req", .len = 3};
    ferry_msg resp = {.data = rbuf, .cap = sizeof rbuf};
    uint64_t id;
    CHECK_EQ(ferry_call_start(c, &req, &resp, &id, 5 * SEC), 0);
    ferry_rpc_request rq;
    memset(&rq, 0xEE, sizeof rq);
    rq.msg.data = qbuf;
    rq.msg.cap = sizeof qbuf;
    CHECK_EQ(ferry_recv_request(s, &rq, 5 * SEC), 3);
    CHECK(rq.id == id && rq.oneway == 0);
    CHECK(memcmp(rq.reserved, zero, sizeof rq.reserved) == 0);
    CHECK_EQ(ferry_reply(s, id, &(ferry_msg){.data = "ok", .len = 2}, 5 * SEC), 0);
    CHECK_EQ(ferry_call_wait(c, id, 5 * SEC), 2);
    CHECK_EQ(ferry_rpc_send(c, &(ferry_msg){.data = "one", .len = 3}, 5 * SEC), 0);
    memset(&rq, 0xEE, sizeof rq);
    rq.msg.data = qbuf;
    rq.msg.cap = sizeof qbuf;
    CHECK_EQ(ferry_recv_request(s, &rq, 5 * SEC), 3);
    CHECK(rq.id == 0 && rq.oneway == 1);
    CHECK(memcmp(rq.reserved, zero, sizeof rq.reserved) == 0);
    ferry_rpc_client_close(c);
    ferry_rpc_server_unref(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    broker_start(&broker);
    int fds = fd_count();

    snprintf(dir, sizeof dir, "%s", broker.dir);
    snprintf(unix_path, sizeof unix_path, "%s/open.sock", dir);
    snprintf(unix_url, sizeof unix_url, "unix://%s", unix_path);
    CHECK_EQ(ferry_listen(unix_url, NULL, &unix_l), 0);
    CHECK_EQ(ferry_register("org.abi.srv", NULL, NULL, &named_l, 5 * SEC), 0);
    CHECK_EQ(ferry_sem_create(0, 0, &sem), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, acceptor, NULL), 0);

    for (size_t i = 0; i < sizeof in_families / sizeof in_families[0]; i++)
        check_in(&in_families[i]);

    check_init_sized("ferry_chan_opts", s_chan, i_chan, sizeof(ferry_chan_opts));
    check_init_sized("ferry_bcast_opts", s_bcast, i_bcast, sizeof(ferry_bcast_opts));
    check_init_sized("ferry_mailbox_opts", s_mailbox, i_mailbox, sizeof(ferry_mailbox_opts));
    check_init_sized("ferry_region_opts", s_region, i_region, sizeof(ferry_region_opts));
    check_init_sized("ferry_policy", s_policy, i_policy, sizeof(ferry_policy));

    CHECK_EQ(ferry_pair(NULL, &pa, &pb), 0);
    CHECK_EQ(ferry_send(pa, "abc", 3, 5 * SEC), 0);
    CHECK_EQ(ferry_mailbox_create(NULL, &mbox), 0);
    CHECK_EQ(ferry_mailbox_send(mbox, 1, "x", 1, 5 * SEC), 0);
    CHECK_EQ(ferry_event_create(0, &ev), 0);
    CHECK_EQ(ferry_event_post(ev, 1, 0, 5 * SEC), 0);
    CHECK_EQ(ferry_event_post(ev, 2, 0, 5 * SEC), 0);
    for (size_t i = 0; i < sizeof out_families / sizeof out_families[0]; i++)
        check_out(&out_families[i]);
    ferry_chan_close(pa);
    ferry_chan_close(pb);
    ferry_mailbox_close(mbox);
    ferry_event_close(ev);

    check_records();

    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    for (int i = 0; i < naccepted; i++) ferry_chan_close(accepted[i]);
    ferry_listener_close(unix_l);
    unlink(unix_path);
    ferry_listener_close(named_l);
    ferry_sem_close(sem);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&broker);
    printf("ok\n");
    return 0;
}
