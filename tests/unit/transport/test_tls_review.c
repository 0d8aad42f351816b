// SPDX-License-Identifier: MIT
/*
 * test_tls_review — tls:// findings of the security review (a hostile TLS peer, played
 * here with OpenSSL's API directly; both ends in this process, the peer in a thread):
 *  - SIGPIPE from a read: on the kernel TLS path (OpenSSL's socket BIO, test hook
 *    ferry__tls_socket_bio) SSL_read writes too (the answer to a KeyUpdate that asks
 *    for one, alerts). A peer that sends KeyUpdates asking for an answer and hangs up
 *    made the receiving side's SSL_read write to a closed connection: SIGPIPE killed the
 *    process. Now: the receive ends with -EPIPE and the process lives.
 *  - a server that stalls after the handshake: a TLS server that completes the handshake
 *    and sends one byte of the HELLO frame, then nothing, held a ferry_chan_open with
 *    FERRY_FOREVER forever (the HELLO wait had only the caller's deadline), although
 *    handshake_timeout_ns bounds the setup "also under FERRY_FOREVER". Now -ETIMEDOUT
 *    at the handshake bound. The same for a server that sends KeyUpdates and never a
 *    HELLO (the client's SSL_peek for the first record handled them for as long as they
 *    came).
 *  - a client that negotiated max_fragment_length (512-byte records): the listener's end
 *    took a partial SSL_write (one small record of a larger write) as a failure, and
 *    every send of more than 512 bytes to that client was -EPIPE. Now the record goes
 *    out in pieces and the message arrives whole.
 * SIGPIPE stays at its default action (it would kill the test). No descriptor is left.
 */
#include "testutil.h" /* first: _GNU_SOURCE */
#include "tlscerts.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <ferry/ferry.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern int ferry__tls_socket_bio; /* tls.c, tests only */

#define T5S ((int64_t)5 * 1000000000)

static tc_cert ca, server;

/* The hostile client's context: TLS 1.3, the test CA trusted, the server verified, ALPN
 * "ferry/1" (so the listener takes it). The caller frees it (SSL_CTX_free). */
static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(ctx != NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.x);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x07"
                                        "ferry/1";
    CHECK_EQ(SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1), 0);
    return ctx;
}

/* A TCP socket connected to 127.0.0.1:port; the caller closes it. */
static int client_socket(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    return s;
}

/* The client's handshake on s, then the listener's HELLO read (one record). The caller
 * frees the SSL (SSL_free) and closes s. */
static SSL *client_handshake(SSL_CTX *ctx, int s)
{
    SSL *ssl = SSL_new(ctx);
    CHECK(ssl != NULL);
    SSL_set_fd(ssl, s);
    CHECK_EQ(SSL_connect(ssl), 1);
    char hello[256];
    size_t got = 0;
    CHECK_EQ(SSL_read_ex(ssl, hello, sizeof hello, &got), 1); /* the listener's HELLO */
    return ssl;
}

/* The hostile client: a TLS 1.3 handshake with ALPN "ferry/1" (so the listener takes
 * it), reads the listener's HELLO, then sends `nku` KeyUpdates that ask for an answer
 * and closes (a FIN: everything it was sent was read). */
typedef struct peer {
    int port;
    int nku;
    _Atomic int accepted; /* set by the main thread once ferry_accept returned */
    int ok;
} peer;

static void *peer_main(void *arg)
{
    peer *p = arg;
    SSL_CTX *ctx = client_ctx();
    int s = client_socket(p->port);
    SSL *ssl = client_handshake(ctx, s);
    while (!atomic_load(&p->accepted)) usleep(1000);
    int sent = 0;
    for (int i = 0; i < p->nku; i++) {
        if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) break;
        if (SSL_do_handshake(ssl) != 1) break; /* sends it */
        sent++;
    }
    p->ok = sent == p->nku;
    ERR_clear_error();
    SSL_free(ssl);
    close(s); /* FIN: the listener's answers to come find no one (RST, then EPIPE) */
    SSL_CTX_free(ctx);
    return NULL;
}

/* A tls:// listener on 127.0.0.1 with the server's certificate, at a port the kernel
 * picks (*port). Its options are static: they outlive the listener. */
static ferry_listener *server_listen(int *port)
{
    static ferry_tls_opts t;
    static ferry_chan_opts o;
    ferry_tls_opts_init(&t);
    t.cert_pem = server.cert_pem;
    t.key_pem = server.key_pem;
    ferry_chan_opts_init(&o);
    o.tls = &t;
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen("tls://127.0.0.1:0", &o, &l), 0);
    char url[128];
    CHECK(ferry_listener_url(l, url, sizeof url) > 0);
    *port = atoi(strrchr(url, ':') + 1);
    return l;
}

static void test_sigpipe_on_read(void)
{
    int base = fd_count();
    ferry__tls_socket_bio = 1; /* the kernel TLS path: OpenSSL's socket BIO */
    int port;
    ferry_listener *l = server_listen(&port);
    peer p = {.nku = 8};
    p.port = port;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, peer_main, &p), 0);
    ferry_chan *srv = NULL;
    CHECK_EQ(ferry_accept(l, &srv, T5S), 0);
    atomic_store(&p.accepted, 1);
    pthread_join(th, NULL);
    CHECK(p.ok);
    /* Let the KeyUpdates and the FIN arrive before the first read. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char buf[64];
    ssize_t rc = ferry_recv(srv, buf, sizeof buf, T5S);
    CHECK_EQ(rc, -EPIPE);
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(!sigismember(&pending, SIGPIPE));
    ferry_chan_close(srv);
    ferry_listener_close(l);
    ferry__tls_socket_bio = 0;
    CHECK_EQ(fd_count(), base);
    printf("ok a peer's KeyUpdates then a hang-up: the receive is -EPIPE, no SIGPIPE\n");
}

/* The stalling server: accepts one connection, completes a TLS 1.3 handshake with ALPN
 * "ferry/1", writes one byte (the first of a HELLO), then waits until told to end. */
typedef struct stall {
    int lfd;
    int keyupdates; /* 1: after the handshake, KeyUpdates (no answer asked) instead */
    _Atomic int done;
} stall;

static int alpn_ferry(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                      const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char alpn[] = "\x07"
                                        "ferry/1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn, sizeof alpn - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The raw peers write with OpenSSL's socket BIO: SIGPIPE is blocked in their threads
 * (this process keeps its default action, which the tests rely on). */
static void peer_thread_no_sigpipe(void)
{
    sigset_t p;
    sigemptyset(&p);
    sigaddset(&p, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &p, NULL);
}

static void *stall_main(void *arg)
{
    stall *st = arg;
    peer_thread_no_sigpipe();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    CHECK(ctx != NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_num_tickets(ctx, 0);
    CHECK_EQ(SSL_CTX_use_certificate(ctx, server.x), 1);
    CHECK_EQ(SSL_CTX_use_PrivateKey(ctx, server.key), 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_ferry, NULL);
    int s = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC);
    CHECK(s >= 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s);
    struct timeval tv = {0, 200000}; /* a send waits 200 ms at most: done is seen */
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (SSL_accept(ssl) == 1 && !st->keyupdates) {
        size_t w;
        SSL_write_ex(ssl, "\x01", 1, &w); /* one byte of a HELLO, then silence */
    } else if (st->keyupdates) {          /* records without data, for 8 s at most */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!atomic_load(&st->done)) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (t1.tv_sec - t0.tv_sec > 8) break;
            if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
                SSL_do_handshake(ssl) != 1) {
                ERR_clear_error();
                usleep(1000);
            }
        }
    }
    while (!atomic_load(&st->done)) usleep(1000);
    ERR_clear_error();
    SSL_free(ssl);
    close(s);
    SSL_CTX_free(ctx);
    return NULL;
}

typedef struct opener {
    char url[64];
    _Atomic int finished;
    int rc;
    ferry_chan *ch;
} opener;

static void *opener_main(void *arg)
{
    opener *op = arg;
    ferry_tls_opts t;
    ferry_tls_opts_init(&t);
    t.ca_pem = ca.cert_pem;
    t.handshake_timeout_ns = 300 * (int64_t)1000000;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.tls = &t;
    op->rc = ferry_chan_open(op->url, &o, &op->ch, FERRY_FOREVER);
    atomic_store(&op->finished, 1);
    return NULL;
}

static void test_hello_stall(int keyupdates)
{
    int base = fd_count();
    stall st = {.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), .keyupdates = keyupdates};
    CHECK(st.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    CHECK_EQ(bind(st.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(st.lfd, 4), 0);
    CHECK_EQ(getsockname(st.lfd, (struct sockaddr *)&sa, &sl), 0);
    pthread_t sth, oth;
    CHECK_EQ(pthread_create(&sth, NULL, stall_main, &st), 0);
    opener op = {.rc = 1};
    snprintf(op.url, sizeof op.url, "tls://127.0.0.1:%d", ntohs(sa.sin_port));
    CHECK_EQ(pthread_create(&oth, NULL, opener_main, &op), 0);
    /* handshake_timeout_ns is 300 ms: 3 s is a generous bound on a loaded machine. */
    for (int i = 0; i < 300 && !atomic_load(&op.finished); i++) usleep(10000);
    int finished = atomic_load(&op.finished);
    atomic_store(&st.done, 1); /* the server hangs up: an opener still waiting ends */
    pthread_join(sth, NULL);
    pthread_join(oth, NULL);
    CHECK(finished);
    CHECK_EQ(op.rc, -ETIMEDOUT);
    if (op.rc == 0) ferry_chan_close(op.ch);
    close(st.lfd);
    CHECK_EQ(fd_count(), base);
    printf("ok a server that %s: ferry_chan_open(FERRY_FOREVER) is -ETIMEDOUT at the "
           "handshake bound\n",
           keyupdates ? "sends KeyUpdates, never a HELLO" : "stalls in its HELLO");
}

/* The flooding client: after the handshake and the HELLO, KeyUpdates that ask for an
 * answer, never reading the answers, until told to stop or the socket stays full. */
typedef struct flood {
    int port;
    _Atomic int accepted, stop;
    long sent;
} flood;

static void *flood_main(void *arg)
{
    flood *f = arg;
    peer_thread_no_sigpipe();
    SSL_CTX *ctx = client_ctx();
    int s = client_socket(f->port);
    SSL *ssl = client_handshake(ctx, s);
    while (!atomic_load(&f->accepted)) usleep(1000);
    struct timeval tv = {0, 200000}; /* a send that waits 200 ms: the socket stays full */
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&f->stop)) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 8) break;
        if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) break;
        if (SSL_do_handshake(ssl) != 1) break;
        f->sent++;
    }
    while (!atomic_load(&f->stop)) usleep(1000);
    ERR_clear_error();
    SSL_free(ssl);
    close(s);
    SSL_CTX_free(ctx);
    return NULL;
}

static void test_keyupdate_flood(void)
{
    int base = fd_count();
    int port;
    ferry_listener *l = server_listen(&port);
    flood f = {.sent = 0};
    f.port = port;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, flood_main, &f), 0);
    ferry_chan *srv = NULL;
    CHECK_EQ(ferry_accept(l, &srv, T5S), 0);
    atomic_store(&f.accepted, 1);
    char buf[64];
    /* A receive of 1 s: nothing comes but KeyUpdates; it ends near its deadline (3 s is
     * generous; before, it stayed inside one SSL_read for as long as they came). */
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    ssize_t rc = ferry_recv(srv, buf, sizeof buf, 1000000000);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    int64_t ms = (w1.tv_sec - w0.tv_sec) * 1000 + (w1.tv_nsec - w0.tv_nsec) / 1000000;
    atomic_store(&f.stop, 1);
    pthread_join(th, NULL);
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK(ms < 3000);
    ferry_chan_close(srv);
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), base);
    printf("ok a stream of KeyUpdates: a 1 s receive is -ETIMEDOUT after %lld ms (%ld sent)\n",
           (long long)ms, f.sent);
}

/* A client with 512-byte records: reads the HELLO, then `want` bytes (a frame), counting
 * them into got. */
typedef struct small {
    int port;
    size_t want, got;
    _Atomic int accepted;
} small;

static void *small_main(void *arg)
{
    small *sm = arg;
    peer_thread_no_sigpipe();
    SSL_CTX *ctx = client_ctx();
    CHECK_EQ(SSL_CTX_set_tlsext_max_fragment_length(ctx, TLSEXT_max_fragment_length_512), 1);
    int s = client_socket(sm->port);
    struct timeval tv = {5, 0}; /* reads end: a test that fails does not hang */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL *ssl = client_handshake(ctx, s);
    atomic_store(&sm->accepted, 1);
    size_t got = 0;
    static char in[65536];
    while (sm->got < sm->want && SSL_read_ex(ssl, in, sizeof in, &got) == 1) sm->got += got;
    ERR_clear_error();
    SSL_free(ssl);
    close(s);
    SSL_CTX_free(ctx);
    return NULL;
}

static void test_small_records(void)
{
    int base = fd_count();
    int port;
    ferry_listener *l = server_listen(&port);
    static char msg[40000];
    memset(msg, 'm', sizeof msg);
    small sm = {.want = 32 + sizeof msg}; /* a frame: its header, then the payload */
    sm.port = port;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, small_main, &sm), 0);
    ferry_chan *srv = NULL;
    CHECK_EQ(ferry_accept(l, &srv, T5S), 0);
    while (!atomic_load(&sm.accepted)) usleep(1000);
    CHECK_EQ(ferry_send(srv, msg, sizeof msg, T5S), 0);
    pthread_join(th, NULL);
    CHECK(sm.got >= sizeof msg);
    ferry_chan_close(srv);
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), base);
    printf("ok a client with 512-byte records: a %zu-byte message goes out whole (%zu bytes)\n",
           sizeof msg, sm.got);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    ca = tc_make("review CA", NULL, NULL, -60, 3600, 1);
    server = tc_make("localhost", "DNS:localhost,IP:127.0.0.1", &ca, -60, 3600, 0);
    test_sigpipe_on_read();
    test_hello_stall(0);
    test_hello_stall(1);
    test_keyupdate_flood();
    test_small_records();
    tc_free(&server);
    tc_free(&ca);
    return 0;
}
