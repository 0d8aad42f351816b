// SPDX-License-Identifier: MIT
/*
 * chantest.h — helpers shared by the channel behaviour tests (tests/unit/transport/shm,
 * tests/unit/transport/mq) and the conformance suite.
 *
 *  - now_ns(), sleep_ms(): CLOCK_MONOTONIC time in ns, and a sleep that survives EINTR.
 *  - watchdog: every test process arms alarm(WATCHDOG_S); a hang then ends the process
 *    with a message naming the stage it was in (set with STAGE("...")), so a bug gives a
 *    failure and never a hung test run.
 *  - fork_child(): fork() for a peer process; the child dies with its parent
 *    (PR_SET_PDEATHSIG) and has its own watchdog. End a child with child_exit().
 *  - ctl pipes: a tiny bidirectional byte channel between parent and child, independent
 *    of the channel under test, for "now do X" synchronisation; every read is bounded.
 *  - forked pairs: run_pair() is the whole harness of a test with a forked peer: a
 *    channel pair split across fork(), ctl pipes, and an fd-leak check in both processes.
 *    peer_start()/peer_wait()/peer_end() and peer_fork() are its parts, for tests that
 *    need something else (a peer that is killed, a parent part with more arguments).
 *  - seq payloads: fill_seq()/check_seq() write and verify a payload that carries a
 *    sequence number and bytes derived from it, so order, loss, duplication and tearing
 *    are all visible; send_seq_span()/recv_seq_span() send and check one on a channel.
 *  - send_fds(): send a string message with a type and fds.
 *  - tmpdir: mkdtemp under /tmp for socket files; tmpdir_remove() requires it empty
 *    (no socket file left behind), and an atexit hook cleans up after a failed check.
 */
#ifndef FERRY_CHANTEST_H
#define FERRY_CHANTEST_H

#include "testutil.h" /* first: defines _GNU_SOURCE */

#include <ferry/ferry.h>

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>

#define MS         (1000000LL)
#define SEC        (1000000000LL)
#define T5S        (5 * SEC)
#define WATCHDOG_S 30

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * MS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------- watchdog */

static const char *volatile chantest_stage = "start";
#define STAGE(s) (chantest_stage = (s))

static inline void chantest_on_alarm(int sig)
{
    (void)sig;
    const char *s = chantest_stage;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "WATCHDOG: pid %d hung for %d s in stage: %s\n",
                     (int)getpid(), WATCHDOG_S, s);
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
    _exit(3);
}

static inline void watchdog_arm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = chantest_on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(WATCHDOG_S);
}

/* ---------------------------------------------------------------- processes */

/* fork() for a peer: in the child, arm its watchdog and make it die with the parent. */
static inline pid_t fork_child(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        watchdog_arm();
    }
    return pid;
}

static inline void child_exit(void)
{
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

/* Wait for pid (bounded by the watchdog) and require that it was killed by sig. */
static inline void wait_signaled(pid_t pid, int sig)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig) {
        fprintf(stderr, "child %d: expected death by signal %d, status 0x%x\n", (int)pid, sig, st);
        exit(1);
    }
}

/* ---------------------------------------------------------------- ctl pipes */

/* Two pipes: parent->child and child->parent. After fork each side calls ctl_parent()
 * or ctl_child() to close the ends it does not use. */
typedef struct ctl {
    int p2c[2];
    int c2p[2];
    int rd, wr; /* this process's ends after ctl_parent/ctl_child */
} ctl;

static inline void ctl_init(ctl *c)
{
    CHECK_EQ(pipe2(c->p2c, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(c->c2p, O_CLOEXEC), 0);
    c->rd = c->wr = -1;
}

static inline void ctl_parent(ctl *c)
{
    close(c->p2c[0]);
    close(c->c2p[1]);
    c->rd = c->c2p[0];
    c->wr = c->p2c[1];
}

static inline void ctl_child(ctl *c)
{
    close(c->p2c[1]);
    close(c->c2p[0]);
    c->rd = c->p2c[0];
    c->wr = c->c2p[1];
}

static inline void ctl_close(ctl *c)
{
    close(c->rd);
    close(c->wr);
    c->rd = c->wr = -1;
}

static inline void ctl_put(ctl *c, char v)
{
    ssize_t w;
    while ((w = write(c->wr, &v, 1)) < 0 && errno == EINTR) {
    }
    CHECK_EQ(w, 1);
}

/* Read one byte, waiting at most 5 s; fail the test on timeout or EOF. */
static inline char ctl_get(ctl *c)
{
    struct pollfd p = {.fd = c->rd, .events = POLLIN};
    int64_t deadline = now_ns() + T5S;
    for (;;) {
        int64_t left = deadline - now_ns();
        CHECK(left > 0); /* ctl_get timed out */
        int r = poll(&p, 1, (int)(left / MS) + 1);
        if (r < 0 && errno == EINTR) continue;
        CHECK_EQ(r, 1);
        break;
    }
    char v = 0;
    ssize_t n;
    while ((n = read(c->rd, &v, 1)) < 0 && errno == EINTR) {
    }
    CHECK_EQ(n, 1);
    return v;
}

static inline void ctl_expect(ctl *c, char v)
{
    CHECK_EQ(ctl_get(c), v);
}

/* ---------------------------------------------------------------- forked pairs */

/* A channel pair split across fork(), with ctl pipes between the two processes. */
typedef struct peer {
    ctl c;     /* this process's ctl ends */
    pid_t pid; /* the child's pid in the parent, 0 in the child */
    int base;  /* the fd count before the pipes and the pair were made */
} peer;

/* Make ctl pipes and a channel pair with o (NULL: the defaults), and fork. Like fork(),
 * returns in both processes: 0 in the child, the child's pid in the parent. *ch is this
 * process's end (the parent keeps the pair's first end, the child its second); each
 * process has closed the other's end and taken its own ctl ends. */
static inline pid_t peer_fork(peer *p, const ferry_chan_opts *o, ferry_chan **ch)
{
    p->base = fd_count();
    ctl_init(&p->c);
    ferry_chan *a = NULL, *b = NULL;
    CHECK_EQ(ferry_pair(o, &a, &b), 0);
    p->pid = fork_child();
    if (p->pid == 0) {
        ctl_child(&p->c);
        ferry_chan_close(a);
        *ch = b;
    } else {
        ctl_parent(&p->c);
        ferry_chan_close(b);
        *ch = a;
    }
    return p->pid;
}

/* Close this process's end ch (NULL: already closed) and ctl ends, and require the fd
 * count to be back where it was before peer_fork(). The parent reaps the child first. */
static inline void peer_end(peer *p, ferry_chan *ch)
{
    ferry_chan_close(ch);
    ctl_close(&p->c);
    CHECK_EQ(fd_count(), p->base);
}

/* peer_fork(), with the child running child(its end, ctl); when that returns, the child
 * ends as peer_end() says and exits 0. Returns the parent's end. */
static inline ferry_chan *peer_start(peer *p, const ferry_chan_opts *o,
                                     void (*child)(ferry_chan *, ctl *))
{
    ferry_chan *ch = NULL;
    if (peer_fork(p, o, &ch) == 0) {
        child(ch, &p->c);
        peer_end(p, ch);
        child_exit();
    }
    return ch;
}

/* In the parent: close its end ch, require the child to exit 0, then peer_end(). */
static inline void peer_wait(peer *p, ferry_chan *ch)
{
    ferry_chan_close(ch);
    STAGE("parent: wait for the child");
    wait_ok(p->pid);
    peer_end(p, NULL);
}

/* The whole harness: a pair made with o (NULL: the defaults) split across fork(); the
 * child runs child(its end, ctl) and the parent parent(its end, ctl); then each closes
 * its end and ctl ends and requires no fd leak, and the child must have exited 0. */
static inline void run_pair(const ferry_chan_opts *o, void (*child)(ferry_chan *, ctl *),
                            void (*parent)(ferry_chan *, ctl *))
{
    peer p;
    ferry_chan *a = peer_start(&p, o, child);
    parent(a, &p.c);
    peer_wait(&p, a);
}

/* ---------------------------------------------------------------- payloads */

/* Byte i of the payload of sequence number seq (after the 8-byte header). */
static inline uint8_t seq_byte(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + (i >> 8) + 1u);
}

/* Fill buf[0..len) for seq: the first min(8, len) bytes are seq (little-endian, as
 * memcpy on x86), the rest a pattern derived from seq. */
static inline void fill_seq(void *buf, size_t len, uint64_t seq)
{
    uint8_t *b = buf;
    size_t h = len < 8 ? len : 8;
    memcpy(b, &seq, h);
    for (size_t i = h; i < len; i++) b[i] = seq_byte(seq, i);
}

/* True when buf[0..len) is exactly what fill_seq(buf, len, seq) writes. */
static inline bool check_seq(const void *buf, size_t len, uint64_t seq)
{
    const uint8_t *b = buf;
    size_t h = len < 8 ? len : 8;
    if (memcmp(b, &seq, h) != 0) return false;
    for (size_t i = h; i < len; i++)
        if (b[i] != seq_byte(seq, i)) return false;
    return true;
}

/* Deterministic sizes for a stream: 8..8+span-1, by seq. */
static inline size_t seq_len(uint64_t seq, size_t span)
{
    return 8 + (size_t)((seq * 2654435761u) % span);
}

/* Send seq's payload, seq_len(seq, span) bytes long, waiting at most 5 s. */
static inline void send_seq_span(ferry_chan *ch, uint64_t seq, size_t span)
{
    uint8_t buf[256];
    size_t len = seq_len(seq, span);
    CHECK(len <= sizeof buf);
    fill_seq(buf, len, seq);
    CHECK_EQ(ferry_send(ch, buf, len, T5S), 0);
}

/* Receive one message, waiting at most timeout, and require it to be seq's payload,
 * seq_len(seq, span) bytes long. */
static inline void recv_seq_span(ferry_chan *ch, uint64_t seq, size_t span, int64_t timeout)
{
    uint8_t buf[512];
    ssize_t n = ferry_recv(ch, buf, sizeof buf, timeout);
    if (n < 0) fprintf(stderr, "recv of seq %" PRIu64 ": %s\n", seq, ferry_strerror((int)n));
    CHECK_EQ(n, (ssize_t)seq_len(seq, span));
    CHECK(check_seq(buf, (size_t)n, seq));
}

/* ---------------------------------------------------------------- messages */

/* ferry_sendmsg (5 s bound) of type with the string s as payload and fds[0..n). */
static inline void send_fds(ferry_chan *ch, int64_t type, const char *s, const int *fds, uint32_t n)
{
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.data = (void *)s;
    m.len = strlen(s);
    m.nfds = n;
    for (uint32_t i = 0; i < n; i++) m.fds[i] = fds[i];
    CHECK_EQ(ferry_sendmsg(ch, &m, T5S), 0);
}

/* ---------------------------------------------------------------- fds */

static inline bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static inline bool fd_is_cloexec(int fd)
{
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

/* ---------------------------------------------------------------- tmpdir */

static char chantest_dir[64];
static pid_t chantest_dir_owner;

static inline void chantest_dir_cleanup(void)
{
    if (chantest_dir[0] == 0 || getpid() != chantest_dir_owner) return;
    DIR *d = opendir(chantest_dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", chantest_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(chantest_dir);
}

/* Make a fresh directory under /tmp; returns its path (static storage). */
static inline const char *tmpdir_make(void)
{
    strcpy(chantest_dir, "/tmp/ferry-chan-XXXXXX");
    CHECK(mkdtemp(chantest_dir) != NULL);
    chantest_dir_owner = getpid();
    atexit(chantest_dir_cleanup);
    return chantest_dir;
}

/* Remove the directory; it must be empty (no socket file left behind). */
static inline void tmpdir_remove(void)
{
    CHECK_EQ(rmdir(chantest_dir), 0);
    chantest_dir[0] = 0;
}

#endif
