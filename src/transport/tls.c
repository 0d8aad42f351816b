// SPDX-License-Identifier: MIT
/*
 * tls.c — the tls transport: "tls://host:port" ("tls://[v6]:port"), the tcp transport's
 * frames inside TLS 1.3 (OpenSSL 3; built only with FERRY_TLS, else the scheme is
 * unknown: -EPROTONOSUPPORT). ferry.h ("tls://") has the public rules and every error.
 *
 * Shape: the socket is made as tcp.c makes its (ferry__tcp_resolve, ferry__connect,
 * ferry__accept), the TLS handshake runs on it here, non-blocking, bounded by the
 * handshake timeout, and then the socket and its SSL go to the fd engine (fdchan.h) with
 * a stream layer (ferry__fdchan_io): the engine reads and writes the plaintext stream
 * through SSL_read / SSL_write instead of read / sendmsg, and everything else — frames,
 * seq, HELLO, the typed queue, partial frames, poll fd, close — is the engine's, as for
 * tcp. Unlike tcp, frames carry a crc only when the listener asks (FERRY_CHECKSUM), as
 * on the local transports: TLS's AEAD already authenticates every byte, with a key, where
 * TCP's 16-bit sum does not (the crc of a 1 MiB message costs more than its decryption).
 * Rules:
 *  - TLS 1.3 only, no tickets or resumption, no renegotiation (1.3 has none); ALPN
 *    "ferry/1" on both sides (a TLS peer of another protocol is -EPROTO). The client
 *    always verifies the server: chain to its CAs, and the host (SAN DNS, or IP for an
 *    address literal). The listener verifies client certificates as opts->client_cert says.
 *  - Errors of the handshake map to one code each (tls_error): our verification of the
 *    peer's certificate (-EKEYEXPIRED, -EREMCHG, -EKEYREJECTED), the peer's alert about
 *    ours (-EACCES), no client certificate where required (-EACCES), not TLS (-EPROTO).
 *    The client waits for the server's first record (its HELLO frame) before the channel
 *    is made, so a TLS 1.3 server's refusal of the client certificate, which comes after
 *    the client's side of the handshake is done, is its error too.
 *  - One SSL per channel end, used by the sending and the receiving thread: every SSL call
 *    is under the end's mutex (OpenSSL's SSL is not safe for concurrent use); no call
 *    blocks under it (the socket is O_NONBLOCK; the engine waits outside).
 *  - SSL_write takes at most one record (16 KiB) per call. A record the socket could not
 *    take (WANT_WRITE) is kept as a copy (stuck) and counted as taken: OpenSSL requires the
 *    same bytes again, which the next write gives it before anything else.
 *  - Readiness: a record already decrypted in OpenSSL's buffer (SSL_pending) counts as
 *    input (io_pending): the engine does not wait on the socket then, and the poll fd is
 *    readable.
 *  - SIGPIPE: without kernel TLS the SSL's BIO is our own (nosig BIO: send with
 *    MSG_NOSIGNAL, recv); with kernel TLS OpenSSL's socket BIO (it drives the kernel's
 *    records), and SIGPIPE is blocked in the calling thread around every SSL call that
 *    may write (sigpipe_block: the handshake, writes, reads — SSL_read answers a
 *    KeyUpdate and sends alerts —, the close), a SIGPIPE they raised consumed.
 *  - Kernel TLS: SSL_OP_ENABLE_KTLS unless FERRY_TLS_NO_KTLS, when the kernel has the tls
 *    module (asked once: TCP_ULP "tls" on an unconnected socket says ENOTCONN when the
 *    module is there, ENOENT when not). ferry_chan_peer_cert says which directions got it.
 *  - Env defaults (FERRY_TLS_CERT, FERRY_TLS_KEY, FERRY_TLS_CA, secure_getenv) only when
 *    the caller gave no ferry_tls_opts.
 *  - Everything the peer sends is hostile: certificate names are copied with
 *    non-printable bytes replaced; records are OpenSSL's to authenticate; frames the
 *    engine's to check.
 */
#define _GNU_SOURCE
#include "core/abi.h"
#include "core/time.h"
#include "fdchan.h"
#include "sockutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define REC_MAX  16384u          /* TLS plaintext per record */
#define FILE_MAX ((long)1 << 20) /* the largest PEM file we load */

/* ------------------------------------------------------------------ options */

/* The caller's options, or the environment's when it gave none. */
static int opts_in(const ferry_chan_opts *co, ferry_tls_opts *t)
{
    memset(t, 0, sizeof *t);
    t->size = sizeof *t;
    if (co && co->tls) {
        int rc = ferry__sized_in(t, sizeof *t, co->tls, FERRY__TLS_OPTS_V0);
        if (rc < 0) return rc;
    } else {
        t->cert = secure_getenv("FERRY_TLS_CERT");
        t->key = secure_getenv("FERRY_TLS_KEY");
        t->ca = secure_getenv("FERRY_TLS_CA");
    }
    if ((t->cert && t->cert_pem) || (t->key && t->key_pem) || (t->ca && t->ca_pem) ||
        t->client_cert > FERRY_TLS_CLIENT_REQUIRED || (t->flags & ~FERRY_TLS_NO_KTLS) ||
        t->handshake_timeout_ns < 0)
        return -EINVAL;
    if (!t->handshake_timeout_ns) t->handshake_timeout_ns = FERRY_TLS_HANDSHAKE_TIMEOUT_DEFAULT;
    return 0;
}

/* A memory BIO of the PEM text, or of the file's contents (read whole, bounded). */
static int pem_bio(const char *path, const char *pem, BIO **out)
{
    *out = NULL;
    if (pem) {
        *out = BIO_new_mem_buf(pem, -1);
        return *out ? 0 : -ENOMEM;
    }
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return -EINVAL;
    }
    if (st.st_size > FILE_MAX) {
        fclose(f);
        return -EFBIG;
    }
    BIO *b = BIO_new(BIO_s_mem());
    char buf[4096];
    size_t n, total = 0;
    while (b && (n = fread(buf, 1, sizeof buf, f)) > 0 && (total += n) <= (size_t)FILE_MAX)
        if (BIO_write(b, buf, (int)n) != (int)n) {
            BIO_free(b);
            b = NULL;
        }
    int bad = ferror(f) || total > (size_t)FILE_MAX;
    fclose(f);
    if (!b) return -ENOMEM;
    if (bad) {
        BIO_free(b);
        return total > (size_t)FILE_MAX ? -EFBIG : -EIO;
    }
    *out = b;
    return 0;
}

/* This end's certificate chain and key into ctx. */
static int load_identity(SSL_CTX *ctx, const ferry_tls_opts *t)
{
    BIO *b;
    int rc = pem_bio(t->cert, t->cert_pem, &b);
    if (rc < 0) return rc;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    rc = x && SSL_CTX_use_certificate(ctx, x) == 1 ? 0 : -EINVAL;
    X509_free(x);
    while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* owns x on success */
            X509_free(x);
            rc = -EINVAL;
        }
    BIO_free(b);
    if (rc < 0) return rc;
    if ((rc = pem_bio(t->key, t->key_pem, &b)) < 0) return rc;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    rc = k && SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1 ? 0
                                                                                         : -EINVAL;
    EVP_PKEY_free(k);
    return rc;
}

/* The CAs that may vouch for the peer, into ctx's store. */
static int load_cas(SSL_CTX *ctx, const ferry_tls_opts *t)
{
    BIO *b;
    int rc = pem_bio(t->ca, t->ca_pem, &b);
    if (rc < 0) return rc;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) != 1) rc = -EINVAL;
        X509_free(x);
        n++;
    }
    BIO_free(b);
    return rc < 0 ? rc : n ? 0 : -EINVAL; /* a CA file without a certificate is a mistake */
}

/* Does the kernel have kernel TLS (the tls ULP)? Asked once. */
static pthread_once_t ktls_once = PTHREAD_ONCE_INIT;
static int ktls_there;

static void ktls_probe(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return;
    /* Not connected: the tls ULP refuses with ENOTCONN when it exists (the kernel loads
     * the module on demand where it can), ENOENT when it does not. */
    if (setsockopt(s, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") < 0 && errno == ENOTCONN)
        ktls_there = 1;
    close(s);
}

static int want_ktls(const ferry_tls_opts *t)
{
    if (t->flags & FERRY_TLS_NO_KTLS) return 0;
    pthread_once(&ktls_once, ktls_probe);
    return ktls_there;
}

/* ALPN: both sides speak "ferry/1" and nothing else. A TLS peer of another protocol (an
 * HTTPS client or server holding a certificate for the same name) fails the handshake,
 * -EPROTO, instead of exchanging bytes that mean something else on each side. */
static const unsigned char ALPN[] = "\x07"
                                    "ferry/1";
#define ALPN_LEN (sizeof ALPN - 1)

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ALPN, ALPN_LEN, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* After a handshake: did both sides agree on ferry/1? (A server's callback runs only
 * when the client offers ALPN at all, so the server asks too.) */
static int alpn_agreed(SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == ALPN_LEN - 1 && memcmp(p, ALPN + 1, n) == 0;
}

/* A context for one side: TLS 1.3 only, our identity, the CAs, the checks. */
static int make_ctx(int server, const ferry_tls_opts *t, SSL_CTX **out)
{
    int have_id = (t->cert || t->cert_pem) && (t->key || t->key_pem);
    if ((t->cert || t->cert_pem) != (t->key || t->key_pem)) return -EINVAL;
    if (server && !have_id) return -EINVAL; /* a listener must show who it is */
    int has_ca = t->ca || t->ca_pem;
    if (server && t->client_cert != FERRY_TLS_CLIENT_NONE && !has_ca) return -EINVAL;
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) return -ENOMEM;
    int rc = 0;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        rc = -EINVAL;
    /* A peer's end without close_notify (a killed process) ends the stream as a close:
     * frames are whole or lost, so nothing torn is delivered. */
    uint64_t op = SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION;
    if (want_ktls(t)) op |= SSL_OP_ENABLE_KTLS;
    SSL_CTX_set_options(ctx, op);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (server) SSL_CTX_set_num_tickets(ctx, 0);
    if (rc == 0 && have_id) rc = load_identity(ctx, t);
    if (rc == 0 && has_ca) rc = load_cas(ctx, t);
    if (rc == 0 && !has_ca && SSL_CTX_set_default_verify_paths(ctx) != 1) rc = -EINVAL;
    if (rc == 0) {
        int mode = SSL_VERIFY_PEER;
        if (server && t->client_cert == FERRY_TLS_CLIENT_NONE) mode = SSL_VERIFY_NONE;
        if (server && t->client_cert == FERRY_TLS_CLIENT_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        if (server)
            SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        else if (SSL_CTX_set_alpn_protos(ctx, ALPN, ALPN_LEN) != 0) /* 0: success */
            rc = -ENOMEM;
    }
    ERR_clear_error();
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

/* ------------------------------------------------------------------ the nosig BIO */

/* The socket under an SSL without kernel TLS: send with MSG_NOSIGNAL (a gone peer is
 * EPIPE, never SIGPIPE), recv; the end of the stream is remembered for BIO_CTRL_EOF. */
typedef struct nosig {
    int fd, eof;
} nosig;

static int nosig_write(BIO *b, const char *buf, int len)
{
    nosig *n = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r = send(n->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_write(b);
    return (int)r;
}

static int nosig_read(BIO *b, char *buf, int len)
{
    nosig *n = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r = recv(n->fd, buf, (size_t)len, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_read(b);
    if (r == 0) n->eof = 1;
    return (int)r;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    nosig *n = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return n->eof;
    case BIO_C_GET_FD:
        if (ptr) *(int *)ptr = n->fd;
        return n->fd;
    default:
        return 0;
    }
}

static int nosig_destroy(BIO *b)
{
    free(BIO_get_data(b)); /* the socket is the channel's */
    BIO_set_data(b, NULL);
    return 1;
}

static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *nosig_method;

static void nosig_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ferry nosig");
    if (m && BIO_meth_set_write(m, nosig_write) == 1 && BIO_meth_set_read(m, nosig_read) == 1 &&
        BIO_meth_set_ctrl(m, nosig_ctrl) == 1 && BIO_meth_set_destroy(m, nosig_destroy) == 1)
        nosig_method = m;
    else
        BIO_meth_free(m);
}

static BIO *nosig_new(int fd)
{
    pthread_once(&nosig_once, nosig_init);
    nosig *n = calloc(1, sizeof *n);
    BIO *b = nosig_method && n ? BIO_new(nosig_method) : NULL;
    if (!b) {
        free(n);
        return NULL;
    }
    n->fd = fd;
    BIO_set_data(b, n);
    BIO_set_init(b, 1);
    return b;
}

/* ------------------------------------------------------------------ SIGPIPE (kTLS) */

/* With OpenSSL's socket BIO (kernel TLS) a write to a gone peer raises SIGPIPE: block it
 * in this thread for the call and take back one the call raised (the way fdchan.c writes
 * a pipe). A SIGPIPE pending before, or the caller's own mask, stay as they were. */
typedef struct sigguard {
    int on, blocked, was_pending;
    sigset_t old;
} sigguard;

static void sigpipe_block(sigguard *g, int on)
{
    g->on = on;
    if (!on) return;
    sigset_t p, pending;
    sigemptyset(&p);
    sigaddset(&p, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &p, &g->old);
    g->blocked = sigismember(&g->old, SIGPIPE);
    g->was_pending = g->blocked && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static void sigpipe_restore(sigguard *g)
{
    if (!g->on) return;
    int e = errno;
    sigset_t p;
    sigemptyset(&p);
    sigaddset(&p, SIGPIPE);
    struct timespec zero = {0, 0};
    if (!g->was_pending) sigtimedwait(&p, NULL, &zero);
    if (!g->blocked) pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = e;
}

/* ------------------------------------------------------------------ errors */

/* The code of a failed handshake (or of the client's wait for the first record): ret and
 * sys_errno are the failed call's. Reads OpenSSL's error queue of this thread. */
static int tls_error(SSL *ssl, int ret, int sys_errno)
{
    int e = SSL_get_error(ssl, ret);
    long vr = SSL_get_verify_result(ssl);
    unsigned long first = ERR_peek_error();
    ERR_clear_error();
    if (vr != X509_V_OK && e == SSL_ERROR_SSL) {
        switch (vr) { /* we checked the peer's certificate, and it failed */
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return -EKEYEXPIRED;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return -EREMCHG;
        default:
            return -EKEYREJECTED;
        }
    }
    if (e == SSL_ERROR_ZERO_RETURN) return -EPIPE;
    if (e == SSL_ERROR_SYSCALL) /* the socket: a reset or an end without a word */
        return sys_errno && sys_errno != EPIPE && sys_errno != ECONNRESET ? -sys_errno : -EPIPE;
    if (ERR_GET_LIB(first) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(first)) {
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: /* we required one */
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED: /* the peer did, and we had none */
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:       /* the peer's word on ours */
        case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
            return -EACCES;
        default:
            break;
        }
    }
    return -EPROTO; /* not TLS 1.3, or broken off */
}

/* ------------------------------------------------------------------ the stream layer */

typedef struct tls_io {
    pthread_mutex_t mu; /* every SSL call, one record at a time: the sending and the
                           receiving thread share ssl (and rerr) */
    SSL *ssl;
    int fd;
    int ktls;    /* OpenSSL's socket BIO (kernel TLS asked for): guard SIGPIPE */
    long budget; /* socket bytes one SSL_read may still take (rd_budget); -1: no bound */
    int rerr;    /* a fatal read error, given again by every later read (errno value) */
    size_t held; /* bytes of stuck: a record OpenSSL must be given again (0: none) */
    uint8_t stuck[REC_MAX];
    uint8_t stage[REC_MAX]; /* a record gathered from pieces of iov (a header and payload) */
    ferry_peer_cert peer;   /* set once after the handshake, read-only since */
} tls_io;

/*
 * The bound of one SSL_read: OpenSSL handles the records that carry no data (KeyUpdate,
 * and others after the handshake) inside one SSL_read, for as long as the peer sends
 * them. A peer that streams KeyUpdates (and reads our answers) kept a receive inside one
 * SSL_read for ever, past every deadline. So each SSL_read of io_read may take at most
 * READ_BUDGET bytes from the socket (two whole records: a record of data always fits);
 * then the socket "has nothing" (a retry), SSL_read says WANT_READ, and the engine checks
 * its deadline before it asks again. Each step of a handshake (and the client's SSL_peek
 * for the first record) has the same bound. A callback on the read BIO (ours, or
 * OpenSSL's socket BIO of kernel TLS) keeps the count; budget -1 (the close): none.
 */
#define READ_BUDGET (2L * (REC_MAX + 256 + 5))

static long rd_budget(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                      size_t *processed)
{
    (void)argp;
    (void)len;
    (void)argi;
    (void)argl;
    tls_io *t = (tls_io *)BIO_get_callback_arg(b);
    if (oper == BIO_CB_READ) { /* before a read: refuse it once the budget is spent */
        if (t->budget == 0) {
            BIO_clear_retry_flags(b);
            BIO_set_retry_read(b);
            return -1;
        }
        return 1;
    }
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && t->budget > 0)
        t->budget = *processed >= (size_t)t->budget ? 0 : t->budget - (long)*processed;
    return oper & BIO_CB_RETURN ? ret : 1;
}

static ssize_t io_read(void *ctx, void *buf, size_t len)
{
    tls_io *t = ctx;
    size_t total = 0;
    int err = 0;
    /* SSL_read writes too (the answer to a peer's KeyUpdate that asks for one, alerts):
     * on the socket BIO a peer that asks and hangs up would raise SIGPIPE here. */
    sigguard g;
    sigpipe_block(&g, t->ktls);
    while (!err && total < len) {
        size_t got = 0;
        /* The lock for each record, not the whole read: the sending thread gets its turns. */
        pthread_mutex_lock(&t->mu);
        if (t->rerr) {
            err = t->rerr;
            pthread_mutex_unlock(&t->mu);
            break;
        }
        ERR_clear_error();
        errno = 0;
        t->budget = READ_BUDGET;
        int ok = SSL_read_ex(t->ssl, (uint8_t *)buf + total, len - total, &got) == 1;
        t->budget = -1;
        if (ok) {
            int more = SSL_pending(t->ssl) > 0;
            pthread_mutex_unlock(&t->mu);
            total += got;
            /* A short record was likely the last there: stop rather than ask the socket
             * again only to hear EAGAIN (a full one is likely followed by more). */
            if (got < REC_MAX && !more) break;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0), sys = errno;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            err = EAGAIN; /* (the budget spent: the socket has more, and polls so) */
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            err = -1; /* the end: 0 */
        } else if (e == SSL_ERROR_SYSCALL && sys) {
            err = sys; /* ECONNRESET and the like: the engine knows them */
        } else {
            err = t->rerr = EBADMSG; /* a record that failed, an alert: for good */
        }
        ERR_clear_error();
        pthread_mutex_unlock(&t->mu);
    }
    sigpipe_restore(&g);
    if (total) return (ssize_t)total;
    if (err == -1) return 0;
    errno = err;
    return -1;
}

/* SSL_writes of one record's bytes (n <= REC_MAX), under the lock: 1 all taken (also
 * when some are stuck), 0 the socket takes nothing now and nothing was taken, -1 an error
 * (errno). A record may go out in pieces: a peer that negotiated a smaller record size
 * (max_fragment_length) makes SSL_write_ex take less than n (partial writes are on), and
 * the rest is written next. retry: p and n are stuck and held (they are updated here).
 * Only the sending thread (or the close) writes: stuck and held are its own. */
static int write_rec(tls_io *t, const void *p, size_t n, int retry)
{
    size_t done = 0;
    for (;;) {
        size_t w = 0;
        pthread_mutex_lock(&t->mu);
        ERR_clear_error();
        errno = 0;
        int ok = SSL_write_ex(t->ssl, (const uint8_t *)p + done, n - done, &w) == 1;
        int e = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0), sys = errno;
        ERR_clear_error();
        pthread_mutex_unlock(&t->mu);
        if (ok) {
            done += w;
            if (done < n) continue;
            if (retry) t->held = 0;
            return 1;
        }
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            if (retry && done == 0) return 0; /* stuck stays as it is */
            /* OpenSSL may hold the record already: it must get these bytes again, so they
             * are kept and counted as taken (memmove: p may be stuck itself). */
            memmove(t->stuck, (const uint8_t *)p + done, n - done);
            t->held = n - done;
            return 1;
        }
        errno = e == SSL_ERROR_SYSCALL && sys ? sys : EPIPE;
        return -1;
    }
}

static ssize_t io_writev(void *ctx, const struct iovec *iov, int niov)
{
    tls_io *t = ctx;
    size_t total = 0;
    int rc = 1;
    sigguard g;
    sigpipe_block(&g, t->ktls);
    if (t->held) rc = write_rec(t, t->stuck, t->held, 1); /* held 0 once all went */
    int i = 0;
    size_t off = 0; /* into iov[i] */
    while (rc == 1 && !t->held) {
        while (i < niov && off == iov[i].iov_len) i++, off = 0;
        if (i == niov) break;
        const uint8_t *p = (const uint8_t *)iov[i].iov_base + off;
        size_t n = iov[i].iov_len - off;
        int last = 1;
        for (int j = i + 1; j < niov; j++)
            if (iov[j].iov_len) last = 0;
        if (n >= REC_MAX || last) { /* straight from the caller's memory */
            if (n > REC_MAX) n = REC_MAX;
            rc = write_rec(t, p, n, 0);
            if (rc == 1) off += n, total += n;
        } else { /* gather pieces (the header and the payload) into one record */
            size_t k = 0;
            int j = i;
            size_t o = off;
            while (k < REC_MAX && j < niov) {
                size_t c = iov[j].iov_len - o;
                if (c > REC_MAX - k) c = REC_MAX - k;
                memcpy(t->stage + k, (const uint8_t *)iov[j].iov_base + o, c);
                k += c;
                o += c;
                if (o == iov[j].iov_len) j++, o = 0;
            }
            rc = write_rec(t, t->stage, k, 0);
            if (rc == 1) i = j, off = o, total += k;
        }
    }
    int e = errno;
    sigpipe_restore(&g);
    if (total) return (ssize_t)total;
    errno = rc == 0 ? EAGAIN : e;
    return -1;
}

static size_t io_pending(void *ctx)
{
    tls_io *t = ctx;
    pthread_mutex_lock(&t->mu);
    int n = t->rerr ? 0 : SSL_pending(t->ssl);
    pthread_mutex_unlock(&t->mu);
    return n > 0 ? (size_t)n : 0;
}

static void io_free(tls_io *t)
{
    SSL_free(t->ssl);
    ERR_clear_error();
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void io_close(void *ctx, int quiet)
{
    tls_io *t = ctx;
    if (!quiet && !t->rerr) { /* the rest of a stuck record, then close_notify: no wait */
        sigguard g;
        sigpipe_block(&g, t->ktls);
        if (t->held) write_rec(t, t->stuck, t->held, 1);
        if (!t->held) SSL_shutdown(t->ssl);
        sigpipe_restore(&g);
    }
    io_free(t);
}

static const ferry__fdchan_io tls_stream = {
    .read = io_read,
    .writev = io_writev,
    .pending = io_pending,
    .close = io_close,
};

/* ------------------------------------------------------------------ the peer */

/* Copy a name, bytes that are not printable ASCII as '?'. */
static size_t clean(char *dst, size_t cap, const unsigned char *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        dst[k++] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
    if (cap) dst[k] = '\0';
    return k;
}

/* One "KIND:name" line onto sans; 0, or -1 when it does not fit (nothing added). */
static int add_san(ferry_peer_cert *p, size_t *at, const char *kind, const unsigned char *s,
                   size_t n)
{
    size_t kl = strlen(kind), need = (*at ? 1 : 0) + kl + 1 + n;
    if (*at + need + 1 > sizeof p->sans) return -1;
    if (*at) p->sans[(*at)++] = '\n';
    memcpy(p->sans + *at, kind, kl);
    *at += kl;
    p->sans[(*at)++] = ':';
    *at += clean(p->sans + *at, n + 1, s, n);
    return 0;
}

static void peer_fill(tls_io *t)
{
    ferry_peer_cert *p = &t->peer;
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    BIO *w = SSL_get_wbio(t->ssl), *r = SSL_get_rbio(t->ssl);
    if (t->ktls && BIO_get_ktls_send(w)) p->flags |= FERRY_PEER_CERT_KTLS_TX;
    if (t->ktls && BIO_get_ktls_recv(r)) p->flags |= FERRY_PEER_CERT_KTLS_RX;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK) return;
    p->flags |= FERRY_PEER_CERT_VERIFIED;
    unsigned int mdlen = 0;
    X509_digest(x, EVP_sha256(), p->sha256, &mdlen);
    X509_NAME *name = X509_get_subject_name(x);
    BIO *mb = BIO_new(BIO_s_mem());
    if (mb && X509_NAME_print_ex(mb, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *d;
        long n = BIO_get_mem_data(mb, &d);
        clean(p->subject, sizeof p->subject, (const unsigned char *)d, n > 0 ? (size_t)n : 0);
    }
    BIO_free(mb);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0) last = idx;
    if (last >= 0) {
        ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
        unsigned char *u = NULL;
        int n = ASN1_STRING_to_UTF8(&u, cn);
        if (n >= 0) clean(p->cn, sizeof p->cn, u, (size_t)n);
        OPENSSL_free(u);
    }
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t at = 0;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int rc = 0;
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *s = g->d.ia5;
            const char *kind = g->type == GEN_DNS ? "DNS" : g->type == GEN_EMAIL ? "email" : "URI";
            rc = add_san(p, &at, kind, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        } else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "";
            int len = ASN1_STRING_length(g->d.ip);
            const unsigned char *a = ASN1_STRING_get0_data(g->d.ip);
            if (len == 4 || len == 16) {
                unsigned char tmp[16];
                memcpy(tmp, a, (size_t)len);
                inet_ntop(len == 4 ? AF_INET : AF_INET6, tmp, ip, sizeof ip);
                rc = add_san(p, &at, "IP", (const unsigned char *)ip, strlen(ip));
            }
        }
        if (rc < 0) p->flags |= FERRY_PEER_CERT_TRUNCATED;
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
}

static int tls_peer_cert(const ferry_chan *ch, ferry_peer_cert *out)
{
    const tls_io *t = ferry__fdchan_io_ctx(ch);
    *out = t->peer;
    return 0;
}

static const ferry__chan_ops tls_chan_ops = {
    .sendmsg = ferry__fdchan_sendmsg,
    .recvmsg = ferry__fdchan_recvmsg,
    .fd = ferry__fdchan_fd,
    .max_msg = ferry__fdchan_max_msg,
    .peer_cert = tls_peer_cert,
    .close = ferry__fdchan_close,
};

/* ------------------------------------------------------------------ handshake */

/* The handshake's deadline: its own bound, and the caller's when that is a real one. */
static int64_t hs_deadline(int64_t deadline, int64_t hs_ns)
{
    int64_t now = ferry__now_ns();
    int64_t d = hs_ns > INT64_MAX - now ? INT64_MAX : now + hs_ns;
    return deadline > 0 && deadline < d ? deadline : d;
}

/* One step of SSL_accept / SSL_connect (or, after a client's handshake, of its wait for
 * the server's first record: SSL_peek), never blocking: 0 done; POLLIN / POLLOUT what it
 * waits for; or the failure's code (tls_error). */
enum { HS_ACCEPT, HS_CONNECT, HS_PEEK };

static int step(tls_io *t, int what)
{
    sigguard g;
    sigpipe_block(&g, t->ktls);
    ERR_clear_error();
    errno = 0;
    char b;
    t->budget = READ_BUDGET; /* SSL_peek too handles KeyUpdates for as long as they come */
    int r = what == HS_ACCEPT    ? SSL_accept(t->ssl)
            : what == HS_CONNECT ? SSL_connect(t->ssl)
                                 : SSL_peek(t->ssl, &b, 1);
    int sys = errno;
    t->budget = -1;
    sigpipe_restore(&g);
    if (r > 0) return 0;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    }
    return tls_error(t->ssl, r, sys);
}

/* Steps until done or the deadline (the client's handshake). */
static int drive(tls_io *t, int what, int64_t deadline)
{
    for (;;) {
        int rc = step(t, what);
        if (rc <= 0) return rc;
        rc = ferry__wait_fd(t->fd, (short)rc, deadline);
        if (rc < 0) return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }
}

/* Tests: 1 = OpenSSL's socket BIO and the SIGPIPE guard even without kernel TLS, the path
 * a machine with the tls module takes (test_tls runs it here, where there is none). */
int ferry__tls_socket_bio;

/* The stream layer of a connected socket s (TCP_NODELAY): its SSL, our BIO or OpenSSL's
 * socket BIO (kernel TLS). Does not own s on failure (NULL). */
static tls_io *io_new(int s, SSL_CTX *ctx)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tls_io *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->fd = s;
    t->ktls = (SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS) != 0 || ferry__tls_socket_bio;
    t->ssl = SSL_new(ctx);
    int ok = t->ssl != NULL;
    if (ok && t->ktls) {
        ok = SSL_set_fd(t->ssl, s) == 1;
    } else if (ok) {
        BIO *b = nosig_new(s);
        if (b)
            SSL_set_bio(t->ssl, b, b); /* the SSL owns b */
        else
            ok = 0;
    }
    t->budget = -1;
    if (ok) { /* the read bound of io_read (rd_budget) */
        BIO *rb = SSL_get_rbio(t->ssl);
        BIO_set_callback_arg(rb, (char *)t);
        BIO_set_callback_ex(rb, rd_budget);
    }
    if (!ok) {
        io_free(t);
        return NULL;
    }
    return t;
}

/* A finished handshake: the channel end on it (owns t and its socket in every case). */
static int finish_end(tls_io *t, size_t max, unsigned kind, int64_t deadline, ferry_chan **out)
{
    peer_fill(t);
    ferry__fdchan_cfg cfg = {.ops = &tls_chan_ops,
                             .rfd = t->fd,
                             .wfd = t->fd,
                             .kind = kind,
                             .max_msg = max,
                             .io = &tls_stream,
                             .io_ctx = t};
    return ferry__fdchan_new(&cfg, deadline, out);
}

/* ------------------------------------------------------------------ the listener */

/*
 * The listener runs its clients' handshakes side by side, never one after the other: a
 * client that stalls its handshake holds only its own slot until its handshake_timeout_ns,
 * and the others go on. Up to PENDING_MAX handshakes at once; past that, new connections
 * wait in the kernel's backlog. The poll fd is an epoll of the listening socket, the
 * sockets of the handshakes in progress (each for what its next step waits for) and a
 * timerfd set to the earliest handshake deadline, so it polls readable whenever
 * ferry_accept would not wait. ferry_accept's deadline bounds the call only: a handshake
 * goes on across calls.
 */
#define PENDING_MAX 64

typedef struct pending {
    tls_io *t;
    int64_t deadline;
} pending;

typedef struct tls_listener {
    struct ferry_listener base;
    int fd, epfd, tfd; /* the listening socket, the poll fd, the timerfd */
    int fd_watched;    /* fd is in epfd (not while every slot is taken) */
    size_t max;
    unsigned kind; /* FDCHAN_CHECKSUM when the listener's options ask for it */
    SSL_CTX *ctx;
    int64_t hs_ns;
    int n;
    pending *p[PENDING_MAX];
} tls_listener;

static const ferry__listener_ops listener_ops;

/* Arm the timerfd for the earliest handshake deadline (disarm when none). */
static void rearm(tls_listener *l)
{
    int64_t first = INT64_MAX;
    for (int i = 0; i < l->n; i++)
        if (l->p[i]->deadline < first) first = l->p[i]->deadline;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (first != INT64_MAX) {
        if (first <= 0) first = 1; /* 0 would disarm */
        its.it_value.tv_sec = first / 1000000000;
        its.it_value.tv_nsec = first % 1000000000;
    }
    timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Watch the listening socket while a slot is free, not while none is (it would poll
 * readable with nothing accept could do). */
static void watch_listen(tls_listener *l)
{
    int want = l->n < PENDING_MAX;
    if (want == l->fd_watched) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) == 0)
        l->fd_watched = want;
}

/* Take handshake i out (its socket closed unless keep): the slot is free again. */
static tls_io *drop(tls_listener *l, int i, int keep)
{
    pending *p = l->p[i];
    tls_io *t = p->t;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, t->fd, NULL);
    l->p[i] = l->p[--l->n];
    free(p);
    if (!keep) {
        int fd = t->fd;
        io_free(t);
        close(fd);
        t = NULL;
    }
    rearm(l);
    watch_listen(l);
    return t;
}

/* One step of handshake i: 1 it waits (epoll set for what), else it is over and out of
 * the slots: 0 and *out the channel, or its error. */
static int advance(tls_listener *l, int i, ferry_chan **out)
{
    tls_io *t = l->p[i]->t;
    int rc = step(t, HS_ACCEPT);
    if (rc > 0) {
        struct epoll_event ev = {.events = rc == POLLIN ? EPOLLIN : EPOLLOUT, .data.ptr = l->p[i]};
        epoll_ctl(l->epfd, EPOLL_CTL_MOD, t->fd, &ev);
        return 1;
    }
    if (rc == 0 && !alpn_agreed(t->ssl)) rc = -EPROTO; /* a client that offered none */
    if (rc < 0) {
        drop(l, i, 0);
        return rc;
    }
    t = drop(l, i, 1);
    return finish_end(t, l->max, l->kind, 0, out); /* a creator does not wait */
}

/* Take a waiting connection into a free slot and make its first step: 1 (it waits, or
 * there was no connection: *none), else as advance. */
static int take_new(tls_listener *l, ferry_chan **out, int *none)
{
    int s = ferry__accept(l->fd, 0);
    *none = s == -EAGAIN;
    if (s < 0) return s == -EAGAIN ? 1 : s;
    pending *p = calloc(1, sizeof *p);
    tls_io *t = p ? io_new(s, l->ctx) : NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (!t || epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) < 0) {
        int rc = t ? -errno : -ENOMEM;
        if (t) io_free(t);
        free(p);
        close(s);
        return rc;
    }
    int64_t now = ferry__now_ns();
    p->t = t;
    p->deadline = l->hs_ns > INT64_MAX - now ? INT64_MAX : now + l->hs_ns;
    l->p[l->n++] = p;
    rearm(l);
    watch_listen(l);
    return advance(l, l->n - 1, out);
}

static int tls_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    tls_listener *l = (tls_listener *)fl;
    for (;;) {
        /* A handshake past its bound is over: its peer stalled (-ETIMEDOUT). */
        int64_t now = ferry__now_ns();
        for (int i = 0; i < l->n; i++)
            if (l->p[i]->deadline <= now) {
                drop(l, i, 0);
                return -ETIMEDOUT;
            }
        /* Whatever is ready now: waiting connections, handshakes that can step. */
        struct epoll_event ev[16];
        int k = epoll_wait(l->epfd, ev, 16, 0);
        int again = 0; /* a new connection taken, or the timer: look again before sleeping */
        for (int j = 0; j < k; j++) {
            int rc;
            if (ev[j].data.ptr == NULL) { /* the listening socket */
                int none = 1;
                if (l->n >= PENDING_MAX) continue;
                rc = take_new(l, out, &none);
                again |= !none;
            } else if (ev[j].data.ptr == (void *)l) { /* the timer: expiry is checked above */
                uint64_t x;
                if (read(l->tfd, &x, sizeof x) < 0) { /* nothing to read: fine */
                }
                again = 1;
                continue;
            } else {
                int i = 0;
                while (i < l->n && l->p[i] != ev[j].data.ptr) i++;
                if (i == l->n) continue; /* (gone since) */
                rc = advance(l, i, out);
            }
            if (rc == 1 || rc == -EPIPE) continue; /* waits on; a client that gave up */
            return rc; /* a channel, or that client's failure (the slots changed: return) */
        }
        if (again) continue;
        /* Nothing to do: sleep on the poll fd until something is, or the deadline. */
        int64_t left = ferry__remaining(deadline);
        if (left <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        struct pollfd p = {.fd = l->epfd, .events = POLLIN};
        int ms = left == INT64_MAX ? -1 : (int)((left + 999999) / 1000000);
        if (poll(&p, 1, ms) < 0 && errno != EINTR) return -errno;
    }
}

static int tls_listener_fd(const ferry_listener *fl)
{
    return ((const tls_listener *)fl)->epfd;
}

static int tls_listener_url(const ferry_listener *fl, char *buf, size_t cap)
{
    return ferry__tcp_bound_url(((const tls_listener *)fl)->fd, "tls", buf, cap);
}

static void tls_listener_close(ferry_listener *fl)
{
    tls_listener *l = (tls_listener *)fl;
    while (l->n) drop(l, l->n - 1, 0);
    if (l->epfd >= 0) close(l->epfd);
    if (l->tfd >= 0) close(l->tfd);
    if (l->fd >= 0) close(l->fd);
    SSL_CTX_free(l->ctx);
    free(l);
}

static int tls_listen(const char *where, const ferry_chan_opts *co, ferry_listener **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    size_t max;
    ferry_tls_opts o;
    int rc = ferry__tcp_resolve(where, 1, &ss, &len, NULL);
    if (rc < 0) return rc;
    if (co && co->capacity != FERRY_CAP_RING) return -EOPNOTSUPP;
    if ((rc = ferry__fdchan_max_from_opts(co, FERRY_MAX_MSG_LIMIT, &max)) < 0) return rc;
    if ((rc = opts_in(co, &o)) < 0) return rc;
    tls_listener *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->base.ops = &listener_ops;
    l->epfd = l->tfd = -1;
    l->max = max;
    l->kind = co && (co->flags & FERRY_CHECKSUM) ? FDCHAN_CHECKSUM : 0;
    l->hs_ns = o.handshake_timeout_ns;
    if ((rc = make_ctx(1, &o, &l->ctx)) < 0) {
        free(l);
        return rc;
    }
    int one = 1;
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = l};
    if ((l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(l->fd, (struct sockaddr *)&ss, len) < 0 || listen(l->fd, 128) < 0 ||
        (l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0 ||
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &tev) < 0) {
        rc = -errno;
        tls_listener_close(&l->base);
        return rc;
    }
    watch_listen(l);
    if (!l->fd_watched) {
        tls_listener_close(&l->base);
        return -ENOMEM;
    }
    *out = &l->base;
    return 0;
}

static int tls_open(const char *where, const ferry_chan_opts *co, ferry_chan **out,
                    int64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[256];
    ferry_tls_opts o;
    int rc = ferry__tcp_resolve(where, 0, &ss, &len, host);
    if (rc < 0) return rc;
    if ((rc = opts_in(co, &o)) < 0) return rc;
    SSL_CTX *ctx;
    if ((rc = make_ctx(0, &o, &ctx)) < 0) return rc;
    int s = ferry__connect(ss.ss_family, SOCK_STREAM, (struct sockaddr *)&ss, len, deadline);
    if (s < 0) {
        SSL_CTX_free(ctx);
        return s;
    }
    tls_io *t = io_new(s, ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    rc = t ? 0 : -ENOMEM;
    if (rc == 0) { /* the server must be who the URL (or o.host) names */
        const char *name = o.host ? o.host : host;
        unsigned char a[16];
        int ip = inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
               : SSL_set1_host(t->ssl, name) != 1 || SSL_set_tlsext_host_name(t->ssl, name) != 1)
            rc = -EINVAL;
    }
    int64_t hd = hs_deadline(deadline, o.handshake_timeout_ns);
    if (rc == 0) rc = drive(t, HS_CONNECT, hd);
    if (rc == 0 && !alpn_agreed(t->ssl)) rc = -EPROTO; /* a TLS server, but not ferry's */
    if (rc == 0) rc = drive(t, HS_PEEK, hd); /* a TLS 1.3 server's refusal of our certificate */
    if (rc < 0) {
        if (t) io_free(t);
        close(s);
        return rc;
    }
    /* The listener's HELLO decides the shape; it is part of the setup, so the handshake's
     * bound holds for it too (a server that sends one byte of it and then nothing must
     * not hold a FERRY_FOREVER open for ever). */
    return finish_end(t, 0, 0, hd, out);
}

static const ferry__listener_ops listener_ops = {
    .accept = tls_accept,
    .fd = tls_listener_fd,
    .url = tls_listener_url,
    .close = tls_listener_close,
};

const ferry__transport ferry__tls_transport = {
    .scheme = "tls",
    .listen = tls_listen,
    .open = tls_open,
};

/* A test's way to put bytes of its own into its TLS stream, as a hostile peer would
 * (tests/conformance: broken frames after the handshake). Not in the shared library's
 * exports; 0 or -errno. */
int ferry__tls_inject(ferry_chan *ch, const void *buf, size_t len);
int ferry__tls_inject(ferry_chan *ch, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};
    ssize_t n = io_writev(ferry__fdchan_io_ctx(ch), &iov, 1);
    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EAGAIN;
}
