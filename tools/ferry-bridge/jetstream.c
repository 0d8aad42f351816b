// SPDX-License-Identifier: MIT
/*
 * jetstream.c — ferry-bridge's at-least-once mailboxes on NATS JetStream (jetstream.h;
 * docs/cluster.md, "Mailboxes through JetStream").
 *
 * Rules:
 *  - One stream per exporting bridge: ferry_<cluster>_<user>, subjects
 *    ferry.<cluster>.mq.<user>.>, file storage, work-queue retention, discard new (a full
 *    stream refuses new messages: the senders wait, nothing stored is evicted), bounded by
 *    max_bytes, max_msgs and max_msg per message. A message for mailbox N of exporter E
 *    from user S is published on ferry.<cluster>.mq.E.S.N: S is the token the NATS
 *    servers' publish permissions tie to the authenticated user (ferry.<cluster>.mq.*.S.>).
 *  - Exporter: one thread per exported mailbox, a durable pull consumer (m<hash of N>,
 *    filter ferry.<cluster>.mq.E.*.N, explicit acks), made with js_AddConsumer and pulled
 *    by our own code, not libnats's fetch (3.4.1's _fetch writes past its 64-entry array
 *    when messages of expired requests come late: heap corruption): a sync subscription
 *    on an inbox under the bridge's inbox prefix, pull requests ({"batch":64,"expires":..})
 *    published to $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>, and every message that
 *    comes taken, late or not, up to JS_HELD at a time. A message is a delivery only if
 *    its reply subject is $JS.ACK.<our stream>.<our durable>. and 5 bounded decimals
 *    and its subject under our prefix (else dropped and counted, never answered); one
 *    with a Status header ends a request (404, 408, 409) or is ignored (100).
 *    Acknowledgements are published to that reply subject by hand ("+ACK", "+WPI",
 *    "-NAK {"delay": ns}", "+TERM": libnats's natsMsg_Ack & co. only take messages of
 *    its JetStream subscriptions). Each delivery is checked
 *    (subject token by token, the sender against the export policy, Ferry-Type a bounded
 *    decimal, the payload at most max_msg: else terminated, never delivered), put into the
 *    local mailbox with ferry_mailbox_send and acknowledged only after it succeeded. A full
 *    mailbox: the thread waits (telling the stream "in progress"), a missing one: the
 *    messages are given back with a delay. So a message is delivered at least once: a
 *    bridge killed between the send and the acknowledgement leaves it to be delivered
 *    again by its successor.
 *  - Importer: one thread per imported JetStream mailbox takes what local senders put in
 *    the bridge's proxy mailbox (FERRY_MAILBOX_AT_LEAST_ONCE) and publishes it
 *    asynchronously, up to JS_WIN messages in flight, each with Nats-Msg-Id <secret>-<n>
 *    (secret: 128 random bits of this bridge's incarnation, never published, so nobody
 *    else can make the stream drop ours as duplicates). A message whose acknowledgement
 *    does not come in JS_PUB_WAIT_MS, or that the stream refused for now (full, no stream,
 *    NATS away), is published again with the same id (the stream stores it once within its
 *    10 min duplicate window). A message is only peeked from the mailbox, never taken: it
 *    is released (finished with) when the stream acknowledged it. One peek per handle, so
 *    each slot of the window has a handle of its own (a duplicate of the mailbox's
 *    descriptor, adopted: its own mapping and 2 descriptors). A bridge that dies with
 *    messages in flight leaves them peeked by a dead process: the mailbox puts them back
 *    once a receiver (its successor: the name is kept, FERRY_POLICY_KEEP) notices, and
 *    they are published again under new ids (stored twice if the first publish was
 *    stored: the documented duplicate).
 *  - Everything from NATS is hostile: subjects are matched against the prefix this bridge
 *    built and the rest validated; headers are read through cnats's parser and compared or
 *    parsed as bounded decimals only.
 *  - Threads share only: the configuration (immutable), the export table (mu), counters
 *    (atomics, relaxed: statistics only) and the stop and done flags (atomics, seq_cst).
 *  - When the bridge's loop reads the connection itself (conf.pump), a stop or close that
 *    waits for a thread pumps the connection meanwhile: the replies and acknowledgements
 *    the thread waits for come in only that way (join_pumping).
 */
#define _POSIX_C_SOURCE 200809L
#include "jetstream.h"
#include "bridge.h"

#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define JS_MAX_EXPORTS 256
#define JS_WIN         32             /* importer: publishes in flight (one mailbox handle each) */
#define JS_BATCH       64             /* exporter: messages per pull request */
#define JS_HELD        (2 * JS_BATCH) /* exporter: messages taken at once (= MaxAckPending) */
#define JS_ACK_WAIT_MS 5000           /* exporter: unacknowledged for this long: delivered again */
#define JS_FETCH_MS    500            /* exporter: a pull request expires after this */
#define JS_PUB_WAIT_MS 2000 /* importer: no acknowledgement in this time: published again */
#define JS_STOP_MS     2000 /* importer: how long a stop waits for publishes in flight */
#define JS_DUP_WINDOW  ((int64_t)600 * 1000000000) /* the stream's duplicate window */
#define SUBJ_LEN       600
#define MS             ((int64_t)1000000)

typedef struct exp_t {
    ferry__js *js;
    char name[256];
    pthread_t th;
    atomic_int done; /* seq_cst: set by the thread as it ends (join_pumping) */
    atomic_uint gen; /* bumped by ferry__js_reopen: the thread reopens its mailbox */
} exp_t;

struct ferry__js {
    ferry__js_conf conf;
    char stream[160];     /* ferry_<cluster>_<user> */
    char subjects[160];   /* ferry.<cluster>.mq.<user>.> */
    char prefix[160];     /* ferry.<cluster>.mq.<user>. */
    char secret[33];      /* Nats-Msg-Id prefix */
    atomic_int stop;      /* seq_cst: every thread ends its loop once it sees it */
    _Atomic uint64_t ctr; /* relaxed: only uniqueness matters (one fetch_add per message) */
    pthread_mutex_t mu;   /* stream_ok, stream_err, exps, nexp, imps (and each import's
                             acknowledgements are handled holding it: see on_puback) */
    int stream_ok;
    int stream_err; /* the last failure logged (status << 16 | JetStream code): once each */
    exp_t *exps[JS_MAX_EXPORTS];
    int nexp;
    struct ferry__js_imp *imps; /* the running imports (their ack handler's lookup) */
    /* counters: relaxed atomics, statistics only (no other memory is published by them) */
    _Atomic uint64_t delivered, redelivered, refused, published, duplicates, resent, lost;
};

/* Handles left open and peeked by ferry__js_import_stop(keep): the process exits with
 * them (their peeks come back to the next bridge); listed so that they stay reachable
 * (a leak checker at exit sees them held, not lost). */
typedef struct kept_h {
    struct kept_h *next;
    ferry_mailbox *h;
} kept_h;
static kept_h *kept_list;
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed); /* a statistic: no ordering */
}

/* A line of the bridge's log (bridge.h), tagged: every call passes a literal format. */
#define js_log(...) ferry__bridge_logf("jetstream: " __VA_ARGS__)

/* Join th, which sets *done as it ends; until then the connection is pumped when the
 * caller is the one who reads it (conf.pump: the thread may wait for a reply). */
static void join_pumping(ferry__js *js, pthread_t th, atomic_int *done)
{
    while (js->conf.pump && !atomic_load(done)) /* seq_cst: pairs with the thread's store */
        js->conf.pump(js->conf.pump_ctx);
    pthread_join(th, NULL);
}

static int stopping(ferry__js *js)
{
    return atomic_load(&js->stop); /* seq_cst: pairs with the store in ferry__js_close */
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* A header holding a bounded decimal (1..18 digits, no sign: no overflow), else -1. */
static int64_t hdr_num(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) return -1;
    size_t n = strnlen(v, 19);
    if (n < 1 || n > 18 || strspn(v, "0123456789") != n) return -1;
    return (int64_t)strtoll(v, NULL, 10);
}

int ferry__js_open(const ferry__js_conf *conf, ferry__js **out)
{
    ferry__js *js = calloc(1, sizeof *js);
    if (!js) return -ENOMEM;
    js->conf = *conf;
    snprintf(js->stream, sizeof js->stream, "ferry_%s_%s", conf->cluster, conf->user);
    snprintf(js->subjects, sizeof js->subjects, "ferry.%s.mq.%s.>", conf->cluster, conf->user);
    snprintf(js->prefix, sizeof js->prefix, "ferry.%s.mq.%s.", conf->cluster, conf->user);
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        free(js);
        return -EIO;
    }
    for (int i = 0; i < 16; i++) snprintf(js->secret + 2 * i, 3, "%02x", r[i]);
    pthread_mutex_init(&js->mu, NULL);
    *out = js;
    return 0;
}

/* ------------------------------------------------------------------ exporter */

/* Make sure our stream exists (once per bridge; another thread may have done it). The
 * stream of that name must have our subject and work-queue retention, else it is not
 * ours and nothing is consumed from it. */
static int stream_ensure(ferry__js *js, jsCtx *ctx)
{
    pthread_mutex_lock(&js->mu);
    int ok = js->stream_ok;
    pthread_mutex_unlock(&js->mu);
    if (ok) return 0;
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetStreamInfo(&si, ctx, js->stream, NULL, &je);
    if (s == NATS_NOT_FOUND) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subj = js->subjects;
        sc.Name = js->stream;
        sc.Description = "ferry-bridge: mailboxes exported through JetStream";
        sc.Subjects = &subj;
        sc.SubjectsLen = 1;
        sc.Retention = js_WorkQueuePolicy;
        sc.Storage = js_FileStorage;
        sc.Discard = js_DiscardNew;
        sc.MaxBytes = js->conf.max_bytes;
        sc.MaxMsgs = js->conf.max_msgs;
        sc.MaxMsgSize = (int32_t)(js->conf.max_msg + 4096); /* payload and our headers */
        sc.Duplicates = JS_DUP_WINDOW;
        sc.Replicas = js->conf.replicas;
        s = js_AddStream(&si, ctx, &sc, NULL, &je);
        if (s == NATS_OK) js_log("stream %s made (%s)", js->stream, js->subjects);
    }
    int rc = -EAGAIN;
    if (s != NATS_OK) {
        pthread_mutex_lock(&js->mu);
        int again = js->stream_err == ((int)s << 16 | (int)je);
        js->stream_err = (int)s << 16 | (int)je;
        pthread_mutex_unlock(&js->mu);
        if (!again) /* NATS away, no JetStream there: logged once, tried every 500 ms */
            js_log("stream %s: %s (%d)", js->stream, natsStatus_GetText(s), (int)je);
    } else if (!si || !si->Config || si->Config->SubjectsLen != 1 || !si->Config->Subjects ||
               strcmp(si->Config->Subjects[0], js->subjects) != 0 ||
               si->Config->Retention != js_WorkQueuePolicy) {
        js_log("stream %s exists with another configuration: not used", js->stream);
    } else {
        rc = 0;
        pthread_mutex_lock(&js->mu);
        js->stream_ok = 1;
        pthread_mutex_unlock(&js->mu);
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* The durable pull consumer of e's mailbox (made if missing), checked to be ours: no
 * subscription is bound to it (exp_run pulls through its own inbox). 0, or -EAGAIN; a
 * failure is logged unless *quiet (set then; cleared on success): once per outage. */
static int consumer_open(exp_t *e, jsCtx *ctx, const char *filter, const char *durable, int *quiet)
{
    ferry__js *js = e->js;
    jsConsumerInfo *ci = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetConsumerInfo(&ci, ctx, js->stream, durable, NULL, &je);
    if (s == NATS_NOT_FOUND) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = durable;
        cc.Description = e->name;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = JS_ACK_WAIT_MS * MS;
        cc.MaxDeliver = -1;
        cc.MaxAckPending = 2 * JS_BATCH;
        cc.DeliverPolicy = js_DeliverAll;
        cc.FilterSubject = filter;
        s = js_AddConsumer(&ci, ctx, js->stream, &cc, NULL, &je);
    }
    if (s != NATS_OK || !ci || !ci->Config || !ci->Config->FilterSubject ||
        strcmp(ci->Config->FilterSubject, filter) != 0) { /* a hash collision: not ours */
        if (!*quiet)
            js_log("consumer %s of %s: %s (%d)", durable, e->name,
                   s != NATS_OK ? natsStatus_GetText(s) : "another mailbox's (not used)", (int)je);
        *quiet = 1;
        jsConsumerInfo_Destroy(ci);
        return -EAGAIN;
    }
    jsConsumerInfo_Destroy(ci);
    *quiet = 0;
    return 0;
}

/* The sender token of a message of e's mailbox (subject prefix + sender + '.' + name),
 * validated, into caller; -1 if the subject is not that. */
static int msg_sender(exp_t *e, natsMsg *m, char *caller)
{
    const char *subj = natsMsg_GetSubject(m);
    size_t np = strlen(e->js->prefix);
    if (!subj || strncmp(subj, e->js->prefix, np) != 0) return -1;
    const char *s = subj + np, *dot = strchr(s, '.');
    if (!dot || !ferry__bridge_id_valid(s, (size_t)(dot - s)) || strcmp(dot + 1, e->name) != 0)
        return -1;
    memcpy(caller, s, (size_t)(dot - s));
    caller[dot - s] = 0;
    return 0;
}

/* A message pulled for e's consumer carries the reply subject the stream acknowledges
 * on: ackpre ($JS.ACK.<our stream>.<our durable>.) and then exactly 5 bounded decimals
 * (delivered, stream seq, consumer seq, timestamp, pending). Returns how often the stream
 * has delivered it (>= 1), or -1: not a delivery of ours (dropped, never answered). */
static int64_t msg_delivered(natsMsg *m, const char *ackpre)
{
    const char *r = natsMsg_GetReply(m);
    size_t np = strlen(ackpre);
    if (!r || strncmp(r, ackpre, np) != 0) return -1;
    int64_t first = -1;
    const char *p = r + np;
    for (int t = 0; t < 5; t++) {
        size_t n = strspn(p, "0123456789");
        if (n < 1 || n > 19 || (p[n] != (t < 4 ? '.' : '\0'))) return -1;
        if (t == 0) {
            if (n > 18) return -1;
            first = (int64_t)strtoll(p, NULL, 10);
        }
        p += n + (t < 4);
    }
    return first >= 1 ? first : -1;
}

/* Answer the stream about m (its reply subject, checked by msg_delivered): "+ACK",
 * "+WPI" (in progress), "+TERM", or "-NAK {...}". Published without waiting (a lost one
 * means a redelivery, or a longer wait). libnats's natsMsg_Ack & co. only take messages of
 * its JetStream subscriptions. */
static void msg_answer(exp_t *e, natsMsg *m, const char *body)
{
    natsConnection_PublishString(e->js->conf.nc, natsMsg_GetReply(m), body);
}

/* Deliver one pulled message into the local mailbox (opened on demand) and acknowledge
 * it. Returns 0 (done: delivered, or terminated as refused), -EAGAIN (not delivered
 * now: the caller gives it and the rest back), -ECANCELED (stopping). rest: the messages
 * held after it, told "in progress" with it while the mailbox is full. */
static int deliver(exp_t *e, natsMsg *m, int64_t ndel, ferry_mailbox **mb, unsigned *mbgen,
                   natsMsg **rest, int nrest)
{
    ferry__js *js = e->js;
    char caller[64];
    int64_t type = hdr_num(m, "Ferry-Type");
    int len = natsMsg_GetDataLength(m);
    if (msg_sender(e, m, caller) < 0 || type < 0 || len < 0 || (size_t)len > js->conf.max_msg ||
        !js->conf.allow(js->conf.allow_ctx, e->name, caller)) {
        count(&js->refused, 1);
        msg_answer(e, m, "+TERM"); /* never delivered, never again */
        return 0;
    }
    /* acquire: pairs with the release increment in ferry__js_reopen (a new mailbox) */
    unsigned gen = atomic_load_explicit(&e->gen, memory_order_acquire);
    if (*mb && gen != *mbgen) {
        ferry_mailbox_close(*mb);
        *mb = NULL;
    }
    if (!*mb) {
        int rc = ferry_mailbox_open(e->name, mb, 500 * MS);
        if (rc < 0) {
            *mb = NULL;
            return -EAGAIN;
        }
        *mbgen = gen;
    }
    int64_t progress = ferry__now_ns();
    for (;;) {
        int rc = ferry_mailbox_send(*mb, type, natsMsg_GetData(m), (size_t)len, 200 * MS);
        if (rc == 0) break;
        if (rc == -EMSGSIZE) { /* larger than that mailbox takes */
            count(&js->refused, 1);
            js_log("mailbox %s: a message of %d bytes is too large (dropped)", e->name, len);
            msg_answer(e, m, "+TERM");
            return 0;
        }
        if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -ENOBUFS) {
            ferry_mailbox_close(*mb);
            *mb = NULL;
            return -EAGAIN;
        }
        if (stopping(js)) return -ECANCELED;
        if (ferry__now_ns() - progress > JS_ACK_WAIT_MS * MS / 3) { /* full for long */
            msg_answer(e, m, "+WPI");
            for (int i = 0; i < nrest; i++) msg_answer(e, rest[i], "+WPI");
            progress = ferry__now_ns();
        }
    }
    if (ndel > 1) count(&js->redelivered, 1);
    count(&js->delivered, 1);
    msg_answer(e, m, "+ACK"); /* after the send: a lost acknowledgement means a redelivery */
    return 0;
}

/* The status of a message from the stream's server on our inbox ("404", "408", "409",
 * "100", "503"...: 3 digits), into st; 0 if it has none (a delivery, to be checked). */
static int msg_status(natsMsg *m, char st[4])
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, "Status", &v) != NATS_OK || !v) return 0;
    if (strnlen(v, 4) < 3) return -1;
    memcpy(st, v, 3);
    st[3] = 0;
    return 1;
}

static void exp_run(exp_t *e);

static void *exp_main(void *arg)
{
    exp_t *e = arg;
    exp_run(e);
    atomic_store(&e->done, 1); /* seq_cst: pairs with the load in join_pumping */
    return NULL;
}

/* The exporter's pull, done here rather than with libnats's fetch (whose 3.4.1 _fetch
 * overruns its array when messages of expired requests arrive late): one sync
 * subscription on an inbox under the bridge's inbox prefix; one pull request of JS_BATCH
 * at a time, expiring after JS_FETCH_MS on the server, published again as soon as it is
 * used up (JS_BATCH messages came), ended (404/408/409) or lost (no end in time). Every
 * message that comes is taken, up to JS_HELD at once, whichever request it answers:
 * a late one of an expired request is a delivery like any other. */
static void exp_run(exp_t *e)
{
    ferry__js *js = e->js;
    char filter[SUBJ_LEN], durable[24], inbox[SUBJ_LEN], next[SUBJ_LEN], ackpre[SUBJ_LEN];
    char req[64];
    snprintf(filter, sizeof filter, "%s*.%s", js->prefix, e->name);
    snprintf(durable, sizeof durable, "m%016" PRIx64, hash_name(e->name));
    snprintf(next, sizeof next, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", js->stream, durable);
    snprintf(ackpre, sizeof ackpre, "$JS.ACK.%s.%s.", js->stream, durable);
    snprintf(inbox, sizeof inbox, "ferry.%s.reply.%s.js.%s.%016" PRIx64, js->conf.cluster,
             js->conf.user, durable,
             atomic_fetch_add_explicit(&js->ctr, 1, memory_order_relaxed) ^
                 hash_name(js->secret)); /* unique per thread and incarnation */
    snprintf(req, sizeof req, "{\"batch\":%d,\"expires\":%" PRId64 "}", JS_BATCH,
             (JS_FETCH_MS - 10) * MS);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    jsCtx *ctx = NULL;
    natsSubscription *sub = NULL;
    ferry_mailbox *mb = NULL;
    natsMsg *held[JS_HELD];
    int64_t ndel[JS_HELD];
    unsigned mbgen = 0;
    int errors = 0, quiet = 0, ready = 0, open = 0, left = 0;
    int64_t deadline = 0;
    if (natsConnection_JetStream(&ctx, js->conf.nc, &jo) != NATS_OK) {
        js_log("mailbox %s: no JetStream context", e->name);
        return;
    }
    while (!stopping(js)) {
        if (!ready &&
            (stream_ensure(js, ctx) < 0 || consumer_open(e, ctx, filter, durable, &quiet) < 0)) {
            nap_ms(500);
            continue;
        }
        ready = 1;
        if (!sub) {
            if (natsConnection_SubscribeSync(&sub, js->conf.nc, inbox) != NATS_OK) {
                sub = NULL;
                nap_ms(500);
                continue;
            }
            /* what may wait in it: JS_HELD deliveries (the consumer's 128 unacknowledged)
             * and statuses; beyond that cnats drops (they come again after the ack wait) */
            int64_t bytes = 4 * JS_HELD * ((int64_t)js->conf.max_msg + 4096);
            natsSubscription_SetPendingLimits(sub, 4 * JS_HELD,
                                              (int)(bytes < (256 << 20) ? bytes : (256 << 20)));
            open = 0;
        }
        int64_t now = ferry__now_ns();
        if (open && now > deadline) { /* no end came: NATS away, or the consumer gone */
            open = 0;
            if (++errors >= 10) {
                js_log("mailbox %s: pull requests unanswered: checking the consumer", e->name);
                ready = errors = 0;
                continue;
            }
        }
        if (!open &&
            natsConnection_PublishRequestString(js->conf.nc, next, inbox, req) == NATS_OK) {
            open = 1;
            left = JS_BATCH;
            deadline = now + (JS_FETCH_MS + 1000) * MS; /* the server's 408 may be late */
        }
        /* take what came: wait up to 100 ms for the first, the rest as they are there */
        int nheld = 0, failed = 0;
        while (nheld < JS_HELD) {
            natsMsg *m = NULL;
            natsStatus s = natsSubscription_NextMsg(&m, sub, nheld ? 0 : 100);
            if (s == NATS_NO_RESPONDERS) { /* no JetStream there: the request ended */
                open = 0;
                failed = 1;
                break;
            }
            if (s != NATS_OK) {
                if (s != NATS_TIMEOUT) failed = 1; /* the connection closed */
                break;
            }
            char st[4];
            int sts = msg_status(m, st);
            if (sts != 0) { /* the end of a request (perhaps an older one), or a heartbeat */
                if (sts > 0 && (strcmp(st, "404") == 0 || strcmp(st, "408") == 0)) {
                    open = 0;
                    errors = 0;
                } else if (sts > 0 && strcmp(st, "100") == 0) {
                    /* idle heartbeat: we ask for none, nothing to do */
                } else { /* 409 (consumer deleted, too many waiting...) or unknown */
                    const char *d = NULL;
                    natsMsgHeader_Get(m, "Description", &d);
                    if (d && strstr(d, "Deleted")) ready = 0; /* made again */
                    open = 0;
                    failed = 1;
                }
                natsMsg_Destroy(m);
                continue;
            }
            /* a delivery comes with the stream's subject (ours: under prefix); a message
             * published to our inbox by anyone else comes with the inbox's: never answered
             * (a "+TERM" to a reply subject it chose could end one of our real messages) */
            int64_t nd = msg_delivered(m, ackpre);
            const char *subj = natsMsg_GetSubject(m);
            if (nd < 0 || !subj || strncmp(subj, js->prefix, strlen(js->prefix)) != 0) {
                count(&js->refused, 1);
                natsMsg_Destroy(m);
                continue;
            }
            held[nheld] = m;
            ndel[nheld++] = nd;
            if (open && --left == 0) { /* used up: the next request goes out now */
                open = 0;
                if (natsConnection_PublishRequestString(js->conf.nc, next, inbox, req) == NATS_OK) {
                    open = 1;
                    left = JS_BATCH;
                    deadline = ferry__now_ns() + (JS_FETCH_MS + 1000) * MS;
                }
            }
        }
        if (nheld > 0) errors = 0;
        int i = 0;
        for (; i < nheld; i++) {
            int rc = deliver(e, held[i], ndel[i], &mb, &mbgen, held + i + 1, nheld - i - 1);
            if (rc == -ECANCELED) break; /* unacknowledged: the stream delivers them again */
            if (rc == -EAGAIN) {         /* no mailbox here now: given back, and a pause */
                for (; i < nheld; i++) {
                    msg_answer(e, held[i], "-NAK {\"delay\": 1000000000}");
                    natsMsg_Destroy(held[i]);
                }
                nap_ms(200);
                break;
            }
            natsMsg_Destroy(held[i]);
        }
        for (; i < nheld; i++) natsMsg_Destroy(held[i]);
        if (failed) {
            if (++errors >= 10) {
                js_log("mailbox %s: pull failing: checking the consumer", e->name);
                ready = errors = 0;
            }
            nap_ms(200);
        }
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub); /* what waits in it comes again after the ack wait */
        natsSubscription_Destroy(sub);
    }
    if (mb) ferry_mailbox_close(mb);
    jsCtx_Destroy(ctx);
}

int ferry__js_export(ferry__js *js, const char *name)
{
    pthread_mutex_lock(&js->mu);
    for (int i = 0; i < js->nexp; i++)
        if (strcmp(js->exps[i]->name, name) == 0) {
            pthread_mutex_unlock(&js->mu);
            return 0;
        }
    int rc = 0;
    exp_t *e = NULL;
    if (js->nexp >= JS_MAX_EXPORTS)
        rc = -ENOSPC;
    else if (strlen(name) >= sizeof e->name || !(e = calloc(1, sizeof *e)))
        rc = -ENOMEM;
    if (rc == 0) {
        e->js = js;
        snprintf(e->name, sizeof e->name, "%s", name);
        if (pthread_create(&e->th, NULL, exp_main, e) != 0) {
            free(e);
            rc = -ENOMEM;
        } else {
            js->exps[js->nexp++] = e;
        }
    }
    pthread_mutex_unlock(&js->mu);
    if (rc < 0) js_log("mailbox %s: not consumed: %s", name, strerror(-rc));
    return rc;
}

void ferry__js_reopen(ferry__js *js, const char *name)
{
    pthread_mutex_lock(&js->mu);
    for (int i = 0; i < js->nexp; i++)
        if (strcmp(js->exps[i]->name, name) == 0)
            /* release: pairs with the acquire load in deliver */
            atomic_fetch_add_explicit(&js->exps[i]->gen, 1, memory_order_release);
    pthread_mutex_unlock(&js->mu);
}

/* ------------------------------------------------------------------ importer */

enum { S_FREE, S_FLIGHT, S_FAILED };

typedef struct slot {
    ferry_mailbox *h; /* its own handle of the mailbox: peeked while the slot is busy */
    int state;
    uint64_t n; /* its number (the Nats-Msg-Id's tail) */
    natsMsg *m; /* S_FAILED: the message to publish again */
    int64_t retry_at;
} slot;

struct ferry__js_imp {
    ferry__js *js;
    ferry_mailbox *mb;
    char subj[SUBJ_LEN];
    char name[256];
    char stream[160];    /* the exporter's stream: every acknowledgement must name it */
    atomic_int captured; /* seq_cst: another stream took our messages: the import stops */
    pthread_t th;
    atomic_int stop; /* seq_cst: set by ferry__js_import_stop, read by the thread */
    atomic_int done; /* seq_cst: set by the thread as it ends (join_pumping) */
    jsCtx *ctx;
    pthread_mutex_t mu; /* slots, inflight (the ack handler runs on a cnats thread) */
    pthread_cond_t cv;
    slot slots[JS_WIN];
    int inflight; /* slots not free */
    int nfailed;  /* slots S_FAILED */
    int any;      /* a publish was made: the thread's own (read by import_stop after the join) */
    struct ferry__js_imp *next; /* js->imps */
};

/* cnats's thread: the stream's answer to a publish (or its absence after MaxWait). */
static void puback(ferry__js_imp *imp, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae);

/* The handler's closure is the bridge's js, not the import: cnats may call it for a
 * publish it already handed back (ferry__js_import_stop), and the import must then be
 * gone from js->imps, where it is looked up by the message's subject under js->mu. */
static void on_puback(jsCtx *ctx, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)ctx;
    ferry__js *js = closure;
    const char *subj = natsMsg_GetSubject(m);
    pthread_mutex_lock(&js->mu);
    ferry__js_imp *imp = js->imps;
    while (imp && (!subj || strcmp(imp->subj, subj) != 0)) imp = imp->next;
    if (imp)
        puback(imp, m, pa, pae);
    else
        natsMsg_Destroy(m);
    pthread_mutex_unlock(&js->mu);
}

static void puback(ferry__js_imp *imp, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae)
{
    const char *id = NULL;
    uint64_t n = 0;
    /* our own message: the id is ours (<secret>-<n>) */
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id && strlen(id) > 33)
        n = strtoull(id + 33, NULL, 10);
    pthread_mutex_lock(&imp->mu);
    slot *s = NULL;
    for (int i = 0; i < JS_WIN && n && !s; i++)
        if (imp->slots[i].state == S_FLIGHT && imp->slots[i].n == n) s = &imp->slots[i];
    if (!s) { /* not in flight (cannot happen: cnats answers each publish once) */
        pthread_mutex_unlock(&imp->mu);
        natsMsg_Destroy(m);
        return;
    }
    if (pa && !pae && (!pa->Stream || strcmp(pa->Stream, imp->stream) != 0)) {
        /* stored, but in a stream that is not the exporter's (another member made one on
         * its subjects first): nothing more is sent into it (docs/cluster.md) */
        if (!atomic_exchange(&imp->captured, 1)) /* seq_cst: the thread stops taking */
            js_log("mailbox %s: stored in stream %.64s, not %s: the import stops", imp->name,
                   pa->Stream ? pa->Stream : "?", imp->stream);
        ferry_mailbox_release(s->h);
        s->state = S_FREE;
        imp->inflight--;
        count(&imp->js->lost, 1);
        natsMsg_Destroy(m);
    } else if (pa && !pae) {
        /* stored: now it may leave the mailbox (a crash before this returns it) */
        ferry_mailbox_release(s->h);
        s->state = S_FREE;
        imp->inflight--;
        count(&imp->js->published, 1);
        if (pa->Duplicate) count(&imp->js->duplicates, 1);
        natsMsg_Destroy(m);
    } else {
        int64_t wait = 100; /* NATS away, the stream full: again soon */
        if (pae && pae->ErrCode == JSStreamMessageExceedsMaximumErr) {
            /* too large for that stream: it never will be taken */
            ferry_mailbox_release(s->h);
            s->state = S_FREE;
            imp->inflight--;
            count(&imp->js->lost, 1);
            js_log("mailbox %s: a message too large for the stream (lost)", imp->name);
            natsMsg_Destroy(m);
        } else {
            if (pae && pae->Err == NATS_TIMEOUT) wait = 0;         /* 2 s went by already */
            if (pae && pae->Err == NATS_NO_RESPONDERS) wait = 500; /* no stream (yet) */
            s->state = S_FAILED;
            imp->nfailed++;
            s->m = m; /* ours again: published again by the thread */
            s->retry_at = ferry__now_ns() + wait * MS;
        }
    }
    pthread_cond_signal(&imp->cv);
    pthread_mutex_unlock(&imp->mu);
}

/* Publish (again) slot s's message (s->m, owned by the caller until cnats takes it). */
static void imp_publish(ferry__js_imp *imp, slot *s, natsMsg *m)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = JS_PUB_WAIT_MS;
    pthread_mutex_lock(&imp->mu);
    if (s->state == S_FAILED) imp->nfailed--;
    s->state = S_FLIGHT;
    s->m = NULL;
    pthread_mutex_unlock(&imp->mu);
    natsStatus st = js_PublishMsgAsync(imp->ctx, &m, &po); /* takes m on success */
    if (st == NATS_OK) imp->any = 1;
    if (st != NATS_OK) {
        pthread_mutex_lock(&imp->mu);
        s->state = S_FAILED;
        imp->nfailed++;
        s->m = m;
        s->retry_at = ferry__now_ns() + 200 * MS;
        pthread_mutex_unlock(&imp->mu);
    }
}

/* Peek the next local message with a free slot's handle and publish it; 0 if one was
 * peeked. */
static int imp_take(ferry__js_imp *imp, int64_t timeout)
{
    ferry__js *js = imp->js;
    pthread_mutex_lock(&imp->mu);
    slot *s = NULL; /* one is free: only this thread fills slots, and fewer than JS_WIN
                       were busy */
    for (int i = 0; i < JS_WIN && !s; i++)
        if (imp->slots[i].state == S_FREE) s = &imp->slots[i];
    pthread_mutex_unlock(&imp->mu);
    if (!s) return -1;
    int64_t type = 0;
    const void *data;
    size_t len;
    if (ferry_mailbox_peek(s->h, 0, &data, &len, &type, timeout) < 0) return -1;
    /* relaxed: only uniqueness matters */
    uint64_t n = atomic_fetch_add_explicit(&js->ctr, 1, memory_order_relaxed) + 1;
    char id[64], tstr[24];
    snprintf(id, sizeof id, "%s-%" PRIu64, js->secret, n);
    snprintf(tstr, sizeof tstr, "%" PRId64, type);
    natsMsg *m = NULL; /* a copy of the peeked bytes (the peek stays until the ack) */
    if (len > js->conf.max_msg ||
        natsMsg_Create(&m, imp->subj, NULL, (const char *)data, (int)len) != NATS_OK ||
        natsMsgHeader_Set(m, "Ferry-Type", tstr) != NATS_OK ||
        natsMsgHeader_Set(m, "Nats-Msg-Id", id) != NATS_OK) {
        natsMsg_Destroy(m);
        ferry_mailbox_release(s->h);
        count(&js->lost, 1);
        js_log("mailbox %s: no memory for a message, or larger than --max-msg (lost)", imp->name);
        return 0;
    }
    pthread_mutex_lock(&imp->mu);
    s->n = n;
    s->state = S_FLIGHT;
    imp->inflight++;
    pthread_mutex_unlock(&imp->mu);
    imp_publish(imp, s, m);
    return 0;
}

/* Publish again every failed message whose time came. */
static void imp_retry(ferry__js_imp *imp)
{
    pthread_mutex_lock(&imp->mu);
    int failed = imp->nfailed;
    pthread_mutex_unlock(&imp->mu);
    if (!failed) return;
    int64_t now = ferry__now_ns();
    for (int i = 0; i < JS_WIN; i++) {
        slot *s = &imp->slots[i];
        pthread_mutex_lock(&imp->mu);
        natsMsg *m = s->state == S_FAILED && now >= s->retry_at ? s->m : NULL;
        pthread_mutex_unlock(&imp->mu);
        if (m) {
            count(&imp->js->resent, 1);
            imp_publish(imp, s, m);
        }
    }
}

static void imp_run(ferry__js_imp *imp);

static void *imp_main(void *arg)
{
    ferry__js_imp *imp = arg;
    imp_run(imp);
    atomic_store(&imp->done, 1); /* seq_cst: pairs with the load in join_pumping */
    return NULL;
}

static void imp_run(ferry__js_imp *imp)
{
    while (!atomic_load(&imp->stop)) { /* seq_cst: pairs with ferry__js_import_stop */
        imp_retry(imp);
        pthread_mutex_lock(&imp->mu);
        int busy = imp->inflight;
        pthread_mutex_unlock(&imp->mu);
        if (busy < JS_WIN && !atomic_load(&imp->captured)) {
            /* room in the window: wait for a local message, briefly while publishes are
             * in flight (their failures are retried at the next turn) */
            imp_take(imp, busy ? 5 * MS : 100 * MS);
        } else if (busy > 0) { /* the window is full: until an acknowledgement */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&imp->mu);
            pthread_cond_timedwait(&imp->cv, &imp->mu, &ts);
            pthread_mutex_unlock(&imp->mu);
        } else {
            nap_ms(100); /* captured, nothing in flight: only a stop comes */
        }
    }
    /* stopping: what is in flight gets JS_STOP_MS to be stored (failed ones are sent
     * again meanwhile) */
    int64_t end = ferry__now_ns() + JS_STOP_MS * MS;
    for (;;) {
        pthread_mutex_lock(&imp->mu);
        int busy = imp->inflight;
        pthread_mutex_unlock(&imp->mu);
        if (busy == 0 || ferry__now_ns() > end) break;
        imp_retry(imp);
        nap_ms(10);
    }
}

ferry__js_imp *ferry__js_import(ferry__js *js, ferry_mailbox *mb, const char *exporter,
                                const char *name)
{
    ferry__js_imp *imp = calloc(1, sizeof *imp);
    if (!imp) return NULL;
    imp->js = js;
    imp->mb = mb;
    snprintf(imp->name, sizeof imp->name, "%s", name);
    snprintf(imp->subj, sizeof imp->subj, "ferry.%s.mq.%s.%s.%s", js->conf.cluster, exporter,
             js->conf.user, name);
    snprintf(imp->stream, sizeof imp->stream, "ferry_%s_%s", js->conf.cluster, exporter);
    int ok = 1;
    for (int i = 0; i < JS_WIN && ok; i++) { /* a handle per slot: one peek each */
        int fd = fcntl(ferry_mailbox_fd(mb), F_DUPFD_CLOEXEC, 0);
        ok = fd >= 0 && ferry_mailbox_adopt(fd, &imp->slots[i].h) == 0; /* takes fd */
    }
    pthread_mutex_init(&imp->mu, NULL);
    pthread_cond_init(&imp->cv, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_PUB_WAIT_MS;
    jo.PublishAsync.MaxPending = 4 * JS_WIN; /* above our window: a publish never stalls */
    jo.PublishAsync.AckHandler = on_puback;
    jo.PublishAsync.AckHandlerClosure = js;
    ok = ok && natsConnection_JetStream(&imp->ctx, js->conf.nc, &jo) == NATS_OK;
    pthread_mutex_lock(&js->mu); /* in js->imps before its first publish */
    if (ok) {
        imp->next = js->imps;
        js->imps = imp;
    }
    pthread_mutex_unlock(&js->mu);
    if (ok && pthread_create(&imp->th, NULL, imp_main, imp) != 0) {
        pthread_mutex_lock(&js->mu);
        js->imps = imp->next; /* nothing published: no handler can hold it */
        pthread_mutex_unlock(&js->mu);
        ok = 0;
    }
    if (!ok) {
        if (imp->ctx) jsCtx_Destroy(imp->ctx);
        pthread_cond_destroy(&imp->cv);
        pthread_mutex_destroy(&imp->mu);
        for (int i = 0; i < JS_WIN; i++) ferry_mailbox_close(imp->slots[i].h);
        free(imp);
        return NULL;
    }
    return imp;
}

void ferry__js_import_stop(ferry__js_imp *imp, int keep)
{
    if (!imp) return;
    atomic_store(&imp->stop, 1); /* seq_cst: the thread's loop and waits see it */
    pthread_mutex_lock(&imp->mu);
    pthread_cond_broadcast(&imp->cv);
    pthread_mutex_unlock(&imp->mu);
    join_pumping(imp->js, imp->th, &imp->done);
    pthread_mutex_lock(&imp->js->mu); /* out of js->imps: no ack handler finds it now */
    for (ferry__js_imp **pp = &imp->js->imps; *pp; pp = &(*pp)->next)
        if (*pp == imp) {
            *pp = imp->next;
            break;
        }
    pthread_mutex_unlock(&imp->js->mu);
    /* no more acknowledgements for what is still pending: taken back. keep (the bridge
     * exits, the name stays): each one's peek stays outstanding, its handle left open
     * until the process exits, after which the mailbox gives the message back to the
     * next bridge (closing the handle would release the peek: finished, gone). Else (the
     * import is dropped, and its mailbox with it): released, counted lost. */
    natsMsgList pending = {0}; /* not before a first publish: libnats 3.4.1 reads its
                                  pending map, made by that publish (NULL: SIGSEGV) */
    if (imp->any && js_PublishAsyncGetPendingList(&pending, imp->ctx) == NATS_OK)
        natsMsgList_Destroy(&pending);
    uint64_t left = 0;
    pthread_mutex_lock(&imp->mu);
    for (int i = 0; i < JS_WIN; i++) {
        slot *s = &imp->slots[i];
        if (s->state != S_FREE) {
            left++;
            natsMsg_Destroy(s->m);
            s->m = NULL;
            s->state = S_FREE;
            kept_h *k = keep ? malloc(sizeof *k) : NULL;
            if (k) { /* s->h stays open (and peeked) until the exit */
                k->h = s->h;
                pthread_mutex_lock(&kept_mu);
                k->next = kept_list;
                kept_list = k;
                pthread_mutex_unlock(&kept_mu);
                continue;
            }
        }
        ferry_mailbox_close(s->h);
    }
    pthread_mutex_unlock(&imp->mu);
    if (left && keep) {
        js_log("mailbox %s: %" PRIu64 " messages not stored yet are left peeked: the next "
               "bridge gets them back",
               imp->name, left);
    } else if (left) {
        count(&imp->js->lost, left);
        js_log("mailbox %s: %" PRIu64 " messages not stored when the import stopped (lost)",
               imp->name, left);
    }
    jsCtx_Destroy(imp->ctx);
    pthread_cond_destroy(&imp->cv);
    pthread_mutex_destroy(&imp->mu);
    free(imp);
}

/* ------------------------------------------------------------------ both */

void ferry__js_counters(ferry__js *js, ferry__js_stats *out)
{
    /* relaxed: a snapshot of statistics */
    out->delivered = atomic_load_explicit(&js->delivered, memory_order_relaxed);
    out->redelivered = atomic_load_explicit(&js->redelivered, memory_order_relaxed);
    out->refused = atomic_load_explicit(&js->refused, memory_order_relaxed);
    out->published = atomic_load_explicit(&js->published, memory_order_relaxed);
    out->duplicates = atomic_load_explicit(&js->duplicates, memory_order_relaxed);
    out->resent = atomic_load_explicit(&js->resent, memory_order_relaxed);
    out->lost = atomic_load_explicit(&js->lost, memory_order_relaxed);
}

void ferry__js_close(ferry__js *js)
{
    if (!js) return;
    atomic_store(&js->stop, 1); /* seq_cst: the consumer threads end their loops */
    for (int i = 0; i < js->nexp; i++) {
        join_pumping(js, js->exps[i]->th, &js->exps[i]->done);
        free(js->exps[i]);
    }
    ferry__js_stats st;
    ferry__js_counters(js, &st);
    if (st.delivered || st.published || st.lost || st.refused)
        js_log("delivered %" PRIu64 " (%" PRIu64 " redelivered), refused %" PRIu64
               ", published %" PRIu64 " (%" PRIu64 " duplicates, %" PRIu64
               " resent), lost %" PRIu64,
               st.delivered, st.redelivered, st.refused, st.published, st.duplicates, st.resent,
               st.lost);
    pthread_mutex_destroy(&js->mu);
    free(js);
}
