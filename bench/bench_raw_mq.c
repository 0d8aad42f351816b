// SPDX-License-Identifier: MIT
/*
 * bench_raw_mq.c — raw message-queue links for `ferry bench` (see bench_raw.h):
 *   posixmq  two POSIX queues (to-peer, from-peer), created by the driver before fork with
 *            a message size of exactly the row's payload and the system's default depth
 *            (fs.mqueue.msg_max), then unlinked at once: the descriptors, inherited across
 *            fork, keep them alive, and no name can be left in /dev/mqueue. A message may
 *            not exceed fs.mqueue.msgsize_max: larger rows are left out.
 *   sysvmq   one IPC_PRIVATE System V queue; the message type is the direction (1: to the
 *            peer, 2: from it). Removed (IPC_RMID) once the peer is reaped, on every path.
 *            A message may not exceed kernel.msgmax (nor the queue's kernel.msgmnb bytes).
 *            Blocking msgsnd/msgrcv: a hand-off pays a kernel wake-up.
 *   sysvmq-poll  the same queue, waited for the way ferry-sysvmq waits (System V queues
 *            have no timeout and no descriptor): IPC_NOWAIT, then up to 500 sched_yield()
 *            rounds, then sleeps from 50 us doubling to 1 ms (src/transport/sysvmq.c). The
 *            row ferry-sysvmq is compared with; raw sysvmq stays as information.
 * A queue has no end of file: the end of a stream is an empty message.
 * Every blocking call is bounded: EINTR under the guard, see bench_guard.c.
 */
#define _GNU_SOURCE /* msgsnd, msgrcv (XSI), sched_yield */
#include "bench_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#define MQ_DEFAULT_DEPTH 10 /* fs.mqueue.msg_max's default */

struct raw_link {
    /* posixmq */
    mqd_t q[2]; /* to-peer, from-peer */
    /* sysvmq */
    int id;           /* the queue, or -1 once removed */
    long mtype_out;   /* this process's sending direction, after side() */
    long mtype_in;    /* and its receiving one */
    struct mbuf *buf; /* a System V message: type then bytes */
    size_t cap;       /* payload room in buf */
    int side;         /* after side(): 0 driver, 1 peer */
    int poll;         /* sysvmq-poll: IPC_NOWAIT and ferry-sysvmq's backoff */
};

struct mbuf {
    long mtype;
    char mtext[];
};

/* Retry a queue call on EINTR until the guard says it waited too long. */
#define RETRY(expr)                                                                                \
    do {                                                                                           \
        int64_t since_ = 0;                                                                        \
        while ((expr) < 0) {                                                                       \
            if (errno != EINTR) return -errno;                                                     \
            if (bench_guard_expired(&since_)) return -ETIMEDOUT;                                   \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ posixmq */

size_t bench_raw_posixmq_limit(const char **limit_name)
{
    size_t v = raw_proc_size("/proc/sys/fs/mqueue/msgsize_max");
    *limit_name = "msgsize_max";
    return v ? v : 8192;
}

static void pmq_free(raw_link *l, int remove)
{
    (void)remove; /* unlinked when made */
    for (int i = 0; i < 2; i++)
        if (l->q[i] != (mqd_t)-1) mq_close(l->q[i]);
    free(l);
}

static raw_link *pmq_make(const bench_job *job, bench_result *res)
{
    static unsigned counter;
    raw_link *l = calloc(1, sizeof *l);
    size_t depth = raw_proc_size("/proc/sys/fs/mqueue/msg_max");
    struct mq_attr a = {.mq_maxmsg = (long)(depth ? depth : MQ_DEFAULT_DEPTH),
                        .mq_msgsize = (long)job->size};
    if (!l) {
        bench_fail(res, "out of memory");
        return NULL;
    }
    l->q[0] = l->q[1] = (mqd_t)-1;
    l->id = -1;
    unsigned n = counter++;
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "/ferry-bench-%ld-%u-%s", (long)getpid(), n,
                 i == 0 ? "to-peer" : "from-peer");
        l->q[i] = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
        if (l->q[i] == (mqd_t)-1) {
            bench_fail(res, "mq_open %s (depth %ld, %zu bytes): %s", name, a.mq_maxmsg, job->size,
                       strerror(errno));
            pmq_free(l, 1);
            return NULL;
        }
        mq_unlink(name); /* the descriptors keep it; no name to leave behind */
    }
    return l;
}

static int pmq_side(raw_link *l, int side)
{
    l->side = side; /* both sides use both queues: nothing to close */
    return 0;
}

static int pmq_send(raw_link *l, const void *p, size_t n)
{
    RETRY(mq_send(l->q[l->side == 0 ? 0 : 1], p, n, 0));
    return 0;
}

static ssize_t pmq_recv(raw_link *l, void *p, size_t cap)
{
    ssize_t k;
    RETRY(k = mq_receive(l->q[l->side == 0 ? 1 : 0], p, cap, NULL));
    return k; /* 0: the empty message that ends a stream */
}

static void pmq_end(raw_link *l)
{
    pmq_send(l, "", 0);
}

const raw_ops BENCH_RAW_POSIXMQ = {pmq_make, pmq_side, pmq_send, pmq_recv, pmq_end, pmq_free};

/* ------------------------------------------------------------------ sysvmq */

size_t bench_raw_sysvmq_limit(const char **limit_name)
{
    size_t max = raw_proc_size("/proc/sys/kernel/msgmax");
    size_t mnb = raw_proc_size("/proc/sys/kernel/msgmnb");
    if (!max) max = 8192;
    if (mnb && mnb < max) {
        *limit_name = "msgmnb";
        return mnb;
    }
    *limit_name = "msgmax";
    return max;
}

static void smq_free(raw_link *l, int remove)
{
    if (remove && l->id >= 0) msgctl(l->id, IPC_RMID, NULL);
    free(l->buf);
    free(l);
}

static raw_link *smq_make(const bench_job *job, bench_result *res)
{
    raw_link *l = calloc(1, sizeof *l);
    if (!l || !(l->buf = malloc(sizeof(struct mbuf) + job->size))) {
        free(l);
        bench_fail(res, "out of memory");
        return NULL;
    }
    l->q[0] = l->q[1] = (mqd_t)-1;
    l->cap = job->size;
    if ((l->id = msgget(IPC_PRIVATE, IPC_CREAT | 0600)) < 0) {
        bench_fail(res, "msgget: %s", strerror(errno));
        smq_free(l, 0);
        return NULL;
    }
    return l;
}

static int smq_side(raw_link *l, int side)
{
    l->side = side;
    l->mtype_out = side == 0 ? 1 : 2;
    l->mtype_in = side == 0 ? 2 : 1;
    return 0;
}

/* sysvmq-poll: one step of ferry-sysvmq's wait (src/transport/sysvmq.c, backoff):
 * *step < 0 counts the sched_yield() rounds up to 0, then sleeps from 50 us doubling to
 * 1 ms. */
static void smq_backoff(int64_t *step)
{
    if (*step < 0) {
        sched_yield();
        if (++*step == 0) *step = 50000;
        return;
    }
    struct timespec ts = {0, (long)*step};
    nanosleep(&ts, NULL);
    *step = *step * 2 > 1000000 ? 1000000 : *step * 2;
}

static int smq_send(raw_link *l, const void *p, size_t n)
{
    if (n > l->cap) return -EMSGSIZE;
    l->buf->mtype = l->mtype_out;
    memcpy(l->buf->mtext, p, n); /* System V wants the type in front of the bytes */
    if (!l->poll) {
        RETRY(msgsnd(l->id, l->buf, n, 0));
        return 0;
    }
    int64_t since = 0, step = -500;
    while (msgsnd(l->id, l->buf, n, IPC_NOWAIT) != 0) {
        if (errno != EAGAIN && errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
        smq_backoff(&step);
    }
    return 0;
}

static ssize_t smq_recv(raw_link *l, void *p, size_t cap)
{
    ssize_t k;
    if (cap > l->cap) cap = l->cap;
    int64_t since = 0, step = -500;
    while ((k = msgrcv(l->id, l->buf, cap, l->mtype_in, l->poll ? IPC_NOWAIT : 0)) < 0) {
        if (errno == E2BIG) return -EMSGSIZE;
        if (errno != EINTR && !(l->poll && errno == ENOMSG)) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
        if (l->poll && errno == ENOMSG) smq_backoff(&step);
    }
    memcpy(p, l->buf->mtext, (size_t)k);
    return k; /* 0: the empty message that ends a stream */
}

static void smq_end(raw_link *l)
{
    smq_send(l, "", 0);
}

const raw_ops BENCH_RAW_SYSVMQ = {smq_make, smq_side, smq_send, smq_recv, smq_end, smq_free};

static raw_link *smq_make_poll(const bench_job *job, bench_result *res)
{
    raw_link *l = smq_make(job, res);
    if (l) l->poll = 1;
    return l;
}

const raw_ops BENCH_RAW_SYSVMQ_POLL = {smq_make_poll, smq_side, smq_send,
                                       smq_recv,      smq_end,  smq_free};
