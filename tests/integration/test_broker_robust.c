// SPDX-License-Identifier: MIT
/*
 * test_broker_robust — ferryd against clients that misbehave, with a real ferryd started
 * with --idle-ms 200:
 *  - a connection that never speaks (or spoke once and fell silent) without a role is
 *    dropped after about idle-ms, while servers, watchers and talkative clients stay;
 *  - garbage (random bytes, wrong lengths, truncated or empty packets, descriptors
 *    attached, unknown or negative opcodes, bad header fields, strings with a NUL inside
 *    or too long, oversized packets, bytes left over) gets the sender dropped (EOF on its
 *    socket, descriptors it sent closed), with no harm to others; bad values in a
 *    well-formed request are answered with -EINVAL instead;
 *  - a listener that closes with an introduction unread is RELEASED, not DIED; a
 *    broker-made unix channel honours its timeouts;
 *  - SIGHUP reloads the policy file (a file with an error keeps the old policy, a
 *    missing file gives the defaults); SIGTERM exits 0 and removes the socket file.
 * Needs root (to become other uids); otherwise prints SKIP and passes.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "core/frame.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static const ident U21 = {60021, 60021, 0, {0}};
static const ident U22 = {60022, 60022, 0, {0}};

static test_broker *B;
static char logpath[200];

/* ------------------------------------------------------------------ idle */

static void test_idle(pid_t echo)
{
    int silent = raw_dial(B);
    int spoke = raw_dial(B);
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, "org.rb.echo");
    CHECK_EQ(raw_call(spoke, FERRY__OP_LOOKUP, &w, buf, &r, NULL), 0);
    int talker = raw_dial(B);
    ferry_watch *wt;
    CHECK_EQ(ferry_watch_open("org.rb.*", &wt, 5 * SEC), 0);
    int64_t t0 = now_ns();

    /* The silent one goes after idle-ms (checked every 250 ms by ferryd). */
    struct pollfd p = {.fd = silent, .events = POLLIN};
    int dropped_at = -1;
    while (now_ns() - t0 < 3 * SEC) {
        CHECK_EQ(raw_call(talker, FERRY__OP_LOOKUP, &w, buf, &r, NULL), 0); /* keeps talking */
        if (poll(&p, 1, 50) == 1) {
            dropped_at = (int)((now_ns() - t0) / MS);
            break;
        }
    }
    printf("a silent connection was dropped after %d ms\n", dropped_at);
    CHECK(dropped_at >= 150); /* it was connected a little before t0 */
    CHECK(dropped_at < 1500);
    expect_dropped(silent, 100);
    expect_dropped(spoke, 1000);
    close(silent);
    close(spoke);
    /* A while later the others are still there. */
    while (now_ns() - t0 < 800 * MS) {
        CHECK_EQ(raw_call(talker, FERRY__OP_LOOKUP, &w, buf, &r, NULL), 0);
        sleep_ms(50);
    }
    CHECK_EQ(connect_check("org.rb.echo", FERRY_KIND_UNIX, 0, echo), 0);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.rb.idle", NULL, NULL, &l, 5 * SEC), 0);
    ferry_watch_event ev;
    CHECK_EQ(ferry_watch_next(wt, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    CHECK(strcmp(ev.info.name, "org.rb.idle") == 0);
    ferry_listener_close(l);
    CHECK_EQ(ferry_watch_next(wt, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_RELEASED);
    ferry_watch_close(wt);
    close(talker);
}

/* ------------------------------------------------------------------ garbage */

/* ferryd's descriptors once hang-ups of the previous steps are handled: the same count
 * over 100 ms. */
static int quiet_fd_count(void)
{
    int n = proc_fd_count(B->pid), same = 0;
    for (int i = 0; i < 300 && same < 10; i++) {
        sleep_ms(10);
        int m = proc_fd_count(B->pid);
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

static void hdr(uint8_t out[FERRY__FRAME_HDR], int64_t type, uint32_t len, uint8_t nfds)
{
    ferry__frame f = {.flags = 0, .nfds = nfds, .type = type, .seq = 5, .len = len};
    ferry__frame_encode(&f, out);
}

/* Send one packet of raw bytes with fds attached (nfds may be 0). */
static void send_raw(int s, const void *data, size_t len, const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } ctrl;
    struct iovec iov = {(void *)data, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    CHECK_EQ(sendmsg(s, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* A packet: a header for type/len/nfds, then the given payload bytes (plen of them). */
static size_t packet(uint8_t *out, int64_t type, uint32_t len, uint8_t nfds, const void *pl,
                     size_t plen)
{
    hdr(out, type, len, nfds);
    memcpy(out + FERRY__FRAME_HDR, pl, plen);
    return FERRY__FRAME_HDR + plen;
}

/* Send a garbage packet (with nfds pipe write ends attached), require that ferryd drops
 * the connection and closes the descriptors it got. */
static void garbage(const char *what, const void *data, size_t len, int nfds)
{
    int s = raw_dial(B);
    int pr[4][2], w[4];
    for (int i = 0; i < nfds; i++) {
        CHECK(pipe2(pr[i], O_CLOEXEC) == 0);
        w[i] = pr[i][1];
    }
    send_raw(s, data, len, w, nfds);
    for (int i = 0; i < nfds; i++) close(pr[i][1]);
    int64_t t0 = now_ns();
    uint8_t buf[FERRY__BMSG_MAX];
    int64_t op;
    uint64_t seq;
    size_t n;
    int fd;
    int rc = raw_next(s, buf, &op, &seq, &n, &fd, 2000);
    if (rc != -EPIPE) fprintf(stderr, "garbage '%s': %d (op %lld)\n", what, rc, (long long)op);
    CHECK_EQ(rc, -EPIPE);
    close(s);
    /* ferryd's copies are closed: the pipes read as EOF. */
    for (int i = 0; i < nfds; i++) {
        struct pollfd p = {.fd = pr[i][0], .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 2000), 1);
        char c;
        CHECK_EQ(read(pr[i][0], &c, 1), 0);
        close(pr[i][0]);
    }
    CHECK(now_ns() - t0 < SEC);
}

/* A well-formed request with a bad value: an answer, and the connection stays. */
static void bad_value(int64_t op, const ferry__bw *w, int want)
{
    int s = raw_dial(B);
    uint8_t buf[FERRY__BMSG_MAX];
    ferry__br r;
    CHECK_EQ(raw_call(s, op, w, buf, &r, NULL), want);
    CHECK_EQ(ferry__br_end(&r), 0);
    ferry__bw l = {.p = (uint8_t[64]){0}, .cap = 64};
    ferry__bw_str(&l, "org.rb.echo");
    CHECK_EQ(raw_call(s, FERRY__OP_LOOKUP, &l, buf, &r, NULL), 0);
    close(s);
}

static void test_garbage(pid_t echo)
{
    int fds0 = quiet_fd_count();
    static uint8_t pkt[FERRY__FRAME_HDR + FERRY__BMSG_MAX + 64];
    uint8_t pl[300];
    ferry__bw w = {.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org.rb.echo"); /* a valid LOOKUP payload */
    size_t n;

    /* Random bytes (fixed seed), and a few sizes of them. */
    srand(42);
    for (size_t len = 1; len <= 200; len += 37) {
        for (size_t i = 0; i < len; i++) pkt[i] = (uint8_t)rand();
        garbage("random", pkt, len, 0);
    }
    /* An empty packet. */
    garbage("empty", pkt, 0, 0);
    /* A header that says more, or less, than came. */
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len + 5, 0, pl, w.len);
    garbage("length too long", pkt, n, 0);
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len - 3, 0, pl, w.len);
    garbage("length too short", pkt, n, 0);
    /* Truncated: half a header; a header with no payload. */
    hdr(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 0);
    garbage("half header", pkt, FERRY__FRAME_HDR / 2, 0);
    garbage("header only", pkt, FERRY__FRAME_HDR, 0);
    /* A payload cut short inside (the string's length says more than there is). */
    n = packet(pkt, FERRY__OP_LOOKUP, 6, 0, pl, 6);
    garbage("short string", pkt, n, 0);
    /* Descriptors: announced and attached, attached but not announced, two of them. */
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 1, pl, w.len);
    garbage("fd", pkt, n, 1);
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 0, pl, w.len);
    garbage("fd not announced", pkt, n, 1);
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 2, pl, w.len);
    garbage("two fds", pkt, n, 2);
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 1, pl, w.len);
    garbage("fd announced, none attached", pkt, n, 0);
    /* Unknown opcodes, and a negative one. */
    const int64_t ops[] = {0, 8, 63, 68, 1000, INT64_MAX, -1};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        n = packet(pkt, ops[i], (uint32_t)w.len, 0, pl, w.len);
        garbage("opcode", pkt, n, 0);
    }
    /* Header fields: flags, reserved, version, magic. */
    const int bad_at[][2] = {{5, 1}, {5, 0x80}, {7, 1}, {4, 2}, {0, 'X'}};
    for (size_t i = 0; i < sizeof bad_at / sizeof bad_at[0]; i++) {
        n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 0, pl, w.len);
        pkt[bad_at[i][0]] = (uint8_t)bad_at[i][1];
        garbage("header field", pkt, n, 0);
    }
    /* Strings with a NUL inside, or longer than a name may be. */
    const char nul[] = "org.rb\0echo";
    pl[0] = sizeof nul - 1;
    pl[1] = 0;
    memcpy(pl + 2, nul, sizeof nul - 1);
    n = packet(pkt, FERRY__OP_LOOKUP, 2 + sizeof nul - 1, 0, pl, 2 + sizeof nul - 1);
    garbage("NUL in a string", pkt, n, 0);
    n = packet(pkt, FERRY__OP_WATCH, 2 + sizeof nul - 1, 0, pl, 2 + sizeof nul - 1);
    garbage("NUL in a pattern", pkt, n, 0);
    pl[0] = 0;
    pl[1] = 1; /* 256 bytes */
    memset(pl + 2, 'a', 256);
    n = packet(pkt, FERRY__OP_LOOKUP, 258, 0, pl, 258);
    garbage("string of 256", pkt, n, 0);
    /* Bytes left over after a valid request. */
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org.rb.echo");
    ferry__bw_u32(&w, 0);
    n = packet(pkt, FERRY__OP_LOOKUP, (uint32_t)w.len, 0, pl, w.len);
    garbage("left over", pkt, n, 0);
    /* A LIST without its max. */
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "");
    n = packet(pkt, FERRY__OP_LIST, (uint32_t)w.len, 0, pl, w.len);
    garbage("short list", pkt, n, 0);
    /* Larger than any packet: the header says so, or only the bytes do. */
    memset(pkt + FERRY__FRAME_HDR, 0, FERRY__BMSG_MAX + 1);
    hdr(pkt, FERRY__OP_LOOKUP, FERRY__BMSG_MAX + 1, 0);
    garbage("oversized", pkt, FERRY__FRAME_HDR + FERRY__BMSG_MAX + 1, 0);
    hdr(pkt, FERRY__OP_LOOKUP, 2, 0);
    garbage("oversized bytes", pkt, FERRY__FRAME_HDR + FERRY__BMSG_MAX + 1, 0);

    /* Well-formed requests with bad values are answered. */
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org.rb.*.x");
    bad_value(FERRY__OP_WATCH, &w, -EINVAL);
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org.rb.echo");
    ferry__bw_u32(&w, 7);
    bad_value(FERRY__OP_CONNECT, &w, -EINVAL);
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org..rb");
    ferry__bw_u32(&w, FERRY_KIND_UNIX);
    bad_value(FERRY__OP_CONNECT, &w, -EINVAL);
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 01000;
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_register(&w, "org.rb.bad", &pol);
    bad_value(FERRY__OP_REGISTER, &w, -EINVAL);
    ferry_policy_init(&pol);
    pol.flags = 1u << 5; /* no such flag */
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_register(&w, "org.rb.bad", &pol);
    bad_value(FERRY__OP_REGISTER, &w, -EINVAL);
    w = (ferry__bw){.p = pl, .cap = sizeof pl};
    ferry__bw_str(&w, "org.rb.none");
    bad_value(FERRY__OP_UNREGISTER, &w, -ENOENT);

    /* ferryd is up, serves, and holds nothing of all that. */
    CHECK_EQ(connect_check("org.rb.echo", FERRY_KIND_SHM, 0, echo), 0);
    int fds1 = proc_fd_count(B->pid);
    for (int i = 0; i < 100 && fds1 != fds0; i++) {
        sleep_ms(10);
        fds1 = proc_fd_count(B->pid);
    }
    CHECK_EQ(fds1, fds0);
}

/* ------------------------------------------------------------------ release, timeouts */

static void test_release_and_timeouts(pid_t echo)
{
    ferry_watch *wt;
    CHECK_EQ(ferry_watch_open("org.rb.rel", &wt, 5 * SEC), 0);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.rb.rel", NULL, NULL, &l, 5 * SEC), 0);
    ferry_watch_event ev;
    CHECK_EQ(ferry_watch_next(wt, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    /* A connect the listener never takes: the introduction stays unread in its socket. */
    ferry_chan *ch;
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_connect("org.rb.rel", FERRY_KIND_UNIX, NULL, &ch, 100 * MS), -ETIMEDOUT);
    int64_t took = now_ns() - t0;
    CHECK(took >= 100 * MS && took < 600 * MS);
    /* Closing it is a release all the same, even when ferryd reads the listener's
     * UNREGISTER only after its hang-up (ferryd stopped meanwhile). */
    CHECK_EQ(kill(B->pid, SIGSTOP), 0);
    ferry_listener_close(l);
    CHECK_EQ(kill(B->pid, SIGCONT), 0);
    CHECK_EQ(ferry_watch_next(wt, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_RELEASED);
    ferry_watch_close(wt);

    /* A broker-made unix channel waits no longer than asked. */
    CHECK_EQ(ferry_connect("org.rb.echo", FERRY_KIND_UNIX, NULL, &ch, 5 * SEC), 0);
    srv_hello h;
    CHECK_EQ(ferry_recv(ch, &h, sizeof h, 5 * SEC), (ssize_t)sizeof h);
    CHECK_EQ(h.server_pid, echo);
    char buf[8];
    t0 = now_ns();
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 50 * MS), -ETIMEDOUT);
    took = now_ns() - t0;
    CHECK(took >= 50 * MS && took < 500 * MS);
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    ferry_chan_close(ch);
}

/* ------------------------------------------------------------------ SIGHUP */

static int count_in_log(const char *what)
{
    FILE *f = fopen(logpath, "r");
    CHECK(f != NULL);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, what)) n++;
    fclose(f);
    return n;
}

/* Send SIGHUP and wait until ferryd's log says what it did. */
static void hup(const char *what)
{
    int before = count_in_log(what);
    CHECK_EQ(kill(B->pid, SIGHUP), 0);
    for (int i = 0; i < 500 && count_in_log(what) == before; i++) sleep_ms(5);
    CHECK_EQ(count_in_log(what), before + 1);
    CHECK_EQ(waitpid(B->pid, NULL, WNOHANG), 0); /* still up */
}

static int may_register(const ident *id, const char *name)
{
    int rc;
    pid_t pid = spawn_server(id, name, NULL, SRV_SINK, &rc);
    if (rc == 0)
        kill_wait(pid);
    else
        wait_ok(pid);
    return rc;
}

static void test_sighup(void)
{
    CHECK_EQ(may_register(&U21, "org.rl.a"), 0);
    CHECK_EQ(may_register(&U22, "org.rl.a"), -EACCES);
    write_file(B->policy, "own org.rl.* 60022\n");
    hup("policy reloaded");
    CHECK_EQ(may_register(&U22, "org.rl.a"), 0);
    CHECK_EQ(may_register(&U21, "org.rl.a"), -EACCES);
    /* An error in the file: the old policy stays. */
    write_file(B->policy, "own org.rl.* 60021\nown\n");
    hup("policy not reloaded");
    CHECK(count_in_log("policy.conf:2:") >= 1); /* the line is named */
    CHECK_EQ(may_register(&U22, "org.rl.a"), 0);
    CHECK_EQ(may_register(&U21, "org.rl.a"), -EACCES);
    write_file(B->policy, "own org.rl.* 60021\nquota names x\n");
    hup("policy not reloaded");
    CHECK_EQ(may_register(&U21, "org.rl.a"), -EACCES);
    /* No file at all: the defaults (anyone may own anything). */
    CHECK(unlink(B->policy) == 0);
    hup("policy reloaded");
    CHECK_EQ(may_register(&U21, "org.rl.a"), 0);
    CHECK_EQ(may_register(&U22, "org.rl.a"), 0);
}

/* ------------------------------------------------------------------ SIGTERM */

static void test_sigterm(void)
{
    pid_t srv = start_server(&U21, "org.rb.last", NULL, SRV_SINK);
    ferry_watch *wt;
    CHECK_EQ(ferry_watch_open("*", &wt, 5 * SEC), 0);
    int raw = raw_dial(B);
    struct stat st;
    CHECK_EQ(stat(B->sock, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0666);
    CHECK_EQ(kill(B->pid, SIGTERM), 0);
    int status;
    CHECK_EQ(waitpid(B->pid, &status, 0), B->pid);
    B->pid = -1;
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(stat(B->sock, &st), -1);
    CHECK_EQ(errno, ENOENT);
    ferry_watch_event ev;
    CHECK_EQ(ferry_watch_next(wt, &ev, 5 * SEC), -EPIPE);
    ferry_watch_close(wt);
    expect_dropped(raw, 1000);
    close(raw);
    kill_wait(srv);
}

int main(void)
{
    require_root();
    test_deadline(90);
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    B = &b;
    broker_init(&b);
    write_file(b.policy, "own org.rl.* 60021\n");
    /* ferryd's stderr into a log, to see when a SIGHUP was handled. */
    snprintf(logpath, sizeof logpath, "%s/ferryd.log", b.dir);
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(log >= 0);
    int saved = dup(2);
    CHECK(saved >= 0);
    CHECK(dup2(log, 2) == 2);
    const char *extra[] = {"--idle-ms", "200", NULL};
    broker_run(&b, extra);
    CHECK(dup2(saved, 2) == 2);
    close(saved);
    close(log);
    int fds = fd_count();

    ferry_policy open;
    ferry_policy_init(&open);
    open.mode = 0666;
    pid_t echo = start_server(&ROOT, "org.rb.echo", &open, SRV_SERVE);
    test_idle(echo);
    test_garbage(echo);
    test_release_and_timeouts(echo);
    test_sighup();
    kill_wait(echo);
    test_sigterm();

    CHECK_EQ(fd_count(), fds);
    unlink(logpath);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
