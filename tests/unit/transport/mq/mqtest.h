// SPDX-License-Identifier: MIT
/*
 * mqtest.h — helpers for the message-queue transport tests (tests/unit/transport/mq), on top of
 * chantest.h (watchdog, fork_child, ctl pipes, seq payloads, now_ns):
 *  - leftovers: mq_snapshot() lists the POSIX queues of the mqueue file system
 *    (/dev/mqueue, or — where it is not mounted — a private mount of it, made once in a
 *    private mount namespace of this test process); ipcs_snapshot() lists the System V
 *    queues as `ipcs -q` shows them (key and msqid). Both return one sorted string, so
 *    "nothing left behind" is a string compare: snap_expect_equal() requires the current
 *    list to equal a saved one (retrying for up to 2 s, so that another program's queue
 *    that comes and goes does not fail us; a leak of ours never goes away).
 *  - messages: send_typed(), expect(), expect_err() — typed send and filtered receive
 *    with exact results; pair_make() — listen + accept + open in this process;
 *    exchange_opener()/exchange_accepter() — the two halves of the round-trip test;
 *    expect_broken() — a channel that met garbage stays broken both ways.
 *  - timeouts: accept_bounds() — a listener's poll fd and accept's NOW / bounded waits;
 *    recv_eintr_bound() — signals do not shorten a bounded receive.
 *  - garbage: junk_build() makes the bytes a raw (hostile) writer puts into a queue, from
 *    a table row: raw bytes, or a frame with chosen header fields.
 * Every blocking call is bounded (T5S unless the test is about the bound).
 */
#ifndef FERRY_MQTEST_H
#define FERRY_MQTEST_H

#include "chantest.h"

#include "core/frame.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#define MQUEUE_MAGIC_FS 0x19800202

/* ---------------------------------------------------------------- leftovers */

static char mqtest_dir[64];
static pid_t mqtest_dir_owner;

static inline void mqtest_dir_cleanup(void)
{
    if (getpid() != mqtest_dir_owner || strcmp(mqtest_dir, "/dev/mqueue") == 0) return;
    umount2(mqtest_dir, MNT_DETACH);
    rmdir(mqtest_dir);
}

/* The directory that shows this IPC namespace's POSIX queues, or NULL (then a note is
 * printed and the tests check queue names one by one instead). */
static inline const char *mq_dir(void)
{
    static int done;
    if (done) return mqtest_dir[0] ? mqtest_dir : NULL;
    done = 1;
    struct statfs sf;
    if (statfs("/dev/mqueue", &sf) == 0 && (unsigned long)sf.f_type == MQUEUE_MAGIC_FS) {
        strcpy(mqtest_dir, "/dev/mqueue");
        return mqtest_dir;
    }
    /* Not mounted: mount it privately (nothing outside this process tree sees it). */
    strcpy(mqtest_dir, "/tmp/ferry-mqfs-XXXXXX");
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
        mkdtemp(mqtest_dir) != NULL) {
        if (mount("mqueue", mqtest_dir, "mqueue", 0, NULL) == 0) {
            mqtest_dir_owner = getpid();
            atexit(mqtest_dir_cleanup);
            return mqtest_dir;
        }
        rmdir(mqtest_dir);
    }
    fprintf(stderr, "note: no mqueue file system to list; checking queue names one by one\n");
    mqtest_dir[0] = 0;
    return NULL;
}

static inline int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort lines[0..n) and join them into one malloc'd string; frees the lines. */
static inline char *join_sorted(char **lines, size_t n)
{
    qsort(lines, n, sizeof *lines, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(lines[i]) + 1;
    char *s = malloc(len);
    CHECK(s != NULL);
    s[0] = 0;
    for (size_t i = 0; i < n; i++) {
        strcat(s, lines[i]);
        strcat(s, "\n");
        free(lines[i]);
    }
    free(lines);
    return s;
}

/* The POSIX queues that exist now, sorted, one per line ("" when mq_dir() is NULL). */
static inline char *mq_snapshot(void)
{
    size_t n = 0, cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    CHECK(lines != NULL);
    const char *dir = mq_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            CHECK(lines != NULL);
        }
        lines[n++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    return join_sorted(lines, n);
}

/* The System V queues `ipcs -q` lists now: "key msqid" per line, sorted. */
static inline char *ipcs_snapshot(void)
{
    size_t n = 0, cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    CHECK(lines != NULL);
    FILE *p = popen("ipcs -q 2>/dev/null", "r");
    CHECK(p != NULL);
    char buf[512], key[64], id[64];
    while (fgets(buf, sizeof buf, p)) {
        if (strncmp(buf, "0x", 2) != 0 || sscanf(buf, "%63s %63s", key, id) != 2) continue;
        if (n == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            CHECK(lines != NULL);
        }
        snprintf(buf, sizeof buf, "%s %s", key, id);
        lines[n++] = strdup(buf);
    }
    CHECK_EQ(pclose(p), 0); /* ipcs ran */
    return join_sorted(lines, n);
}

/* Require snap() to equal `want` (retrying for up to 2 s); frees nothing of the caller's. */
static inline void snap_expect_equal(char *(*snap)(void), const char *want, const char *what)
{
    int64_t deadline = now_ns() + 2 * SEC;
    for (;;) {
        char *now = snap();
        int same = strcmp(now, want) == 0;
        if (!same && now_ns() > deadline)
            fprintf(stderr, "%s left behind or changed:\nbefore:\n%s\nafter:\n%s\n", what, want,
                    now);
        free(now);
        if (same) return;
        CHECK(now_ns() <= deadline);
        sleep_ms(50);
    }
}

/* ---------------------------------------------------------------- messages */

static inline void send_typed(ferry_chan *ch, int64_t type, const char *s)
{
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.data = (void *)s;
    m.len = strlen(s);
    int rc = ferry_sendmsg(ch, &m, T5S);
    if (rc < 0) fprintf(stderr, "sendmsg type %" PRId64 ": %s\n", type, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
}

/* recvmsg with filter (bounded by timeout); expect type and payload s. */
static inline void expect(ferry_chan *ch, int64_t filter, int64_t timeout, int64_t type,
                          const char *s)
{
    char buf[64];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = -77;
    m.nfds = 99;
    m.data = buf;
    m.cap = sizeof buf;
    ssize_t n = ferry_recvmsg(ch, &m, filter, timeout);
    if (n < 0)
        fprintf(stderr, "recvmsg filter %" PRId64 ": %s (expected type %" PRId64 " %s)\n", filter,
                ferry_strerror((int)n), type, s);
    CHECK_EQ(n, (ssize_t)strlen(s));
    CHECK_EQ(m.len, strlen(s));
    CHECK_EQ(m.type, type);
    CHECK_EQ(m.nfds, 0);
    CHECK(memcmp(buf, s, strlen(s)) == 0);
}

static inline void expect_err(ferry_chan *ch, int64_t filter, int64_t timeout, int err)
{
    char buf[64];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = buf;
    m.cap = sizeof buf;
    CHECK_EQ(ferry_recvmsg(ch, &m, filter, timeout), err);
}

/* listen at url with o, accept at once, open from this process: *l, *srv (the
 * listener's end) and *cli (the opener's end). */
static inline void pair_make(const char *url, const ferry_chan_opts *o, ferry_listener **l,
                             ferry_chan **srv, ferry_chan **cli)
{
    int rc = ferry_listen(url, o, l);
    if (rc < 0) fprintf(stderr, "listen %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
    CHECK_EQ(ferry_accept(*l, srv, FERRY_NOW), 0);
    rc = ferry_chan_open(url, NULL, cli, T5S);
    if (rc < 0) fprintf(stderr, "open %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
}

static inline void pair_close(ferry_listener *l, ferry_chan *srv, ferry_chan *cli)
{
    ferry_chan_close(cli);
    ferry_chan_close(srv);
    ferry_listener_close(l);
}

/* The round-trip test: the opener sends RT_N spans of 200 bytes, then takes RT_N of 100;
 * the accepter does the reverse. Each side checks every sequence number and byte. */
#define RT_N 300

static inline void exchange_opener(ferry_chan *ch)
{
    STAGE("child: send");
    for (uint64_t i = 0; i < RT_N; i++) send_seq_span(ch, i, 200);
    STAGE("child: receive");
    for (uint64_t i = 0; i < RT_N; i++) recv_seq_span(ch, i + 1000, 100, T5S);
}

static inline void exchange_accepter(ferry_chan *ch)
{
    STAGE("parent: receive");
    for (uint64_t i = 0; i < RT_N; i++) recv_seq_span(ch, i, 200, T5S);
    STAGE("parent: send");
    for (uint64_t i = 0; i < RT_N; i++) send_seq_span(ch, i + 1000, 100);
}

/* srv met garbage: every receive (typed by `filter`, untyped, and a bounded wait) and
 * every send is -EBADMSG, for good. */
static inline void expect_broken(ferry_chan *srv, int64_t filter)
{
    expect_err(srv, filter, FERRY_NOW, -EBADMSG);
    expect_err(srv, 0, FERRY_NOW, -EBADMSG);
    expect_err(srv, -5, T5S, -EBADMSG);
    CHECK_EQ(ferry_send(srv, "x", 1, FERRY_NOW), -EBADMSG);
}

/* A positive number from a /proc file (the test fails when it cannot be read). */
static inline long proc_num(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    CHECK(f != NULL);
    CHECK_EQ(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

/* Is fd readable right now? */
static inline bool readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ---------------------------------------------------------------- garbage */

/* One hostile message. */
typedef struct junk {
    const char *what;
    const char *raw; /* non-NULL: exactly these bytes, no frame */
    int64_t type;    /* frame header fields */
    uint8_t flags, nfds;
    int crc_ok;    /* with FERRY__F_CRC: a right (1) or wrong (0) crc */
    int claim;     /* payload_len = the real payload length + claim */
    size_t len;    /* payload bytes (a filler) */
    int checksum;  /* the channel under attack has FERRY_CHECKSUM */
    long mtype;    /* sysvmq: the mtype it travels with (0: type + 1) */
    unsigned prio; /* posixmq: its priority */
} junk;

/* Build j's bytes into out (room for 32 + j->len); returns their length. */
static inline size_t junk_build(const junk *j, uint8_t *out)
{
    if (j->raw) {
        memcpy(out, j->raw, strlen(j->raw));
        return strlen(j->raw);
    }
    memset(out + FERRY__FRAME_HDR, 'J', j->len);
    ferry__frame f = {.flags = j->flags,
                      .nfds = j->nfds,
                      .type = j->type,
                      .seq = 1,
                      .len = (uint32_t)((int64_t)j->len + j->claim)};
    if (f.flags & FERRY__F_CRC) f.crc = ferry__frame_crc(&f, out + FERRY__FRAME_HDR);
    if ((f.flags & FERRY__F_CRC) && !j->crc_ok) f.crc ^= 1u;
    ferry__frame_encode(&f, out);
    return FERRY__FRAME_HDR + j->len;
}

/* ---------------------------------------------------------------- EINTR */

static volatile sig_atomic_t mqtest_signals;

static inline void mqtest_on_usr1(int sig)
{
    (void)sig;
    mqtest_signals++;
}

/* Catch SIGUSR1 without SA_RESTART, so that it interrupts blocking system calls. */
static inline void usr1_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mqtest_on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Fork a child that sends SIGUSR1 to this process every 2 ms for ms milliseconds. */
static inline pid_t usr1_storm(long ms)
{
    pid_t parent = getpid();
    pid_t pid = fork_child();
    if (pid == 0) {
        int64_t end = now_ns() + ms * MS;
        while (now_ns() < end) {
            kill(parent, SIGUSR1);
            sleep_ms(2);
        }
        child_exit();
    }
    return pid;
}

/* ---------------------------------------------------------------- timeouts */

/* l has exactly one channel waiting: its poll fd says so, accept takes it into *srv, and
 * then accept finds none (-EAGAIN at once, -ETIMEDOUT after a 30 ms wait, *out untouched). */
static inline void accept_bounds(ferry_listener *l, ferry_chan **srv)
{
    int lfd = ferry_listener_poll_fd(l);
    CHECK(lfd >= 0);
    CHECK(readable(lfd));
    CHECK_EQ(ferry_accept(l, srv, FERRY_NOW), 0);
    CHECK(!readable(lfd));
    ferry_chan *none = NULL;
    CHECK_EQ(ferry_accept(l, &none, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &none, 30 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 30 * MS);
    CHECK(none == NULL);
}

/* EINTR does not shorten a bounded wait: a 200 ms receive on an empty ch under a SIGUSR1
 * storm still takes 200 ms and ends -ETIMEDOUT. */
static inline void recv_eintr_bound(ferry_chan *ch)
{
    char buf[16];
    usr1_catch();
    mqtest_signals = 0;
    pid_t storm = usr1_storm(300);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 200 * MS), -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 200 * MS);
    CHECK(mqtest_signals > 0);
    wait_ok(storm);
}

#endif
