// SPDX-License-Identifier: MIT
/*
 * bridge.c — ferry-bridge: the local naming service's names across hosts, over NATS
 * (docs/cluster.md, "Names across hosts", has the design, the subjects and the policy).
 *
 * Rules:
 *  - One loop thread owns every piece of state: proxies (imported names registered
 *    locally), their local connections, the table of calls forwarded and awaiting a
 *    reply, the exporter's local client connections and their calls.
 *  - A plain NATS connection is read and written by the loop itself (cnats's external
 *    event loop: "NATS's socket in the loop" below; our subscriptions are synchronous and
 *    the loop empties them after each read), so a message is handled by the thread the
 *    socket woke, with no hand-over between threads (each costs a wake-up, tens of µs on
 *    a loaded machine: docs/cluster.md, "Cost"). cnats's threads (ping timer, reconnect,
 *    JetStream's) touch only the socket's epoll interest, under emu. With TLS, cnats's
 *    threads read the connection and its delivery threads append each message to a
 *    bounded queue under qmu and write the loop's eventfd (the queue's mutex orders the
 *    message's hand-over); the connection's events (lost, back, closed), from cnats's
 *    callback thread, go that way in both cases.
 *  - Since the loop reads the socket, cnats's pongs are read only while it runs: a loop
 *    held up for more than about 2 s (a ping every 1 s, 2 unanswered: nats_setup) makes
 *    cnats take the connection for stale and reconnect (the imported servers go and come
 *    back). The loop's waits on local processes are bounded by LOCAL_WAIT each; waiting
 *    for a JetStream thread, it reads the socket meanwhile (nats_pump).
 *  - Everything from NATS is hostile: subjects are matched against prefixes this bridge
 *    built and the remaining tokens validated (identities [A-Za-z0-9_-]{1,63}, names by
 *    ferry's name rule, sequence numbers as bounded decimals); a heartbeat is at most
 *    HB_MAX bytes and HB_NAMES names; at most IMPORTS_MAX names are imported, PEND_MAX
 *    calls pending, QUEUE_MAX messages queued (TLS; beyond: dropped and counted), and on
 *    a plain connection the messages waiting in a subscription by cnats's pending limits
 *    (65,536 messages or 64 MiB per subscription, its defaults: beyond, it drops them);
 *    payloads are bounded by max_msg. Header values are compared with fixed strings only.
 *  - A remote caller's identity is the NATS user token of the subject it published on
 *    (ferry.C.rpc.<exporter>.<caller>.<name>), which the NATS servers' publish
 *    permissions tie to the authenticated user. Locally it is this bridge's uid, and the
 *    exporter's connections to a server (one per name and caller: RPC and relayed
 *    channels) name that user in their handshake (ferry_chan_opts.relay_for), which a
 *    server that trusts this bridge's uid reads with ferry_chan_peer_remote.
 *  - No call is sent twice: a request is published once and never retried; a reply is
 *    delivered only for a sequence number still pending, which it removes.
 *  - What is retried is numbered and delivered once by its receiver: mailbox messages
 *    (stop and wait; the exporter keeps the last number per sender's incarnation),
 *    broadcast messages (stop and wait to every remote subscriber; the importer keeps
 *    the last number published), relayed channel messages (a window of RELAY_WIN,
 *    cumulative acknowledgements, in-order delivery, go-back-N).
 *  - Closed proxies, connections, exporter connections, broadcast subscriptions and
 *    relays are buried (tag 0) and freed after the epoll batch: a later event of the
 *    same batch may still point at them.
 *  - The loop never waits on a remote; it waits on the local ferryd or a local server for
 *    at most LOCAL_WAIT (registering, connecting, listing).
 */
#define _GNU_SOURCE
#include "bridge.h"
#include "jetstream.h"

#include "core/name.h"
#include "rpc/wire.h"
#include "core/time.h"

#include <ferry/ferry.h>
#include <nats/nats.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define ID_MAX      63
#define HB_MAX      65536
#define HB_NAMES    1024
#define IMPORTS_MAX 4096
#define OUTS_MAX    4096
#define PEND_MAX    65536
#define QUEUE_MAX   65536
#define MAX_URLS    8
#define MAX_RULES   64
#define MAX_USERS   16
#define MSG_DEFAULT ((size_t)64 << 10)
#define MSG_LIMIT   ((size_t)1 << 20)
#define SUBJ_MAX    600
#define NBUCKETS    1024
#define MS          ((int64_t)1000000)
#define TICK_MS     50
#define PULL_WIN    32         /* --recv: messages pulled ahead for local receivers */
#define LOCAL_WAIT  (500 * MS) /* the most the loop waits on the local ferryd or a server */

/* ------------------------------------------------------------------ types */

enum {
    T_QUEUE = 1,
    T_TIMER,
    T_SIGNAL,
    T_LISTEN,
    T_CONN,
    T_OUT,
    T_WATCH,
    T_MBOX,
    T_BCAST,
    T_RELAY,
    T_NATS
};
enum { Q_HB, Q_RPC, Q_REPLY, Q_DISCONNECTED, Q_RECONNECTED, Q_CLOSED };
enum { P_PROBING, P_LIVE, P_SHADOWED };

typedef struct qitem {
    int kind;
    natsMsg *m; /* Q_HB, Q_RPC, Q_REPLY (TLS: cnats's delivery threads); else NULL */
    struct qitem *next;
} qitem;

typedef struct rule {
    char pat[256];
    int any;
    size_t nusers;
    char users[MAX_USERS][ID_MAX + 1];
} rule;

/* An imported name: a local registration standing for a remote exporter's name. */
typedef struct proxy {
    int tag;     /* T_LISTEN; 0 once buried */
    void *gnext; /* the graveyard (bury) */
    char name[256];
    char exporter[ID_MAX + 1];
    char boot[17];
    int state;
    int64_t last_seen;
    unsigned pass; /* the heartbeat pass that last listed it */
    int kind;      /* 's' a server (l), 'm' a mailbox (mb) */
    ferry_listener *l;
    /* a mailbox: local senders send into mb; the bridge takes messages from it and
     * forwards each until the exporter acknowledges it, up to MBOX_WIN at once to an
     * exporter that announces the window ("w" in its heartbeat: wide), else one (stop and
     * wait); a message is numbered (from 1, per proxy) and resent with the same number
     * until acknowledged: the exporter delivers numbers in order only, each once, and
     * drops a number it has delivered (exactly once) */
    ferry_mailbox *mb;
    ferry_pub *pub;
    int mbfd;
    char *msg;         /* scratch: a message taken from mb */
    struct mslot *win; /* MBOX_WIN slots: number n at win[n % MBOX_WIN], base <= n <= msg_seq */
    uint64_t base;     /* the lowest number not acknowledged */
    uint64_t msg_seq;  /* the last number given */
    int wide;          /* the exporter takes a window */
    int64_t retry_at;
    /* a broadcast: the bridge publishes into bc what the exporter sends, each message
     * once (in_boot/in_seq: the exporter's incarnation and the last number published) */
    ferry_bcast *bc;
    char in_boot[17];
    char in_stream[17]; /* a broadcast: the exporter's object (Ferry-Stream), or "" */
    uint64_t in_seq;
    /* a mailbox received here (--recv): local receivers take what the bridge pulls from
     * the exporter (one message per pull, while receivers wait and none is queued);
     * in_boot/in_seq: the exporter's incarnation and the last number delivered here */
    int recv;
    uint64_t pull_seq;  /* the pull in flight, 0: none */
    int64_t pull_at;    /* no pull before (empty exporter, errors) */
    int64_t recv_until; /* pulls go on until then: a local receiver waited within 1 s */
    int allowed;
    unsigned mode; /* the local policy's mode it was published with */
    /* a mailbox the exporter keeps in JetStream ("j" in its heartbeat): its messages are
     * published into the exporter's stream by jsi's thread (jetstream.c) */
    int js;
    ferry__js_imp *jsi;
    struct proxy *hnext;
} proxy;

/* A message forwarded to a mailbox's exporter and not yet acknowledged. */
#define MBOX_WIN 32
typedef struct mslot {
    char *data;
    size_t len;
    int64_t type;
    uint64_t seq;  /* its number */
    uint64_t pend; /* the request carrying it now, 0: none (to be sent) */
    int acked;
} mslot;

/* A local client's connection to a proxy. Freed when closed and no pending call refers
 * to it (refs). */
typedef struct conn {
    int tag;        /* T_CONN; 0 once buried */
    void *gnext;    /* the graveyard (bury) */
    ferry_chan *ch; /* read raw: RPC by the wire of src/rpc/wire.h, else a channel */
    int fd;
    proxy *p; /* NULL once closed */
    int refs;
    int rpc; /* its first message was RPC: an RPC connection */
    struct conn *next, *prev;
} conn;

/* A call forwarded to another bridge (or a probe), by its sequence number. */
typedef struct pend {
    uint64_t seq;
    int probe;
    conn *c;     /* calls */
    uint64_t id; /* calls: the local ferry call id */
    int mbox;    /* a mailbox message (msg_seq) */
    int bput;    /* a broadcast message to a remote subscriber (exporter: its user) */
    int mpull;   /* a pull for a mailbox received here (--recv) */
    uint64_t msg_seq;
    char name[256], exporter[ID_MAX + 1]; /* probes, mailbox messages */
    int64_t deadline;
    struct pend *hnext;
} pend;

/* The exporter's local client connection to an exported name, per remote caller. */
typedef struct out {
    int tag;     /* T_OUT; 0 once buried */
    void *gnext; /* the graveyard (bury) */
    char name[256];
    char caller[ID_MAX + 1];
    ferry_rpc_client *c;
    int fd;
    struct xcall *calls;
    struct out *next, *prev;
} out;

typedef struct xcall {
    out *o;
    uint64_t id;
    int64_t deadline;
    char reply[SUBJ_MAX];
    ferry_msg resp;
    struct xcall *next, *prev;
} xcall;

/* The exporter's handle on a local mailbox, per remote sender, and the last message
 * number delivered from that sender's bridge incarnation (boot). */
typedef struct mbout {
    char name[256];
    char caller[ID_MAX + 1];
    char boot[17];
    uint64_t last_seq;
    ferry_mailbox *mb;
    /* pulls (a receiving host's bridge): the message taken for it and not yet
     * acknowledged, numbered from the bridge-wide b->mseq; given back to the mailbox when
     * the puller is silent */
    int held;
    char *hbuf;
    size_t hlen;
    int64_t htype;
    uint64_t hseq;
    int64_t pulled_at;
    struct mbout *next;
} mbout;

/* A remote subscriber (an importing bridge) of one of our broadcasts. */
typedef struct rsub {
    char user[ID_MAX + 1];
    int missed;  /* our heartbeats since its last "sub" (it renews on each): its lease is
                    counted in our heartbeats, so a stall of this loop lapses nothing */
    uint64_t lo; /* the first message (the bcout's count k, below) it has not acknowledged */
    uint64_t pend[MBOX_WIN];    /* the request carrying message k at [k % MBOX_WIN], 0: none */
    unsigned char ok[MBOX_WIN]; /* message k (> lo) acknowledged out of order */
    int wide;                   /* it takes a window ("Ferry-Win" in its "sub"), else one */
    int64_t retry_at;           /* no sending before (its bridge's errors) */
    struct rsub *next;
} rsub;

/* The exporter's subscription to a local broadcast with remote subscribers: lossless
 * (its publisher waits for the slowest remote subscriber). Messages taken are counted
 * (k, from 0) and kept in win[k % MBOX_WIN] from lo (the first one some remote subscriber
 * has not acknowledged) to hi (the next to take): up to --bcast-window of them, each sent
 * to every remote subscriber in order (to one that takes no window: one at a time) and
 * kept until each acknowledged it. */
typedef struct bcout {
    int tag;     /* T_BCAST; 0 once buried */
    void *gnext; /* the graveyard */
    char name[256];
    ferry_bcast *bc;
    ferry_sub *sub;
    int fd;
    char *msg;       /* scratch: a message taken */
    mslot *win;      /* MBOX_WIN slots: message k at win[k % MBOX_WIN], lo <= k < hi */
    uint64_t lo, hi; /* the first message kept, the next to take */
    int ended;       /* the stream ended: closed once every message kept is acknowledged */
    uint64_t seq;    /* the number of the message taken last: its number in the stream + 1
                        (ferry_sub_seq), so numbers go on across a new subscription and count
                        what this bridge was not subscribed for (a lapse) or was skipped */
    char stream[17]; /* the object's identity (its memfd's device and inode, hex): a new
                        object under the name numbers from 1 again (Ferry-Stream) */
    rsub *subs;
    struct bcout *next;
} bcout;

/* A channel relayed across hosts: a local channel end (the importer: a local client's
 * connection to a proxy; the exporter: its connection to the server) and the peer
 * bridge's relay of the same connection (connid, made by the importer). Each direction
 * numbers its messages from 1; the sender keeps up to RELAY_WIN unacknowledged ones and
 * stops reading its local end when the window is full (so a slow receiver pushes back
 * to the sender through the channel's own capacity); the receiver delivers in order only
 * (ferry_sendmsg without waiting: a full local channel drops the message, which comes
 * again) and acknowledges cumulatively; the sender sends everything unacknowledged again
 * when acknowledgements stall (go-back-N). */
#define RELAY_WIN 256
typedef struct rmsg {
    int64_t type;
    size_t len;
    char *data;
} rmsg;

typedef struct relay {
    int tag;     /* T_RELAY; 0 once buried */
    void *gnext; /* the graveyard */
    char peer[ID_MAX + 1];
    char name[256];
    char connid[48];
    int importer;
    ferry_chan *ch;
    int fd;
    int armed;
    uint64_t snd_next, snd_acked; /* next number to give; all <= acked delivered */
    rmsg win[RELAY_WIN];          /* number n at win[n % RELAY_WIN], acked < n < next */
    int64_t snd_progress;
    int local_eof;
    uint64_t rcv_next;    /* next number expected */
    uint32_t rcv_unacked; /* delivered since the last acknowledgement */
    int64_t peer_seen;    /* the peer's last message or heartbeat */
    struct relay *next, *prev;
} relay;

typedef struct bridge {
    /* configuration */
    const char *urls[MAX_URLS];
    int nurls;
    char user[ID_MAX + 1];
    char *password;
    const char *creds;
    const char *tls_ca, *tls_cert, *tls_key; /* TLS to the NATS server; cert: a client
                                                certificate (the server may map it to
                                                the user: verify_and_map) */
    char cluster[ID_MAX + 1];
    rule rules[MAX_RULES];
    int nrules;
    rule imports[MAX_RULES]; /* which names to import, from which exporters */
    int nimports;
    rule recvs[MAX_RULES]; /* imported mailboxes received here (--recv), not sent to */
    int nrecvs;
    rule jss[MAX_RULES]; /* exported mailboxes kept in JetStream (--jetstream) */
    int njss;
    int64_t js_max_bytes, js_max_msgs;
    int js_replicas;
    int mbox_win;  /* --mailbox-window: puts in flight per imported mailbox (1..MBOX_WIN) */
    int bc_win;    /* --bcast-window: messages in flight per exported broadcast (1..MBOX_WIN) */
    ferry__js *js; /* JetStream: our stream's consumers, imports' publishers */
    unsigned import_mode;
    int64_t hb_ns;
    int dead_after;
    int64_t call_timeout_ns;
    size_t max_msg;
    int verbose;
    char boot[17];

    /* NATS */
    natsConnection *nc;
    natsSubscription *sub_hb, *sub_rpc, *sub_reply;
    int evloop;          /* the loop reads and writes the socket (a plain connection) */
    pthread_mutex_t emu; /* nfd, nev: changed by cnats's threads through the callbacks */
    int nfd;             /* the socket as it is in ep, -1: not there */
    uint32_t nev;        /* its epoll interest: EPOLLIN, EPOLLOUT (cnats has bytes to write) */
    int tag_nats;
    int nats_unread; /* nats_pump read for our subscriptions: the loop empties them */
    int connected;

    /* the subjects' prefixes this bridge subscribed with (fixed before the subscriptions) */
    char pre_hb[SUBJ_MAX], pre_rpc[SUBJ_MAX], pre_reply[SUBJ_MAX];
    size_t npre_hb, npre_rpc, npre_reply;

    /* the queue from cnats's threads: the connection's events, and with TLS the messages */
    pthread_mutex_t qmu;
    qitem *qhead, *qtail;
    size_t qlen;
    uint64_t qdropped;
    int closing; /* teardown: the queue takes nothing more (under qmu) */

    /* the loop */
    int ep, qfd, tfd, sfd;
    int tag_queue, tag_timer, tag_signal, tag_watch;
    int stop;
    int failed; /* the NATS connection closed for good: exit 1 */
    int64_t next_hb;
    unsigned pass;
    char *buf;

    /* importer */
    proxy *proxies[NBUCKETS];
    size_t nproxies;
    conn *conns;
    pend *pends[NBUCKETS];
    size_t npend;
    uint64_t seq;
    uint64_t dropped_replies;

    /* exporter */
    out *outs;
    size_t nouts;
    struct mbout *mbouts;
    size_t nmbouts;
    bcout *bcouts;
    size_t nbcouts;
    relay *relays;
    size_t nrelays;
    uint64_t nconnid;
    uint64_t mb_lost; /* mailbox messages given up (withdrawn name, too large) */
    uint64_t mseq;    /* the last number given to a pulled mailbox message */
    uint64_t bc_gap;  /* broadcast messages an imported stream missed (lapsed lease) */
    ferry_watch *watch;
    int64_t watch_retry;
    int watch_lost; /* the watch failed: ferryd went away */

    /* proxies, conns and outs closed during an epoll batch: a later event of the same
     * batch may still point at them (its tag, 0, says to skip it). Freed after the batch. */
    void *graveyard;
    char *hb_last; /* the last heartbeat sent */
    size_t hb_last_len;
} bridge;

/* The common head of proxy, conn and out. */
typedef struct buried {
    int tag;
    void *gnext;
} buried;

static void bury(bridge *b, void *obj)
{
    buried *x = obj;
    x->tag = 0;
    x->gnext = b->graveyard;
    b->graveyard = x;
}

static void bcast_sub_lease(bridge *b, proxy *p);
static void bput_acked(bridge *b, pend *q, int err);
static void relay_close(bridge *b, relay *r, int notify);
static int64_t header_num(natsMsg *m, const char *key);

static void free_graveyard(bridge *b)
{
    while (b->graveyard) {
        buried *x = b->graveyard;
        b->graveyard = x->gnext;
        free(x);
    }
}

/* ------------------------------------------------------------------ small helpers */

static int verbose_on;

void ferry__bridge_logf(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++) /* nothing logged can forge a line */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) *p = '?';
    if (verbose_on)
        fprintf(stderr, "ferry-bridge[%d] %.3f: %s\n", (int)getpid(),
                (double)(ferry__now_ns() % 1000000000000LL) / 1e9, line);
    else
        fprintf(stderr, "ferry-bridge: %s\n", line);
}
#define vlog(...)                                                                                  \
    do {                                                                                           \
        if (verbose_on) ferry__bridge_logf(__VA_ARGS__);                                           \
    } while (0)

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int ferry__bridge_id_valid(const char *s, size_t n)
{
    if (n < 1 || n > ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const struct {
    int err;
    const char *s;
} statuses[] = {{0, "0"},
                {EACCES, "EACCES"},
                {ENOENT, "ENOENT"},
                {EPIPE, "EPIPE"},
                {EMSGSIZE, "EMSGSIZE"},
                {EBUSY, "EBUSY"},
                {ETIMEDOUT, "ETIMEDOUT"},
                {EAGAIN, "EAGAIN"}};

static const char *status_str(int err)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].err == err) return statuses[i].s;
    return "EPIPE";
}

/* A status header's value -> errno (0 ok); anything unknown is EPIPE. */
static int status_err(const char *v)
{
    if (!v) return EPIPE;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(statuses[i].s, v) == 0) return statuses[i].err;
    return EPIPE;
}

static int epoll_add(bridge *b, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void epoll_del(bridge *b, int fd)
{
    if (fd >= 0) epoll_ctl(b->ep, EPOLL_CTL_DEL, fd, NULL);
}

static void nats_flush(bridge *b);

/* Publish subj (reply subject reply, may be NULL) with the headers hdr (key, value, ...,
 * NULL; may be NULL) and data. */
static int publish_h(bridge *b, const char *subj, const char *reply, const char *const *hdr,
                     const void *data, size_t len)
{
    if (!b->nc) return -EPIPE;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subj, reply, data, (int)len);
    for (int i = 0; s == NATS_OK && hdr && hdr[i]; i += 2)
        s = natsMsgHeader_Set(m, hdr[i], hdr[i + 1]);
    if (s == NATS_OK) s = natsConnection_PublishMsg(b->nc, m);
    if (s == NATS_OK && b->evloop) nats_flush(b); /* now, not after the batch */
    natsMsg_Destroy(m);
    if (s != NATS_OK) vlog("publish %s: %s", subj, natsStatus_GetText(s));
    return s == NATS_OK ? 0 : -EIO;
}

/* Publish with one header (hkey NULL: none). */
static int publish(bridge *b, const char *subj, const char *reply, const char *hkey,
                   const char *hval, const void *data, size_t len)
{
    const char *hdr[3] = {hkey, hval, NULL};
    return publish_h(b, subj, reply, hkey ? hdr : NULL, data, len);
}

static void reply_status(bridge *b, const char *reply, int err)
{
    if (reply && *reply) publish(b, reply, NULL, "Ferry-Status", status_str(err), NULL, 0);
}

/* ------------------------------------------------------------------ the queue */

static void push(bridge *b, int kind, natsMsg *m)
{
    qitem *it = malloc(sizeof *it);
    pthread_mutex_lock(&b->qmu);
    if (!it || b->qlen >= QUEUE_MAX || b->closing) {
        if (!b->closing) b->qdropped++;
        pthread_mutex_unlock(&b->qmu);
        free(it);
        natsMsg_Destroy(m);
        return;
    }
    it->kind = kind;
    it->m = m;
    it->next = NULL;
    if (b->qtail)
        b->qtail->next = it;
    else
        b->qhead = it;
    b->qtail = it;
    b->qlen++;
    pthread_mutex_unlock(&b->qmu);
    uint64_t one = 1;
    if (write(b->qfd, &one, sizeof one) < 0) {
        /* the counter cannot overflow in practice; the loop drains the queue anyway */
    }
}

static bridge *the_bridge; /* for the cnats callbacks' closures */
static char kind_hb, kind_rpc, kind_reply;

/* A message of NATS on a delivery thread of cnats (TLS only; a plain connection is read
 * by the loop: nats_drain): queued for the loop, which owns m from here. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    int kind = closure == &kind_hb ? Q_HB : closure == &kind_rpc ? Q_RPC : Q_REPLY;
    push(the_bridge, kind, m);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    push(closure, Q_DISCONNECTED, NULL);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    push(closure, Q_RECONNECTED, NULL);
}

/* cnats gave the connection up for good (an -ERR it does not reconnect after, such as an
 * authentication timeout on a loaded machine): nothing would ever come again. */
static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    push(closure, Q_CLOSED, NULL);
}

/* ------------------------------------------------------------------ importer */

static proxy **proxy_slot(bridge *b, const char *name)
{
    proxy **pp = &b->proxies[hash_str(name) % NBUCKETS];
    while (*pp && strcmp((*pp)->name, name) != 0) pp = &(*pp)->hnext;
    return pp;
}

static void conn_put(conn *c)
{
    if (--c->refs == 0) bury(the_bridge, c);
}

static void conn_close(bridge *b, conn *c)
{
    if (!c->p) return;
    epoll_del(b, c->fd);
    ferry_chan_close(c->ch); /* the local caller's calls end with -EPIPE */
    c->ch = NULL;
    c->p = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    conn_put(c);
}

/* Drop an imported name: the registration and every local connection to it. */
static int mpull_send(bridge *b, proxy *p, int want);

static void proxy_drop(bridge *b, proxy *p)
{
    proxy **pp = proxy_slot(b, p->name);
    *pp = p->hnext;
    b->nproxies--;
    for (conn *c = b->conns, *n; c; c = n) {
        n = c->next;
        if (c->p == p) conn_close(b, c);
    }
    for (relay *r = b->relays, *n; r; r = n) {
        n = r->next;
        if (r->importer && strcmp(r->name, p->name) == 0 && strcmp(r->peer, p->exporter) == 0)
            relay_close(b, r, 1);
    }
    if (p->l) {
        epoll_del(b, ferry_listener_poll_fd(p->l));
        ferry_listener_close(p->l);
    }
    if (p->mb && p->recv && p->in_boot[0] && b->connected)
        mpull_send(b, p, 0); /* what was delivered here is not given back there */
    /* A JetStream import outlives the bridge's own exit (teardown): its name is left
     * kept (FERRY_POLICY_KEEP: an orphan for the next bridge to take over) and what is in
     * flight stays peeked, to come back to that bridge. Dropped on purpose (the exporter
     * is gone, or the import withdrawn), it goes as before. */
    int keep = p->jsi && b->closing;     /* closing: set by this (the main) thread */
    ferry__js_import_stop(p->jsi, keep); /* before its mailbox closes */
    p->jsi = NULL;
    if (p->mb) {
        epoll_del(b, p->mbfd);
        if (keep)
            ferry_pub_leave(p->pub);
        else
            ferry_pub_close(p->pub);
        ferry_mailbox_close(p->mb);
    }
    if (p->bc) {
        ferry_pub_close(p->pub);
        ferry_bcast_close(p->bc); /* ends the stream: local subscribers get -EPIPE */
    }
    if (p->win && p->msg_seq >= p->base) {
        b->mb_lost += p->msg_seq + 1 - p->base;
        ferry__bridge_logf("mailbox %s dropped with %" PRIu64 " messages in flight (lost)", p->name,
                           p->msg_seq + 1 - p->base);
    }
    for (int i = 0; p->win && i < MBOX_WIN; i++) free(p->win[i].data);
    free(p->win);
    free(p->msg);
    vlog("dropped %s (from %s)", p->name, p->exporter);
    bury(b, p);
}

static void drop_all_proxies(bridge *b)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        while (b->proxies[i]) proxy_drop(b, b->proxies[i]);
}

/* The imported servers only: imported mailboxes stay while NATS is away (their senders
 * fill them and then wait: back-pressure, nothing lost). */
static void drop_server_proxies(bridge *b)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (proxy *p = b->proxies[i], *nx; p; p = nx) {
            nx = p->hnext;
            if (p->kind == 's') proxy_drop(b, p);
        }
}

static pend **pend_slot(bridge *b, uint64_t seq)
{
    pend **pp = &b->pends[seq % NBUCKETS];
    while (*pp && (*pp)->seq != seq) pp = &(*pp)->hnext;
    return pp;
}

/* Free a pend already out of the table. */
static void pend_release(pend *p)
{
    if (p->c) conn_put(p->c);
    free(p);
}

static void pend_free(bridge *b, pend **pp)
{
    pend *p = *pp;
    *pp = p->hnext;
    b->npend--;
    pend_release(p);
}

static void subj_rpc(bridge *b, char *s, const char *exporter, const char *name)
{
    snprintf(s, SUBJ_MAX, "ferry.%s.rpc.%s.%s.%s", b->cluster, exporter, b->user, name);
}

/* Send a request (call or probe) to exporter for name; the reply comes to seq. */
static int send_request(bridge *b, pend *p, const char *exporter, const char *name, const char *op,
                        const char *const *extra, const void *data, size_t len)
{
    if (b->npend >= PEND_MAX) return -EBUSY;
    char subj[SUBJ_MAX], reply[SUBJ_MAX];
    p->seq = ++b->seq;
    p->deadline = ferry__now_ns() + b->call_timeout_ns;
    subj_rpc(b, subj, exporter, name);
    snprintf(reply, sizeof reply, "ferry.%s.reply.%s.%s.%" PRIu64, b->cluster, b->user, b->boot,
             p->seq);
    const char *hdr[16] = {"Ferry-Op", op}; /* up to 6 extra headers, NULL-terminated */
    for (int i = 0; extra && extra[i] && i < 12; i += 2) {
        hdr[2 + i] = extra[i];
        hdr[3 + i] = extra[i + 1];
    }
    int rc = publish_h(b, subj, reply, hdr, data, len);
    if (rc < 0) return rc;
    pend **pp = &b->pends[p->seq % NBUCKETS];
    p->hnext = *pp;
    *pp = p;
    b->npend++;
    return 0;
}

static int rule_allows(const rule *r, const char *user);

/* Import name from exporter `from`? The first import rule whose pattern matches decides. */
static int import_wanted(bridge *b, const char *name, const char *from)
{
    for (int i = 0; i < b->nimports; i++)
        if (ferry__pattern_match(b->imports[i].pat, name)) return rule_allows(&b->imports[i], from);
    return 0;
}

static int proxy_probe(bridge *b, proxy *p)
{
    pend *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    q->probe = 1;
    snprintf(q->name, sizeof q->name, "%s", p->name);
    snprintf(q->exporter, sizeof q->exporter, "%s", p->exporter);
    int rc = send_request(b, q, p->exporter, p->name, "probe", NULL, NULL, 0);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->deadline = ferry__now_ns() + 2000 * MS; /* unanswered: dropped, probed again */
    return 0;
}

/* A heartbeat from user `from`: "ferry-hb 1 BOOT\n" then one name per line. */
static void on_hb(bridge *b, const char *from, const char *data, int len)
{
    if (len < 0 || len > HB_MAX) return;
    char *text = malloc((size_t)len + 1);
    if (!text) return;
    memcpy(text, data, (size_t)len);
    text[len] = 0;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    char boot[17];
    if (!line || sscanf(line, "ferry-hb 1 %16[0-9a-f]", boot) != 1 || strlen(boot) != 16) {
        vlog("bad heartbeat from %s", from);
        free(text);
        return;
    }
    int wide = strcmp(line + strlen("ferry-hb 1 ") + 16, " w") == 0;
    unsigned pass = ++b->pass;
    int64_t now = ferry__now_ns();
    for (relay *r = b->relays; r; r = r->next)
        if (strcmp(r->peer, from) == 0) r->peer_seen = now;
    int n = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && n < HB_NAMES) {
        n++;
        if ((line[0] != 's' && line[0] != 'm' && line[0] != 'b' && line[0] != 'j') ||
            line[1] != ' ')
            continue;
        int js = line[0] == 'j'; /* a mailbox kept in the exporter's JetStream stream */
        int kind = js ? 'm' : line[0];
        line += 2;
        if (ferry__name_valid(line) < 0 || !import_wanted(b, line, from)) continue;
        proxy **pp = proxy_slot(b, line), *p = *pp;
        if (p && strcmp(p->exporter, from) != 0) continue; /* another exporter has it first */
        if (p && (p->kind != kind || p->js != js)) {
            proxy_drop(b, p);
            p = NULL;
        }
        if (p && strcmp(p->boot, boot) != 0) { /* the exporter's bridge restarted */
            if (kind == 's') {
                proxy_drop(b, p); /* its connections are gone */
                p = NULL;
            } else {
                memcpy(p->boot, boot, sizeof p->boot); /* a mailbox just goes on */
            }
        }
        if (!p) {
            if (b->nproxies >= IMPORTS_MAX) continue;
            p = calloc(1, sizeof *p);
            if (!p) continue;
            p->tag = kind == 's' ? T_LISTEN : kind == 'm' ? T_MBOX : 0; /* 'b': not polled */
            p->kind = kind;
            p->js = js;
            p->mbfd = -1;
            snprintf(p->name, sizeof p->name, "%s", line);
            snprintf(p->exporter, sizeof p->exporter, "%s", from);
            memcpy(p->boot, boot, sizeof p->boot);
            p->state = P_PROBING;
            pp = proxy_slot(b, line);
            *pp = p;
            b->nproxies++;
            if (proxy_probe(b, p) < 0) {
                proxy_drop(b, p); /* the next heartbeat tries again */
                continue;
            }
        }
        p->last_seen = now;
        p->pass = pass;
        p->wide = wide;
        if (p->kind == 'b' && p->state == P_LIVE && p->allowed) bcast_sub_lease(b, p);
    }
    /* names of this exporter it no longer lists: withdrawn */
    for (size_t i = 0; i < NBUCKETS; i++)
        for (proxy *p = b->proxies[i], *nx; p; p = nx) {
            nx = p->hnext;
            if (strcmp(p->exporter, from) == 0 && p->pass != pass) {
                vlog("%s withdrew %s", from, p->name);
                proxy_drop(b, p);
            }
        }
    free(text);
}

/* Is p's mailbox kept in JetStream (imported, not received here)? Such a proxy mailbox is
 * FERRY_MAILBOX_AT_LEAST_ONCE and its name FERRY_POLICY_KEEP: it outlives this bridge. */
static int proxy_js_kept(const proxy *p)
{
    return p->kind == 'm' && p->js && !p->recv;
}

/* The local policy of proxy p, with mode. */
static void proxy_policy(const proxy *p, unsigned mode, ferry_policy *pol)
{
    ferry_policy_init(pol);
    pol->mode = mode;
    if (proxy_js_kept(p)) pol->flags |= FERRY_POLICY_KEEP | FERRY_TAKEOVER;
}

/* A JetStream import's mailbox left by an earlier bridge (killed, or stopped: its name
 * kept, an orphan): opened into p->mb when it is one (a mailbox of this uid, of the shape
 * mo asks for), to be published again (a takeover) with what it holds, the messages its
 * dead peeks give back included. 0 (p->mb set or not), or -EEXIST: a live process owns
 * the name (the bridge does not take it over, whatever its policy allows). */
static int proxy_adopt_orphan(proxy *p, const ferry_mailbox_opts *mo)
{
    ferry_name_info in;
    if (ferry_lookup(p->name, &in, LOCAL_WAIT) < 0) return 0;
    if (in.pid != 0) return -EEXIST;
    if (in.uid != geteuid() || in.kind != FERRY_OBJ_MAILBOX) return 0; /* a takeover fails */
    ferry_mailbox *mb;
    if (ferry_mailbox_open(p->name, &mb, LOCAL_WAIT) < 0) return 0;
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    if (ferry_mailbox_stats(mb, &st) < 0 || st.capacity != mo->capacity ||
        st.max_msg != mo->max_msg || st.flags != mo->flags) {
        ferry__bridge_logf("import mailbox %s: the one left by an earlier bridge is of another "
                           "shape: made anew (its %u messages dropped)",
                           p->name, (unsigned)st.queued);
        ferry_mailbox_close(mb);
        return 0;
    }
    vlog("import mailbox %s: taken over from an earlier bridge (%u queued)", p->name,
         (unsigned)st.queued);
    p->mb = mb;
    return 0;
}

static void proxy_register_mbox(bridge *b, proxy *p, const ferry_policy *pol)
{
    ferry_mailbox_opts mo;
    ferry_mailbox_opts_init(&mo);
    mo.capacity = 64;
    mo.max_msg = b->max_msg;
    p->msg = malloc(b->max_msg);
    p->win = calloc(MBOX_WIN, sizeof *p->win);
    p->base = 1;
    p->msg_seq = 0;
    p->recv = 0;
    for (int i = 0; i < b->nrecvs && !p->recv; i++)
        p->recv = ferry__pattern_match(b->recvs[i].pat, p->name);
    ferry_policy kpol = *pol;
    if (proxy_js_kept(p)) {
        mo.flags = FERRY_MAILBOX_AT_LEAST_ONCE;
        proxy_policy(p, pol->mode, &kpol);
    }
    int rc = p->msg && p->win ? 0 : -ENOMEM;
    if (rc == 0 && proxy_js_kept(p)) rc = proxy_adopt_orphan(p, &mo);
    if (rc == 0 && !p->mb) rc = ferry_mailbox_create(&mo, &p->mb);
    if (rc == 0)
        rc = ferry_publish(p->name, ferry_mailbox_fd(p->mb), FERRY_OBJ_MAILBOX, &kpol, &p->pub,
                           LOCAL_WAIT);
    /* received here: the bridge never takes from it (it pulls into it, tick); kept in
     * JetStream: jsi's thread takes from it */
    if (rc == 0 && p->js && !p->recv &&
        !(p->jsi = ferry__js_import(b->js, p->mb, p->exporter, p->name)))
        rc = -ENOMEM;
    if (rc == 0 && !p->recv && !p->js) rc = p->mbfd = ferry_mailbox_poll_fd(p->mb);
    if (rc >= 0 && !p->recv && !p->js) rc = epoll_add(b, p->mbfd, p);
    if (rc < 0) {
        ferry__bridge_logf("import mailbox %s from %s: %s", p->name, p->exporter,
                           ferry_strerror(rc));
        ferry__js_import_stop(p->jsi, 0);
        p->jsi = NULL;
        ferry_pub_close(p->pub);
        ferry_mailbox_close(p->mb);
        p->pub = NULL;
        p->mb = NULL;
        p->mbfd = -1;
        p->state = P_SHADOWED;
        return;
    }
    p->state = P_LIVE;
    vlog("imported mailbox %s from %s%s%s", p->name, p->exporter, p->recv ? " (received here)" : "",
         p->js ? " (JetStream)" : "");
}

static void proxy_register_bcast(bridge *b, proxy *p, const ferry_policy *pol)
{
    ferry_bcast_opts bo;
    ferry_bcast_opts_init(&bo);
    bo.max_msg = b->max_msg;
    int rc = ferry_bcast_create(&bo, &p->bc);
    if (rc == 0)
        rc = ferry_publish(p->name, ferry_bcast_fd(p->bc), FERRY_OBJ_BCAST, pol, &p->pub,
                           LOCAL_WAIT);
    if (rc < 0) {
        ferry__bridge_logf("import broadcast %s from %s: %s", p->name, p->exporter,
                           ferry_strerror(rc));
        ferry_pub_close(p->pub);
        ferry_bcast_close(p->bc);
        p->pub = NULL;
        p->bc = NULL;
        p->state = P_SHADOWED;
        return;
    }
    p->state = P_LIVE;
    vlog("imported broadcast %s from %s", p->name, p->exporter);
    if (p->allowed) bcast_sub_lease(b, p);
}

/* Ask (again) the exporter for its broadcast's messages: a lease it keeps for dead_after
 * heartbeats. */
static void bcast_sub_lease(bridge *b, proxy *p)
{
    char subj[SUBJ_MAX];
    subj_rpc(b, subj, p->exporter, p->name);
    /* Ferry-Win: messages may come ahead of a missing one (answered EAGAIN, sent again) */
    const char *hdr[] = {"Ferry-Op", "sub", "Ferry-Win", "1", NULL};
    publish_h(b, subj, NULL, hdr, NULL, 0);
}

/* A message of an imported broadcast from its exporter `from`: published here once, in
 * order. The exporter sends up to a window of messages at once (we asked for it: Ferry-Win
 * in our "sub"), each with Ferry-Base, the number of the first message we have not
 * acknowledged: numbers below it we did not publish will never come (a lapsed lease, a
 * message too large here: a gap). A message ahead of one missing here (lost between the
 * hosts, or refused with EBUSY) is not kept: answered EAGAIN, the exporter sends it again
 * after the missing one went (nothing buffered here, whatever the exporter sends). */
static void on_bput(bridge *b, natsMsg *m, const char *from, const char *name, const char *reply)
{
    proxy *p = *proxy_slot(b, name);
    if (!p || p->kind != 'b' || !p->bc || !p->allowed || strcmp(p->exporter, from) != 0) {
        reply_status(b, reply, ENOENT); /* not imported from it: it stops sending */
        return;
    }
    int64_t type = header_num(m, "Ferry-Type"), seq = header_num(m, "Ferry-Seq");
    const char *boot = NULL, *stream = NULL, *bv = NULL;
    int64_t base = header_num(m, "Ferry-Base");
    if (natsMsgHeader_Get(m, "Ferry-Base", &bv) != NATS_OK || !bv)
        base = seq; /* an older exporter: one at a time, anything before it is a gap */
    if (type < 0 || seq < 1 || base < 1 || base > seq ||
        natsMsgHeader_Get(m, "Ferry-Boot", &boot) != NATS_OK || !boot || strlen(boot) != 16 ||
        strspn(boot, "0123456789abcdef") != 16)
        return;
    /* The exporter's object: absent (an older bridge), or 16 hex digits */
    if (natsMsgHeader_Get(m, "Ferry-Stream", &stream) != NATS_OK || !stream) stream = "";
    if (*stream && (strlen(stream) != 16 || strspn(stream, "0123456789abcdef") != 16)) return;
    if (strcmp(p->in_boot, boot) != 0 || strcmp(p->in_stream, stream) != 0) {
        /* another incarnation of the exporter, or another object under the name (its
         * publisher made it anew): its numbers start again */
        memcpy(p->in_boot, boot, sizeof p->in_boot);
        snprintf(p->in_stream, sizeof p->in_stream, "%s", stream);
        p->in_seq = 0;
    }
    if ((uint64_t)seq <= p->in_seq) { /* published already */
        reply_status(b, reply, 0);
        return;
    }
    int rc = 0;
    if (p->in_seq + 1 < (uint64_t)base) {
        /* Our lease had lapsed (or the exporter's publisher skipped, or a message was too
         * large here): the messages below base we lack are a gap that every local
         * subscriber counts in ferry_sub_lost (none before the first message). Once
         * recorded, in_seq says so: a resend of this message is no new gap. */
        uint64_t gap = (uint64_t)base - 1 - p->in_seq;
        if (p->in_seq) rc = ferry_bcast_skip(p->bc, gap, FERRY_NOW);
        if (rc == 0 && p->in_seq) {
            b->bc_gap += gap;
            ferry__bridge_logf(
                "broadcast %s: %" PRIu64 " messages missed (the subscription lapsed)", name, gap);
        }
        if (rc == 0) p->in_seq = (uint64_t)base - 1;
    }
    if (rc == 0 && (uint64_t)seq > p->in_seq + 1) {
        /* one from base on is missing here: not published ahead of it */
        reply_status(b, reply, EAGAIN);
        return;
    }
    if (rc == 0)
        rc = ferry_bcast_publish(p->bc, type, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                                 FERRY_NOW);
    if (rc == 0) {
        p->in_seq = (uint64_t)seq;
        reply_status(b, reply, 0);
    } else if (rc == -EAGAIN || rc == -ETIMEDOUT) {
        reply_status(b, reply, EBUSY); /* a local lossless subscriber is behind */
    } else {
        reply_status(b, reply, rc == -EMSGSIZE ? EMSGSIZE : EPIPE);
    }
}

static void proxy_register(bridge *b, proxy *p, int allowed)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = allowed ? b->import_mode : 0444;
    p->mode = pol.mode;
    if (p->kind == 'm') {
        proxy_register_mbox(b, p, &pol);
        return;
    }
    if (p->kind == 'b') {
        p->allowed = allowed; /* refused: published 0444, never subscribed to */
        proxy_register_bcast(b, p, &pol);
        return;
    }
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = b->max_msg;
    o.flags |= FERRY_NO_FDS; /* fds cannot cross hosts: a local sender's are -EOPNOTSUPP */
    int rc = ferry_register(p->name, &pol, &o, &p->l, LOCAL_WAIT);
    if (rc < 0) {
        ferry__bridge_logf("import %s from %s: %s", p->name, p->exporter, ferry_strerror(rc));
        p->l = NULL;
        p->state = P_SHADOWED;
        return;
    }
    if (epoll_add(b, ferry_listener_poll_fd(p->l), p) < 0) {
        ferry_listener_close(p->l);
        p->l = NULL;
        p->state = P_SHADOWED;
        return;
    }
    p->state = P_LIVE;
    vlog("imported %s from %s%s", p->name, p->exporter, allowed ? "" : " (refused: mode 0444)");
}

/* Poll the proxy's mailbox (on) or not (off: a message is in flight). */
static void mbox_arm(bridge *b, proxy *p, int on)
{
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = p};
    epoll_ctl(b->ep, EPOLL_CTL_MOD, p->mbfd, &ev);
}

/* Send (or send again) the message in slot m. */
static void mbox_send(bridge *b, proxy *p, mslot *m)
{
    pend *q = calloc(1, sizeof *q);
    if (!q) {
        p->retry_at = ferry__now_ns() + 200 * MS;
        return;
    }
    q->mbox = 1;
    q->msg_seq = m->seq;
    snprintf(q->name, sizeof q->name, "%s", p->name);
    snprintf(q->exporter, sizeof q->exporter, "%s", p->exporter);
    char type[24], seq[24], base[24];
    snprintf(type, sizeof type, "%" PRId64, m->type);
    snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
    snprintf(base, sizeof base, "%" PRIu64, p->base);
    /* Ferry-Base: every number below it was acknowledged (an exporter whose bridge
     * restarted starts from there) */
    const char *hdr[] = {"Ferry-Type", type,         "Ferry-Seq", seq, "Ferry-Boot",
                         b->boot,      "Ferry-Base", base,        NULL};
    if (send_request(b, q, p->exporter, p->name, "put", hdr, m->data, m->len) < 0) {
        free(q);
        p->retry_at = ferry__now_ns() + 200 * MS;
        return;
    }
    q->deadline = ferry__now_ns() + 1000 * MS; /* no answer: sent again */
    m->pend = q->seq;
}

/* Send again, in order, every message not acknowledged and not in flight. */
static void mbox_resend(bridge *b, proxy *p)
{
    for (uint64_t n = p->base; n <= p->msg_seq; n++) {
        mslot *m = &p->win[n % MBOX_WIN];
        if (!m->acked && !m->pend) mbox_send(b, p, m);
    }
}

/* The proxy's mailbox has messages: take and forward them while the window has room. */
static void mbox_ready(bridge *b, proxy *p)
{
    if (!p->mb || !p->win) return;
    uint64_t win = p->wide ? (uint64_t)b->mbox_win : 1;
    while (p->msg_seq + 1 - p->base < win) {
        int64_t type = 0;
        ssize_t rc = ferry_mailbox_recv(p->mb, 0, &type, p->msg, b->max_msg, FERRY_NOW);
        if (rc < 0) {
            if (rc != -EAGAIN) vlog("mailbox %s: %s", p->name, ferry_strerror((int)rc));
            break;
        }
        char *d = malloc(rc > 0 ? (size_t)rc : 1);
        if (!d) {
            b->mb_lost++;
            ferry__bridge_logf("mailbox %s: no memory for a message (lost)", p->name);
            continue;
        }
        memcpy(d, p->msg, (size_t)rc);
        mslot *m = &p->win[(p->msg_seq + 1) % MBOX_WIN];
        *m = (mslot){.data = d, .len = (size_t)rc, .type = type, .seq = ++p->msg_seq};
        if (b->connected) mbox_send(b, p, m); /* else the tick sends it */
    }
    mbox_arm(b, p, p->msg_seq + 1 - p->base < win); /* a full window: stop polling */
}

/* The exporter's answer to a mailbox message. */
static void mbox_acked(bridge *b, pend *q, int err)
{
    proxy *p = *proxy_slot(b, q->name);
    if (!p || p->kind != 'm' || !p->win || q->msg_seq < p->base || q->msg_seq > p->msg_seq)
        return; /* stale */
    mslot *m = &p->win[q->msg_seq % MBOX_WIN];
    if (m->seq != q->msg_seq || m->pend != q->seq) return; /* stale */
    m->pend = 0;
    if (err == 0 || err == EMSGSIZE) {
        if (err) {
            b->mb_lost++;
            ferry__bridge_logf("mailbox %s: a message too large for the exporter (lost)", p->name);
        }
        m->acked = 1;
        while (p->base <= p->msg_seq && p->win[p->base % MBOX_WIN].acked) {
            mslot *f = &p->win[p->base % MBOX_WIN];
            free(f->data);
            *f = (mslot){0};
            p->base++;
        }
        mbox_ready(b, p);
        return;
    }
    /* no answer: again now; the exporter's mailbox full or an earlier number missing
     * there (EBUSY): soon; refused or away: later */
    p->retry_at = ferry__now_ns() + (err == ETIMEDOUT ? 0 : err == EBUSY ? 20 : 200) * MS;
}

/* A mailbox received here: pull one message from the exporter, unless a pull is in
 * flight, while a local receiver waited within the last second and fewer than PULL_WIN
 * messages are queued here (a prefetch: the next pull follows each delivery at once, and
 * each tick). The pull acknowledges the last
 * message delivered here (Ferry-Ack, of the exporter's incarnation Ferry-Ack-Boot), so
 * the exporter holds each message until it is known delivered and sends it again
 * otherwise; in_boot/in_seq drop a repeat: each message reaches this mailbox once. */
/* Send a pull (want 0: only the acknowledgement, nothing more wanted). */
static int mpull_send(bridge *b, proxy *p, int want)
{
    pend *q = calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    q->mpull = 1;
    snprintf(q->name, sizeof q->name, "%s", p->name);
    snprintf(q->exporter, sizeof q->exporter, "%s", p->exporter);
    char ack[24];
    snprintf(ack, sizeof ack, "%" PRIu64, p->in_seq);
    const char *hdr[] = {
        "Ferry-Ack",      ack, "Ferry-Ack-Boot", p->in_boot[0] ? p->in_boot : "-", "Ferry-Want",
        want ? "1" : "0", NULL};
    int rc = send_request(b, q, p->exporter, p->name, "mpull", hdr, NULL, 0);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->deadline = ferry__now_ns() + 1000 * MS; /* unanswered: pulled again (it is held) */
    if (want) p->pull_seq = q->seq;
    return 0;
}

static void mpull_maybe(bridge *b, proxy *p, int64_t now)
{
    if (!p->recv || !p->mb || p->state != P_LIVE || p->pull_seq || now < p->pull_at ||
        !b->connected)
        return;
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    if (ferry_mailbox_stats(p->mb, &st) < 0) return;
    if (st.waiting > 0) p->recv_until = now + 1000 * MS;
    if (now >= p->recv_until || st.queued >= PULL_WIN) return;
    if (mpull_send(b, p, 1) < 0) p->pull_at = now + 200 * MS;
}

/* The exporter's answer to a pull (m NULL: none came): a message (delivered here once),
 * EAGAIN (its mailbox is empty) or an error. */
static void mpull_done(bridge *b, pend *q, natsMsg *m, int err)
{
    proxy *p = *proxy_slot(b, q->name);
    if (!p || p->kind != 'm' || !p->recv || p->pull_seq != q->seq) return; /* stale */
    p->pull_seq = 0;
    int64_t now = ferry__now_ns();
    if (err != 0 || !m) { /* empty: the next tick; refused or away: later */
        p->pull_at = now + (err == EAGAIN || err == ETIMEDOUT ? 0 : 200 * MS);
        return;
    }
    int64_t type = header_num(m, "Ferry-Type"), seq = header_num(m, "Ferry-Seq");
    const char *boot = NULL;
    int len = natsMsg_GetDataLength(m);
    if (type < 0 || seq < 1 || len < 0 || (size_t)len > b->max_msg ||
        natsMsgHeader_Get(m, "Ferry-Boot", &boot) != NATS_OK || !boot || strlen(boot) != 16 ||
        strspn(boot, "0123456789abcdef") != 16) {
        p->pull_at = now + 200 * MS; /* malformed: not delivered, not acknowledged */
        return;
    }
    if (strcmp(p->in_boot, boot) != 0) { /* the exporter's bridge restarted */
        memcpy(p->in_boot, boot, sizeof p->in_boot);
        p->in_seq = 0;
    }
    if ((uint64_t)seq > p->in_seq) {
        int rc = ferry_mailbox_send(p->mb, type, natsMsg_GetData(m), (size_t)len, FERRY_NOW);
        if (rc < 0) { /* full (local senders): not acknowledged, it comes again */
            p->pull_at = now + 20 * MS;
            return;
        }
        p->in_seq = (uint64_t)seq;
    }
    mpull_maybe(b, p, now); /* receivers still active: the next one now */
    if (!p->pull_seq)
        mpull_send(b, p, 0); /* else acknowledge now: nothing is held there
                                for a message delivered here */
}

static void on_reply(bridge *b, natsMsg *m, const char *tail)
{
    /* tail: the sequence number, a bounded decimal */
    size_t n = strlen(tail);
    if (n < 1 || n > 19 || strspn(tail, "0123456789") != n) return;
    uint64_t seq = strtoull(tail, NULL, 10);
    pend **pp = pend_slot(b, seq), *p = *pp;
    if (!p) {
        b->dropped_replies++;
        return;
    }
    /* out of the table first: a handler below may send a request (a new entry, maybe at
     * the head of this very bucket, where pp points) */
    *pp = p->hnext;
    b->npend--;
    const char *st = NULL;
    int err;
    if (natsMsg_IsNoResponders(m))
        err = ENOENT;
    else
        err = natsMsgHeader_Get(m, "Ferry-Status", &st) == NATS_OK ? status_err(st) : EPIPE;
    if (p->mbox) {
        mbox_acked(b, p, err);
        pend_release(p);
        return;
    }
    if (p->mpull) {
        mpull_done(b, p, m, err);
        pend_release(p);
        return;
    }
    if (p->bput) {
        bput_acked(b, p, err);
        pend_release(p);
        return;
    }
    if (p->probe) {
        proxy *x = *proxy_slot(b, p->name);
        if (x && x->state == P_PROBING && strcmp(x->exporter, p->exporter) == 0) {
            if (err == 0 || err == EACCES)
                proxy_register(b, x, err == 0);
            else
                proxy_drop(b, x); /* the next heartbeat tries again */
        }
        pend_release(p);
        return;
    }
    conn *c = p->c;
    if (c->p) {
        int len = natsMsg_GetDataLength(m);
        if (err == 0 && len >= 0 && (size_t)len <= b->max_msg) {
            ferry_msg r = {.data = (void *)natsMsg_GetData(m), .len = (size_t)len};
            r.type = ferry__rpc_type(FERRY__RPC_REPLY, p->id);
            int rc = ferry_sendmsg(c->ch, &r, LOCAL_WAIT);
            if (rc < 0 && rc != -ENOENT && rc != -ECANCELED) {
                vlog("reply to a caller of %s: %s", c->p->name, ferry_strerror(rc));
                conn_close(b, c);
            }
        } else {
            /* the remote end failed (its owner died, the name went, a refusal): as for a
             * local peer that is gone, every call on the connection ends with -EPIPE */
            vlog("call to %s: remote %s", c->p->name, status_str(err));
            conn_close(b, c);
        }
    }
    pend_release(p);
}

static void relay_from_conn(bridge *b, conn *c, const ferry_msg *first);

static void conn_read(bridge *b, conn *c)
{
    for (int i = 0; i < 64 && c->p; i++) {
        ferry_msg msg = {.data = b->buf, .cap = b->max_msg};
        ssize_t rc = ferry_recvmsg(c->ch, &msg, 0, FERRY_NOW);
        if (rc == -EAGAIN) return;
        if (rc < 0) {
            if (rc != -EPIPE) vlog("caller of %s: %s", c->p->name, ferry_strerror((int)rc));
            conn_close(b, c);
            return;
        }
        if (msg.nfds > 0) {
            /* fds cannot cross hosts */
            for (uint32_t k = 0; k < msg.nfds; k++) close(msg.fds[k]);
            conn_close(b, c);
            return;
        }
        int kind = ferry__rpc_kind(msg.type);
        if (kind == 0 && !c->rpc) { /* a plain channel: relayed as such from now on */
            relay_from_conn(b, c, &msg);
            return;
        }
        c->rpc = 1;
        if (kind != FERRY__RPC_REQUEST && kind != FERRY__RPC_ONEWAY) continue; /* cancel... */
        ferry_rpc_request rq = {
            .id = ferry__rpc_id(msg.type), .oneway = kind == FERRY__RPC_ONEWAY, .msg = msg};
        if (rq.oneway) {
            char subj[SUBJ_MAX];
            subj_rpc(b, subj, c->p->exporter, c->p->name);
            publish(b, subj, NULL, "Ferry-Op", "oneway", rq.msg.data, rq.msg.len);
            continue;
        }
        pend *p = calloc(1, sizeof *p);
        if (!p) {
            conn_close(b, c);
            return;
        }
        p->c = c;
        p->id = rq.id;
        c->refs++;
        if (send_request(b, p, c->p->exporter, c->p->name, "call", NULL, rq.msg.data, rq.msg.len) <
            0) {
            conn_put(c);
            free(p);
            conn_close(b, c);
            return;
        }
    }
}

static void listener_ready(bridge *b, proxy *p)
{
    for (int i = 0; i < 64; i++) {
        ferry_chan *ch;
        if (ferry_accept(p->l, &ch, FERRY_NOW) < 0) return;
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            ferry_chan_close(ch);
            continue;
        }
        c->ch = ch;
        c->tag = T_CONN;
        c->fd = ferry_chan_poll_fd(ch);
        c->p = p;
        c->refs = 1;
        if (c->fd < 0 || epoll_add(b, c->fd, c) < 0) {
            ferry_chan_close(ch);
            free(c);
            continue;
        }
        c->next = b->conns;
        if (b->conns) b->conns->prev = c;
        b->conns = c;
        conn_read(b, c); /* a request may have come with the connection */
    }
}

/* ------------------------------------------------------------------ relayed channels */

static void relay_publish(bridge *b, relay *r, const char *op, uint64_t seq, int64_t type,
                          const void *data, size_t len)
{
    char subj[SUBJ_MAX], sq[24], ty[24];
    subj_rpc(b, subj, r->peer, r->name);
    snprintf(sq, sizeof sq, "%" PRIu64, seq);
    snprintf(ty, sizeof ty, "%" PRId64, type);
    const char *hdr[] = {"Ferry-Op", op,           "Ferry-Conn", r->connid, "Ferry-Seq",
                         sq,         "Ferry-Type", ty,           NULL};
    publish_h(b, subj, NULL, hdr, data, len);
}

static void relay_arm(bridge *b, relay *r, int on)
{
    if (r->armed == on) return;
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = r};
    epoll_ctl(b->ep, EPOLL_CTL_MOD, r->fd, &ev);
    r->armed = on;
}

/* Close the relay; notify: tell the peer (cclose). */
static void relay_close(bridge *b, relay *r, int notify)
{
    if (notify) relay_publish(b, r, "cclose", r->snd_next - 1, 0, NULL, 0);
    epoll_del(b, r->fd);
    ferry_chan_close(r->ch);
    for (uint64_t n = r->snd_acked + 1; n < r->snd_next; n++) free(r->win[n % RELAY_WIN].data);
    if (r->prev)
        r->prev->next = r->next;
    else
        b->relays = r->next;
    if (r->next) r->next->prev = r->prev;
    b->nrelays--;
    bury(b, r);
}

static relay *relay_new(bridge *b, const char *peer, const char *name, const char *connid,
                        ferry_chan *ch, int importer)
{
    relay *r = b->nrelays < OUTS_MAX ? calloc(1, sizeof *r) : NULL;
    if (!r) return NULL;
    r->tag = T_RELAY;
    snprintf(r->peer, sizeof r->peer, "%s", peer);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->connid, sizeof r->connid, "%s", connid);
    r->importer = importer;
    r->ch = ch;
    r->fd = ferry_chan_poll_fd(ch);
    r->snd_next = r->rcv_next = 1;
    r->snd_progress = r->peer_seen = ferry__now_ns();
    r->armed = 1;
    if (r->fd < 0 || epoll_add(b, r->fd, r) < 0) {
        free(r);
        return NULL;
    }
    r->next = b->relays;
    if (b->relays) b->relays->prev = r;
    b->relays = r;
    b->nrelays++;
    return r;
}

static relay *relay_find(bridge *b, const char *peer, const char *connid)
{
    for (relay *r = b->relays; r; r = r->next)
        if (strcmp(r->connid, connid) == 0 && strcmp(r->peer, peer) == 0) return r;
    return NULL;
}

/* A message from the local end: numbered, kept, sent. */
static int relay_take(bridge *b, relay *r, const ferry_msg *m)
{
    rmsg *w = &r->win[r->snd_next % RELAY_WIN];
    w->data = malloc(m->len ? m->len : 1);
    if (!w->data) return -ENOMEM;
    memcpy(w->data, m->data, m->len);
    w->len = m->len;
    w->type = m->type;
    relay_publish(b, r, "cdata", r->snd_next, w->type, w->data, w->len);
    r->snd_next++;
    return 0;
}

static void relay_local_ready(bridge *b, relay *r)
{
    while (r->tag && !r->local_eof) {
        if (r->snd_next - r->snd_acked - 1 >= RELAY_WIN) { /* window full: push back */
            relay_arm(b, r, 0);
            return;
        }
        ferry_msg m = {.data = b->buf, .cap = b->max_msg};
        ssize_t rc = ferry_recvmsg(r->ch, &m, 0, FERRY_NOW);
        if (rc == -EAGAIN) return;
        if (rc == -EPIPE) { /* the local end closed: cclose once all is acknowledged */
            r->local_eof = 1;
            relay_arm(b, r, 0);
            if (r->snd_acked + 1 == r->snd_next) relay_close(b, r, 1);
            return;
        }
        if (rc < 0 || m.nfds > 0) { /* fds cannot cross hosts (a server whose libferry
                                     * ignores our FERRY_NO_FDS sent some) */
            for (uint32_t k = 0; k < m.nfds; k++) close(m.fds[k]);
            relay_close(b, r, 1);
            return;
        }
        if (relay_take(b, r, &m) < 0) {
            relay_close(b, r, 1);
            return;
        }
    }
}

/* The first plain message on a proxy connection: the connection becomes a relay. */
static void relay_from_conn(bridge *b, conn *c, const ferry_msg *first)
{
    char connid[48];
    snprintf(connid, sizeof connid, "%s-%" PRIu64, b->boot, ++b->nconnid);
    ferry_chan *ch = c->ch;
    proxy *p = c->p;
    epoll_del(b, c->fd);
    c->ch = NULL; /* the relay's now */
    c->p = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    conn_put(c);
    relay *r = relay_new(b, p->exporter, p->name, connid, ch, 1);
    if (!r) {
        ferry_chan_close(ch);
        return;
    }
    relay_publish(b, r, "copen", 0, 0, NULL, 0);
    if (relay_take(b, r, first) < 0) {
        relay_close(b, r, 1);
        return;
    }
    relay_local_ready(b, r);
}

/* cdata, cack, cclose for a relay of ours with caller (copen is the exporter's). */
static const char *relay_connid(natsMsg *m)
{
    const char *connid = NULL;
    if (natsMsgHeader_Get(m, "Ferry-Conn", &connid) != NATS_OK || !connid) return NULL;
    size_t n = strlen(connid);
    if (n < 1 || n >= 48 || strspn(connid, "0123456789abcdef-") != n) return NULL;
    return connid;
}

/* Tell peer that connid is closed here (a relay we do not have). */
static void relay_refuse(bridge *b, const char *peer, const char *name, const char *connid)
{
    relay *tmp = calloc(1, sizeof *tmp);
    if (!tmp) return;
    snprintf(tmp->peer, sizeof tmp->peer, "%s", peer);
    snprintf(tmp->name, sizeof tmp->name, "%s", name);
    snprintf(tmp->connid, sizeof tmp->connid, "%s", connid);
    relay_publish(b, tmp, "cclose", 0, 0, NULL, 0);
    free(tmp);
}

/* copen from caller (the export policy allowed it): connect to the local server. */
static void on_copen(bridge *b, natsMsg *m, const char *caller, const char *name)
{
    const char *connid = relay_connid(m);
    if (!connid || relay_find(b, caller, connid)) return; /* a repeat */
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = b->max_msg;
    o.flags |= FERRY_NO_FDS; /* the server's sends with fds: -EOPNOTSUPP there */
    o.relay_for = caller;    /* the server sees it if it trusts our uid (FERRY_TRUST_RELAY) */
    ferry_chan *ch;
    int rc = ferry_connect(name, FERRY_KIND_UNIX, &o, &ch, LOCAL_WAIT);
    relay *r = rc == 0 ? relay_new(b, caller, name, connid, ch, 0) : NULL;
    if (!r) {
        if (rc == 0) ferry_chan_close(ch);
        vlog("channel to %s for %s: %s", name, caller, ferry_strerror(rc < 0 ? rc : -ENOMEM));
        relay_refuse(b, caller, name, connid);
        return;
    }
    r->peer_seen = ferry__now_ns();
    relay_local_ready(b, r); /* the server may have spoken first */
}

static void on_relay_op(bridge *b, natsMsg *m, const char *caller, const char *name, const char *op)
{
    const char *connid = relay_connid(m);
    int64_t seq = header_num(m, "Ferry-Seq");
    if (!connid || seq < 0) return;
    relay *r = relay_find(b, caller, connid);
    if (!r) { /* gone here: tell the peer, unless it is telling us */
        if (strcmp(op, "cclose") != 0) relay_refuse(b, caller, name, connid);
        return;
    }
    r->peer_seen = ferry__now_ns();
    if (strcmp(op, "cclose") == 0) {
        relay_close(b, r, 0);
        return;
    }
    if (strcmp(op, "cack") == 0) {
        uint64_t a = (uint64_t)seq;
        if (a <= r->snd_acked || a >= r->snd_next) return;
        for (uint64_t n = r->snd_acked + 1; n <= a; n++) {
            free(r->win[n % RELAY_WIN].data);
            r->win[n % RELAY_WIN].data = NULL;
        }
        r->snd_acked = a;
        r->snd_progress = ferry__now_ns();
        if (r->local_eof) {
            if (r->snd_acked + 1 == r->snd_next) relay_close(b, r, 1);
            return;
        }
        relay_arm(b, r, 1);
        relay_local_ready(b, r);
        return;
    }
    if (strcmp(op, "cdata") != 0) return;
    int64_t type = header_num(m, "Ferry-Type");
    if (type < 0) return;
    if ((uint64_t)seq == r->rcv_next) {
        ferry_msg d = {.type = type,
                       .data = (void *)natsMsg_GetData(m),
                       .len = (size_t)natsMsg_GetDataLength(m)};
        int rc = ferry_sendmsg(r->ch, &d, FERRY_NOW);
        if (rc == -EAGAIN || rc == -ETIMEDOUT) return; /* full: it comes again */
        if (rc < 0) {
            relay_close(b, r, 1);
            return;
        }
        r->rcv_next++;
        if (++r->rcv_unacked < 32) return;
    }
    /* every 32 delivered, and on a repeat or a gap: where we are */
    r->rcv_unacked = 0;
    relay_publish(b, r, "cack", r->rcv_next - 1, 0, NULL, 0);
}

/* From tick: acknowledgements owed, and everything unacknowledged sent again when the
 * peer has acknowledged nothing for 300 ms (a relay whose peer says nothing for 30 s is
 * closed). */
static void relay_tick(bridge *b, int64_t now)
{
    for (relay *r = b->relays, *nx; r; r = nx) {
        nx = r->next;
        if (now - r->peer_seen > b->hb_ns * b->dead_after * 2) { /* the peer's bridge is gone */
            vlog("channel %s with %s: the peer is silent", r->connid, r->peer);
            relay_close(b, r, 0);
            continue;
        }
        if (r->rcv_unacked) {
            r->rcv_unacked = 0;
            relay_publish(b, r, "cack", r->rcv_next - 1, 0, NULL, 0);
        }
        if (r->snd_acked + 1 < r->snd_next && now - r->snd_progress > 300 * MS && b->connected) {
            if (r->importer && r->snd_acked == 0) relay_publish(b, r, "copen", 0, 0, NULL, 0);
            for (uint64_t n = r->snd_acked + 1; n < r->snd_next; n++) {
                rmsg *w = &r->win[n % RELAY_WIN];
                relay_publish(b, r, "cdata", n, w->type, w->data, w->len);
            }
            r->snd_progress = now; /* and again after another 300 ms */
        }
    }
}

/* ------------------------------------------------------------------ exporter */

static const rule *export_rule(bridge *b, const char *name)
{
    for (int i = 0; i < b->nrules; i++)
        if (ferry__pattern_match(b->rules[i].pat, name)) return &b->rules[i];
    return NULL;
}

static int rule_allows(const rule *r, const char *caller)
{
    if (r->any) return 1;
    for (size_t i = 0; i < r->nusers; i++)
        if (strcmp(r->users[i], caller) == 0) return 1;
    return 0;
}

static void xcall_done(bridge *b, xcall *x, ssize_t rc)
{
    out *o = x->o;
    if (rc >= 0)
        publish(b, x->reply, NULL, "Ferry-Status", "0", x->resp.data, x->resp.len);
    else {
        vlog("call to local %s for %s: %s", o->name, o->caller, ferry_strerror((int)rc));
        reply_status(b, x->reply,
                     rc == -EMSGSIZE    ? EMSGSIZE
                     : rc == -ECANCELED ? ETIMEDOUT
                                        : EPIPE);
    }
    for (uint32_t k = 0; k < x->resp.nfds; k++) close(x->resp.fds[k]); /* fds stay here */
    if (x->prev)
        x->prev->next = x->next;
    else
        o->calls = x->next;
    if (x->next) x->next->prev = x->prev;
    free(x->resp.data);
    free(x);
}

static void on_xcall(ferry_rpc_client *c, uint64_t id, ssize_t rc, ferry_msg *resp, void *ctx)
{
    (void)c;
    (void)id;
    (void)resp;
    xcall_done(the_bridge, ctx, rc);
}

static void out_close(bridge *b, out *o)
{
    epoll_del(b, o->fd);
    ferry_rpc_client_close(o->c); /* pending callbacks are not run: answer them here */
    while (o->calls) xcall_done(b, o->calls, -EPIPE);
    if (o->prev)
        o->prev->next = o->next;
    else
        b->outs = o->next;
    if (o->next) o->next->prev = o->prev;
    b->nouts--;
    bury(b, o);
}

static int is_own_proxy(bridge *b, const char *name)
{
    return *proxy_slot(b, name) != NULL;
}

static out *out_get(bridge *b, const char *name, const char *caller, int *err)
{
    for (out *o = b->outs; o; o = o->next)
        if (strcmp(o->name, name) == 0 && strcmp(o->caller, caller) == 0) return o;
    if (b->nouts >= OUTS_MAX) {
        *err = EBUSY;
        return NULL;
    }
    out *o = calloc(1, sizeof *o);
    if (!o) {
        *err = EBUSY;
        return NULL;
    }
    ferry_chan_opts opts;
    ferry_chan_opts_init(&opts);
    opts.max_msg = b->max_msg;
    opts.relay_for = caller; /* the server sees it if it trusts our uid (FERRY_TRUST_RELAY) */
    /* A reply with fds is -EOPNOTSUPP at the server, whose id then still awaits a reply
     * without them (ferry_reply); one that comes anyway (an older libferry) is closed
     * here (on_xcall). */
    opts.flags |= FERRY_NO_FDS;
    int rc = ferry_rpc_connect(name, FERRY_KIND_UNIX, &opts, &o->c, LOCAL_WAIT);
    if (rc < 0) {
        free(o);
        *err = rc == -ENOENT ? ENOENT : rc == -EACCES ? EACCES : EPIPE;
        return NULL;
    }
    o->tag = T_OUT;
    o->fd = ferry_rpc_poll_fd(o->c);
    if (o->fd < 0 || epoll_add(b, o->fd, o) < 0) {
        ferry_rpc_client_close(o->c);
        free(o);
        *err = EBUSY;
        return NULL;
    }
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->caller, sizeof o->caller, "%s", caller);
    o->next = b->outs;
    if (b->outs) b->outs->prev = o;
    b->outs = o;
    b->nouts++;
    return o;
}

/* A message held for a puller goes back into the mailbox (at its end: a receiver here,
 * or the next pull, takes it), so that a puller that went away loses nothing. */
static void mbout_give_back(bridge *b, mbout *o)
{
    if (!o->held) return;
    int rc = ferry_mailbox_send(o->mb, o->htype, o->hbuf, o->hlen, FERRY_NOW);
    if (rc == 0) {
        o->held = 0;
        vlog("mailbox %s: a message held for %s given back", o->name, o->caller);
    } else if (rc != -EAGAIN && rc != -ETIMEDOUT && rc != -ENOBUFS) {
        o->held = 0;
        b->mb_lost++;
        ferry__bridge_logf("mailbox %s: a message held for %s: %s (lost)", o->name, o->caller,
                           ferry_strerror(rc));
    }
}

static void mbout_close(bridge *b, mbout *o)
{
    for (mbout **pp = &b->mbouts; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    b->nmbouts--;
    mbout_give_back(b, o);
    ferry_mailbox_close(o->mb);
    free(o->hbuf);
    free(o);
}

/* A header holding a bounded decimal (at most 18 digits: no overflow). -1 if not. */
static int64_t header_num(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) return -1;
    size_t n = strlen(v);
    if (n < 1 || n > 18 || strspn(v, "0123456789") != n) return -1;
    return (int64_t)strtoll(v, NULL, 10);
}

/* The handle on name for caller, opened on first use; NULL: refused, answered on reply. */
static mbout *mbout_get(bridge *b, const char *name, const char *caller, const char *reply)
{
    mbout *o = b->mbouts;
    while (o && (strcmp(o->name, name) != 0 || strcmp(o->caller, caller) != 0)) o = o->next;
    if (o) return o;
    if (b->nmbouts >= OUTS_MAX || !(o = calloc(1, sizeof *o))) {
        reply_status(b, reply, EBUSY);
        return NULL;
    }
    int rc = ferry_mailbox_open(name, &o->mb, LOCAL_WAIT);
    if (rc < 0) {
        free(o);
        reply_status(b, reply, rc == -EACCES ? EACCES : ENOENT);
        return NULL;
    }
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->caller, sizeof o->caller, "%s", caller);
    o->next = b->mbouts;
    b->mbouts = o;
    b->nmbouts++;
    return o;
}

/* A message for one of our mailboxes from caller (allowed by the policy): delivered into
 * the local mailbox once per (caller's bridge incarnation, message number). */
static void on_put(bridge *b, natsMsg *m, const char *caller, const char *name, const char *reply)
{
    int64_t type = header_num(m, "Ferry-Type"), seq = header_num(m, "Ferry-Seq");
    const char *boot = NULL;
    if (type < 0 || seq < 1 || natsMsgHeader_Get(m, "Ferry-Boot", &boot) != NATS_OK || !boot ||
        strlen(boot) != 16 || strspn(boot, "0123456789abcdef") != 16)
        return; /* malformed: not answered */
    mbout *o = mbout_get(b, name, caller, reply);
    if (!o) return;
    if (strcmp(o->boot, boot) != 0) { /* another incarnation of the sender's bridge */
        memcpy(o->boot, boot, sizeof o->boot);
        o->last_seq = 0;
    }
    /* the sender's lowest unacknowledged number (a sender without it: this one); what is
     * below it was delivered, by us or by a bridge before us */
    int64_t base = header_num(m, "Ferry-Base");
    if (base < 1) base = seq;
    if (base > seq) return; /* malformed: not answered */
    if (o->last_seq < (uint64_t)base - 1) o->last_seq = (uint64_t)base - 1;
    if ((uint64_t)seq <= o->last_seq) { /* delivered already: acknowledged again */
        reply_status(b, reply, 0);
        return;
    }
    if ((uint64_t)seq != o->last_seq + 1) { /* an earlier one is missing: in order only */
        reply_status(b, reply, EBUSY);
        return;
    }
    int rc = ferry_mailbox_send(o->mb, type, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                                FERRY_NOW);
    if (rc == 0) {
        o->last_seq = (uint64_t)seq;
        reply_status(b, reply, 0);
    } else if (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -ENOBUFS) {
        reply_status(b, reply, EBUSY); /* full: the sender's bridge tries again */
    } else if (rc == -EMSGSIZE) {
        reply_status(b, reply, EMSGSIZE);
    } else {
        vlog("mailbox %s: %s", name, ferry_strerror(rc));
        mbout_close(b, o);
        reply_status(b, reply, EPIPE);
    }
}

/* A pull from caller (a bridge whose local receivers take from our mailbox: --recv
 * there): forget the held message if the pull acknowledges it (its number, of this
 * incarnation), then answer with the held message again or the next one taken from the
 * mailbox (EAGAIN: it is empty). A message is held until acknowledged, so a lost answer
 * or a lost pull costs nothing: the next pull gets it again. */
static void on_mpull(bridge *b, natsMsg *m, const char *caller, const char *name, const char *reply)
{
    mbout *o = mbout_get(b, name, caller, reply);
    if (!o) return;
    o->pulled_at = ferry__now_ns();
    const char *ack_boot = NULL;
    int64_t ack = header_num(m, "Ferry-Ack");
    if (o->held && ack >= 0 && (uint64_t)ack >= o->hseq &&
        natsMsgHeader_Get(m, "Ferry-Ack-Boot", &ack_boot) == NATS_OK && ack_boot &&
        strcmp(ack_boot, b->boot) == 0)
        o->held = 0; /* delivered there */
    const char *want = NULL;
    if (natsMsgHeader_Get(m, "Ferry-Want", &want) == NATS_OK && want && strcmp(want, "0") == 0) {
        reply_status(b, reply, 0); /* the puller stops: only the acknowledgement */
        return;
    }
    if (!o->held) {
        if (!o->hbuf && !(o->hbuf = malloc(b->max_msg))) {
            reply_status(b, reply, EBUSY);
            return;
        }
        ssize_t rc = ferry_mailbox_recv(o->mb, 0, &o->htype, o->hbuf, b->max_msg, FERRY_NOW);
        if (rc < 0) {
            if (rc != -EAGAIN && rc != -EMSGSIZE)
                vlog("mailbox %s: %s", name, ferry_strerror((int)rc));
            reply_status(b, reply, rc == -EAGAIN ? EAGAIN : rc == -EMSGSIZE ? EMSGSIZE : EPIPE);
            if (rc != -EAGAIN && rc != -EMSGSIZE) mbout_close(b, o);
            return;
        }
        o->hlen = (size_t)rc;
        o->hseq = ++b->mseq;
        o->held = 1;
    }
    char type[24], seq[24];
    snprintf(type, sizeof type, "%" PRId64, o->htype);
    snprintf(seq, sizeof seq, "%" PRIu64, o->hseq);
    const char *hdr[] = {"Ferry-Status", "0",     "Ferry-Type", type, "Ferry-Seq", seq,
                         "Ferry-Boot",   b->boot, NULL};
    publish_h(b, reply, NULL, hdr, o->hbuf, o->hlen);
}

/* Messages held for pullers silent for twice the heartbeat lapse go back. */
static void mbout_tick(bridge *b, int64_t now)
{
    for (mbout *o = b->mbouts; o; o = o->next)
        if (o->held && now - o->pulled_at > 2 * b->hb_ns * b->dead_after) mbout_give_back(b, o);
}

/* ---- exported broadcasts */

static void bcast_ready(bridge *b, bcout *o);

static void bcout_close(bridge *b, bcout *o)
{
    for (bcout **pp = &b->bcouts; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    b->nbcouts--;
    epoll_del(b, o->fd);
    ferry_sub_close(o->sub);
    ferry_bcast_close(o->bc);
    while (o->subs) {
        rsub *r = o->subs;
        o->subs = r->next;
        free(r);
    }
    for (int i = 0; o->win && i < MBOX_WIN; i++) free(o->win[i].data);
    free(o->win);
    free(o->msg);
    bury(b, o);
}

static void bcast_arm(bridge *b, bcout *o, int on)
{
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = o};
    epoll_ctl(b->ep, EPOLL_CTL_MOD, o->fd, &ev);
}

static bcout *bcout_get(bridge *b, const char *name)
{
    for (bcout *o = b->bcouts; o; o = o->next)
        if (strcmp(o->name, name) == 0) return o;
    if (b->nbcouts >= OUTS_MAX) return NULL;
    bcout *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->tag = T_BCAST;
    o->fd = -1;
    snprintf(o->name, sizeof o->name, "%s", name);
    int rc = ferry_bcast_open(name, &o->bc, LOCAL_WAIT);
    if (rc == 0 && ferry_bcast_max_msg(o->bc) > b->max_msg) rc = -EMSGSIZE;
    struct stat st;
    if (rc == 0 && fstat(ferry_bcast_fd(o->bc), &st) != 0) rc = -errno;
    if (rc == 0)
        snprintf(o->stream, sizeof o->stream, "%016llx",
                 (unsigned long long)(((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino));
    if (rc == 0 && !(o->msg = malloc(b->max_msg))) rc = -ENOMEM;
    if (rc == 0 && !(o->win = calloc(MBOX_WIN, sizeof *o->win))) rc = -ENOMEM;
    if (rc == 0) rc = ferry_bcast_subscribe(o->bc, 0, &o->sub); /* lossless */
    if (rc == 0) rc = o->fd = ferry_sub_poll_fd(o->sub);
    if (rc >= 0) rc = epoll_add(b, o->fd, o);
    if (rc < 0) {
        vlog("broadcast %s: %s", name, ferry_strerror(rc));
        ferry_sub_close(o->sub);
        ferry_bcast_close(o->bc);
        free(o->win);
        free(o->msg);
        free(o);
        return NULL;
    }
    o->next = b->bcouts;
    b->bcouts = o;
    b->nbcouts++;
    return o;
}

/* A remote subscriber asks for (or renews its lease on) one of our broadcasts (the
 * policy allowed it). It gets the messages taken after now. */
static void on_sub(bridge *b, natsMsg *m, const char *caller, const char *name)
{
    bcout *o = bcout_get(b, name);
    if (!o) return;
    rsub *r = o->subs;
    while (r && strcmp(r->user, caller) != 0) r = r->next;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return;
        snprintf(r->user, sizeof r->user, "%s", caller);
        r->lo = o->hi; /* a message taken already is not its */
        r->next = o->subs;
        o->subs = r;
        vlog("%s subscribed to %s", caller, name);
    }
    r->missed = 0;
    r->wide = header_num(m, "Ferry-Win") >= 1; /* its bridge takes a window */
}

/* Send (or send again) message k to the remote subscriber r. Ferry-Base: the number of
 * the first message r has not acknowledged (the messages before it that its bridge did
 * not publish will never come: a gap it counts); an older importer ignores it. */
static void bput_send(bridge *b, bcout *o, rsub *r, uint64_t k)
{
    pend *q = calloc(1, sizeof *q);
    if (!q) {
        r->retry_at = ferry__now_ns() + 200 * MS;
        return;
    }
    const mslot *m = &o->win[k % MBOX_WIN];
    q->bput = 1;
    q->msg_seq = k; /* here: the message's count, not its number */
    snprintf(q->name, sizeof q->name, "%s", o->name);
    snprintf(q->exporter, sizeof q->exporter, "%s", r->user); /* here: the subscriber */
    char type[24], seq[24], base[24];
    snprintf(type, sizeof type, "%" PRId64, m->type);
    snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
    snprintf(base, sizeof base, "%" PRIu64, o->win[r->lo % MBOX_WIN].seq);
    const char *hdr[] = {"Ferry-Type",   type,      "Ferry-Seq",  seq,  "Ferry-Boot", b->boot,
                         "Ferry-Stream", o->stream, "Ferry-Base", base, NULL};
    if (send_request(b, q, r->user, o->name, "bput", hdr, m->data, m->len) < 0) {
        free(q);
        r->retry_at = ferry__now_ns() + 200 * MS;
        return;
    }
    q->deadline = ferry__now_ns() + 1000 * MS; /* no answer: sent again */
    r->pend[k % MBOX_WIN] = q->seq;
}

/* Send r, in order, every message of its window neither acknowledged nor in flight. */
static void bsub_pump(bridge *b, bcout *o, rsub *r)
{
    if (!b->connected || ferry__now_ns() < r->retry_at) return;
    uint64_t end = r->lo + (r->wide ? (uint64_t)b->bc_win : 1);
    if (end > o->hi) end = o->hi;
    for (uint64_t k = r->lo; k < end; k++)
        if (!r->ok[k % MBOX_WIN] && !r->pend[k % MBOX_WIN]) bput_send(b, o, r, k);
}

/* Drop the messages every remote subscriber acknowledged, then take more. */
static void bcast_advance(bridge *b, bcout *o)
{
    if (!o->tag) return;
    uint64_t lo = o->hi;
    for (rsub *r = o->subs; r; r = r->next)
        if (r->lo < lo) lo = r->lo;
    for (; o->lo < lo; o->lo++) {
        mslot *f = &o->win[o->lo % MBOX_WIN];
        free(f->data);
        *f = (mslot){0};
    }
    if (o->ended && o->lo == o->hi) {
        bcout_close(b, o);
        return;
    }
    bcast_ready(b, o);
}

/* Take messages while the window has room and send them. */
static void bcast_ready(bridge *b, bcout *o)
{
    if (!o->tag || o->ended) return;
    if (!o->subs) { /* nobody remote any more */
        bcout_close(b, o);
        return;
    }
    while (o->hi - o->lo < (uint64_t)b->bc_win) {
        int64_t type = 0;
        ssize_t rc = ferry_sub_recv(o->sub, o->msg, b->max_msg, &type, FERRY_NOW);
        if (rc == -EAGAIN) break;
        if (rc < 0) { /* -EPIPE: the stream ended (the importers' names go with the heartbeat) */
            vlog("broadcast %s: %s", o->name, ferry_strerror((int)rc));
            o->ended = 1;
            bcast_arm(b, o, 0);
            if (o->lo == o->hi) bcout_close(b, o); /* else once the rest is acknowledged */
            return;
        }
        char *d = malloc(rc > 0 ? (size_t)rc : 1);
        if (!d) { /* lost: the importers count it as a gap (its number is skipped) */
            ferry__bridge_logf("broadcast %s: no memory for a message (lost)", o->name);
            continue;
        }
        memcpy(d, o->msg, (size_t)rc);
        o->seq = ferry_sub_seq(o->sub); /* this message's number in the stream + 1 */
        o->win[o->hi % MBOX_WIN] =
            (mslot){.data = d, .len = (size_t)rc, .type = type, .seq = o->seq};
        o->hi++;
        for (rsub *r = o->subs; r; r = r->next) bsub_pump(b, o, r);
    }
    bcast_arm(b, o, o->hi - o->lo < (uint64_t)b->bc_win); /* a full window: stop polling */
}

/* A remote subscriber's answer to message q->msg_seq (a count). */
static void bput_acked(bridge *b, pend *q, int err)
{
    bcout *o = b->bcouts;
    while (o && strcmp(o->name, q->name) != 0) o = o->next;
    if (!o) return;
    rsub *r = o->subs;
    while (r && strcmp(r->user, q->exporter) != 0) r = r->next;
    uint64_t k = q->msg_seq;
    if (!r || k < r->lo || k >= o->hi || r->pend[k % MBOX_WIN] != q->seq) return; /* stale */
    r->pend[k % MBOX_WIN] = 0;
    int64_t now = ferry__now_ns();
    if (err == 0 || err == EMSGSIZE) { /* EMSGSIZE: never publishable there (a gap there) */
        r->ok[k % MBOX_WIN] = 1;
        if (k == r->lo) r->retry_at = 0; /* the first went: the rest may follow now */
        while (r->lo < o->hi && r->ok[r->lo % MBOX_WIN]) r->ok[r->lo++ % MBOX_WIN] = 0;
        bsub_pump(b, o, r);
        bcast_advance(b, o);
        return;
    }
    if (err == EAGAIN) { /* an earlier message missing there: again once it went (or soon) */
        if (r->retry_at <= now) r->retry_at = now + 100 * MS;
        return;
    }
    /* no answer: again now; its ring full (a local lossless subscriber behind): soon;
     * refused or away: later */
    r->retry_at = now + (err == ETIMEDOUT ? 0 : err == EBUSY ? 5 : 200) * MS;
}

/* Leases, retries: from tick. */
static void bcast_tick(bridge *b)
{
    for (bcout *o = b->bcouts, *on; o; o = on) {
        on = o->next;
        for (rsub **rp = &o->subs; *rp;) {
            rsub *r = *rp;
            if (r->missed > b->dead_after) {
                vlog("%s's subscription to %s lapsed", r->user, o->name);
                *rp = r->next;
                free(r);
            } else {
                rp = &r->next;
            }
        }
        if (!o->subs) {
            bcout_close(b, o);
            continue;
        }
        for (rsub *r = o->subs; r; r = r->next) bsub_pump(b, o, r);
        bcast_advance(b, o); /* a lapsed subscriber held the window */
    }
}

/* A request for one of our names: tail = "<caller>.<name>". */
static void on_rpc(bridge *b, natsMsg *m, const char *tail)
{
    const char *dot = strchr(tail, '.');
    if (!dot || !ferry__bridge_id_valid(tail, (size_t)(dot - tail))) return;
    char caller[ID_MAX + 1];
    memcpy(caller, tail, (size_t)(dot - tail));
    caller[dot - tail] = 0;
    const char *name = dot + 1;
    const char *reply = natsMsg_GetReply(m);
    if (reply && strlen(reply) >= SUBJ_MAX) return;
    const char *op = NULL;
    if (natsMsgHeader_Get(m, "Ferry-Op", &op) != NATS_OK || !op) return;
    int oneway = strcmp(op, "oneway") == 0, probe = strcmp(op, "probe") == 0;
    int put = strcmp(op, "put") == 0, sub = strcmp(op, "sub") == 0;
    int bput = strcmp(op, "bput") == 0, copen = strcmp(op, "copen") == 0;
    int mpull = strcmp(op, "mpull") == 0;
    int crelay = !strcmp(op, "cdata") || !strcmp(op, "cack") || !strcmp(op, "cclose");
    if (!oneway && !probe && !put && !sub && !bput && !copen && !crelay && !mpull &&
        strcmp(op, "call") != 0)
        return;
    if (!reply && !oneway && !sub && !copen && !crelay) return;
    int len = natsMsg_GetDataLength(m);
    if (len < 0 || (size_t)len > b->max_msg) {
        reply_status(b, reply, EMSGSIZE);
        return;
    }
    if (bput) { /* a broadcast we import, from its exporter (the "caller" here) */
        if (ferry__name_valid(name) == 0) on_bput(b, m, caller, name, reply);
        return;
    }
    if (crelay) { /* a relayed channel of ours, either side */
        if (ferry__name_valid(name) == 0) on_relay_op(b, m, caller, name, op);
        return;
    }
    /* the policy: a name we export (never one we import: no forwarding through us),
     * to this caller */
    const rule *r =
        ferry__name_valid(name) == 0 && !is_own_proxy(b, name) ? export_rule(b, name) : NULL;
    if (!r) {
        reply_status(b, reply, ENOENT);
        return;
    }
    if (!rule_allows(r, caller)) {
        vlog("refused %s to %s", name, caller);
        reply_status(b, reply, EACCES);
        return;
    }
    if (probe) {
        reply_status(b, reply, 0);
        return;
    }
    if (put) {
        on_put(b, m, caller, name, reply);
        return;
    }
    if (mpull) {
        on_mpull(b, m, caller, name, reply);
        return;
    }
    if (sub) {
        on_sub(b, m, caller, name);
        return;
    }
    if (copen) {
        on_copen(b, m, caller, name);
        return;
    }
    int err = 0;
    out *o = out_get(b, name, caller, &err);
    if (!o) {
        reply_status(b, reply, err);
        return;
    }
    ferry_msg req = {.data = (void *)natsMsg_GetData(m), .len = (size_t)len};
    if (oneway) {
        if (ferry_rpc_send(o->c, &req, LOCAL_WAIT) == -EPIPE) out_close(b, o);
        return;
    }
    xcall *x = calloc(1, sizeof *x);
    char *rb = malloc(b->max_msg);
    if (!x || !rb) {
        free(x);
        free(rb);
        reply_status(b, reply, EBUSY);
        return;
    }
    x->o = o;
    x->deadline = ferry__now_ns() + b->call_timeout_ns;
    snprintf(x->reply, sizeof x->reply, "%s", reply);
    x->resp = (ferry_msg){.data = rb, .cap = b->max_msg};
    int rc = ferry_call_async(o->c, &req, &x->resp, on_xcall, x, &x->id, LOCAL_WAIT);
    if (rc < 0) {
        free(rb);
        free(x);
        reply_status(b, reply, rc == -ETIMEDOUT ? EBUSY : EPIPE);
        if (rc == -EPIPE || rc == -EBADMSG) out_close(b, o);
        return;
    }
    x->next = o->calls;
    if (o->calls) o->calls->prev = x;
    o->calls = x;
}

static void out_ready(bridge *b, out *o)
{
    int rc = ferry_rpc_dispatch(o->c);
    if (rc < 0) vlog("local %s for %s: %s", o->name, o->caller, ferry_strerror(rc));
    if (rc == -EPIPE || rc == -EBADMSG) out_close(b, o); /* its callbacks have run */
}

/* ------------------------------------------------------------------ heartbeat, timers */

/* Is the exported mailbox name kept in JetStream (--jetstream)? */
static int js_wanted(bridge *b, const char *name)
{
    for (int i = 0; i < b->njss; i++)
        if (ferry__pattern_match(b->jss[i].pat, name)) return 1;
    return 0;
}

/* May caller send into our mailbox name (the export policy)? Called by jetstream.c's
 * consumer threads: it reads the configuration only, which nothing changes after
 * parse_args. */
static int js_allow(void *ctx, const char *name, const char *caller)
{
    bridge *b = ctx;
    const rule *r = export_rule(b, name);
    return r && rule_allows(r, caller);
}

static void send_hb(bridge *b)
{
    char *text = malloc(HB_MAX);
    if (!text) return;
    /* " w": our mailboxes take a window of puts (mbox_ready) */
    size_t n = (size_t)snprintf(text, HB_MAX, "ferry-hb 1 %s w\n", b->boot);
    int count = 0;
    if (b->nrules > 0) {
        ferry_name_info info[64];
        char after[256] = "";
        for (;;) {
            ssize_t got = ferry_list(after, info, 64, LOCAL_WAIT);
            if (got < 0) { /* ferryd away or slow: say what we said last (no withdrawal) */
                vlog("listing the local names: %s", ferry_strerror((int)got));
                if (b->hb_last) {
                    free(text);
                    text = b->hb_last;
                    n = b->hb_last_len;
                    b->hb_last = NULL;
                }
                break;
            }
            if (got == 0) break;
            for (ssize_t i = 0; i < got && count < HB_NAMES; i++) {
                const char *name = info[i].name;
                if ((info[i].kind != 0 && info[i].kind != FERRY_OBJ_MAILBOX &&
                     info[i].kind != FERRY_OBJ_BCAST) ||
                    info[i].pid == getpid() || is_own_proxy(b, name) || !export_rule(b, name))
                    continue;
                size_t l = strlen(name);
                if (n + l + 3 >= HB_MAX) break;
                text[n] = info[i].kind == 0 ? 's' : info[i].kind == FERRY_OBJ_MAILBOX ? 'm' : 'b';
                if (text[n] == 'm' && js_wanted(b, name) && ferry__js_export(b->js, name) == 0)
                    text[n] = 'j'; /* kept in JetStream: consumed by its thread */
                text[n + 1] = ' ';
                memcpy(text + n + 2, name, l);
                text[n + 2 + l] = '\n';
                n += l + 3;
                count++;
            }
            if (got < 64) break;
            snprintf(after, sizeof after, "%s", info[got - 1].name);
        }
    }
    char subj[SUBJ_MAX];
    snprintf(subj, sizeof subj, "ferry.%s.hb.%s", b->cluster, b->user);
    if (b->connected && publish(b, subj, NULL, NULL, NULL, text, n) == 0)
        for (bcout *o = b->bcouts; o; o = o->next)
            for (rsub *r = o->subs; r; r = r->next) r->missed++;
    free(b->hb_last);
    b->hb_last = text;
    b->hb_last_len = n;
    b->next_hb = ferry__now_ns() + b->hb_ns;
}

/* ferryd came back after a restart: the imported mailboxes and broadcasts are published
 * again (servers' listeners register again by themselves). */
static void republish(bridge *b)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (proxy *p = b->proxies[i]; p; p = p->hnext) {
            if (!p->pub || (!p->mb && !p->bc)) continue;
            ferry_pub_close(p->pub);
            p->pub = NULL;
            ferry_policy pol;
            proxy_policy(p, p->mode, &pol);
            int fd = p->mb ? ferry_mailbox_fd(p->mb) : ferry_bcast_fd(p->bc);
            int rc = ferry_publish(p->name, fd, p->mb ? FERRY_OBJ_MAILBOX : FERRY_OBJ_BCAST, &pol,
                                   &p->pub, LOCAL_WAIT);
            if (rc < 0) {
                p->pub = NULL;
                ferry__bridge_logf("publishing %s again: %s", p->name, ferry_strerror(rc));
            }
        }
}

/* The watch: the exporter's news of its names, and everyone's sign that ferryd restarted
 * (it fails; opened again, the imported objects are published again). */
static void open_watch(bridge *b)
{
    if (b->watch) return;
    if (ferry_watch_open("*", &b->watch, LOCAL_WAIT) < 0 ||
        epoll_add(b, ferry_watch_poll_fd(b->watch), &b->tag_watch) < 0) {
        ferry_watch_close(b->watch);
        b->watch = NULL;
        b->watch_retry = ferry__now_ns() + 200 * MS;
        return;
    }
    if (b->watch_lost) {
        b->watch_lost = 0;
        ferry__bridge_logf("ferryd is back: publishing the imported objects again");
        republish(b);
        send_hb(b);
    }
}

static void watch_ready(bridge *b)
{
    ferry_watch_event ev;
    int rc;
    int changed = 0;
    while ((rc = ferry_watch_next(b->watch, &ev, FERRY_NOW)) == 0) {
        if (ev.info.pid == getpid() || !export_rule(b, ev.info.name)) continue;
        changed = 1;
        ferry__js_reopen(b->js, ev.info.name); /* a JetStream consumer's mailbox changed */
        if (ev.kind == FERRY_EV_RELEASED || ev.kind == FERRY_EV_DIED)
            for (mbout *o = b->mbouts, *nx; o; o = nx) { /* unpublished: hold it no more */
                nx = o->next;
                if (strcmp(o->name, ev.info.name) == 0) mbout_close(b, o);
            }
        /* a broadcast whose name went: its stream ends (or its publisher died) */
        if (ev.kind == FERRY_EV_RELEASED || ev.kind == FERRY_EV_DIED)
            for (bcout *o = b->bcouts, *nx; o; o = nx) {
                nx = o->next;
                if (strcmp(o->name, ev.info.name) == 0) bcast_ready(b, o);
            }
    }
    if (rc != -EAGAIN && rc != -ETIMEDOUT) { /* ferryd went away: open again later */
        epoll_del(b, ferry_watch_poll_fd(b->watch));
        ferry_watch_close(b->watch);
        b->watch = NULL;
        b->watch_retry = ferry__now_ns() + 200 * MS;
        b->watch_lost = 1;
    }
    if (changed) send_hb(b); /* a death or a new export is told at once */
}

static void tick(bridge *b)
{
    int64_t now = ferry__now_ns();
    if (now >= b->next_hb) send_hb(b);
    if (!b->watch && now >= b->watch_retry) open_watch(b);
    /* exporters silent for dead_after heartbeats: their names go */
    int64_t lapse = b->hb_ns * b->dead_after;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (proxy *p = b->proxies[i], *nx; p; p = nx) {
            nx = p->hnext;
            if (p->kind == 's' && now - p->last_seen > lapse) {
                vlog("%s silent for %" PRId64 " ms", p->exporter, (now - p->last_seen) / MS);
                proxy_drop(b, p);
            }
        }
    /* calls and probes nobody answered */
    for (size_t i = 0; i < NBUCKETS; i++)
        for (pend **pp = &b->pends[i]; *pp;) {
            if (now > (*pp)->deadline) {
                if ((*pp)->mbox) mbox_acked(b, *pp, ETIMEDOUT); /* sent again below */
                if ((*pp)->bput) bput_acked(b, *pp, ETIMEDOUT);
                if ((*pp)->mpull) mpull_done(b, *pp, NULL, ETIMEDOUT); /* pulled again */
                if ((*pp)->probe) { /* unanswered: the next heartbeat probes again */
                    proxy *x = *proxy_slot(b, (*pp)->name);
                    if (x && x->state == P_PROBING && strcmp(x->exporter, (*pp)->exporter) == 0)
                        proxy_drop(b, x);
                }
                pend_free(b, pp);
            } else {
                pp = &(*pp)->hnext;
            }
        }
    for (size_t i = 0; i < NBUCKETS; i++)
        for (proxy *p = b->proxies[i]; p; p = p->hnext) {
            if (p->kind != 'm') continue;
            if (p->win && p->msg_seq >= p->base && now >= p->retry_at && b->connected)
                mbox_resend(b, p);
            mpull_maybe(b, p, now);
        }
    mbout_tick(b, now);
    bcast_tick(b);
    relay_tick(b, now);
    for (out *o = b->outs; o; o = o->next)
        for (xcall *x = o->calls, *nx; x; x = nx) {
            nx = x->next;
            if (now > x->deadline) ferry_call_cancel(o->c, x->id); /* -> on_xcall */
        }
}

/* ------------------------------------------------------------------ dispatch */

/* A message of NATS (kind Q_HB, Q_RPC or Q_REPLY): its subject checked against
 * the prefix its subscription was made with, then handled. m stays the caller's. */
static void handle_msg(bridge *b, int kind, natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    if (!subj) return;
    switch (kind) {
    case Q_HB:
        if (strncmp(subj, b->pre_hb, b->npre_hb) == 0 &&
            ferry__bridge_id_valid(subj + b->npre_hb, strlen(subj + b->npre_hb)) &&
            strcmp(subj + b->npre_hb, b->user) != 0)
            on_hb(b, subj + b->npre_hb, natsMsg_GetData(m), natsMsg_GetDataLength(m));
        break;
    case Q_RPC:
        if (strncmp(subj, b->pre_rpc, b->npre_rpc) == 0) on_rpc(b, m, subj + b->npre_rpc);
        break;
    case Q_REPLY:
        if (strncmp(subj, b->pre_reply, b->npre_reply) == 0) on_reply(b, m, subj + b->npre_reply);
        break;
    }
}

/* What cnats's threads queued: the connection's events, and with TLS the messages. */
static void drain_queue(bridge *b)
{
    uint64_t v;
    if (read(b->qfd, &v, sizeof v) < 0) {
    }
    for (int budget = 0; budget < 4096; budget++) {
        pthread_mutex_lock(&b->qmu);
        qitem *it = b->qhead;
        if (it) {
            b->qhead = it->next;
            if (!b->qhead) b->qtail = NULL;
            b->qlen--;
        }
        pthread_mutex_unlock(&b->qmu);
        if (!it) return;
        switch (it->kind) {
        case Q_HB:
        case Q_RPC:
        case Q_REPLY:
            handle_msg(b, it->kind, it->m);
            break;
        case Q_DISCONNECTED:
            ferry__bridge_logf("NATS connection lost: dropping the imported servers");
            b->connected = 0;
            drop_server_proxies(b);
            break;
        case Q_CLOSED: /* exit 1: the service manager starts a new bridge */
            ferry__bridge_logf("NATS connection closed for good: stopping");
            b->stop = 1;
            b->failed = 1;
            break;
        case Q_RECONNECTED:
            ferry__bridge_logf("NATS connection back");
            b->connected = 1;
            send_hb(b);
            break;
        }
        natsMsg_Destroy(it->m);
        free(it);
    }
    uint64_t one = 1; /* more left: come back after the other fds */
    if (write(b->qfd, &one, sizeof one) < 0) {
    }
}

/* ------------------------------------------------------------------ NATS's socket in the loop */

/* With a plain connection (b->evloop) this loop reads and writes the NATS socket itself
 * (cnats's external event loop: natsOptions_SetEventLoop), and our three subscriptions are
 * synchronous ones that the loop empties after each read: a message is handled by the
 * thread that the socket woke, with no hand-over between threads. cnats calls the four
 * callbacks below from its threads (connect, reconnect, ping timer, JetStream's threads
 * publishing, close), holding the connection's lock; they only change the socket's epoll
 * interest, under emu. Only the loop's thread calls natsConnection_ProcessReadEvent and
 * nats_flush (ProcessWriteEvent), so writes never race one another (teardown, after the
 * loop, is that thread too). */

/* Under emu: the interest nev on nfd, or the socket out of the set when nev is 0. */
static void nats_ev_apply(bridge *b)
{
    if (b->nfd < 0) return;
    if (b->nev == 0) {
        epoll_ctl(b->ep, EPOLL_CTL_DEL, b->nfd, NULL);
        b->nfd = -1; /* cnats closes it next: no stale registration can outlive it */
        return;
    }
    struct epoll_event ev = {.events = b->nev, .data.ptr = &b->tag_nats};
    epoll_ctl(b->ep, EPOLL_CTL_MOD, b->nfd, &ev);
}

/* cnats connected or reconnected on fd: read it (loop is the bridge). */
static natsStatus nats_ev_attach(void **ud, void *loop, natsConnection *nc, natsSock fd)
{
    (void)nc;
    bridge *b = loop;
    pthread_mutex_lock(&b->emu);
    if (b->nfd >= 0) epoll_ctl(b->ep, EPOLL_CTL_DEL, b->nfd, NULL);
    b->nfd = fd;
    b->nev = EPOLLIN;
    struct epoll_event ev = {.events = b->nev, .data.ptr = &b->tag_nats};
    int rc = epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0) b->nfd = -1;
    pthread_mutex_unlock(&b->emu);
    *ud = b;
    return rc == 0 ? NATS_OK : NATS_SYS_ERROR;
}

/* Add (or remove) bit in the socket's epoll interest, from any of cnats's threads. */
static natsStatus nats_ev_set(bridge *b, uint32_t bit, bool add)
{
    pthread_mutex_lock(&b->emu);
    b->nev = add ? b->nev | bit : b->nev & ~bit;
    nats_ev_apply(b);
    pthread_mutex_unlock(&b->emu);
    return NATS_OK;
}

static natsStatus nats_ev_read(void *ud, bool add)
{
    return nats_ev_set(ud, EPOLLIN, add);
}

/* cnats has bytes to write (add) or wrote them all (remove). */
static natsStatus nats_ev_write(void *ud, bool add)
{
    return nats_ev_set(ud, EPOLLOUT, add);
}

static natsStatus nats_ev_detach(void *ud)
{
    bridge *b = ud;
    pthread_mutex_lock(&b->emu);
    b->nev = 0;
    nats_ev_apply(b);
    pthread_mutex_unlock(&b->emu);
    return NATS_OK;
}

/* b->evloop, on the loop's thread: write what cnats has buffered, if it asked to
 * (ProcessWriteEvent with nothing buffered would take the empty write for a closed
 * connection). */
static void nats_flush(bridge *b)
{
    pthread_mutex_lock(&b->emu);
    int out = b->nfd >= 0 && (b->nev & EPOLLOUT);
    pthread_mutex_unlock(&b->emu);
    if (out) natsConnection_ProcessWriteEvent(b->nc);
}

/* Handle what the reads queued in our subscriptions, in order per subscription (each
 * read takes at most cnats's buffer, so this is bounded). */
static void nats_drain(bridge *b)
{
    natsSubscription *subs[3] = {b->sub_hb, b->sub_rpc, b->sub_reply};
    static const int kinds[3] = {Q_HB, Q_RPC, Q_REPLY};
    b->nats_unread = 0;
    for (int i = 0; i < 3; i++)
        for (;;) {
            natsMsg *m = NULL;
            natsStatus s = natsSubscription_NextMsg(&m, subs[i], 0);
            if (s == NATS_SLOW_CONSUMER) continue; /* told once: cnats dropped some */
            if (s != NATS_OK) break;
            handle_msg(b, kinds[i], m);
            natsMsg_Destroy(m);
        }
}

/* The socket is ready (ev: epoll's events). */
static void nats_ready(bridge *b, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) natsConnection_ProcessReadEvent(b->nc);
    if (ev & EPOLLOUT) nats_flush(b);
    nats_drain(b);
}

/* jetstream.c's pump (ferry__js_conf): while the loop waits for a JetStream thread, that
 * thread's replies and acknowledgements still come in. What it reads for our
 * subscriptions waits there for the loop (nats_unread). */
static void nats_pump(void *ctx)
{
    bridge *b = ctx;
    pthread_mutex_lock(&b->emu);
    struct pollfd p = {.fd = b->nfd, .events = POLLIN | (b->nev & EPOLLOUT ? POLLOUT : 0)};
    pthread_mutex_unlock(&b->emu);
    if (p.fd < 0) { /* away: cnats reconnects on its thread */
        poll(NULL, 0, 10);
        return;
    }
    if (poll(&p, 1, 10) <= 0) return;
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) natsConnection_ProcessReadEvent(b->nc);
    if (p.revents & POLLOUT) nats_flush(b);
    b->nats_unread = 1;
}

static int run_loop(bridge *b)
{
    struct epoll_event evs[64];
    while (!b->stop) {
        int n = epoll_wait(b->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        for (int i = 0; i < n && !b->stop; i++) {
            int *tag = evs[i].data.ptr;
            switch (*tag) { /* 0: closed earlier in this batch */
            case T_QUEUE:
                drain_queue(b);
                break;
            case T_TIMER: {
                uint64_t v;
                if (read(b->tfd, &v, sizeof v) < 0) {
                }
                tick(b);
                break;
            }
            case T_SIGNAL:
                b->stop = 1;
                break;
            case T_WATCH:
                if (b->watch) watch_ready(b);
                break;
            case T_LISTEN:
                listener_ready(b, evs[i].data.ptr);
                break;
            case T_CONN: {
                conn *c = evs[i].data.ptr;
                if (c->p) conn_read(b, c);
                break;
            }
            case T_MBOX:
                mbox_ready(b, evs[i].data.ptr);
                break;
            case T_BCAST:
                bcast_ready(b, evs[i].data.ptr);
                break;
            case T_RELAY:
                relay_local_ready(b, evs[i].data.ptr);
                break;
            case T_NATS:
                nats_ready(b, evs[i].events);
                break;
            case T_OUT:
                out_ready(b, evs[i].data.ptr);
                break;
            }
        }
        if (b->nats_unread) nats_drain(b);
        free_graveyard(b);
    }
    return 0;
}

/* ------------------------------------------------------------------ setup */

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-bridge --nats URL [--nats URL...] --user USER\n"
               "         [--password-file FILE | --creds FILE] [--cluster NAME]\n"
               "         [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]\n"
               "         [--export PATTERN=USER[,USER...]|PATTERN=*]...\n"
               "         [--import PATTERN[=USER[,USER...]]]... [--recv PATTERN]...\n"
               "         [--jetstream PATTERN]... [--js-max-bytes N] [--js-max-msgs N]\n"
               "         [--js-replicas N] [--mailbox-window N] [--bcast-window N]\n"
               "         [--import-mode OCTAL] [--heartbeat-ms N] [--dead-after N]\n"
               "         [--call-timeout-ms N] [--max-msg BYTES] [--verbose]\n");
}

static int bad(const char *what, const char *arg)
{
    fprintf(stderr, "ferry-bridge: bad %s: %s\n", what, arg ? arg : "(missing)");
    usage(stderr);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* PATTERN=USER[,USER...] or PATTERN=* (or, when users are optional, PATTERN: anyone)
 * into rules[*n]. */
static int parse_rule(rule *rules, int *n, const char *spec, int users_optional)
{
    char arg[2048]; /* a copy: argv's strings are left as they are */
    if (strlen(spec) >= sizeof arg) return -1;
    snprintf(arg, sizeof arg, "%s", spec);
    char *eq = strchr(arg, '=');
    if ((!eq && !users_optional) || *n >= MAX_RULES) return -1;
    if (eq) *eq = 0;
    rule *r = &rules[*n];
    memset(r, 0, sizeof *r);
    if (ferry__pattern_valid(arg) < 0 || strlen(arg) >= sizeof r->pat) return -1;
    memcpy(r->pat, arg, strlen(arg) + 1);
    if (!eq || strcmp(eq + 1, "*") == 0) {
        r->any = 1;
    } else {
        char *save = NULL;
        for (char *u = strtok_r(eq + 1, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            if (!ferry__bridge_id_valid(u, strlen(u)) || r->nusers >= MAX_USERS) return -1;
            snprintf(r->users[r->nusers++], ID_MAX + 1, "%s", u);
        }
        if (r->nusers == 0) return -1;
    }
    (*n)++;
    return 0;
}

static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    char line[512];
    char *s = fgets(line, sizeof line, f) ? strdup(strtok(line, "\r\n") ? line : "") : NULL;
    fclose(f);
    return s;
}

/* The numeric options: getopt letter, name (for the error), bounds. */
typedef struct num_opt {
    int c;
    const char *name;
    long lo, hi;
} num_opt;

static const num_opt num_opts[] = {
    {'m', "--import-mode", 0, 0777},         {'h', "--heartbeat-ms", 10, 600000},
    {'d', "--dead-after", 2, 1000},          {'t', "--call-timeout-ms", 10, 3600000},
    {'s', "--max-msg", 64, (long)MSG_LIMIT}, {'B', "--js-max-bytes", 1 << 20, LONG_MAX},
    {'M', "--js-max-msgs", 1, LONG_MAX},     {'R', "--js-replicas", 1, 5},
    {'W', "--mailbox-window", 1, MBOX_WIN},  {'w', "--bcast-window", 1, MBOX_WIN},
};

static const num_opt *num_opt_of(int c)
{
    for (size_t i = 0; i < sizeof num_opts / sizeof num_opts[0]; i++)
        if (num_opts[i].c == c) return &num_opts[i];
    return NULL;
}

/* Store v (within num_opt_of(c)'s bounds) where option c goes. */
static void num_opt_set(bridge *b, int c, long v)
{
    switch (c) {
    case 'm':
        b->import_mode = (unsigned)v;
        break;
    case 'h':
        b->hb_ns = v * MS;
        break;
    case 'd':
        b->dead_after = (int)v;
        break;
    case 't':
        b->call_timeout_ns = v * MS;
        break;
    case 'B':
        b->js_max_bytes = v;
        break;
    case 'M':
        b->js_max_msgs = v;
        break;
    case 'R':
        b->js_replicas = (int)v;
        break;
    case 'W':
        b->mbox_win = (int)v;
        break;
    case 'w':
        b->bc_win = (int)v;
        break;
    default:
        b->max_msg = (size_t)v;
        break; /* 's' */
    }
}

static int parse_args(bridge *b, int argc, char **argv)
{
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"user", required_argument, 0, 'u'},
        {"password-file", required_argument, 0, 'p'},
        {"creds", required_argument, 0, 'c'},
        {"tls-ca", required_argument, 0, 'A'},
        {"tls-cert", required_argument, 0, 'T'},
        {"tls-key", required_argument, 0, 'K'},
        {"cluster", required_argument, 0, 'C'},
        {"export", required_argument, 0, 'e'},
        {"import", required_argument, 0, 'i'},
        {"recv", required_argument, 0, 'r'},
        {"jetstream", required_argument, 0, 'j'},
        {"js-max-bytes", required_argument, 0, 'B'},
        {"js-max-msgs", required_argument, 0, 'M'},
        {"js-replicas", required_argument, 0, 'R'},
        {"mailbox-window", required_argument, 0, 'W'},
        {"bcast-window", required_argument, 0, 'w'},
        {"import-mode", required_argument, 0, 'm'},
        {"heartbeat-ms", required_argument, 0, 'h'},
        {"dead-after", required_argument, 0, 'd'},
        {"call-timeout-ms", required_argument, 0, 't'},
        {"max-msg", required_argument, 0, 's'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (b->nurls >= MAX_URLS) return bad("--nats (at most 8)", optarg);
            b->urls[b->nurls++] = optarg;
            break;
        case 'u':
            if (!ferry__bridge_id_valid(optarg, strlen(optarg))) return bad("--user", optarg);
            snprintf(b->user, sizeof b->user, "%s", optarg);
            break;
        case 'p':
            free(b->password);
            b->password = read_secret(optarg);
            if (!b->password) return bad("--password-file (unreadable)", optarg);
            break;
        case 'c':
            b->creds = optarg;
            break;
        case 'A':
            b->tls_ca = optarg;
            break;
        case 'T':
            b->tls_cert = optarg;
            break;
        case 'K':
            b->tls_key = optarg;
            break;
        case 'C':
            if (!ferry__bridge_id_valid(optarg, strlen(optarg))) return bad("--cluster", optarg);
            snprintf(b->cluster, sizeof b->cluster, "%s", optarg);
            break;
        case 'e':
            if (parse_rule(b->rules, &b->nrules, optarg, 0) < 0) return bad("--export", optarg);
            break;
        case 'i':
            if (parse_rule(b->imports, &b->nimports, optarg, 1) < 0) return bad("--import", optarg);
            break;
        case 'r':
            if (strchr(optarg, '=') || parse_rule(b->recvs, &b->nrecvs, optarg, 1) < 0)
                return bad("--recv", optarg);
            break;
        case 'j':
            if (strchr(optarg, '=') || parse_rule(b->jss, &b->njss, optarg, 1) < 0)
                return bad("--jetstream", optarg);
            break;
        case 'v':
            b->verbose = 1;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        default: {
            const num_opt *n = num_opt_of(c);
            if (!n) {
                usage(stderr);
                return 2;
            }
            if (parse_long(optarg, n->lo, n->hi, &v) < 0) return bad(n->name, optarg);
            num_opt_set(b, c, v);
        }
        }
    }
    if (optind < argc) return bad("argument", argv[optind]);
    if (b->nurls == 0) return bad("--nats", NULL);
    if (!b->tls_cert != !b->tls_key) return bad("--tls-cert and --tls-key (both or neither)", NULL);
    if (!b->user[0]) return bad("--user", NULL);
    return 0;
}

static int nats_setup(bridge *b)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetServers(o, b->urls, b->nurls);
    if (s == NATS_OK && b->password) s = natsOptions_SetUserInfo(o, b->user, b->password);
    if (s == NATS_OK && b->creds) s = natsOptions_SetUserCredentialsFromFiles(o, b->creds, NULL);
    if (s == NATS_OK && (b->tls_ca || b->tls_cert)) s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && b->tls_ca) s = natsOptions_LoadCATrustedCertificates(o, b->tls_ca);
    if (s == NATS_OK && b->tls_cert)
        s = natsOptions_LoadCertificatesChain(o, b->tls_cert, b->tls_key);
    if (s == NATS_OK) s = natsOptions_SetName(o, "ferry-bridge");
    char inbox[SUBJ_MAX]; /* JetStream's replies (jetstream.c): under our reply subjects */
    snprintf(inbox, sizeof inbox, "ferry.%s.reply.%s.js", b->cluster, b->user);
    if (s == NATS_OK) s = natsOptions_SetCustomInboxPrefix(o, inbox);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(o, 1000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, true); /* latency: no flusher batching */
    /* a plain connection is read by the loop itself (nats_ev_attach); TLS stays on cnats's
     * threads: in the event loop, SSL_read of a partial record waits in poll() without a
     * deadline (cnats 3.4's natsSock_Read), which would stall the loop */
    b->evloop = !(b->tls_ca || b->tls_cert);
    for (int i = 0; i < b->nurls; i++)
        if (strncmp(b->urls[i], "tls:", 4) == 0) b->evloop = 0;
    if (s == NATS_OK && b->evloop)
        s = natsOptions_SetEventLoop(o, b, nats_ev_attach, nats_ev_read, nats_ev_write,
                                     nats_ev_detach);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(o, on_closed, b);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, true, on_reconnected, b);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&b->nc, o);
        if (s == NATS_OK)
            b->connected = 1;
        else if (s == NATS_NOT_YET_CONNECTED)
            s = NATS_OK; /* it keeps trying; on_reconnected (as connected) says when */
    }
    natsOptions_Destroy(o);
    char subj[SUBJ_MAX];
    if (s == NATS_OK) {
        snprintf(subj, sizeof subj, "ferry.%s.hb.*", b->cluster);
        s = b->evloop ? natsConnection_SubscribeSync(&b->sub_hb, b->nc, subj)
                      : natsConnection_Subscribe(&b->sub_hb, b->nc, subj, on_msg, &kind_hb);
    }
    if (s == NATS_OK) {
        snprintf(subj, sizeof subj, "ferry.%s.rpc.%s.*.>", b->cluster, b->user);
        s = b->evloop ? natsConnection_SubscribeSync(&b->sub_rpc, b->nc, subj)
                      : natsConnection_Subscribe(&b->sub_rpc, b->nc, subj, on_msg, &kind_rpc);
    }
    if (s == NATS_OK) {
        snprintf(subj, sizeof subj, "ferry.%s.reply.%s.%s.*", b->cluster, b->user, b->boot);
        s = b->evloop ? natsConnection_SubscribeSync(&b->sub_reply, b->nc, subj)
                      : natsConnection_Subscribe(&b->sub_reply, b->nc, subj, on_msg, &kind_reply);
    }
    if (s != NATS_OK) {
        ferry__bridge_logf("NATS: %s", natsStatus_GetText(s));
        return -1;
    }
    if (b->connected) {
        int64_t mp = natsConnection_GetMaxPayload(b->nc);
        if (mp > 1024 && (size_t)mp - 1024 < b->max_msg) b->max_msg = (size_t)mp - 1024;
    }
    ferry__js_conf jc = {.nc = b->nc,
                         .cluster = b->cluster,
                         .user = b->user,
                         .max_msg = b->max_msg,
                         .max_bytes = b->js_max_bytes,
                         .max_msgs = b->js_max_msgs,
                         .replicas = b->js_replicas,
                         .allow = js_allow,
                         .allow_ctx = b,
                         .pump = b->evloop ? nats_pump : NULL,
                         .pump_ctx = b};
    if (ferry__js_open(&jc, &b->js) < 0) {
        ferry__bridge_logf("JetStream: no memory");
        return -1;
    }
    return 0;
}

static void teardown(bridge *b)
{
    pthread_mutex_lock(&b->qmu);
    b->closing = 1;
    pthread_mutex_unlock(&b->qmu);
    /* local callers of remote names and remote callers of ours are told first */
    drop_all_proxies(b);
    while (b->outs) out_close(b, b->outs);
    while (b->relays) relay_close(b, b->relays, 1);
    ferry__js_close(b->js); /* its threads use the connection */
    b->js = NULL;
    natsSubscription_Destroy(b->sub_hb);
    natsSubscription_Destroy(b->sub_rpc);
    natsSubscription_Destroy(b->sub_reply);
    if (b->nc) {
        natsConnection_Close(b->nc);
        natsConnection_Destroy(b->nc);
        b->nc = NULL;
    }
    /* no more deliveries: the queue's messages are freed while the library still runs */
    for (qitem *it = b->qhead, *n; it; it = n) {
        n = it->next;
        natsMsg_Destroy(it->m);
        free(it);
    }
    b->qhead = b->qtail = NULL;
    nats_CloseAndWait(2000);
    drop_all_proxies(b);
    while (b->outs) out_close(b, b->outs);
    for (size_t i = 0; i < NBUCKETS; i++)
        while (b->pends[i]) pend_free(b, &b->pends[i]);
    while (b->mbouts) mbout_close(b, b->mbouts);
    while (b->bcouts) bcout_close(b, b->bcouts);
    free_graveyard(b);
    if (b->watch) ferry_watch_close(b->watch);
    if (b->ep >= 0) close(b->ep);
    if (b->qfd >= 0) close(b->qfd);
    if (b->tfd >= 0) close(b->tfd);
    if (b->sfd >= 0) close(b->sfd);
    free(b->buf);
    free(b->hb_last);
    free(b->password);
    pthread_mutex_destroy(&b->qmu);
}

int ferry__bridge_main(int argc, char **argv)
{
    bridge *b = calloc(1, sizeof *b);
    if (!b) return 1;
    b->ep = b->qfd = b->tfd = b->sfd = -1;
    snprintf(b->cluster, sizeof b->cluster, "ferry");
    b->import_mode = 0666;
    b->hb_ns = 1000 * MS;
    b->dead_after = 3;
    b->call_timeout_ns = 30000 * MS;
    b->max_msg = MSG_DEFAULT;
    b->js_max_bytes = (int64_t)256 << 20;
    b->js_max_msgs = 1000000;
    b->js_replicas = 1;
    b->mbox_win = MBOX_WIN;
    b->bc_win = MBOX_WIN;
    pthread_mutex_init(&b->qmu, NULL);
    pthread_mutex_init(&b->emu, NULL);
    b->nfd = -1;
    b->tag_nats = T_NATS;
    int rc = parse_args(b, argc, argv);
    if (rc != 0) {
        free(b->password);
        free(b);
        return rc;
    }
    verbose_on = b->verbose;
    the_bridge = b;
    uint64_t boot;
    if (getrandom(&boot, sizeof boot, 0) != sizeof boot) boot = (uint64_t)ferry__now_ns();
    snprintf(b->boot, sizeof b->boot, "%016" PRIx64, boot);
    b->npre_hb = (size_t)snprintf(b->pre_hb, sizeof b->pre_hb, "ferry.%s.hb.", b->cluster);
    b->npre_rpc =
        (size_t)snprintf(b->pre_rpc, sizeof b->pre_rpc, "ferry.%s.rpc.%s.", b->cluster, b->user);
    b->npre_reply = (size_t)snprintf(b->pre_reply, sizeof b->pre_reply, "ferry.%s.reply.%s.%s.",
                                     b->cluster, b->user, b->boot);

    /* signals first: cnats's threads inherit the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    b->tag_queue = T_QUEUE;
    b->tag_timer = T_TIMER;
    b->tag_signal = T_SIGNAL;
    b->tag_watch = T_WATCH;
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    b->qfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    b->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    b->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    b->buf = malloc(MSG_LIMIT);
    struct itimerspec its = {{0, TICK_MS * MS}, {0, TICK_MS * MS}};
    rc = 1;
    if (b->ep < 0 || b->qfd < 0 || b->tfd < 0 || b->sfd < 0 || !b->buf ||
        timerfd_settime(b->tfd, 0, &its, NULL) < 0 || epoll_add(b, b->qfd, &b->tag_queue) < 0 ||
        epoll_add(b, b->tfd, &b->tag_timer) < 0 || epoll_add(b, b->sfd, &b->tag_signal) < 0) {
        ferry__bridge_logf("setup: %s", strerror(errno));
        goto out;
    }
    if (nats_Open(-1) != NATS_OK || nats_setup(b) < 0) goto out;
    open_watch(b);
    ferry__bridge_logf("user %s, cluster %s, %d export rule(s), %d import pattern(s)", b->user,
                       b->cluster, b->nrules, b->nimports);
    send_hb(b);
    rc = run_loop(b);
    if (b->failed) rc = 1;
out:
    teardown(b);
    free(b);
    return rc;
}
