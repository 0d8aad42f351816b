// SPDX-License-Identifier: MIT
/*
 * schemes.c — the conformance suite's table of transports (one row per URL scheme and
 * address form: how a pair is made, what the transport can do) and the per-transport
 * plumbing the checks need: fresh addresses (names, keys, free tcp ports), raw peers
 * that stand in for ferry_chan_open, the raw stream fd under a channel end, and the
 * garbage written into it. Checks nothing by itself; conformance.c runs the checks.
 *
 * The rows other than shm follow the forms the transports are being built to (issue 3):
 *   unix://PATH and unix://@NAME  SOCK_SEQPACKET; fds; credentials (SO_PEERCRED)
 *   tcp://127.0.0.1:P, tcp://[::1]:P  no fds; a crc on every frame (port 0 works for
 *                                 ferry_listen, ferry_listener_url tells the port; these
 *                                 rows use a probed free port)
 *   fifo://PATH                   FIFOs PATH.c2s / PATH.s2c made by ferry_listen, 0600
 *   pipe                          ferry_pipe_pair() before fork
 *   posixmq:///NAME, sysvmq://KEY queues: no fds; peer death unknowable; capacity N is
 *                                 the queue depth; sysvmq has no pollable fd
 *   tls://127.0.0.1:P, tls://[::1]:P  tcp's frames inside TLS 1.3 (a crc only with
 *                                 FERRY_CHECKSUM: TLS authenticates every byte); certificates made
 * at the start (conf_tls_begin) and given through the environment; a raw peer's junk is -EPROTO at
 * ferry_accept (not TLS); mid-stream garbage goes into the TLS stream as plaintext
 *                                 (ferry__tls_inject), so the frame checks behind TLS are
 *                                 what is checked
 * A row whose transport is not in the library is still compiled; running its scheme
 * ends with exit status 2 (conformance.c), and CTest registers only the schemes listed
 * in FERRY_CONFORMANCE_SCHEMES.
 */
#include "conf.h"
#include "core/frame.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define QUEUE_NOTE "a queue outlives its writer: peer death cannot be known (no -EPIPE)"

/* The table. Keep it true to the transports: a row is the specification its transport's
 * conformance run checks. */
const form conf_forms[] = {
    {.scheme = "shm",
     .name = "listen",
     .addr = ADDR_SHM,
     .fds = true,
     .creds = true,
     .death = true,
     .pollable = true,
     .zerocopy = true,
     .capmodes = CAPM_ALL,
     .raw = RAW_NONE,
     .note = "rings, not a byte stream: corrupt rings are the hostile tests of tests/unit/shm"},
    {.scheme = "shm",
     .name = "pair",
     .addr = ADDR_PAIR,
     .pair = ferry_pair,
     .fds = true,
     .creds = false,
     .death = true,
     .pollable = true,
     .zerocopy = true,
     .capmodes = CAPM_ALL,
     .raw = RAW_NONE,
     .note = "rings, not a byte stream: corrupt rings are the hostile tests of tests/unit/shm"},
    {.scheme = "unix",
     .name = "path",
     .addr = ADDR_UNIX_PATH,
     .fds = true,
     .creds = true,
     .death = true,
     .pollable = true,
     .raw_peer = true,
     .capmodes = CAPM_RING,
     .raw = RAW_SEQPACKET},
    {.scheme = "unix",
     .name = "abstract",
     .addr = ADDR_UNIX_ABSTRACT,
     .fds = true,
     .creds = true,
     .death = true,
     .pollable = true,
     .raw_peer = true,
     .capmodes = CAPM_RING,
     .raw = RAW_SEQPACKET},
    {.scheme = "tcp",
     .name = "ipv4",
     .addr = ADDR_TCP4,
     .death = true,
     .pollable = true,
     .crc_always = true,
     .raw_peer = true,
     .capmodes = CAPM_RING | CAPM_RING_LOOSE,
     .raw = RAW_TCP},
    {.scheme = "tcp",
     .name = "ipv6",
     .addr = ADDR_TCP6,
     .death = true,
     .pollable = true,
     .crc_always = true,
     .raw_peer = true,
     .capmodes = CAPM_RING | CAPM_RING_LOOSE,
     .raw = RAW_TCP},
    {.scheme = "tls",
     .name = "ipv4",
     .addr = ADDR_TLS4,
     .death = true,
     .pollable = true,
     .raw_peer = true,
     .raw_peer_err = -EPROTO,
     .capmodes = CAPM_RING | CAPM_RING_LOOSE,
     .raw = RAW_TLS},
    {.scheme = "tls",
     .name = "ipv6",
     .addr = ADDR_TLS6,
     .death = true,
     .pollable = true,
     .raw_peer = true,
     .raw_peer_err = -EPROTO,
     .capmodes = CAPM_RING | CAPM_RING_LOOSE,
     .raw = RAW_TLS},
    {.scheme = "fifo",
     .name = "path",
     .addr = ADDR_FIFO,
     .death = true,
     .pollable = true,
     .raw_peer = true,
     .capmodes = CAPM_RING,
     .raw = RAW_FIFO},
    {.scheme = "pipe",
     .name = "pair",
     .addr = ADDR_PAIR,
     .pair = ferry_pipe_pair,
     .death = true,
     .pollable = true,
     .capmodes = CAPM_RING,
     .raw = RAW_PIPE,
     .note = "no raw peer: a pipe has no name to connect to"},
    {.scheme = "posixmq",
     .name = "name",
     .addr = ADDR_POSIXMQ,
     .pollable = true,
     .capmodes = CAPM_N | CAPM_RING,
     .raw = RAW_NONE,
     .note = QUEUE_NOTE},
    {.scheme = "sysvmq",
     .emsgsize_held = true,
     .type_max = INT64_MAX - 2,
     .name = "key",
     .addr = ADDR_SYSVMQ,
     .pollable = false,
     .capmodes = CAPM_N | CAPM_RING | CAPM_N_BYTES,
     .raw = RAW_NONE,
     .note = QUEUE_NOTE},
};
const size_t conf_nforms = sizeof conf_forms / sizeof conf_forms[0];

static char tmpdir[128];
static unsigned counter;

void conf_init(const char *dir)
{
    snprintf(tmpdir, sizeof tmpdir, "%s", dir);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------- addresses */

/* The loopback address of family with port into *ss; returns its length. */
static socklen_t loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof *s;
    }
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    s->sin6_addr = in6addr_loopback;
    return sizeof *s;
}

/* A port free on the loopback of family now (a probe socket bound to port 0, then
 * closed: never connected, so nothing lingers), or 0 if that family has no loopback.
 * Another process may take it before ferry_listen does: the caller retries on
 * -EADDRINUSE. */
static uint16_t free_port(int family)
{
    int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return 0;
    struct sockaddr_storage ss;
    socklen_t n = loopback(family, 0, &ss);
    uint16_t port = 0;
    if (bind(s, (struct sockaddr *)&ss, n) == 0 && getsockname(s, (struct sockaddr *)&ss, &n) == 0)
        port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
    close(s);
    return port;
}

const char *form_unavailable(const form *f)
{
    if (f->addr == ADDR_PAIR && !f->pair) return f->missing;
    if (f->addr == ADDR_TCP4 && !free_port(AF_INET)) return "no IPv4 loopback here";
    if (f->addr == ADDR_TCP6 && !free_port(AF_INET6)) return "no IPv6 loopback (::1) here";
    if (f->addr == ADDR_TLS4 && !free_port(AF_INET)) return "no IPv4 loopback here";
    if (f->addr == ADDR_TLS6 && !free_port(AF_INET6)) return "no IPv6 loopback (::1) here";
    return NULL;
}

int addr_make(const form *f, addr *a)
{
    unsigned n = counter++;
    int pid = (int)getpid();
    memset(a, 0, sizeof *a);
    switch (f->addr) {
    case ADDR_PAIR:
        return -EINVAL;
    case ADDR_SHM:
        snprintf(a->path, sizeof a->path, "%s/s%u.sock", tmpdir, n);
        snprintf(a->url, sizeof a->url, "shm://%s", a->path);
        break;
    case ADDR_UNIX_PATH:
        snprintf(a->path, sizeof a->path, "%s/u%u.sock", tmpdir, n);
        snprintf(a->url, sizeof a->url, "unix://%s", a->path);
        break;
    case ADDR_UNIX_ABSTRACT:
        snprintf(a->path, sizeof a->path, "ferry-conf-%d-%u", pid, n);
        snprintf(a->url, sizeof a->url, "unix://@%s", a->path);
        break;
    case ADDR_TCP4:
    case ADDR_TCP6:
    case ADDR_TLS4:
    case ADDR_TLS6: {
        int tls = f->addr == ADDR_TLS4 || f->addr == ADDR_TLS6;
        a->family = f->addr == ADDR_TCP4 || f->addr == ADDR_TLS4 ? AF_INET : AF_INET6;
        a->port = free_port(a->family);
        if (!a->port) return -EAFNOSUPPORT;
        snprintf(a->url, sizeof a->url,
                 a->family == AF_INET ? "%s://127.0.0.1:%u" : "%s://[::1]:%u", tls ? "tls" : "tcp",
                 (unsigned)a->port);
        break;
    }
    case ADDR_FIFO:
        snprintf(a->path, sizeof a->path, "%s/f%u", tmpdir, n);
        snprintf(a->url, sizeof a->url, "fifo://%s", a->path);
        break;
    case ADDR_POSIXMQ:
        snprintf(a->path, sizeof a->path, "/ferry-conf-%d-%u", pid, n);
        snprintf(a->url, sizeof a->url, "posixmq://%s", a->path);
        break;
    case ADDR_SYSVMQ:
        /* A block of 4 keys per address (a transport may use KEY and KEY+1 for the two
         * directions), unique per pid: 0x46 | 14 bits of pid | 8 bits of counter | 2. */
        a->key = (0x46L << 24) | ((long)(pid & 0x3fff) << 10) | ((long)(n & 0xff) << 2);
        snprintf(a->url, sizeof a->url, "sysvmq://%ld", a->key);
        break;
    }
    leftovers_note_addr(a);
    return 0;
}

/* ---------------------------------------------------------------- raw peers */

static socklen_t unix_sockaddr(const form *f, const addr *a, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t len = strlen(a->path);
    CHECK(len + 1 < sizeof sa->sun_path);
    if (f->addr == ADDR_UNIX_ABSTRACT) { /* "@name": a NUL, then the name, no terminator */
        memcpy(sa->sun_path + 1, a->path, len);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    }
    memcpy(sa->sun_path, a->path, len + 1);
    return (socklen_t)sizeof *sa;
}

int raw_connect(const form *f, const addr *a, int *extra)
{
    *extra = -1;
    switch (f->addr) {
    case ADDR_UNIX_PATH:
    case ADDR_UNIX_ABSTRACT: {
        int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        CHECK(s >= 0);
        struct sockaddr_un sa;
        socklen_t n = unix_sockaddr(f, a, &sa);
        CHECK_EQ(connect(s, (struct sockaddr *)&sa, n), 0);
        return s;
    }
    case ADDR_TCP4:
    case ADDR_TCP6:
    case ADDR_TLS4:
    case ADDR_TLS6: {
        int s = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(s >= 0);
        struct sockaddr_storage ss;
        socklen_t n = loopback(a->family, a->port, &ss);
        CHECK_EQ(connect(s, (struct sockaddr *)&ss, n), 0);
        return s;
    }
    case ADDR_FIFO: {
        /* As a client would: the server-to-client FIFO for reading (never blocks with
         * O_NONBLOCK), then the client-to-server FIFO for writing, which succeeds once
         * the server has it open for reading (ENXIO until then). */
        char p[300];
        snprintf(p, sizeof p, "%s.s2c", a->path);
        *extra = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        CHECK(*extra >= 0);
        snprintf(p, sizeof p, "%s.c2s", a->path);
        int64_t deadline = mono_ns() + 5 * 1000000000LL;
        int fd;
        while ((fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 &&
               (errno == ENXIO || errno == EINTR)) {
            CHECK(mono_ns() < deadline); /* the server never opened PATH.c2s */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        CHECK(fd >= 0);
        CHECK_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
        return fd;
    }
    default:
        fprintf(stderr, "%s %s: no raw peer for this form\n", f->scheme, f->name);
        exit(1);
    }
}

/* ---------------------------------------------------------------- raw fds */

void fdset_take(fdset *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        CHECK(fd >= 0 && fd < 1024);
        if (fd != dirfd(d)) s->bits[fd / 64] |= 1ull << (fd % 64);
    }
    closedir(d);
}

static bool fdset_has(const fdset *s, int fd)
{
    return fd < 1024 && (s->bits[fd / 64] >> (fd % 64) & 1);
}

static bool raw_matches(const form *f, const addr *a, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return false;
    int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
    switch (f->raw) {
    case RAW_SEQPACKET:
    case RAW_TCP: {
        int type = 0, dom = 0;
        socklen_t n = sizeof type;
        if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0)
            return false;
        n = sizeof dom;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &n) != 0) return false;
        if (f->raw == RAW_SEQPACKET) return dom == AF_UNIX && type == SOCK_SEQPACKET;
        return (dom == AF_INET || dom == AF_INET6) && type == SOCK_STREAM;
    }
    case RAW_FIFO: {
        if (!S_ISFIFO(st.st_mode) || acc == O_RDONLY) return false;
        char link[64], target[512], want[300];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0) return false;
        target[n] = 0;
        snprintf(want, sizeof want, "%s.c2s", a->path); /* may end in " (deleted)" */
        return strncmp(target, want, strlen(want)) == 0;
    }
    case RAW_PIPE:
        return S_ISFIFO(st.st_mode) && acc == O_WRONLY;
    case RAW_TLS: /* written through the channel end (ferry__tls_inject) */
    case RAW_NONE:
        break;
    }
    return false;
}

int raw_find(const form *f, const addr *a, const fdset *before)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int found = -1, n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d) || fdset_has(before, fd)) continue;
        if (raw_matches(f, a, fd)) {
            found = fd;
            n++;
        }
    }
    closedir(d);
    if (n != 1) {
        fprintf(stderr, "%s %s: %d descriptors of the channel end look like its stream (want 1)\n",
                f->scheme, f->name, n);
        exit(1);
    }
    return found;
}

/* ---------------------------------------------------------------- garbage */

size_t garbage_make(const form *f, int kind, size_t max_msg, uint8_t *buf, const char **what)
{
    static const char *const names[G_COUNT] = {
        "junk bytes",    "frame version 2", "reserved byte set",
        "unknown flag",  "17 fds",          "payload length max_msg + 1",
        "negative type", "crc mismatch",    "frame without crc (crc required)",
    };
    static const uint8_t payload[8] = "abcdefgh";
    *what = kind >= 0 && kind < G_COUNT ? names[kind] : "?";
    if (kind == G_JUNK) {
        static const char s[] = "this is not a ferry frame";
        memset(buf, 0xa5, 64);
        memcpy(buf, s, sizeof s - 1);
        return 64;
    }
    if (kind == G_NOCRC && !f->crc_always) return 0;
    /* One frame: a header that breaks one rule (seq 3: after three valid messages). */
    ferry__frame fr = {.flags = 0, .nfds = 0, .type = 1, .seq = 3, .len = 0, .crc = 0};
    int off = -1;
    uint8_t v = 0;
    switch (kind) {
    case G_VERSION:
        off = 4, v = 2;
        break;
    case G_RESERVED:
        off = 7, v = 1;
        break;
    case G_FLAGS:
        fr.flags = 0x80;
        break;
    case G_NFDS:
        fr.nfds = 17;
        break;
    case G_LEN:
        CHECK(max_msg < UINT32_MAX);
        fr.len = (uint32_t)max_msg + 1; /* the payload is not sent: the header is enough */
        break;
    case G_TYPE:
        fr.type = -5;
        break;
    case G_CRC:
        fr.flags = FERRY__F_CRC;
        fr.len = sizeof payload;
        fr.crc = ferry__frame_crc(&fr, payload) ^ 0x1u;
        break;
    case G_NOCRC:
        fr.len = sizeof payload;
        break;
    default:
        return 0;
    }
    ferry__frame_encode(&fr, buf);
    if (off >= 0) buf[off] = v;
    size_t n = FERRY__FRAME_HDR;
    if (kind == G_CRC || kind == G_NOCRC) {
        memcpy(buf + n, payload, sizeof payload);
        n += sizeof payload;
    }
    return n;
}

/* ---------------------------------------------------------------- tls certificates */

#ifdef FERRY_HAVE_TLS
#include "tlscerts.h"

static char tls_dir[64], tls_files[3][96];

void conf_tls_begin(void)
{
    tc_cert ca = tc_make("ferry conformance CA", NULL, NULL, -3600, 86400, 1);
    tc_cert srv = tc_make("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", &ca, -3600, 86400, 0);
    snprintf(tls_dir, sizeof tls_dir, "/tmp/ferry-conf-tls-XXXXXX");
    CHECK(mkdtemp(tls_dir) != NULL);
    const char *names[3] = {"cert.pem", "key.pem", "ca.pem"};
    const char *texts[3] = {srv.cert_pem, srv.key_pem, ca.cert_pem};
    const char *vars[3] = {"FERRY_TLS_CERT", "FERRY_TLS_KEY", "FERRY_TLS_CA"};
    for (int i = 0; i < 3; i++) {
        snprintf(tls_files[i], sizeof tls_files[i], "%s/%s", tls_dir, names[i]);
        tc_write(tls_files[i], texts[i]);
        CHECK_EQ(setenv(vars[i], tls_files[i], 1), 0);
    }
    tc_free(&srv);
    tc_free(&ca);
}

void conf_tls_end(void)
{
    for (int i = 0; i < 3; i++) unlink(tls_files[i]);
    rmdir(tls_dir);
}

int ferry__tls_inject(ferry_chan *ch, const void *buf, size_t len); /* tls.c */

int conf_tls_inject(ferry_chan *ch, const void *buf, size_t len)
{
    return ferry__tls_inject(ch, buf, len);
}
#else
void conf_tls_begin(void)
{
    fprintf(stderr, "conformance tls: not built: this libferry has no tls transport "
                    "(built without OpenSSL: FERRY_TLS)\n");
    exit(2);
}

void conf_tls_end(void) {}

int conf_tls_inject(ferry_chan *ch, const void *buf, size_t len)
{
    (void)ch;
    (void)buf;
    (void)len;
    return -EOPNOTSUPP; /* never reached: conf_tls_begin exits first */
}
#endif
