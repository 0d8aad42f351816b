// SPDX-License-Identifier: MIT
/*
 * test_tls — the tls:// transport beyond the conformance suite (which runs its common
 * checks on tls rows): certificates made here with OpenSSL's API (tlscerts.h), both ends
 * in this process (the client in a thread), and exact codes for:
 *  - mutual TLS: a round trip; ferry_chan_peer_cert on both ends (CN, subject, SANs, the
 *    SHA-256 pin, VERIFIED); an optional client certificate not given (flags 0);
 *    -EOPNOTSUPP on a tcp channel, -EINVAL for NULL and bad sizes;
 *  - failures, each its code on each side: untrusted server (-EKEYREJECTED / the listener
 *    -EACCES), wrong host by DNS and by IP (-EREMCHG), expired server (-EKEYEXPIRED), no
 *    client certificate where required (-EACCES both), an untrusted client
 *    (-EKEYREJECTED / -EACCES), an expired client (-EKEYEXPIRED / -EACCES); the listener
 *    accepts a good client after every one;
 *  - other protocols: a tcp:// client at a tls:// listener (-ETIMEDOUT at the handshake
 *    bound / -EPIPE), a tls:// client at a tcp:// listener (-EPROTO / -EBADMSG), TLS
 *    peers without ALPN "ferry/1" (-EPROTO both ways);
 *  - the listener: handshakes side by side (mute clients do not hold up a good one), a
 *    handshake across short ferry_accept calls, FERRY_NOW accepts driven by the poll fd;
 *  - stalls: a peer that says nothing is cut off at handshake_timeout_ns on both sides,
 *    also under FERRY_FOREVER, and at the call's own deadline when that is earlier;
 *  - OpenSSL's socket BIO, the kernel TLS path (a test hook: no tls module here): round
 *    trips, -EPIPE at a closed peer and no SIGPIPE;
 *  - readiness: a frame already decrypted in OpenSSL's buffer (not in the socket) makes
 *    the poll fd readable and a blocking receive return it at once (SSL_pending);
 *  - hostile frames after the handshake (a length over max_msg, junk): -EBADMSG;
 *  - options: environment defaults (FERRY_TLS_CERT/KEY/CA) with NULL options; files; the
 *    refusals (-EINVAL, -ENOENT);
 *  - one sending and one receiving thread on an end at once (TSan: the SSL lock).
 * Every part checks that no descriptor is left behind.
 */
#include "testutil.h" /* first: _GNU_SOURCE */
#include "tlscerts.h"

#include "core/frame.h"

#include <openssl/ssl.h>

#include <ferry/ferry.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

int ferry__tls_inject(ferry_chan *ch, const void *buf, size_t len); /* tls.c */
extern int ferry__tls_socket_bio;                                   /* tls.c, tests only */

#define T5S ((int64_t)5 * 1000000000)
#define MS  ((int64_t)1000000)

static tc_cert ca, other_ca, server, client, expired_server, expired_client, rogue_client,
    wrong_host, dns_only;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void id_opts(ferry_tls_opts *t, const tc_cert *id, const tc_cert *trust)
{
    ferry_tls_opts_init(t);
    if (id) {
        t->cert_pem = id->cert_pem;
        t->key_pem = id->key_pem;
    }
    if (trust) t->ca_pem = trust->cert_pem;
}

typedef struct client_arg {
    char url[128];
    const ferry_tls_opts *tls; /* NULL: NULL options */
    int64_t timeout;
    int rc;
    ferry_chan *ch;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.tls = a->tls;
    a->rc = ferry_chan_open(a->url, a->tls ? &o : NULL, &a->ch, a->timeout);
    return NULL;
}

static int listen_at(const char *scheme, const ferry_tls_opts *t, ferry_listener **l, char *url)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.tls = t;
    char u[64];
    snprintf(u, sizeof u, "%s://127.0.0.1:0", scheme);
    int rc = ferry_listen(u, t ? &o : NULL, l);
    if (rc == 0) CHECK(ferry_listener_url(*l, url, 128) > 0);
    return rc;
}

/* A client thread opens url (tls: its options, NULL for NULL options; *a: its result and
 * channel) while l accepts with timeout: the accept's result, *s its channel. */
static int accept_client(ferry_listener *l, const char *url, const ferry_tls_opts *tls,
                         client_arg *a, ferry_chan **s, int64_t timeout)
{
    *a = (client_arg){.tls = tls, .timeout = T5S};
    snprintf(a->url, sizeof a->url, "%s", url);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, client_main, a), 0);
    int rc = ferry_accept(l, s, timeout);
    pthread_join(th, NULL);
    return rc;
}

/* The port of a listener's url ("...:PORT"). */
static int url_port(const char *url)
{
    return atoi(strrchr(url, ':') + 1);
}

/* A TCP socket connected to 127.0.0.1:port (the caller closes it). */
static int tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    return s;
}

/* A plain TCP socket listening on 127.0.0.1 at a free port (*port; the caller closes it). */
static int tcp_listen(int *port)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof sa;
    CHECK_EQ(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(ls, 4), 0);
    CHECK_EQ(getsockname(ls, (struct sockaddr *)&sa, &n), 0);
    *port = ntohs(sa.sin_port);
    return ls;
}

/* ferry_chan_open of tls://127.0.0.1:port with the tls options t. */
static int open_tls(int port, const ferry_tls_opts *t, ferry_chan **c, int64_t timeout)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.tls = t;
    char url[64];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", port);
    return ferry_chan_open(url, &o, c, timeout);
}

/* Listen with st, open with ct (client url = the listener's, or `url` when given), accept:
 * the two results, and the channels when they are made. */
typedef struct duo {
    int srv_rc, cli_rc;
    ferry_chan *srv, *cli;
} duo;

static duo meet(const ferry_tls_opts *st, const ferry_tls_opts *ct, const char *client_host)
{
    ferry_listener *l = NULL;
    char url[128];
    CHECK_EQ(listen_at("tls", st, &l, url), 0);
    char curl[128];
    if (client_host) /* the same port under another host name */
        snprintf(curl, sizeof curl, "tls://%s%s", client_host, strrchr(url, ':'));
    else
        snprintf(curl, sizeof curl, "%s", url);
    client_arg a;
    duo d = {0};
    d.srv_rc = accept_client(l, curl, ct, &a, &d.srv, T5S);
    d.cli_rc = a.rc;
    d.cli = a.ch;
    /* the listener goes on: a good client after whatever happened */
    ferry_tls_opts good;
    id_opts(&good, &client, &ca);
    client_arg b;
    ferry_chan *s2 = NULL;
    int rc = accept_client(l, url, &good, &b, &s2, T5S);
    if (st->cert_pem == server.cert_pem &&
        (st->client_cert == FERRY_TLS_CLIENT_NONE || st->ca_pem == ca.cert_pem)) {
        CHECK_EQ(rc, 0);
        CHECK_EQ(b.rc, 0);
        CHECK_EQ(ferry_send(b.ch, "ok", 2, T5S), 0);
        char buf[4];
        CHECK_EQ(ferry_recv(s2, buf, sizeof buf, T5S), 2);
    }
    ferry_chan_close(s2);
    ferry_chan_close(b.ch);
    ferry_listener_close(l);
    return d;
}

static void duo_close(duo *d)
{
    ferry_chan_close(d->srv);
    ferry_chan_close(d->cli);
}

/* meet() that must succeed on both sides. */
static duo meet_ok(const ferry_tls_opts *st, const ferry_tls_opts *ct)
{
    duo d = meet(st, ct, NULL);
    CHECK_EQ(d.srv_rc, 0);
    CHECK_EQ(d.cli_rc, 0);
    return d;
}

/* The plain pair: the server's identity with no client certificates (st), a client with
 * none that trusts the test CA (ct). */
static void plain_opts(ferry_tls_opts *st, ferry_tls_opts *ct)
{
    id_opts(st, &server, NULL);
    id_opts(ct, NULL, &ca);
}

/* A tls:// listener with the server's identity and a 300 ms handshake bound (st: its
 * options, for the caller to change and listen again with). */
static void short_listener(ferry_tls_opts *st, ferry_listener **l, char *url)
{
    id_opts(st, &server, NULL);
    st->handshake_timeout_ns = 300 * MS;
    CHECK_EQ(listen_at("tls", st, l, url), 0);
}

/* ---------------------------------------------------------------- mutual TLS, identity */

static void test_mutual(void)
{
    int base = fd_count();
    ferry_tls_opts st, ct;
    id_opts(&st, &server, &ca);
    st.client_cert = FERRY_TLS_CLIENT_REQUIRED;
    id_opts(&ct, &client, &ca);
    duo d = meet_ok(&st, &ct);
    char big[100000], in[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
    for (size_t n = 0; n <= sizeof big; n = n ? n * 3 : 1) {
        CHECK_EQ(ferry_send(d.cli, big, n, T5S), 0);
        CHECK_EQ(ferry_recv(d.srv, in, sizeof in, T5S), (ssize_t)n);
        CHECK(memcmp(in, big, n) == 0);
        CHECK_EQ(ferry_send(d.srv, big, n, T5S), 0);
        CHECK_EQ(ferry_recv(d.cli, in, sizeof in, T5S), (ssize_t)n);
        CHECK(memcmp(in, big, n) == 0);
    }
    ferry_peer_cert p;
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), 0);
    CHECK_EQ(p.size, sizeof p);
    CHECK(p.flags & FERRY_PEER_CERT_VERIFIED);
    CHECK(!(p.flags & FERRY_PEER_CERT_TRUNCATED));
    CHECK(strcmp(p.cn, "alice") == 0);
    CHECK(strcmp(p.subject, "CN=alice,O=ferry tests") == 0);
    CHECK(strcmp(p.sans, "email:alice@example.com\nURI:spiffe://ferry/alice") == 0);
    unsigned char pin[32];
    tc_sha256(&client, pin);
    CHECK(memcmp(p.sha256, pin, 32) == 0);
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(d.cli, &p), 0);
    CHECK(p.flags & FERRY_PEER_CERT_VERIFIED);
    CHECK(strcmp(p.cn, "ferry-server") == 0);
    CHECK(strcmp(p.sans, "DNS:localhost\nIP:127.0.0.1\nIP:::1") == 0);
    tc_sha256(&server, pin);
    CHECK(memcmp(p.sha256, pin, 32) == 0);
    printf("kernel TLS on this machine: tx %s, rx %s\n",
           p.flags & FERRY_PEER_CERT_KTLS_TX ? "on" : "off",
           p.flags & FERRY_PEER_CERT_KTLS_RX ? "on" : "off");
    /* argument checks; a local credential is not there */
    ferry_cred cred;
    CHECK_EQ(ferry_chan_peer(d.srv, &cred), -EOPNOTSUPP);
    CHECK_EQ(ferry_chan_peer_cert(NULL, &p), -EINVAL);
    CHECK_EQ(ferry_chan_peer_cert(d.srv, NULL), -EINVAL);
    p.size = 0;
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), -EINVAL);
    p.size = 5000;
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), -EINVAL);
    /* an older caller's smaller struct: only its prefix is written */
    struct {
        ferry_peer_cert p;
        char guard[8];
    } older;
    memset(&older, 0x5a, sizeof older);
    older.p.size = offsetof(ferry_peer_cert, sans) + sizeof older.p.sans;
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &older.p), 0);
    CHECK(older.guard[0] == 0x5a);
    duo_close(&d);

    /* on a tcp channel */
    ferry_listener *l = NULL;
    char url[128];
    CHECK_EQ(listen_at("tcp", NULL, &l, url), 0);
    client_arg a;
    ferry_chan *s = NULL;
    CHECK_EQ(accept_client(l, url, NULL, &a, &s, T5S), 0);
    CHECK_EQ(a.rc, 0);
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(s, &p), -EOPNOTSUPP);
    ferry_chan_close(s);
    ferry_chan_close(a.ch);
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), base);
    printf("ok mutual TLS: round trips 0..100000 B; peer identity both ways\n");
}

static void test_optional(void)
{
    int base = fd_count();
    ferry_tls_opts st, ct;
    id_opts(&st, &server, &ca);
    st.client_cert = FERRY_TLS_CLIENT_OPTIONAL;
    id_opts(&ct, NULL, &ca);
    duo d = meet_ok(&st, &ct);
    ferry_peer_cert p;
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), 0);
    CHECK_EQ(p.flags & FERRY_PEER_CERT_VERIFIED, 0);
    CHECK(p.cn[0] == 0 && p.subject[0] == 0 && p.sans[0] == 0);
    duo_close(&d);
    /* with one: it is checked and told */
    id_opts(&ct, &client, &ca);
    d = meet_ok(&st, &ct);
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), 0);
    CHECK(p.flags & FERRY_PEER_CERT_VERIFIED);
    CHECK(strcmp(p.cn, "alice") == 0);
    duo_close(&d);
    /* a bad one is refused even where optional */
    id_opts(&ct, &rogue_client, &ca);
    d = meet(&st, &ct, NULL);
    CHECK_EQ(d.srv_rc, -EKEYREJECTED);
    CHECK_EQ(d.cli_rc, -EACCES);
    CHECK_EQ(fd_count(), base);
    printf("ok optional client certificate: none (flags 0), a good one, a bad one refused\n");
}

/* Names a hostile certificate may carry: control bytes come out as '?', and more SANs
 * than sans holds are cut at a whole line, with FERRY_PEER_CERT_TRUNCATED. */
static void test_names(void)
{
    int base = fd_count();
    char san[4096] = "";
    for (int i = 0; i < 60; i++) {
        char one[64];
        snprintf(one, sizeof one, "%sDNS:host-%02d.a-rather-long-domain.example", i ? "," : "", i);
        strcat(san, one);
    }
    tc_cert odd = tc_make("admin\nroot", san, &ca, -3600, 86400, 0);
    ferry_tls_opts st, ct;
    id_opts(&st, &server, &ca);
    st.client_cert = FERRY_TLS_CLIENT_REQUIRED;
    st.flags = FERRY_TLS_NO_KTLS;
    id_opts(&ct, &odd, &ca);
    duo d = meet_ok(&st, &ct);
    ferry_peer_cert p;
    ferry_peer_cert_init(&p);
    CHECK_EQ(ferry_chan_peer_cert(d.srv, &p), 0);
    CHECK(strcmp(p.cn, "admin?root") == 0);
    CHECK(strchr(p.subject, '\n') == NULL);
    CHECK(p.flags & FERRY_PEER_CERT_TRUNCATED);
    CHECK(!(p.flags & (FERRY_PEER_CERT_KTLS_TX | FERRY_PEER_CERT_KTLS_RX)));
    size_t len = strlen(p.sans);
    CHECK(len < sizeof p.sans && len > 900);
    const char *last = strrchr(p.sans, '\n') + 1; /* the last line is whole */
    CHECK(strncmp(last, "DNS:host-", 9) == 0 &&
          strlen(last) == strlen("DNS:host-00.a-rather-long-domain.example"));
    CHECK(strncmp(p.sans, "DNS:host-00.a-rather-long-domain.example\n", 41) == 0);
    duo_close(&d);
    tc_free(&odd);
    CHECK_EQ(fd_count(), base);
    printf("ok names: a newline in the CN comes out as '?'; 60 SANs cut at a whole line "
           "(%zu bytes, TRUNCATED)\n",
           len);
}

/* ---------------------------------------------------------------- failures */

static void expect(const char *what, const tc_cert *srv_id, const tc_cert *srv_trust,
                   unsigned client_cert, const tc_cert *cli_id, const tc_cert *cli_trust,
                   const char *host, const char *verify_host, int want_srv, int want_cli)
{
    int base = fd_count();
    ferry_tls_opts st, ct;
    id_opts(&st, srv_id, srv_trust);
    st.client_cert = client_cert;
    id_opts(&ct, cli_id, cli_trust);
    ct.host = verify_host;
    duo d = meet(&st, &ct, host);
    if (d.srv_rc != want_srv || d.cli_rc != want_cli)
        fprintf(stderr, "%s: listener %s, client %s\n", what, ferry_strerror(d.srv_rc),
                ferry_strerror(d.cli_rc));
    CHECK_EQ(d.srv_rc, want_srv);
    CHECK_EQ(d.cli_rc, want_cli);
    duo_close(&d);
    CHECK_EQ(fd_count(), base);
    printf("ok %s: listener %s, client %s\n", what, ferry_strerror(want_srv),
           ferry_strerror(want_cli));
}

static void test_failures(void)
{
    const unsigned N = FERRY_TLS_CLIENT_NONE, R = FERRY_TLS_CLIENT_REQUIRED;
    expect("server from another CA", &server, NULL, N, NULL, &other_ca, NULL, NULL, -EACCES,
           -EKEYREJECTED);
    expect("wrong host (IP)", &wrong_host, NULL, N, NULL, &ca, NULL, NULL, -EACCES, -EREMCHG);
    expect("wrong host (DNS, tls->host)", &server, NULL, N, NULL, &ca, NULL, "other.example",
           -EACCES, -EREMCHG);
    expect("right host by DNS name", &dns_only, NULL, N, NULL, &ca, "localhost", NULL, 0, 0);
    expect("host by DNS name, certificate for other names", &wrong_host, NULL, N, NULL, &ca,
           "localhost", NULL, -EACCES, -EREMCHG);
    expect("expired server", &expired_server, NULL, N, NULL, &ca, NULL, NULL, -EACCES,
           -EKEYEXPIRED);
    expect("no client certificate, required", &server, &ca, R, NULL, &ca, NULL, NULL, -EACCES,
           -EACCES);
    expect("client from another CA", &server, &ca, R, &rogue_client, &ca, NULL, NULL, -EKEYREJECTED,
           -EACCES);
    expect("expired client", &server, &ca, R, &expired_client, &ca, NULL, NULL, -EKEYEXPIRED,
           -EACCES);
}

/* ---------------------------------------------------------------- other protocols, stalls */

static void test_protocols(void)
{
    int base = fd_count();
    /* a tcp:// client at a tls:// listener: both wait for the other to speak first */
    ferry_tls_opts st;
    ferry_listener *l = NULL;
    char url[128];
    short_listener(&st, &l, url);
    char curl[128];
    snprintf(curl, sizeof curl, "tcp://%s", url + 6);
    client_arg a;
    ferry_chan *s = NULL;
    int64_t t0 = now_ns();
    CHECK_EQ(accept_client(l, curl, NULL, &a, &s, FERRY_FOREVER), -ETIMEDOUT);
    int64_t took = now_ns() - t0; /* with the client's end: it is told at once */
    CHECK_EQ(a.rc, -EPIPE);
    CHECK(took >= 290 * MS && took < 4000 * MS);
    ferry_listener_close(l);
    printf("ok tcp:// client at a tls:// listener: accept -ETIMEDOUT after %lld ms (bound 300), "
           "client -EPIPE\n",
           (long long)(took / MS));

    /* a tls:// client at a tcp:// listener */
    CHECK_EQ(listen_at("tcp", NULL, &l, url), 0);
    ferry_tls_opts ct;
    id_opts(&ct, NULL, &ca);
    client_arg b = {.tls = &ct, .timeout = T5S};
    snprintf(b.url, sizeof b.url, "tls://%s", url + 6);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, client_main, &b), 0);
    CHECK_EQ(ferry_accept(l, &s, T5S), 0);
    char buf[64];
    CHECK_EQ(ferry_recv(s, buf, sizeof buf, T5S), -EBADMSG);
    pthread_join(th, NULL);
    CHECK_EQ(b.rc, -EPROTO);
    ferry_chan_close(s);
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), base);
    printf("ok tls:// client at a tcp:// listener: client -EPROTO, listener's channel -EBADMSG\n");
}

/* A raw TCP peer that connects (or accepts) and never says a word. */
static void test_stalls(void)
{
    int base = fd_count();
    ferry_tls_opts st;
    ferry_listener *l = NULL;
    char url[128];
    short_listener(&st, &l, url);
    int mute = tcp_connect(url_port(url));
    ferry_chan *s = NULL;
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &s, FERRY_FOREVER), -ETIMEDOUT);
    int64_t took = now_ns() - t0;
    CHECK(took >= 290 * MS && took < 4000 * MS);
    close(mute);
    /* the call's own deadline when it is the earlier */
    st.handshake_timeout_ns = 0; /* 10 s */
    ferry_listener_close(l);
    CHECK_EQ(listen_at("tls", &st, &l, url), 0);
    mute = tcp_connect(url_port(url));
    t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &s, 200 * MS), -ETIMEDOUT);
    int64_t took2 = now_ns() - t0;
    CHECK(took2 >= 190 * MS && took2 < 4000 * MS);
    close(mute);
    ferry_listener_close(l);

    /* a server that accepts and never answers the ClientHello */
    int port;
    int ls = tcp_listen(&port);
    ferry_tls_opts ct;
    id_opts(&ct, NULL, &ca);
    ct.handshake_timeout_ns = 300 * MS;
    ferry_chan *c = NULL;
    t0 = now_ns();
    CHECK_EQ(open_tls(port, &ct, &c, FERRY_FOREVER), -ETIMEDOUT);
    int64_t took3 = now_ns() - t0;
    CHECK(took3 >= 290 * MS && took3 < 4000 * MS);
    int acc = accept(ls, NULL, NULL);
    if (acc >= 0) close(acc);
    close(ls);
    CHECK_EQ(fd_count(), base);
    printf("ok stalls: a mute client cut off after %lld ms (bound 300 ms, FERRY_FOREVER), "
           "%lld ms (deadline 200 ms); a mute server after %lld ms\n",
           (long long)(took / MS), (long long)(took2 / MS), (long long)(took3 / MS));
}

/* The listener runs handshakes side by side: mute clients hold only their own slots, and
 * a handshake goes on across ferry_accept calls of any length. */
static void test_listener_concurrency(void)
{
    int base = fd_count();
    ferry_tls_opts st, ct;
    plain_opts(&st, &ct);
    ferry_listener *l = NULL;
    char url[128];
    CHECK_EQ(listen_at("tls", &st, &l, url), 0); /* handshake bound: the default 10 s */
    int mute[3];
    for (int i = 0; i < 3; i++) mute[i] = tcp_connect(url_port(url));
    /* let the listener take the mute ones first */
    ferry_chan *s = NULL;
    CHECK_EQ(ferry_accept(l, &s, 50 * MS), -ETIMEDOUT);
    client_arg a;
    int64_t t0 = now_ns();
    CHECK_EQ(accept_client(l, url, &ct, &a, &s, T5S), 0);
    int64_t took = now_ns() - t0; /* with the client's end of the handshake */
    CHECK_EQ(a.rc, 0);
    CHECK(took < 2000 * MS); /* not behind the mute ones' 10 s */
    ferry_chan_close(s);
    ferry_chan_close(a.ch);
    /* accept in 1 ms slices (as a loop that checks for signals does): the handshake goes
     * on across the calls, and the client gets its channel */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, client_main, &a), 0);
    int rc, calls = 0;
    t0 = now_ns();
    while ((rc = ferry_accept(l, &s, 1 * MS)) == -ETIMEDOUT && now_ns() - t0 < T5S) calls++;
    pthread_join(th, NULL);
    CHECK_EQ(rc, 0);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(ferry_send(a.ch, "x", 1, T5S), 0);
    char buf[4];
    CHECK_EQ(ferry_recv(s, buf, sizeof buf, T5S), 1);
    ferry_chan_close(s);
    ferry_chan_close(a.ch);
    /* the poll fd: readable while a client's handshake can step */
    int pfd = ferry_listener_poll_fd(l);
    CHECK(pfd >= 0);
    CHECK_EQ(pthread_create(&th, NULL, client_main, &a), 0);
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    while ((rc = ferry_accept(l, &s, FERRY_NOW)) == -EAGAIN) CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(rc, 0);
    pthread_join(th, NULL);
    CHECK_EQ(a.rc, 0);
    ferry_chan_close(s);
    ferry_chan_close(a.ch);
    for (int i = 0; i < 3; i++) close(mute[i]);
    ferry_listener_close(l); /* frees the mute ones' handshakes */
    CHECK_EQ(fd_count(), base);
    printf("ok listener: a client accepted in %lld ms past 3 mute ones (bound 10 s); a "
           "handshake across %d accept calls of 1 ms; FERRY_NOW accepts driven by the poll fd\n",
           (long long)(took / MS), calls);
}

/* TLS peers of another protocol (no ALPN "ferry/1"): a plain OpenSSL server, and a plain
 * OpenSSL client, each with good certificates. */
typedef struct raw_peer {
    int fd; /* the listening socket (server) or the port to connect to (client) */
    int rc; /* SSL_accept / SSL_connect result */
} raw_peer;

/* The raw peers write with OpenSSL's socket BIO, which raises SIGPIPE at a gone peer:
 * blocked in their threads (ferry's own calls in the main thread never raise it). */
static void no_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *raw_server(void *p)
{
    raw_peer *r = p;
    no_sigpipe();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    CHECK(SSL_CTX_use_certificate(ctx, server.x) == 1);
    CHECK(SSL_CTX_use_PrivateKey(ctx, server.key) == 1);
    int s = accept(r->fd, NULL, NULL);
    CHECK(s >= 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s);
    r->rc = SSL_accept(ssl);
    char b;
    SSL_read(ssl, &b, 1); /* until the client gives up */
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(s);
    return NULL;
}

static void *raw_client(void *p)
{
    raw_peer *r = p;
    no_sigpipe();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.x);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int s = tcp_connect(r->fd);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s);
    r->rc = SSL_connect(ssl); /* TLS 1.3: the client is done before the server decides */
    char b;
    if (r->rc == 1) r->rc = SSL_read(ssl, &b, 1) > 0 ? 1 : 0; /* then it hears the end */
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(s);
    return NULL;
}

static void test_alpn(void)
{
    int base = fd_count();
    /* a plain TLS server */
    int port;
    int ls = tcp_listen(&port);
    raw_peer r = {.fd = ls};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, raw_server, &r), 0);
    ferry_tls_opts ct;
    id_opts(&ct, NULL, &ca);
    ferry_chan *c = NULL;
    CHECK_EQ(open_tls(port, &ct, &c, T5S), -EPROTO);
    pthread_join(th, NULL);
    CHECK_EQ(r.rc, 1); /* its handshake was fine: it is the protocol that differs */
    close(ls);
    /* a plain TLS client */
    ferry_tls_opts st;
    id_opts(&st, &server, NULL);
    ferry_listener *l = NULL;
    char lurl[128];
    CHECK_EQ(listen_at("tls", &st, &l, lurl), 0);
    raw_peer q = {.fd = url_port(lurl)};
    CHECK_EQ(pthread_create(&th, NULL, raw_client, &q), 0);
    ferry_chan *s = NULL;
    CHECK_EQ(ferry_accept(l, &s, T5S), -EPROTO);
    pthread_join(th, NULL);
    CHECK(q.rc != 1); /* nothing came through */
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), base);
    printf("ok ALPN: a plain TLS server and a plain TLS client (good certificates, no "
           "\"ferry/1\") are -EPROTO\n");
}

/* The path of a machine with kernel TLS: OpenSSL's socket BIO (which writes with write(2),
 * raising SIGPIPE at a gone peer) and ferry's SIGPIPE guard around it. Here the kernel has
 * no tls module, so the test hook takes the path without it: round trips, then sends to
 * a closed peer until -EPIPE, with SIGPIPE at its default action (it would kill us). */
static void test_socket_bio(void)
{
    int base = fd_count();
    ferry__tls_socket_bio = 1;
    ferry_tls_opts st, ct;
    id_opts(&st, &server, &ca);
    st.client_cert = FERRY_TLS_CLIENT_REQUIRED;
    id_opts(&ct, &client, &ca);
    duo d = meet_ok(&st, &ct);
    static char big[200000], in[200000];
    for (int i = 0; i < 20; i++) {
        size_t n = (size_t)(i * 9973) % sizeof big;
        memset(big, i, n);
        CHECK_EQ(ferry_send(d.cli, big, n, T5S), 0);
        CHECK_EQ(ferry_recv(d.srv, in, sizeof in, T5S), (ssize_t)n);
        CHECK(n == 0 || in[n - 1] == (char)i);
    }
    ferry_chan_close(d.srv);
    int rc = 0, sends = 0;
    while (rc == 0 && sends < 1000) rc = ferry_send(d.cli, big, 1000, T5S), sends++;
    CHECK_EQ(rc, -EPIPE);
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(!sigismember(&pending, SIGPIPE));
    ferry_chan_close(d.cli);
    ferry__tls_socket_bio = 0;
    CHECK_EQ(fd_count(), base);
    printf("ok OpenSSL's socket BIO (the kernel TLS path): round trips; -EPIPE after %d sends "
           "to a closed peer, no SIGPIPE\n",
           sends);
}

/* ---------------------------------------------------------------- readiness */

/* Encode frame seq with payload p[0..n) into out; returns its length. */
static size_t frame(uint8_t *out, uint64_t seq, const void *p, uint32_t n, uint32_t len_field)
{
    ferry__frame f = {.flags = FERRY__F_CRC, .type = 0, .seq = seq, .len = n};
    f.crc = ferry__frame_crc(&f, p);
    f.len = len_field;
    ferry__frame_encode(&f, out);
    memcpy(out + FERRY__FRAME_HDR, p, n);
    return FERRY__FRAME_HDR + n;
}

static void test_pending(void)
{
    int base = fd_count();
    /* Two frames back to back in one write: a 100000-byte one, then "0123456789". The
     * 16 KiB records split the bytes so that the last record holds the end of the first
     * frame and all of the second. The receiver reads the large frame's tail straight into
     * place, exactly as long as it is: the second frame stays decrypted in OpenSSL's
     * buffer, and the socket has nothing more. Round 0 with the poll fd armed first (it
     * must poll readable), round 1 without (a blocking receive must not wait on the
     * socket). */
    static uint8_t big[100000], wire[100100], in[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 13);
    size_t n = frame(wire, 1, big, sizeof big, sizeof big);
    n += frame(wire + n, 2, "0123456789", 10, 10);
    CHECK(n / 16384 == (FERRY__FRAME_HDR + sizeof big) / 16384); /* one record holds both */
    for (int round = 0; round < 2; round++) {
        ferry_tls_opts st, ct;
        plain_opts(&st, &ct);
        duo d = meet_ok(&st, &ct);
        int pfd = round == 0 ? ferry_chan_poll_fd(d.srv) : -1;
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        CHECK_EQ(ferry__tls_inject(d.cli, wire, n), 0);
        CHECK_EQ(ferry_recv(d.srv, in, sizeof in, T5S), (ssize_t)sizeof big);
        CHECK(memcmp(in, big, sizeof big) == 0);
        if (round == 0) CHECK_EQ(poll(&p, 1, 0), 1); /* the frame in OpenSSL's buffer */
        int64_t t0 = now_ns();
        char buf[16];
        CHECK_EQ(ferry_recv(d.srv, buf, sizeof buf, T5S), 10); /* at once, not at the deadline */
        CHECK(now_ns() - t0 < 1000 * MS);
        CHECK(memcmp(buf, "0123456789", 10) == 0);
        if (round == 0) CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_EQ(ferry_recv(d.srv, buf, sizeof buf, FERRY_NOW), -EAGAIN);
        duo_close(&d);
    }
    CHECK_EQ(fd_count(), base);
    printf("ok readiness: a frame decrypted in OpenSSL's buffer polls readable and is "
           "received at once\n");
}

/* ---------------------------------------------------------------- hostile frames */

static void test_hostile(void)
{
    int base = fd_count();
    for (int kind = 0; kind < 2; kind++) {
        ferry_tls_opts st, ct;
        plain_opts(&st, &ct);
        duo d = meet(&st, &ct, NULL);
        CHECK_EQ(d.cli_rc, 0);
        CHECK_EQ(ferry_send(d.cli, "good", 4, T5S), 0);
        uint8_t w[64];
        size_t n;
        if (kind == 0) { /* a length one past max_msg */
            n = frame(w, 2, "x", 1, (uint32_t)ferry_chan_max_msg(d.srv) + 1);
        } else {
            memset(w, 0xa5, sizeof w);
            n = sizeof w;
        }
        CHECK_EQ(ferry__tls_inject(d.cli, w, n), 0);
        char buf[16];
        CHECK_EQ(ferry_recv(d.srv, buf, sizeof buf, T5S), 4);
        CHECK_EQ(ferry_recv(d.srv, buf, sizeof buf, T5S), -EBADMSG);
        ssize_t r = ferry_recv(d.srv, buf, sizeof buf, T5S);
        CHECK(r == -EBADMSG || r == -EPIPE);
        r = ferry_recv(d.cli, buf, sizeof buf, T5S); /* the listener's end cut it off */
        CHECK(r == -EPIPE || r == -EBADMSG);
        duo_close(&d);
    }
    CHECK_EQ(fd_count(), base);
    printf("ok hostile frames after the handshake (length max + 1, junk): -EBADMSG, then closed\n");
}

/* ---------------------------------------------------------------- options */

static void test_options(void)
{
    int base = fd_count();
    char dir[] = "/tmp/ferry-tls-XXXXXX", cert[64], key[64], cafile[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cafile, sizeof cafile, "%s/ca.pem", dir);
    tc_write(cert, server.cert_pem);
    tc_write(key, server.key_pem);
    tc_write(cafile, ca.cert_pem);

    /* the environment, with NULL options on both sides */
    setenv("FERRY_TLS_CERT", cert, 1);
    setenv("FERRY_TLS_KEY", key, 1);
    setenv("FERRY_TLS_CA", cafile, 1);
    ferry_listener *l = NULL;
    char url[128];
    CHECK_EQ(listen_at("tls", NULL, &l, url), 0);
    CHECK(strncmp(url, "tls://127.0.0.1:", 16) == 0);
    client_arg a;
    ferry_chan *s = NULL;
    CHECK_EQ(accept_client(l, url, NULL, &a, &s, T5S), 0);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(ferry_send(a.ch, "env", 3, T5S), 0);
    char buf[8];
    CHECK_EQ(ferry_recv(s, buf, sizeof buf, T5S), 3);
    ferry_chan_close(s);
    ferry_chan_close(a.ch);
    ferry_listener_close(l);
    /* given options win over the environment: no CA given means the system's store, which
     * does not know our test CA */
    ferry_tls_opts t;
    ferry_tls_opts_init(&t);
    CHECK_EQ(listen_at("tls", NULL, &l, url), 0);
    client_arg b;
    CHECK_EQ(accept_client(l, url, &t, &b, &s, T5S), -EACCES);
    CHECK_EQ(b.rc, -EKEYREJECTED);
    ferry_listener_close(l);
    unsetenv("FERRY_TLS_CERT");
    unsetenv("FERRY_TLS_KEY");
    unsetenv("FERRY_TLS_CA");

    /* files through the options */
    ferry_tls_opts_init(&t);
    t.cert = cert;
    t.key = key;
    CHECK_EQ(listen_at("tls", &t, &l, url), 0);
    ferry_listener_close(l);
    /* refusals */
    CHECK_EQ(listen_at("tls", NULL, &l, url), -EINVAL); /* no certificate at all */
    ferry_tls_opts_init(&t);
    t.cert = "/nonexistent/cert.pem";
    t.key = key;
    CHECK_EQ(listen_at("tls", &t, &l, url), -ENOENT);
    t.cert = cert;
    t.key = NULL;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL); /* one without the other */
    t.key_pem = client.key_pem;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL); /* a key of another certificate */
    t.key_pem = NULL;
    t.key = key;
    t.cert_pem = server.cert_pem;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL); /* a file and PEM for one item */
    t.cert_pem = NULL;
    t.client_cert = FERRY_TLS_CLIENT_REQUIRED;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL); /* client certificates, no CA */
    t.client_cert = 7;
    t.ca = cafile;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.client_cert = 0;
    t.flags = 1u << 5;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.flags = 0;
    t.handshake_timeout_ns = -1;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.handshake_timeout_ns = 0;
    t.ca = key; /* no certificate in it */
    t.client_cert = FERRY_TLS_CLIENT_OPTIONAL;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.ca = dir; /* not a file */
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.ca = cafile;
    t.cert_pem = "not PEM";
    t.cert = NULL;
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    t.size = 0; /* never prepared */
    CHECK_EQ(listen_at("tls", &t, &l, url), -EINVAL);
    /* sized: a newer caller's zero tail is fine, a nonzero one is -E2BIG */
    struct {
        ferry_tls_opts t;
        uint64_t more;
    } newer;
    memset(&newer, 0, sizeof newer);
    ferry_tls_opts_init_sized(&newer.t, sizeof newer);
    newer.t.cert = cert;
    newer.t.key = key;
    CHECK_EQ(listen_at("tls", &newer.t, &l, url), 0);
    ferry_listener_close(l);
    newer.more = 1;
    CHECK_EQ(listen_at("tls", &newer.t, &l, url), -E2BIG);
    /* a malformed address */
    ferry_tls_opts_init(&t);
    t.cert = cert;
    t.key = key;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.tls = &t;
    CHECK_EQ(ferry_listen("tls://127.0.0.1", &o, &l), -EINVAL);
    o.capacity = 4;
    CHECK_EQ(ferry_listen("tls://127.0.0.1:0", &o, &l), -EOPNOTSUPP);

    unlink(cert);
    unlink(key);
    unlink(cafile);
    CHECK_EQ(rmdir(dir), 0);
    CHECK_EQ(fd_count(), base);
    printf("ok options: environment defaults, files, PEM, refusals\n");
}

/* ---------------------------------------------------------------- two threads on one end */

typedef struct pump {
    ferry_chan *ch;
    int n;
} pump;

static void *sender(void *p)
{
    pump *u = p;
    char m[20000]; /* each thread its own */
    for (int i = 0; i < u->n; i++) {
        memset(m, i & 0xff, sizeof m);
        CHECK_EQ(ferry_send(u->ch, m, (size_t)(i % 20000), T5S), 0);
    }
    return NULL;
}

static void test_threads(void)
{
    int base = fd_count();
    ferry_tls_opts st, ct;
    plain_opts(&st, &ct);
    duo d = meet(&st, &ct, NULL);
    CHECK_EQ(d.cli_rc, 0);
    const int n = 1500;
    /* the client's end: one thread sends, this one receives the server's echo */
    pump u = {d.cli, n};
    pthread_t th, echo;
    CHECK_EQ(pthread_create(&th, NULL, sender, &u), 0);
    pump v = {d.srv, n}; /* the server sends its own stream at the same time */
    CHECK_EQ(pthread_create(&echo, NULL, sender, &v), 0);
    static char buf[20000];
    for (int i = 0; i < n; i++) {
        CHECK_EQ(ferry_recv(d.srv, buf, sizeof buf, T5S), i % 20000);
        if (i % 20000) CHECK(buf[0] == (char)(i & 0xff));
        CHECK_EQ(ferry_recv(d.cli, buf, sizeof buf, T5S), i % 20000);
    }
    pthread_join(th, NULL);
    pthread_join(echo, NULL);
    duo_close(&d);
    CHECK_EQ(fd_count(), base);
    printf("ok a sending and a receiving thread on each end at once: %d messages each way\n", n);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* a peer that goes away must never kill us: SIGPIPE stays at its default */
    ca = tc_make("ferry test CA", NULL, NULL, -3600, 86400, 1);
    other_ca = tc_make("another CA", NULL, NULL, -3600, 86400, 1);
    server = tc_make("ferry-server", "DNS:localhost,IP:127.0.0.1,IP:::1", &ca, -3600, 86400, 0);
    client =
        tc_make("alice", "email:alice@example.com,URI:spiffe://ferry/alice", &ca, -3600, 86400, 0);
    expired_server = tc_make("ferry-server", "DNS:localhost,IP:127.0.0.1", &ca, -7200, -3600, 0);
    expired_client = tc_make("alice", NULL, &ca, -7200, -3600, 0);
    rogue_client = tc_make("mallory", NULL, &other_ca, -3600, 86400, 0);
    wrong_host = tc_make("ferry-server", "DNS:other.example,IP:10.9.8.7", &ca, -3600, 86400, 0);
    dns_only = tc_make("ferry-server", "DNS:localhost", &ca, -3600, 86400, 0);
    test_mutual();
    test_optional();
    test_names();
    test_failures();
    test_protocols();
    test_stalls();
    test_listener_concurrency();
    test_alpn();
    test_socket_bio();
    test_pending();
    test_hostile();
    test_options();
    test_threads();
    tc_cert *all[] = {&ca,           &other_ca,       &server,
                      &client,       &expired_server, &expired_client,
                      &rogue_client, &wrong_host,     &dns_only};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tc_free(all[i]);
    printf("test_tls: all passed\n");
    return 0;
}
