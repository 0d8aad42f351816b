// SPDX-License-Identifier: MIT
/*
 * test_fdchan_large — large messages through the frame engine of the fd transports
 * (src/transport/fdchan.c), whose payloads are read straight into place: into the
 * caller's buffer when the receive will return that frame, else into a message of their
 * own (a stream frame longer than the read buffer, 64 KiB and a header, bypasses it).
 * Usage: test_fdchan_large MODE
 *   unix, tcp, pipe  a forked peer made by the transport's own way sends a script of
 *                    messages and the parent checks every byte: 1 MiB and max_msg;
 *                    a buffer one byte too small (-EMSGSIZE, m->len the size needed,
 *                    the buffer untouched, the message then received whole); a type
 *                    filter passing over a large message (which stays queued, in
 *                    order); a message too long for the buffer ahead of one that fits;
 *                    sizes on both sides of the read buffer's size, small
 *                    frames right after large ones, buffers of exactly the size and of
 *                    max_msg; on unix an fd riding on a large message (kept by
 *                    ferry_recvmsg, closed by ferry_recv). Sends alternate between a
 *                    deadline and none (two paths through a frame the kernel takes
 *                    in parts).
 *   tcp-raw          a raw TCP peer (this test writes the frames) against a ferry client:
 *                    a large frame whose second half comes only after a receive timed
 *                    out in the middle of it (then received whole and exact); a large
 *                    frame with a corrupt payload (crc mismatch: -EBADMSG, then the
 *                    channel stays closed); a large frame cut short by the peer's close
 *                    (-EPIPE).
 * Every mode ends with no descriptor left behind.
 */
#include "testutil.h"

#include "core/frame.h"
#include "ferry/ferry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define T   10000000000LL /* 10 s: a bound, never reached when all is well */
#define MIB ((size_t)1 << 20)

/* ------------------------------------------------------------------ payloads */

/* Bytes that depend on the seed and on their position (a shifted or mixed-up copy
 * fails the check). */
static void pat_fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x ^ (uint32_t)(i >> 8));
    }
}

static int pat_ok(const uint8_t *p, size_t n, uint32_t seed)
{
    uint8_t *want = malloc(n ? n : 1);
    CHECK(want != NULL);
    pat_fill(want, n, seed);
    int ok = memcmp(p, want, n) == 0;
    free(want);
    return ok;
}

/* ------------------------------------------------------------------ the script */

/* The sizes of the mixed part: either side of the read buffer (64 KiB and the 32-byte
 * header: 65536 is the longest frame it holds whole), small after large, and the ends. */
static const size_t MIXED[] = {0,     1,
                               100,   65503,
                               65504, 65505,
                               65535, 65536,
                               65537, 7,
                               70000, 131072,
                               64,    4096,
                               1,     65505,
                               3,     MIB / 2 + 3,
                               2,     (size_t)-1 /* big */,
                               5,     (size_t)-2 /* max */,
                               9};
#define NMIXED (sizeof MIXED / sizeof MIXED[0])

static size_t mixed_size(int i, size_t big, size_t max)
{
    size_t s = MIXED[i];
    return s == (size_t)-1 ? big : s == (size_t)-2 ? max : s;
}

/* Sends with a deadline (T) and without (FERRY_FOREVER) take different paths in
 * fdchan.c: a frame begun with a deadline waits for room first; one without writes at
 * once and finishes as the reader takes, like a blocking write. The script uses both. */
static void send_pat(ferry_chan *ch, int64_t type, size_t len, uint32_t seed, int fd,
                     int64_t timeout)
{
    uint8_t *p = malloc(len ? len : 1);
    CHECK(p != NULL);
    pat_fill(p, len, seed);
    ferry_msg m = {.type = type, .data = p, .len = len, .nfds = fd >= 0};
    m.fds[0] = fd;
    CHECK_EQ(ferry_sendmsg(ch, &m, timeout), 0);
    free(p);
}

/* The peer: the whole script, then it waits for the receiver's word before closing (a
 * large frame may still be on its way out). */
static int sender(ferry_chan *ch, int with_fds)
{
    size_t max = ferry_chan_max_msg(ch), big = max < MIB ? max : MIB;
    send_pat(ch, 1, big, 1, -1, T); /* 1 MiB and max_msg */
    send_pat(ch, 2, max, 2, -1, FERRY_FOREVER);
    send_pat(ch, 3, big, 3, -1, FERRY_FOREVER); /* for a buffer one byte too small, then whole */
    send_pat(ch, 4, big, 4, -1, T);             /* passed over by filter 5 */
    send_pat(ch, 5, big, 5, -1, FERRY_FOREVER);
    send_pat(ch, 6, 100, 6, -1, T);
    char go[8];
    CHECK_EQ(ferry_recv(ch, go, sizeof go, T), 2); /* the receiver has taken all so far */
    send_pat(ch, 30, 200, 30, -1, T); /* too long for the next buffer, and one that fits */
    send_pat(ch, 31, 5, 31, -1, FERRY_FOREVER);
    for (int i = 0; i < (int)NMIXED; i++) {
        size_t s = mixed_size(i, big, max);
        if (s <= max) send_pat(ch, 10 + i, s, 10 + (uint32_t)i, -1, (i & 1) ? T : FERRY_FOREVER);
    }
    if (with_fds) { /* an fd on a large packet, twice */
        int p[2];
        CHECK(pipe(p) == 0);
        send_pat(ch, 7, big, 7, p[1], T);
        send_pat(ch, 8, big, 8, p[1], FERRY_FOREVER);
        close(p[0]);
        close(p[1]);
    }
    char done[8];
    CHECK_EQ(ferry_recv(ch, done, sizeof done, T), 4);
    CHECK(memcmp(done, "done", 4) == 0);
    return 0;
}

static void expect(ferry_chan *ch, int64_t filter, uint8_t *buf, size_t cap, int64_t type,
                   size_t len, uint32_t seed)
{
    ferry_msg m = {.data = buf, .cap = cap};
    ssize_t r = ferry_recvmsg(ch, &m, filter, T);
    if (r != (ssize_t)len)
        fprintf(stderr, "filter %lld cap %zu: want type %lld len %zu, got %zd (type %lld)\n",
                (long long)filter, cap, (long long)type, len, r, (long long)m.type);
    CHECK_EQ(r, (long long)len);
    CHECK_EQ(m.len, len);
    CHECK_EQ(m.type, type);
    CHECK_EQ(m.nfds, 0);
    CHECK(pat_ok(buf, len, seed));
}

static void receiver(ferry_chan *ch, int with_fds)
{
    size_t max = ferry_chan_max_msg(ch), big = max < MIB ? max : MIB;
    uint8_t *buf = malloc(max), *small = malloc(big);
    CHECK(buf && small);

    /* 1 MiB and max_msg, into a buffer of max_msg */
    expect(ch, 0, buf, max, 1, big, 1);
    expect(ch, 0, buf, max, 2, max, 2);

    /* One byte too small: -EMSGSIZE, the size needed, the buffer not written; the message
     * stays first in line and comes whole into a buffer of its size. */
    memset(small, 0x5a, big);
    ferry_msg m = {.data = small, .cap = big - 1};
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, T), -EMSGSIZE);
    CHECK_EQ(m.len, big);
    CHECK_EQ(m.type, 3);
    for (size_t i = 0; i < big; i++) CHECK(small[i] == 0x5a);
    CHECK_EQ(ferry_recv(ch, small, big - 1, T), -EMSGSIZE); /* still there */
    expect(ch, 0, small, big, 3, big, 3);

    /* A filter passes over a large message, which stays queued, in order. */
    expect(ch, 5, buf, max, 5, big, 5);
    expect(ch, 6, buf, max, 6, 100, 6);
    expect(ch, 0, buf, max, 4, big, 4);

    /* A message too long for the buffer comes first even when the next one would fit
     * (both sent while this end waits, so that they arrive in one read). */
    CHECK_EQ(ferry_send(ch, "go", 2, T), 0);
    usleep(50000);
    m = (ferry_msg){.data = small, .cap = 100};
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, T), -EMSGSIZE);
    CHECK_EQ(m.len, 200);
    CHECK_EQ(m.type, 30);
    expect(ch, 0, small, 200, 30, 200, 30);
    expect(ch, 0, small, 100, 31, 5, 31);

    /* Mixed sizes, into a buffer of max_msg and one of exactly the size, in turn. */
    for (int i = 0; i < (int)NMIXED; i++) {
        size_t s = mixed_size(i, big, max);
        if (s > max) continue;
        expect(ch, 0, buf, (i & 1) ? s : max, 10 + i, s, 10 + (uint32_t)i);
    }

    if (with_fds) { /* the fd comes with its message, or is closed by ferry_recv */
        m = (ferry_msg){.data = buf, .cap = max};
        CHECK_EQ(ferry_recvmsg(ch, &m, 0, T), (long long)big);
        CHECK_EQ(m.type, 7);
        CHECK_EQ(m.nfds, 1);
        CHECK(pat_ok(buf, big, 7));
        struct stat st;
        CHECK(fstat(m.fds[0], &st) == 0 && S_ISFIFO(st.st_mode));
        close(m.fds[0]);
        int before = fd_count();
        CHECK_EQ(ferry_recv(ch, buf, max, T), (long long)big);
        CHECK(pat_ok(buf, big, 8));
        CHECK_EQ(fd_count(), before);
    }
    CHECK_EQ(ferry_send(ch, "done", 4, T), 0);
    free(buf);
    free(small);
}

/* ------------------------------------------------------------------ with a ferry peer */

/* A port nobody uses right now (the kernel's choice for a probe socket). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, len) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    close(s);
    return ntohs(sa.sin_port);
}

static int with_peer(const char *scheme)
{
    char dir[] = "/tmp/ferry-large-XXXXXX", url[256];
    CHECK(mkdtemp(dir) != NULL);
    int is_pipe = !strcmp(scheme, "pipe"), with_fds = !strcmp(scheme, "unix");
    if (with_fds)
        snprintf(url, sizeof url, "unix://%s/s", dir);
    else if (!strcmp(scheme, "tcp"))
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port());
    else if (!is_pipe)
        return 2;
    int before = fd_count();
    /* max_msg above 1 MiB, so that 1 MiB is also a message shorter than max_msg; the
     * default where the system allows no more (unix: net.core.wmem_max). */
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = MIB + 4096;
    ferry_chan *a = NULL, *b = NULL;
    ferry_listener *l = NULL;
    if (is_pipe) {
        CHECK_EQ(ferry_pipe_pair(&o, &a, &b), 0);
    } else {
        int rc = ferry_listen(url, &o, &l);
        if (rc == -EINVAL) rc = ferry_listen(url, NULL, &l);
        CHECK_EQ(rc, 0);
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (is_pipe)
            ferry_chan_close(a);
        else
            CHECK_EQ(ferry_chan_open(url, NULL, &b, T), 0);
        int rc = sender(b, with_fds);
        ferry_chan_close(b);
        _exit(rc);
    }
    if (is_pipe) {
        ferry_chan_close(b);
    } else {
        CHECK_EQ(ferry_accept(l, &a, T), 0);
        ferry_listener_close(l);
    }
    receiver(a, with_fds);
    wait_ok(pid);
    ferry_chan_close(a);
    rmdir(dir);
    CHECK_EQ(fd_count(), before);
    return 0;
}

/* ------------------------------------------------------------------ a raw tcp peer */

#define RAW_MAX (2 * MIB) /* the raw peer's max_msg, told in its HELLO */

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        CHECK(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

static void read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t k = read(fd, b, n);
        CHECK(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

/* A frame's 32-byte header, crc over it and the payload (tcp requires one). */
static void raw_header(uint8_t hdr[FERRY__FRAME_HDR], uint64_t seq, int64_t type,
                       const uint8_t *payload, uint32_t len)
{
    ferry__frame f = {.flags = FERRY__F_CRC, .type = type, .seq = seq, .len = len};
    f.crc = ferry__frame_crc(&f, payload);
    ferry__frame_encode(&f, hdr);
}

/* Accept one client and trade HELLOs with it: ours first (we are the creator: max_msg,
 * flags = crc), then we read its answer. */
static int raw_accept(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    uint32_t hello[2] = {RAW_MAX, 2 /* FDCHAN_CHECKSUM */};
    uint8_t hdr[FERRY__FRAME_HDR], theirs[FERRY__FRAME_HDR + sizeof hello];
    raw_header(hdr, 0, 0, (const uint8_t *)hello, sizeof hello);
    write_all(fd, hdr, sizeof hdr);
    write_all(fd, hello, sizeof hello);
    read_all(fd, theirs, sizeof theirs);
    return fd;
}

static void raw_peer(int lfd, int go)
{
    uint8_t *p = malloc(MIB), hdr[FERRY__FRAME_HDR], byte;
    CHECK(p != NULL);
    /* 1: a large frame, half now, half once the receiver's timed-out receive is over */
    int fd = raw_accept(lfd);
    pat_fill(p, MIB, 1);
    raw_header(hdr, 1, 1, p, MIB);
    write_all(fd, hdr, sizeof hdr);
    write_all(fd, p, MIB / 2);
    CHECK_EQ(read(go, &byte, 1), 1);
    write_all(fd, p + MIB / 2, MIB - MIB / 2);
    /* 2: a large frame whose payload changed after its crc was made */
    pat_fill(p, MIB, 2);
    raw_header(hdr, 2, 2, p, MIB);
    p[MIB - 1000] ^= 0x10;
    write_all(fd, hdr, sizeof hdr);
    write_all(fd, p, MIB);
    CHECK_EQ(read(go, &byte, 1), 1);
    close(fd);
    /* 3: a large frame cut short by the end of the connection */
    fd = raw_accept(lfd);
    pat_fill(p, MIB, 3);
    raw_header(hdr, 1, 1, p, MIB);
    write_all(fd, hdr, sizeof hdr);
    write_all(fd, p, MIB / 3);
    close(fd);
    free(p);
}

static int raw_tcp(void)
{
    int before = fd_count();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), go[2];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, len) == 0 && listen(lfd, 4) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        raw_peer(lfd, go[0]);
        _exit(0);
    }
    close(go[0]);
    close(lfd);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    uint8_t *buf = malloc(RAW_MAX);
    CHECK(buf != NULL);

    ferry_chan *ch;
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, T), 0);
    CHECK_EQ(ferry_chan_max_msg(ch), RAW_MAX);
    /* The receive times out in the middle of the frame, whose first half went into buf;
     * buf is then the caller's again, and the whole frame must come out of the next
     * receive all the same. */
    ferry_msg m = {.data = buf, .cap = RAW_MAX};
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, 200000000), -ETIMEDOUT);
    memset(buf, 0xee, RAW_MAX);
    CHECK_EQ(write(go[1], "g", 1), 1);
    m = (ferry_msg){.data = buf, .cap = RAW_MAX};
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, T), (long long)MIB);
    CHECK_EQ(m.type, 1);
    CHECK(pat_ok(buf, MIB, 1));
    /* A crc mismatch on a large frame read straight into the caller's buffer */
    m = (ferry_msg){.data = buf, .cap = RAW_MAX};
    CHECK_EQ(ferry_recvmsg(ch, &m, 0, T), -EBADMSG);
    ssize_t r = ferry_recv(ch, buf, RAW_MAX, T);
    CHECK(r == -EBADMSG || r == -EPIPE);
    r = ferry_send(ch, "x", 1, T);
    CHECK(r == -EBADMSG || r == -EPIPE);
    CHECK_EQ(write(go[1], "g", 1), 1);
    ferry_chan_close(ch);
    /* The end of the stream in the middle of a large frame */
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, T), 0);
    CHECK_EQ(ferry_recv(ch, buf, RAW_MAX, T), -EPIPE);
    ferry_chan_close(ch);

    close(go[1]);
    wait_ok(pid);
    free(buf);
    CHECK_EQ(fd_count(), before);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    if (!strcmp(argv[1], "tcp-raw")) return raw_tcp();
    return with_peer(argv[1]);
}
