// SPDX-License-Identifier: MIT
/*
 * test_relay_peer — relayed identities and the joining end's FERRY_NO_FDS (unix), with a
 * real ferryd and separate processes (docs/security.md, "Relays"):
 *  - identity by name: a ferry_serve server that trusts the relay uid R
 *    (FERRY_TRUST_RELAY) answers each call with what ferry_rpc_server_peer_remote says.
 *    A client of uid R that connects with relay_for "hostb" is hostb there; a client of
 *    another uid naming "admin" is -ENOENT, as is a client of uid R naming nobody, a
 *    client of a name whose listener has no FERRY_TRUST_RELAY (even of uid R), and one
 *    that names an identity over shm (-EOPNOTSUPP: no identities there). A plain
 *    channel: ferry_chan_peer_remote at the accepting end, before its first receive (the
 *    joiner's handshake still queued) and after it.
 *  - forged handshakes: a raw SOCK_SEQPACKET client of a unix:// listener writes its own
 *    HELLO. An identity from an untrusted uid is ignored (-ENOENT); from the trusted uid it
 *    is seen; malformed ones (the bit without bytes, bytes without the bit, a space, 128
 *    bytes) are -EBADMSG, at ferry_chan_peer_remote and at the first receive. -EAGAIN
 *    while the HELLO has not come, -ENAMETOOLONG, -EOPNOTSUPP (shm), -ENOENT on the joining end,
 *    -EINVAL for bad relay_for.
 *  - fds: the accepting end's send with an fd to a joiner that said FERRY_NO_FDS is
 *    -EOPNOTSUPP, nothing arrives, the next plain message does, and the joiner's own sends
 *    with fds still go; without the flag the fd goes (the control). Before the joiner's
 *    HELLO has come: FERRY_NOW -EAGAIN, a bound -ETIMEDOUT; a HELLO without the hint (an
 *    older libferry's) lets the fd go.
 *  - threads: the accepting end's receiving thread takes the joiner's HELLO while its
 *    sending thread asks for it (fds, identity): the same answers.
 * As root the clients run as uids 61830 (the trusted relay) and 61831; otherwise the
 * trusted uid is the test's own and "another uid" is one nobody has (listeners trusting
 * it), so the same refusals are checked either way.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define RELAY_UID 61830
#define OTHER_UID 61831

static uid_t trusted, untrusted; /* the relay uid the listeners trust; a uid they do not */
static ident relay_id, other_id; /* who the clients run as */

/* ------------------------------------------------------------------ by name (RPC) */

typedef struct ask {
    const char *name;
    int kind;
    const char *relay_for;
    const char *want;
} ask;

/* A client: connect (naming relay_for), call, and require the answer `want`. */
static void ask_child(void *arg)
{
    const ask *a = arg;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.relay_for = a->relay_for;
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect(a->name, a->kind, &o, &c, 5 * SEC), 0);
    char buf[160];
    ferry_msg req = {.data = "who", .len = 3}, resp = {.data = buf, .cap = sizeof buf - 1};
    ssize_t n = ferry_call(c, &req, &resp, 5 * SEC);
    CHECK(n >= 0);
    buf[n] = 0;
    if (strcmp(buf, a->want) != 0)
        fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", a->name, buf, a->want);
    CHECK(strcmp(buf, a->want) == 0);
    ferry_rpc_client_close(c);
}

static ferry_rpc_service *serve_name(const char *name, int trust, uid_t relay_uid)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666; /* any uid may connect: the identity is the question here */
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    if (trust) o.flags |= FERRY_TRUST_RELAY;
    o.relay_uid = relay_uid;
    ferry_rpc_service *s;
    CHECK_EQ(ferry_serve(name, sec_who_handler, NULL, 2, &pol, &o, &s, 5 * SEC), 0);
    return s;
}

static void by_name_rpc(void)
{
    ferry_rpc_service *t = serve_name("org.test.relay.trusting", 1, trusted);
    ferry_rpc_service *u = serve_name("org.test.relay.other", 1, untrusted);
    ferry_rpc_service *n = serve_name("org.test.relay.none", 0, trusted);
    const struct {
        const ident *as;
        ask a;
    } cases[] = {
        /* the trusted relay names its remote user: seen */
        {&relay_id, {"org.test.relay.trusting", FERRY_KIND_UNIX, "hostb", "hostb"}},
        {&relay_id, {"org.test.relay.trusting", FERRY_KIND_UNIX, "CN=alice,O=x", "CN=alice,O=x"}},
        /* ... naming nobody: nobody */
        {&relay_id, {"org.test.relay.trusting", FERRY_KIND_UNIX, NULL, "err -2"}},
        /* a listener that trusts another uid, and one without FERRY_TRUST_RELAY: ignored */
        {&relay_id, {"org.test.relay.other", FERRY_KIND_UNIX, "admin", "err -2"}},
        {&relay_id, {"org.test.relay.none", FERRY_KIND_UNIX, "admin", "err -2"}},
        /* no identities over shm */
        {&relay_id, {"org.test.relay.trusting", FERRY_KIND_SHM, "hostb", "err -95"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_as(cases[i].as, ask_child, (void *)&cases[i].a);
    if (geteuid() == 0) { /* another local uid claiming "admin" at the trusting listener */
        ask a = {"org.test.relay.trusting", FERRY_KIND_UNIX, "admin", "err -2"};
        run_as(&other_id, ask_child, &a);
    }
    ferry_rpc_service_close(t);
    ferry_rpc_service_close(u);
    ferry_rpc_service_close(n);
}

/* ------------------------------------------------------------------ by name (channel, fds) */

typedef struct chan_args {
    const char *name;
    const char *relay_for;
    int no_fds;
    int sync; /* a pipe's write end: a byte once connected */
} chan_args;

/* The joining process: connect, tell the parent, then: without FERRY_NO_FDS it gets the
 * parent's fd; either way the plain message, then sends one with an fd of its own, and
 * waits for the parent's end. */
static void chan_child(void *arg)
{
    const chan_args *a = arg;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.relay_for = a->relay_for;
    if (a->no_fds) o.flags |= FERRY_NO_FDS;
    ferry_chan *ch;
    CHECK_EQ(ferry_connect(a->name, FERRY_KIND_UNIX, &o, &ch, 5 * SEC), 0);
    char id[8];
    CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), -ENOENT); /* the joining end */
    CHECK_EQ(write(a->sync, "c", 1), 1);
    CHECK_EQ(ferry_send(ch, "first", 5, 5 * SEC), 0);
    char buf[32];
    ferry_msg m = {.data = buf, .cap = sizeof buf};
    if (!a->no_fds) {
        CHECK_EQ(ferry_recvmsg(ch, &m, 0, 5 * SEC), 7);
        CHECK(memcmp(buf, "with-fd", 7) == 0);
        CHECK_EQ(m.nfds, 1u);
        char c;
        CHECK_EQ(read(m.fds[0], &c, 1), 1); /* the parent's pipe, with a byte in it */
        CHECK_EQ(c, 'p');
        close(m.fds[0]);
    }
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, 5 * SEC), 5); /* the fd message never came */
    CHECK(memcmp(buf, "plain", 5) == 0);
    CHECK_EQ(m.nfds, 0u);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(write(p[1], "j", 1), 1);
    ferry_msg back = {.type = 3, .data = "back", .len = 4, .nfds = 1, .fds = {p[0]}};
    CHECK_EQ(ferry_sendmsg(ch, &back, 5 * SEC), 0); /* the joiner's own fds go */
    close(p[0]);
    close(p[1]);
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), -EPIPE);
    ferry_chan_close(ch);
}

static void by_name_chan(int no_fds)
{
    const char *name = "org.test.relay.chan";
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags |= FERRY_TRUST_RELAY;
    o.relay_uid = trusted;
    ferry_listener *l;
    CHECK_EQ(ferry_register(name, &pol, &o, &l, 5 * SEC), 0);
    int sync[2];
    CHECK_EQ(pipe(sync), 0);
    chan_args a = {name, "hostb", no_fds, sync[1]};
    pid_t pid = spawn_as(&relay_id, chan_child, &a);
    close(sync[1]);
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, 10 * SEC), 0);
    char c;
    CHECK_EQ(read(sync[0], &c, 1), 1); /* connected: its HELLO is here, unread */
    close(sync[0]);
    char id[FERRY_REMOTE_ID_MAX + 1];
    CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), 5); /* looked at in the queue */
    CHECK(strcmp(id, "hostb") == 0);
    CHECK_EQ(ferry_chan_peer_remote(ch, id, 5), -ENAMETOOLONG);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(write(p[1], "p", 1), 1);
    ferry_msg m = {.type = 2, .data = "with-fd", .len = 7, .nfds = 1, .fds = {p[0]}};
    /* before this end read the joiner's HELLO: the send looks at it first */
    CHECK_EQ(ferry_sendmsg(ch, &m, 5 * SEC), no_fds ? -EOPNOTSUPP : 0);
    CHECK_EQ(ferry_send(ch, "plain", 5, 5 * SEC), 0); /* the channel goes on */
    char buf[32];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "first", 5) == 0);
    /* after it: the record */
    CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), 5);
    CHECK(strcmp(id, "hostb") == 0);
    if (no_fds) CHECK_EQ(ferry_sendmsg(ch, &m, FERRY_NOW), -EOPNOTSUPP); /* FERRY_NOW too */
    ferry_msg r = {.data = buf, .cap = sizeof buf};
    CHECK_EQ(ferry_recvmsg(ch, &r, 0, 5 * SEC), 4);
    CHECK_EQ(r.nfds, 1u);
    CHECK_EQ(read(r.fds[0], &c, 1), 1);
    CHECK_EQ(c, 'j');
    close(r.fds[0]);
    close(p[0]);
    close(p[1]);
    ferry_chan_close(ch);
    wait_ok(pid);
    ferry_listener_close(l);
}

/* ------------------------------------------------------------------ raw handshakes */

/* A raw client of the unix listener at path (connected; accept it, then raw_creator). */
static int raw_connect(const char *path)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CHECK_EQ(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    return s;
}

/* Read the creator's HELLO on raw socket s: its max_msg into *max; its type must say it
 * reads identities. */
static void raw_creator(int s, uint32_t *max)
{
    uint8_t h[64];
    struct pollfd p = {.fd = s, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(recv(s, h, sizeof h, 0), 40);
    int64_t type;
    memcpy(&type, h + 8, 8);
    CHECK_EQ(type, 1); /* FDCHAN_HT_READS_REMOTE */
    memcpy(max, h + 32, 4);
}

/* Write a joiner's HELLO: type, max_msg, and `extra` bytes after the 8 of the shape. */
static void raw_hello(int s, int64_t type, uint32_t max, const char *extra, size_t n)
{
    uint8_t pk[32 + 8 + 256];
    uint32_t magic = 0x31595246u, len = (uint32_t)(8 + n), zero = 0;
    uint64_t seq = 0;
    memset(pk, 0, 32);
    memcpy(pk, &magic, 4);
    pk[4] = 1; /* version; flags, nfds, reserved 0 */
    memcpy(pk + 8, &type, 8);
    memcpy(pk + 16, &seq, 8);
    memcpy(pk + 24, &len, 4);
    memcpy(pk + 32, &max, 4);
    memcpy(pk + 36, &zero, 4);
    memcpy(pk + 40, extra, n);
    CHECK_EQ(send(s, pk, 40 + n, 0), (ssize_t)(40 + n));
}

typedef struct acceptor {
    ferry_listener *l;
    ferry_chan *ch;
} acceptor;

static ferry_listener *listen_at(const char *url, uid_t relay_uid)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags |= FERRY_TRUST_RELAY;
    o.relay_uid = relay_uid;
    ferry_listener *l;
    CHECK_EQ(ferry_listen(url, &o, &l), 0);
    return l;
}

/* One raw connection: the HELLO given, then what ferry_chan_peer_remote says at once
 * (want_id: the identity, or NULL and want_rc), and what the first receive says. */
static void raw_case(ferry_listener *l, const char *path, int64_t type, const char *extra, size_t n,
                     const char *want_id, int want_rc)
{
    uint32_t max;
    int s = raw_connect(path);
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, 5 * SEC), 0);
    raw_creator(s, &max);
    char id[FERRY_REMOTE_ID_MAX + 1];
    CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), -EAGAIN); /* no HELLO yet */
    raw_hello(s, type, max, extra, n);
    ssize_t rc;
    for (int i = 0; (rc = ferry_chan_peer_remote(ch, id, sizeof id)) == -EAGAIN && i < 500; i++)
        sleep_ms(2);
    if (want_id) {
        CHECK_EQ(rc, (ssize_t)strlen(want_id));
        CHECK(strcmp(id, want_id) == 0);
    } else {
        CHECK_EQ(rc, want_rc);
    }
    close(s); /* the first receive: the HELLO, then the end (-EPIPE), or a refusal */
    char buf[16];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), want_rc == -EBADMSG ? -EBADMSG : -EPIPE);
    if (want_id) {
        CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), (ssize_t)strlen(want_id));
    } else if (want_rc == -ENOENT) {
        CHECK_EQ(ferry_chan_peer_remote(ch, id, sizeof id), -ENOENT); /* the record says so too */
    }
    ferry_chan_close(ch);
}

static void raw_handshakes(const char *dir)
{
    char path_t[128], path_u[128], url_t[160], url_u[160];
    snprintf(path_t, sizeof path_t, "%s/trusting", dir);
    snprintf(path_u, sizeof path_u, "%s/other", dir);
    snprintf(url_t, sizeof url_t, "unix://%s", path_t);
    snprintf(url_u, sizeof url_u, "unix://%s", path_u);
    ferry_listener *lt = listen_at(url_t, getuid()); /* trusts this process's uid */
    ferry_listener *lu = listen_at(url_u, untrusted);
    /* untrusted: a well-formed identity is ignored */
    raw_case(lu, path_u, 2, "admin", 5, NULL, -ENOENT);
    raw_case(lu, path_u, 3, "root", 4, NULL, -ENOENT);
    /* trusted: seen (the wire the library speaks); an older libferry's HELLO: none */
    raw_case(lt, path_t, 2, "admin", 5, "admin", 0);
    raw_case(lt, path_t, 0, "", 0, NULL, -ENOENT);
    raw_case(lt, path_t, 0x7ffffffffffffff0, "", 0, NULL, -ENOENT); /* unknown hints: ignored */
    /* malformed, whoever sends it: -EBADMSG */
    char big[129];
    memset(big, 'a', sizeof big);
    const ferry_listener *both[] = {lt, lu};
    const char *paths[] = {path_t, path_u};
    for (int i = 0; i < 2; i++) {
        ferry_listener *l = (ferry_listener *)both[i];
        raw_case(l, paths[i], 2, "", 0, NULL, -EBADMSG);        /* the bit, no bytes */
        raw_case(l, paths[i], 0, "admin", 5, NULL, -EBADMSG);   /* bytes, no bit */
        raw_case(l, paths[i], 2, "ad min", 6, NULL, -EBADMSG);  /* a space */
        raw_case(l, paths[i], 2, "ad\nmin", 6, NULL, -EBADMSG); /* a control character */
        raw_case(l, paths[i], 2, big, 128, NULL, -EBADMSG);     /* one byte too long */
    }
    raw_case(lu, path_u, 2, big, 127, NULL, -ENOENT); /* the longest, untrusted */
    ferry_listener_close(lt);
    ferry_listener_close(lu);
}

/* The longest identity, from the trusted uid: seen whole. */
static void raw_longest(const char *dir)
{
    char path[128], url[160], big[128];
    snprintf(path, sizeof path, "%s/longest", dir);
    snprintf(url, sizeof url, "unix://%s", path);
    memset(big, 'a', 127);
    big[127] = 0;
    ferry_listener *l = listen_at(url, getuid());
    raw_case(l, path, 2, big, 127, big, 0);
    ferry_listener_close(l);
}

/* fds before the joiner's HELLO: wait for it (FERRY_NOW: -EAGAIN; a bound: -ETIMEDOUT);
 * then it decides. */
static void raw_fds(const char *dir)
{
    char path[128], url[160];
    snprintf(path, sizeof path, "%s/fds", dir);
    snprintf(url, sizeof url, "unix://%s", path);
    ferry_listener *l = listen_at(url, untrusted);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    for (int hint = 0; hint < 2; hint++) {
        uint32_t max;
        int s = raw_connect(path);
        ferry_chan *ch;
        CHECK_EQ(ferry_accept(l, &ch, 5 * SEC), 0);
        raw_creator(s, &max);
        ferry_msg m = {.type = 1, .data = "x", .len = 1, .nfds = 1, .fds = {p[0]}};
        CHECK_EQ(ferry_sendmsg(ch, &m, FERRY_NOW), -EAGAIN);
        CHECK_EQ(ferry_sendmsg(ch, &m, 50 * MS), -ETIMEDOUT);
        raw_hello(s, hint ? 1 : 0, max, "", 0); /* FDCHAN_HT_NO_FDS, or an older joiner */
        CHECK_EQ(ferry_sendmsg(ch, &m, 5 * SEC), hint ? -EOPNOTSUPP : 0);
        uint8_t pk[64];
        if (hint) {
            CHECK_EQ(recv(s, pk, sizeof pk, MSG_DONTWAIT), -1); /* nothing was sent */
            CHECK_EQ(errno, EAGAIN);
        } else {
            CHECK_EQ(recv(s, pk, sizeof pk, MSG_DONTWAIT), 33); /* it went, with its fd */
        }
        close(s);
        ferry_chan_close(ch);
    }
    close(p[0]);
    close(p[1]);
    ferry_listener_close(l);
}

/* Threads: the creator's receiving thread takes the joiner's HELLO while its sending
 * thread looks for it (a send with fds, the identity) — either way the same answers (and
 * TSan sees the hand-over). 50 rounds, the joiner a thread of this process. */
typedef struct opener {
    const char *url;
    ferry_chan *ch;
    int rc;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    ferry_chan_opts opts;
    ferry_chan_opts_init(&opts);
    opts.flags |= FERRY_NO_FDS;
    opts.relay_for = "hostb";
    o->rc = ferry_chan_open(o->url, &opts, &o->ch, 5 * SEC);
    if (o->rc == 0) o->rc = ferry_send(o->ch, "a", 1, 5 * SEC);
    return NULL;
}

static void *recv_thread(void *arg)
{
    char buf[8];
    return (void *)(intptr_t)ferry_recv(arg, buf, sizeof buf, 5 * SEC);
}

static void threads(const char *dir)
{
    char path[128], url[160];
    snprintf(path, sizeof path, "%s/threads", dir);
    snprintf(url, sizeof url, "unix://%s", path);
    ferry_listener *l = listen_at(url, getuid());
    int p[2];
    CHECK_EQ(pipe(p), 0);
    for (int round = 0; round < 50; round++) {
        opener o = {.url = url};
        pthread_t to, tr;
        CHECK_EQ(pthread_create(&to, NULL, open_thread, &o), 0);
        ferry_chan *ch;
        CHECK_EQ(ferry_accept(l, &ch, 5 * SEC), 0);
        CHECK_EQ(pthread_create(&tr, NULL, recv_thread, ch), 0);
        ferry_msg m = {.type = 1, .data = "x", .len = 1, .nfds = 1, .fds = {p[0]}};
        CHECK_EQ(ferry_sendmsg(ch, &m, 5 * SEC), -EOPNOTSUPP);
        char id[16];
        ssize_t rc;
        while ((rc = ferry_chan_peer_remote(ch, id, sizeof id)) == -EAGAIN) sleep_ms(1);
        CHECK_EQ(rc, 5);
        CHECK(strcmp(id, "hostb") == 0);
        void *got;
        CHECK_EQ(pthread_join(tr, &got), 0);
        CHECK_EQ((intptr_t)got, 1);
        CHECK_EQ(pthread_join(to, NULL), 0);
        CHECK_EQ(o.rc, 0);
        ferry_chan_close(o.ch);
        ferry_chan_close(ch);
    }
    close(p[0]);
    close(p[1]);
    ferry_listener_close(l);
}

static void bad_args(void)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    ferry_chan *ch;
    char big[129];
    memset(big, 'a', 128);
    big[128] = 0;
    const char *bad[] = {"", "ad min", "tab\there", "\x7f", big};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.relay_for = bad[i];
        CHECK_EQ(ferry_connect("org.test.relay.chan", FERRY_KIND_UNIX, &o, &ch, SEC), -EINVAL);
        CHECK_EQ(ferry_chan_open("unix:///nonexistent/x", &o, &ch, SEC), -EINVAL);
    }
    char id[8];
    CHECK_EQ(ferry_chan_peer_remote(NULL, id, sizeof id), -EINVAL);
    CHECK_EQ(ferry_rpc_server_peer_remote(NULL, id, sizeof id), -EINVAL);
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    CHECK_EQ(ferry_chan_peer_remote(a, id, sizeof id), -EOPNOTSUPP);
    CHECK_EQ(ferry_chan_peer_remote(a, NULL, sizeof id), -EINVAL);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_deadline(100);
    if (geteuid() == 0) {
        trusted = RELAY_UID;
        untrusted = OTHER_UID;
        relay_id = (ident){RELAY_UID, RELAY_UID, 0, {0}};
        other_id = (ident){OTHER_UID, OTHER_UID, 0, {0}};
    } else {
        trusted = getuid();
        untrusted = getuid() + 4242;      /* a uid nobody here has */
        relay_id = (ident){0, 0, 0, {0}}; /* uid 0 in an ident: stay who we are */
    }
    char dir[] = "/tmp/ferry-relay-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    int fds = fd_count();
    bad_args();
    raw_handshakes(dir);
    raw_longest(dir);
    raw_fds(dir);
    threads(dir);
    CHECK_EQ(fd_count(), fds);
    test_broker b;
    broker_start(&b);
    by_name_rpc();
    by_name_chan(1);
    by_name_chan(0);
    broker_stop(&b);
    CHECK_EQ(fd_count(), fds);
    CHECK_EQ(rmdir(dir), 0);
    printf("test_relay_peer: ok\n");
    return 0;
}
