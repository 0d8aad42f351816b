// SPDX-License-Identifier: MIT
/*
 * test_no_fds — FERRY_NO_FDS, the creating end's "I take no descriptors" in the channel
 * handshake (shm SETUP, the fd engine's HELLO): the other end's ferry_sendmsg with fds is
 * -EOPNOTSUPP, nothing is sent, and the channel goes on (the next plain message is the
 * first one the creator gets); the creator's own sends with fds still go. Without the
 * flag the same send carries its fd (the control). Forms: ferry_pair (shm), shm://
 * and unix:// listeners (a thread opens), and a name of a real ferryd (ferry_register
 * with the flag, ferry_connect with FERRY_KIND_SHM and FERRY_KIND_UNIX: what
 * ferry-bridge's proxies do). No fd leaks.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <ferry/ferry.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#define SEC ((int64_t)1000000000)

/* The joining end, in a thread: ferry_connect(url, kind) when by_name (url is then a
 * name of the broker), else ferry_chan_open(url). */
typedef struct {
    const char *url;
    int by_name;
    uint32_t kind;
    ferry_chan *ch;
    int rc;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    if (o->by_name)
        o->rc = ferry_connect(o->url, o->kind, NULL, &o->ch, 10 * SEC);
    else
        o->rc = ferry_chan_open(o->url, NULL, &o->ch, 10 * SEC);
    return NULL;
}

/* A message of type 7 carrying fd (or none: fd < 0). */
static int send_fd(ferry_chan *ch, int fd, const char *text)
{
    ferry_msg m = {.type = 7, .data = (void *)text, .len = strlen(text)};
    if (fd >= 0) {
        m.nfds = 1;
        m.fds[0] = fd;
    }
    return ferry_sendmsg(ch, &m, SEC);
}

/* creator made the channel (with FERRY_NO_FDS when no_fds), joiner joined it. */
static void check_ends(ferry_chan *creator, ferry_chan *joiner, int no_fds)
{
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    char buf[64];
    ferry_msg r = {.data = buf, .cap = sizeof buf};

    /* joiner -> creator, with an fd */
    int rc = send_fd(joiner, pfd[0], "with-fd");
    if (no_fds) {
        CHECK_EQ(rc, -EOPNOTSUPP);
        CHECK_EQ(ferry_recvmsg(creator, &r, 0, FERRY_NOW), -EAGAIN); /* nothing was sent */
    } else {
        CHECK_EQ(rc, 0);
        CHECK_EQ(ferry_recvmsg(creator, &r, 0, SEC), 7);
        CHECK_EQ(r.nfds, 1u);
        CHECK(memcmp(buf, "with-fd", 7) == 0);
        close(r.fds[0]);
    }
    /* the channel goes on: a plain message, the next the creator gets */
    CHECK_EQ(send_fd(joiner, -1, "plain"), 0);
    CHECK_EQ(ferry_recvmsg(creator, &r, 0, SEC), 5);
    CHECK_EQ(r.nfds, 0u);
    CHECK(memcmp(buf, "plain", 5) == 0);
    /* the creator's own sends with fds still go */
    CHECK_EQ(send_fd(creator, pfd[1], "back"), 0);
    CHECK_EQ(ferry_recvmsg(joiner, &r, 0, SEC), 4);
    CHECK_EQ(r.nfds, 1u);
    struct stat a, b;
    CHECK_EQ(fstat(r.fds[0], &a), 0);
    CHECK_EQ(fstat(pfd[1], &b), 0);
    CHECK(a.st_ino == b.st_ino);
    close(r.fds[0]);
    /* a loan (no fds) and a second refused send: still usable */
    if (no_fds) CHECK_EQ(send_fd(joiner, pfd[0], "again"), -EOPNOTSUPP);
    CHECK_EQ(ferry_send(joiner, "end", 3, SEC), 0);
    CHECK_EQ(ferry_recv(creator, buf, sizeof buf, SEC), 3);
    close(pfd[0]);
    close(pfd[1]);
}

static void by_pair(int no_fds)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    if (no_fds) o.flags |= FERRY_NO_FDS;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0); /* a made the shape, b adopted it */
    check_ends(a, b, no_fds);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

/* A listener on url (ferry_listen, the thread's ferry_chan_open) or, by_name, a name
 * registered with the broker (ferry_register, the thread's ferry_connect with kind), the
 * channel made with FERRY_NO_FDS when no_fds; the accepted end is the creator. */
static void by_listener(const char *url, int by_name, uint32_t kind, int no_fds)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    if (no_fds) o.flags |= FERRY_NO_FDS;
    ferry_listener *l;
    int rc = by_name ? ferry_register(url, NULL, &o, &l, 5 * SEC) : ferry_listen(url, &o, &l);
    CHECK_EQ(rc, 0);
    opener op = {.url = url, .by_name = by_name, .kind = kind};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, open_thread, &op), 0);
    ferry_chan *srv;
    CHECK_EQ(ferry_accept(l, &srv, 10 * SEC), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(op.rc, 0);
    check_ends(srv, op.ch, no_fds);
    ferry_chan_close(op.ch);
    ferry_chan_close(srv);
    ferry_listener_close(l);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/ferry-nofds-XXXXXX", shm[128], unx[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(shm, sizeof shm, "shm://%s/s", dir);
    snprintf(unx, sizeof unx, "unix://%s/u", dir);
    int fds = fd_count();
    for (int no_fds = 0; no_fds < 2; no_fds++) {
        by_pair(no_fds);
        by_listener(shm, 0, 0, no_fds);
        by_listener(unx, 0, 0, no_fds);
    }
    CHECK_EQ(fd_count(), fds);
    test_broker b;
    broker_start(&b);
    for (int no_fds = 0; no_fds < 2; no_fds++) {
        by_listener("org.test.nofds", 1, FERRY_KIND_SHM, no_fds);
        by_listener("org.test.nofds", 1, FERRY_KIND_UNIX, no_fds);
    }
    broker_stop(&b);
    CHECK_EQ(rmdir(dir), 0);
    printf("test_no_fds: ok\n");
    return 0;
}
