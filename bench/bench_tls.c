// SPDX-License-Identifier: MIT
/*
 * bench_tls.c — the tls rows of `ferry bench` (built when libferry has tls://):
 *   ferry-tls  bench_ferry over "tls://127.0.0.1:{port}": a CA and a server certificate
 *              are made for each measurement (EC P-256, tests/common/tlscerts.h), written
 *              to a private directory and given to both processes through FERRY_TLS_CERT,
 *              FERRY_TLS_KEY and FERRY_TLS_CA (the library's defaults for NULL options);
 *              all removed when the measurement ends.
 *   tls        the baseline: OpenSSL directly, SSL_read / SSL_write over one TCP
 *              connection on 127.0.0.1 (TCP_NODELAY), TLS 1.3 with the same certificates
 *              and OpenSSL's default suites, as ferry's (TLS_AES_256_GCM_SHA384); each
 *              message framed with a 4-byte length, sent as one SSL_write of length and
 *              payload up to a record, and read with SSL_read until whole. Blocking
 *              sockets; the handshake runs after fork (the driver accepts, the peer
 *              connects). Kernel TLS as ferry's: asked for (SSL_OP_ENABLE_KTLS) when the
 *              kernel has the tls module.
 * Both runners are raw_ops / bench_ferry users like the other rows: every blocking call
 * is bounded by the guard (bench_guard_expired).
 */
#define _GNU_SOURCE
#include "bench_tls.h"
#include "bench_ferry.h"
#include "bench_raw.h"
#include "tlscerts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* ------------------------------------------------------------------ certificates */

typedef struct tls_certs {
    tc_cert ca, srv;
    char dir[64], files[3][96];
} tls_certs;

static const char *const VARS[3] = {"FERRY_TLS_CERT", "FERRY_TLS_KEY", "FERRY_TLS_CA"};

static int certs_make(tls_certs *c, bench_result *res)
{
    c->ca = tc_make("ferry bench CA", NULL, NULL, -3600, 86400, 1);
    /* 10.99.0.1: host A of the rows between namespaces (bench_nats.c) */
    c->srv =
        tc_make("localhost", "DNS:localhost,IP:127.0.0.1,IP:10.99.0.1", &c->ca, -3600, 86400, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/ferry-bench-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->dir)) return bench_fail(res, "mkdtemp: %s", strerror(errno));
    const char *names[3] = {"cert.pem", "key.pem", "ca.pem"};
    const char *texts[3] = {c->srv.cert_pem, c->srv.key_pem, c->ca.cert_pem};
    for (int i = 0; i < 3; i++) {
        snprintf(c->files[i], sizeof c->files[i], "%s/%s", c->dir, names[i]);
        tc_write(c->files[i], texts[i]);
    }
    return 0;
}

static void certs_free(tls_certs *c)
{
    for (int i = 0; i < 3; i++)
        if (c->files[i][0]) unlink(c->files[i]);
    if (c->dir[0]) rmdir(c->dir);
    tc_free(&c->srv);
    tc_free(&c->ca);
}

/* ------------------------------------------------------------------ ferry-tls */

int bench_ferry_tls(const bench_job *job, bench_result *res)
{
    static const bench_ferry_spec loopback = {.url = "tls://127.0.0.1:{port}"};
    const bench_ferry_spec *spec = job->arg ? job->arg : &loopback; /* another URL */
    tls_certs c;
    memset(&c, 0, sizeof c);
    if (certs_make(&c, res) < 0) {
        certs_free(&c);
        return -1;
    }
    for (int i = 0; i < 3; i++) setenv(VARS[i], c.files[i], 1);
    bench_job j = *job;
    j.arg = spec;
    int rc = bench_ferry(&j, res);
    for (int i = 0; i < 3; i++) unsetenv(VARS[i]);
    certs_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ raw OpenSSL */

struct raw_link {
    int fd[2], mine;
    tls_certs certs;
    SSL_CTX *ctx;
    SSL *ssl;
    unsigned char out[16384]; /* a small message's length and payload, one record */
};

static void tls_free(raw_link *l, int remove)
{
    SSL_free(l->ssl);
    SSL_CTX_free(l->ctx);
    for (int i = 0; i < 2; i++)
        if (l->fd[i] >= 0) close(l->fd[i]);
    if (remove)
        certs_free(&l->certs);
    else { /* the peer: its copies of the keys only */
        tc_free(&l->certs.srv);
        tc_free(&l->certs.ca);
    }
    free(l);
}

static raw_link *tls_make(const bench_job *job, bench_result *res)
{
    (void)job;
    raw_link *l = calloc(1, sizeof *l);
    if (!l) {
        bench_fail(res, "out of memory");
        return NULL;
    }
    l->fd[0] = l->fd[1] = l->mine = -1;
    if (certs_make(&l->certs, res) < 0) {
        tls_free(l, 1);
        return NULL;
    }
    if (raw_tcp_pair(l->fd) != 0) {
        bench_fail(res, "tcp over 127.0.0.1: %s", strerror(errno));
        tls_free(l, 1);
        return NULL;
    }
    return l;
}

/* The kernel has kernel TLS (as tls.c asks it). */
static int ktls_there(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), there = 0;
    if (s < 0) return 0;
    if (setsockopt(s, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") < 0 && errno == ENOTCONN)
        there = 1;
    close(s);
    return there;
}

/* After fork: side 0 (the driver) is the server, side 1 the client; the handshake. */
static int tls_side(raw_link *l, int side)
{
    close(l->fd[!side]);
    l->fd[!side] = -1;
    l->mine = l->fd[side];
    l->ctx = SSL_CTX_new(side == 0 ? TLS_server_method() : TLS_client_method());
    if (!l->ctx) return -ENOMEM;
    SSL_CTX_set_min_proto_version(l->ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(l->ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(l->ctx, SSL_MODE_AUTO_RETRY);
    if (ktls_there()) SSL_CTX_set_options(l->ctx, SSL_OP_ENABLE_KTLS);
    if (side == 0) {
        SSL_CTX_set_num_tickets(l->ctx, 0);
        if (SSL_CTX_use_certificate(l->ctx, l->certs.srv.x) != 1 ||
            SSL_CTX_use_PrivateKey(l->ctx, l->certs.srv.key) != 1)
            return -EINVAL;
    } else {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(l->ctx), l->certs.ca.x);
        SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER, NULL);
    }
    l->ssl = SSL_new(l->ctx);
    if (!l->ssl || SSL_set_fd(l->ssl, l->mine) != 1) return -ENOMEM;
    if (side == 1 && SSL_set1_host(l->ssl, "localhost") != 1) return -EINVAL;
    int64_t since = 0;
    for (;;) {
        int r = side == 0 ? SSL_accept(l->ssl) : SSL_connect(l->ssl);
        if (r == 1) return 0;
        int e = SSL_get_error(l->ssl, r);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && errno != EINTR) ||
            bench_guard_expired(&since))
            return -EPROTO;
    }
}

/* All of p through SSL_write (EINTR from the guard: again, boundedly). */
static int ssl_write_all(raw_link *l, const void *p, size_t n)
{
    int64_t since = 0;
    while (n) {
        size_t w = 0;
        if (SSL_write_ex(l->ssl, p, n, &w) == 1) {
            p = (const unsigned char *)p + w;
            n -= w;
            continue;
        }
        int e = SSL_get_error(l->ssl, 0);
        if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) || bench_guard_expired(&since))
            return e == SSL_ERROR_SYSCALL && errno ? -errno : -EPIPE;
    }
    return 0;
}

/* Exactly n bytes through SSL_read: 1, 0 at the end of the stream before any, -errno. */
static int ssl_read_all(raw_link *l, void *p, size_t n)
{
    int64_t since = 0;
    size_t got = 0;
    while (got < n) {
        size_t r = 0;
        if (SSL_read_ex(l->ssl, (unsigned char *)p + got, n - got, &r) == 1) {
            got += r;
            continue;
        }
        int e = SSL_get_error(l->ssl, 0);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
            return got ? -EPROTO : 0;
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || bench_guard_expired(&since))
            return -EPROTO;
    }
    return 1;
}

static int tls_send(raw_link *l, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    if (n + 4 <= sizeof l->out) { /* one record, as ferry sends a small message */
        memcpy(l->out, &len, 4);
        memcpy(l->out + 4, p, n);
        return ssl_write_all(l, l->out, n + 4);
    }
    int rc = ssl_write_all(l, &len, 4);
    return rc < 0 ? rc : ssl_write_all(l, p, n);
}

static ssize_t tls_recv(raw_link *l, void *p, size_t cap)
{
    uint32_t len;
    int rc = ssl_read_all(l, &len, 4);
    if (rc <= 0) return rc;
    if (len > cap) return -EMSGSIZE;
    if ((rc = ssl_read_all(l, p, len)) < 0) return rc;
    return rc == 0 ? -EPROTO : (ssize_t)len;
}

static void tls_end(raw_link *l)
{
    SSL_shutdown(l->ssl); /* close_notify: the other side reads the end */
    shutdown(l->mine, SHUT_WR);
}

static const raw_ops RAW_TLS = {tls_make, tls_side, tls_send, tls_recv, tls_end, tls_free};

int bench_tls_raw(const bench_job *job, bench_result *res)
{
    bench_job j = *job;
    j.arg = &RAW_TLS;
    return bench_raw(&j, res);
}
