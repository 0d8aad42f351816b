// SPDX-License-Identifier: MIT
/*
 * server.c — ferryd's event loop (see server.h for its rules, proto.h for the protocol,
 * policy.h for the checks).
 *
 * State: every connection (conn) with its kernel identity and its uid's usage record
 * (uidrec, the quota counters); the names, in an array sorted by name (lookup by binary
 * search, list in order); per server connection, the introductions it has not yet
 * accepted (each one charged to the uid that asked for it: one pending introduction and
 * one fd in flight, freed when the server says ACCEPTED or goes away).
 * Death: a server's names are freed when its connection hangs up or when its process
 * exits (its pidfd polls readable) — whichever comes first; watchers hear at once.
 * A published name with FERRY_POLICY_KEEP stays instead, an orphan (owner NULL): its
 * object, policy and charges (to n->ou, its publisher's uid) kept until a takeover by
 * that uid or root, or ferryd's exit.
 *
 * Resources (docs/security.md, "ferryd lends no privilege"):
 *  - Every descriptor ferryd holds for a client is charged to a uid's used.fds: its
 *    connections, the pidfd of a name-owning process (to the uid of the connection that
 *    opened it), published objects, descriptors in queued packets, introductions in
 *    flight (to the asker). Their sum is checked against a budget taken from
 *    RLIMIT_NOFILE at start (ferryd.c raises it to the hard limit), less what ferryd
 *    itself has open and a little slack; new connections leave a reserve for existing
 *    clients, other uids leave one for root. With no room for a new connection, or on
 *    EMFILE/ENFILE, the listener leaves the epoll set until a connection is freed or the
 *    next tick (250 ms): never a busy loop.
 *  - Packets queued for a connection are charged to whoever caused them: its own replies,
 *    events and LOST notices to its uid (past its quota or the connection's bound, which
 *    holds for root too, it is dropped); an introduction to the asker, within a fair
 *    share of the server's foreign budget (past it the asker gets -EDQUOT; the server is
 *    never dropped for what others ask of it).
 *  - uid records are freed once they hold nothing; what clients can make ferryd log is
 *    rate-limited (rlogf).
 *  - Signals (do_kill) follow kill(2)'s rule for the caller unless a policy grants them.
 */
#define _GNU_SOURCE /* SO_PEERCRED, struct ucred, accept4, SOCK_CLOEXEC */
#include "server.h"
#include "policy.h"
#include "proto.h"

#include "core/time.h"
#include "broker/log.h"
#include "region/region.h"
#include "shm/obj.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

enum { T_LISTEN, T_SIGNAL, T_TIMER, T_CONN, T_PIDFD };

#define FD_SLACK       16u /* descriptors ferryd opens for a moment, kept out of the budget */
#define FD_RESERVE_MIN 16u /* the least of each reserve of the budget */

typedef struct tag {
    int kind;
} tag;

typedef struct uidrec {
    struct uidrec *next;
    uid_t uid;
    ferry__quota used;
    int logged; /* the first quota hit of this uid was logged */
} uidrec;

typedef struct outpkt { /* a packet waiting for room in a client's socket */
    struct outpkt *next;
    uidrec *payer; /* charged for it: NULL, the receiver's uid; else the sender's */
    int64_t op;
    uint64_t seq;
    int fd;
    size_t len;
    uint8_t data[];
} outpkt;

typedef struct intro { /* an introduction the server has not accepted yet */
    uint64_t id;
    uidrec *asker;
} intro;

typedef struct proc { /* a process that owns names: its pidfd, shared by its connections */
    tag t;            /* T_PIDFD */
    struct proc *next;
    pid_t pid;
    int pidfd;
    int refs;  /* connections watching it */
    uidrec *u; /* charged one fd for the pidfd: the uid of the connection that opened it */
} proc;

/* What one sender has queued on a receiving connection (introductions to a slow server):
 * its share of the connection's foreign budget. */
typedef struct share {
    struct share *next;
    uidrec *actor;
    uint64_t bytes, fds;
} share;

/* Bounds of one connection's queue in ferryd, whatever its uid's quota says (root's is
 * unlimited): all packets, and those other uids caused (introductions), of which each
 * sender may hold a fair share only. */
#define CONN_QBYTES    (1u << 20)
#define CONN_QFDS      256u
#define FOREIGN_QBYTES (256u << 10)
#define FOREIGN_QFDS   128u

typedef struct conn {
    tag t; /* T_CONN */
    struct conn *prev, *next;
    int fd;
    proc *proc; /* its process, watched once it owns a name; or NULL */
    ferry__ident id;
    uidrec *u;
    int64_t last_ns; /* when it last spoke (or connected) */
    char *watch;     /* its watch pattern, or NULL */
    uint32_t nnames;
    intro *intros;
    size_t nintros, capintros;
    outpkt *oq, **oqtail;
    size_t oqbytes, oqfds; /* queued in all */
    size_t fbytes, ffds;   /* of which other uids' (shares) */
    share *shares;         /* per sender; a sender with nothing queued has no entry */
    int out_armed;
    int dropping; /* marked to be closed at the end of this round */
} conn;

typedef struct name {
    conn *owner;             /* NULL: an orphan (FERRY_POLICY_KEEP, its publisher gone) */
    uid_t ouid;              /* the owner's uid (kept by an orphan: its policy's owner) */
    uidrec *ou;              /* charged for the name and its descriptors (the owner's uid) */
    uint32_t kind;           /* 0: a server (REGISTER); else a published object, FERRY_OBJ_* */
    int objfd;               /* the published object's memfd (a region's read-write one), or -1 */
    int rofd;                /* a region's or state's read-only descriptor, or -1 */
    uint64_t size, dev, ino; /* a region's or state's, when published (ferry_name_info) */
    int persistent;          /* a region's or state's file is a file, not a memfd */
    ferry_policy pol;
    gid_t gid; /* the policy's group, resolved */
    uint64_t connects;
    uint64_t since_ns; /* CLOCK_REALTIME when the owner took it (ferry_name_info.since_ns) */
    char name[];
} name;

typedef struct broker {
    const ferry__broker_cfg *cfg;
    int ep, tfd;
    tag lt, st, tt;
    ferry__sysconf *sys;
    conn *conns;
    proc *procs;
    uidrec *uids;
    name **names;
    size_t nnames, capnames;
    uint64_t next_intro;
    int64_t idle_since; /* when the last connection closed (0: some are open) */
    int stop;
    /* The fd budget: descriptors ferryd may hold for its clients (every one is charged
     * to a uid's used.fds; the sum is what is held), and the reserves kept from new
     * connections (existing clients') and from other uids (root's). */
    uint64_t fd_avail, fd_res_existing, fd_res_root;
    int lpaused;      /* the listener is out of the epoll set (no room, or EMFILE) */
    int freed;        /* a connection was freed since the listener was paused */
    int64_t rl_start; /* rate limit of the log: this window's start, lines, dropped */
    unsigned rl_lines;
    uint64_t rl_dropped;
} broker;

/* Log what happens rarely or on purpose (start-up, reload): not rate-limited. prio is a
 * syslog priority (src/broker/log.h picks where the line goes). */
#define logf_ ferry__log

/* Log what clients can cause (quota hits, an exhausted budget, accept errors): at most
 * RL_LINES lines per RL_WINDOW_NS, then one line saying how many were left out. */
#define RL_LINES     10u
#define RL_WINDOW_NS (10 * 1000000000LL)
static void rlogf(broker *b, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rlogf(broker *b, int prio, const char *fmt, ...)
{
    int64_t now = ferry__now_ns();
    if (now - b->rl_start >= RL_WINDOW_NS) {
        if (b->rl_dropped)
            logf_(LOG_NOTICE, "%llu more messages were not logged (at most %u per %llds)",
                  (unsigned long long)b->rl_dropped, RL_LINES,
                  (long long)(RL_WINDOW_NS / 1000000000));
        b->rl_start = now;
        b->rl_lines = 0;
        b->rl_dropped = 0;
    }
    if (b->rl_lines >= RL_LINES) {
        b->rl_dropped++;
        return;
    }
    b->rl_lines++;
    va_list ap;
    va_start(ap, fmt);
    ferry__vlog(prio, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ quotas */

static uidrec *uid_get(broker *b, uid_t uid)
{
    for (uidrec *u = b->uids; u; u = u->next)
        if (u->uid == uid) return u;
    uidrec *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->uid = uid;
    u->next = b->uids;
    b->uids = u;
    return u;
}

/* Can u take `more` of the counter at offset `off` in ferry__quota? Logs the first hit. */
static int quota_ok(broker *b, uidrec *u, size_t off, uint64_t more, const char *what)
{
    ferry__quota q;
    ferry__sysconf_quota(b->sys, u->uid, &q);
    uint64_t used = *(uint64_t *)((char *)&u->used + off);
    uint64_t lim = *(uint64_t *)((char *)&q + off);
    if (used + more <= lim) return 1;
    if (!u->logged) {
        u->logged = 1;
        rlogf(b, LOG_WARNING, "uid %u is over its %s quota (%llu); further hits are not logged",
              (unsigned)u->uid, what, (unsigned long long)lim);
    }
    return 0;
}
#define QUOTA_OK(b, u, field, more) quota_ok(b, u, offsetof(ferry__quota, field), more, #field)

/* Free the usage records of uids that hold nothing (nothing points at a record whose
 * counters are all 0: a connection holds conns, an introduction pending, a queued packet
 * bytes, a pidfd fds). */
static void uid_sweep(broker *b)
{
    for (uidrec **l = &b->uids; *l;) {
        uidrec *u = *l;
        if (!u->used.names && !u->used.conns && !u->used.pending && !u->used.fds &&
            !u->used.bytes) {
            *l = u->next;
            free(u);
        } else {
            l = &u->next;
        }
    }
}

/* ------------------------------------------------------------------ the fd budget */

/* Descriptors ferryd holds for its clients now: every one is charged to a uid. */
static uint64_t fds_held(const broker *b)
{
    uint64_t n = 0;
    for (const uidrec *u = b->uids; u; u = u->next) n += u->used.fds;
    return n;
}

/* Set the budget from the fd limit (after ferryd.c raised it) and what is open now. */
static void budget_init(broker *b)
{
    struct rlimit rl;
    uint64_t lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ? (1u << 20) : rl.rlim_cur;
    /* What ferryd itself has open (stdio, the listener, epoll, timer, signalfd, lock),
     * and room for the few it opens for a moment (accept4 before it knows who, the
     * socket pair of an introduction, a pidfd to read a caller's credentials). */
    uint64_t base = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            if (e->d_name[0] != '.') base++;
        closedir(d);
    } else {
        base = 16;
    }
    base += FD_SLACK;
    b->fd_avail = lim > base ? lim - base : 0;
    b->fd_res_existing = b->fd_avail / 16 > FD_RESERVE_MIN ? b->fd_avail / 16 : FD_RESERVE_MIN;
    b->fd_res_root = b->fd_res_existing;
}

/* May a connection of uid (newconn: one being accepted) make ferryd hold n more
 * descriptors? New connections leave the existing clients' reserve alone, other uids
 * leave root's. 1 or 0. */
static int fd_fits(const broker *b, uid_t uid, int newconn, uint64_t n)
{
    uint64_t lim = b->fd_avail, keep = 0;
    if (newconn) keep += b->fd_res_existing;
    if (uid != 0) keep += b->fd_res_root;
    lim = lim > keep ? lim - keep : 0;
    return fds_held(b) + n <= lim;
}

/* fd_fits for a connection of u; logs (rate-limited) a refusal. */
static int fd_room(broker *b, const uidrec *u, int newconn, uint64_t n)
{
    if (fd_fits(b, u->uid, newconn, n)) return 1;
    rlogf(b, LOG_WARNING, "fd budget: refused %llu more for uid %u (%s; %llu held of %llu)",
          (unsigned long long)n, (unsigned)u->uid, newconn ? "a new connection" : "a request",
          (unsigned long long)fds_held(b), (unsigned long long)b->fd_avail);
    return 0;
}

/* ------------------------------------------------------------------ names */

static size_t name_pos(broker *b, const char *s, int *found)
{
    size_t lo = 0, hi = b->nnames;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(b->names[mid]->name, s);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static name *name_find(broker *b, const char *s)
{
    int found;
    size_t i = name_pos(b, s, &found);
    return found ? b->names[i] : NULL;
}

static int visible(const name *n, const ferry__ident *who, unsigned right)
{
    return ferry__policy_allows(&n->pol, n->ouid, n->gid, who, right);
}

static void info_of(const name *n, ferry_name_info *in)
{
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", n->name);
    in->uid = n->ouid;
    in->gid = n->gid;
    in->pid = n->owner ? n->owner->id.pid : 0; /* 0: an orphan (FERRY_POLICY_KEEP) */
    in->mode = n->pol.mode;
    in->connects = n->connects;
    in->kind = n->kind;
    in->since_ns = n->since_ns;
    in->size = n->size;
    in->dev = n->dev;
    in->ino = n->ino;
}

/* ------------------------------------------------------------------ output */

static void drop(broker *b, conn *c, const char *why);

static int arm_out(broker *b, conn *c, int on)
{
    if (c->out_armed == on) return 0;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &c->t};
    if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) return -errno;
    c->out_armed = on;
    return 0;
}

static share *share_find(conn *c, const uidrec *actor)
{
    for (share *sh = c->shares; sh; sh = sh->next)
        if (sh->actor == actor) return sh;
    return NULL;
}

/* Take the first queued packet off c (sent, or c is going) and undo its charge: the
 * receiver's uid for its own packets (bytes, and the fd it holds), the sender's for
 * another uid's (bytes and its share; the fd of an introduction stays charged to the
 * asker as in flight until the server accepts it or goes). */
static void unqueue(conn *c)
{
    outpkt *p = c->oq;
    c->oq = p->next;
    if (!c->oq) c->oqtail = &c->oq;
    c->oqbytes -= p->len;
    if (p->fd >= 0) {
        close(p->fd);
        c->oqfds--;
    }
    if (p->payer) {
        share **l = &c->shares;
        while (*l && (*l)->actor != p->payer) l = &(*l)->next;
        share *sh = *l; /* there: it holds at least this packet */
        sh->bytes -= p->len;
        c->fbytes -= p->len;
        if (p->fd >= 0) {
            sh->fds--;
            c->ffds--;
        }
        if (!sh->bytes && !sh->fds) {
            *l = sh->next;
            free(sh);
        }
        p->payer->used.bytes -= p->len;
    } else {
        c->u->used.bytes -= p->len;
        if (p->fd >= 0) c->u->used.fds--;
    }
    free(p);
}

/* Send what is queued, in order. */
static void flush_out(broker *b, conn *c)
{
    while (c->oq) {
        outpkt *p = c->oq;
        int rc = ferry__bsend(c->fd, p->op, p->seq, p->data, p->len, p->fd);
        if (rc == -EAGAIN) break;
        if (rc < 0) {
            drop(b, c, "gone while sending");
            return;
        }
        unqueue(c);
    }
    if (arm_out(b, c, c->oq != NULL) < 0) drop(b, c, "epoll");
}

/* Append a packet to c's queue, charged to payer (NULL: c's own uid). 0 or -ENOMEM. */
static int enqueue(broker *b, conn *c, uidrec *payer, int64_t op, uint64_t seq, const ferry__bw *w,
                   int fd)
{
    outpkt *p = malloc(sizeof *p + w->len);
    if (!p) return -ENOMEM;
    p->next = NULL;
    p->payer = payer;
    p->op = op;
    p->seq = seq;
    p->fd = fd;
    p->len = w->len;
    memcpy(p->data, w->p, w->len);
    *c->oqtail = p;
    c->oqtail = &p->next;
    c->oqbytes += w->len;
    if (fd >= 0) c->oqfds++;
    if (payer) {
        payer->used.bytes += w->len;
    } else {
        c->u->used.bytes += w->len;
        if (fd >= 0) c->u->used.fds++;
    }
    if (arm_out(b, c, 1) < 0) drop(b, c, "epoll");
    return 0;
}

/* Send a packet to c, or queue it, charged to c's uid (its replies, its events, the news
 * that it lost a name): within its uid's quotas, the connection's bound (which holds
 * for root too) and, for a descriptor, ferryd's fd budget. fd (may be -1) is always consumed. A
 * connection that cannot take it does not read what it is sent, and is dropped. */
static void emit(broker *b, conn *c, int64_t op, uint64_t seq, const ferry__bw *w, int fd)
{
    if (c->dropping) goto out;
    if (!c->oq) {
        int rc = ferry__bsend(c->fd, op, seq, w->p, w->len, fd);
        if (rc == 0) goto out;
        if (rc != -EAGAIN) {
            drop(b, c, "gone while sending");
            goto out;
        }
    }
    if (c->oqbytes + w->len > CONN_QBYTES ||
        (fd >= 0 && (c->oqfds + 1 > CONN_QFDS || !fd_room(b, c->u, 0, 1))) ||
        !QUOTA_OK(b, c->u, bytes, w->len) || (fd >= 0 && !QUOTA_OK(b, c->u, fds, 1))) {
        drop(b, c, "does not read what it is sent (bytes quota)");
        goto out;
    }
    if (enqueue(b, c, NULL, op, seq, w, fd) < 0) {
        drop(b, c, "out of memory");
        goto out;
    }
    return;
out:
    if (fd >= 0) close(fd);
}

/* The fair share (dbus-broker's rule): of `remaining` units that `users` senders share
 * (this one included), a sender holding `held` may take `more` when
 * (users + 1) * (held + more) - held <= remaining — so one sender gets at most about
 * half of what is left, and there is always some left for the next. */
static int share_ok(uint64_t remaining, uint64_t users, uint64_t held, uint64_t more)
{
    uint64_t x;
    if (__builtin_add_overflow(held, more, &x) || __builtin_mul_overflow(x, users + 1, &x))
        return 0;
    return x - held <= remaining;
}

/* Send a packet to c that actor (another uid) caused — an introduction — or queue it
 * charged to actor: to its bytes quota, and within actor's fair share of c's foreign
 * budget (the fd, when queued, is charged to actor already, as in flight). The receiver
 * is never dropped for what others send it. 0 (fd consumed), -EDQUOT (actor's share or
 * quota is full: nothing sent, fd not consumed), -EPIPE (c is gone: fd not consumed),
 * -ENOMEM (fd not consumed). */
static int emit_for(broker *b, conn *c, uidrec *actor, int64_t op, const ferry__bw *w, int fd)
{
    if (c->dropping) return -EPIPE;
    if (!c->oq) {
        int rc = ferry__bsend(c->fd, op, 0, w->p, w->len, fd);
        if (rc == 0) {
            if (fd >= 0) close(fd);
            return 0;
        }
        if (rc != -EAGAIN) {
            drop(b, c, "gone while sending");
            return -EPIPE;
        }
    }
    share *sh = share_find(c, actor);
    uint64_t users = 1;
    for (share *o = c->shares; o; o = o->next) users += o->actor != actor;
    uint64_t held_b = sh ? sh->bytes : 0, held_f = sh ? sh->fds : 0, nf = fd >= 0;
    if (c->oqbytes + w->len > CONN_QBYTES || c->oqfds + nf > CONN_QFDS ||
        !share_ok(FOREIGN_QBYTES - c->fbytes, users, held_b, w->len) ||
        !share_ok(FOREIGN_QFDS - c->ffds, users, held_f, nf) || !QUOTA_OK(b, actor, bytes, w->len))
        return -EDQUOT;
    if (!sh) {
        if (!(sh = calloc(1, sizeof *sh))) return -ENOMEM;
        sh->actor = actor;
        sh->next = c->shares;
        c->shares = sh;
    }
    if (enqueue(b, c, actor, op, 0, w, fd) < 0) {
        if (!sh->bytes && !sh->fds) {
            c->shares = sh->next; /* it was just put first */
            free(sh);
        }
        return -ENOMEM;
    }
    sh->bytes += w->len;
    sh->fds += nf;
    c->fbytes += w->len;
    c->ffds += nf;
    return 0;
}

static void reply(broker *b, conn *c, uint64_t seq, int status)
{
    uint8_t buf[8];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_u32(&w, (uint32_t)status);
    emit(b, c, FERRY__OP_REPLY, seq, &w, -1);
}

/* Tell every watcher that may see n about it. */
static void event_packet(const name *n, int kind, ferry__bw *w)
{
    ferry_name_info in;
    info_of(n, &in);
    ferry__bw_u32(w, (uint32_t)kind);
    ferry__bw_info(w, &in);
}

/* Tell every watcher that may see n about it. On a takeover (prev: the name as it was),
 * a watcher that could see the old owner's name but may not see the new one hears that
 * the name was released: from where it stands, it was. */
static void announce(broker *b, const name *n, int kind, const name *prev)
{
    uint8_t buf[512], pbuf[512];
    ferry__bw w = {.p = buf, .cap = sizeof buf}, pw = {.p = pbuf, .cap = sizeof pbuf};
    event_packet(n, kind, &w);
    if (prev) event_packet(prev, FERRY_EV_RELEASED, &pw);
    for (conn *c = b->conns; c; c = c->next) {
        if (!c->watch || c->dropping || !ferry__pattern_match(c->watch, n->name)) continue;
        if (visible(n, &c->id, FERRY__SEE))
            emit(b, c, FERRY__OP_EVENT, 0, &w, -1);
        else if (prev && visible(prev, &c->id, FERRY__SEE))
            emit(b, c, FERRY__OP_EVENT, 0, &pw, -1);
    }
}

/* ------------------------------------------------------------------ names come and go */

/* n's owner no longer holds it: uncount it (and the object's descriptor) from its uid
 * (an orphan's too: it counted against its uid until now). */
static void name_unown(name *n)
{
    if (n->owner) n->owner->nnames--;
    n->ou->used.names--;
    if (n->objfd >= 0) {
        close(n->objfd);
        n->objfd = -1;
        n->ou->used.fds--;
    }
    if (n->rofd >= 0) {
        close(n->rofd);
        n->rofd = -1;
        n->ou->used.fds--;
    }
}

static void name_remove(broker *b, size_t i, int kind)
{
    name *n = b->names[i];
    announce(b, n, kind, NULL);
    name_unown(n);
    memmove(&b->names[i], &b->names[i + 1], (b->nnames - i - 1) * sizeof *b->names);
    b->nnames--;
    free(n);
}

static int pidfd_exited(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Watch the process behind c (it exists as long as its pidfd is not readable): one pidfd
 * per process, however many of its connections own names, charged to the uid of the
 * connection that opened it. 0 (also when pidfds are missing: the hang-up alone tells),
 * or -EDQUOT (the uid's fds quota, or ferryd's fd budget, has no room for it). */
static int watch_pid(broker *b, conn *c)
{
    if (c->proc) return 0;
    for (proc *p = b->procs; p; p = p->next)
        if (p->pid == c->id.pid && !pidfd_exited(p->pidfd)) { /* not a recycled pid */
            p->refs++;
            c->proc = p;
            return 0;
        }
    if (!QUOTA_OK(b, c->u, fds, 1) || !fd_room(b, c->u, 0, 1)) return -EDQUOT;
    int fd;
    socklen_t l = sizeof fd;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &fd, &l) < 0) {
        /* Kernels before 6.5: open it by number. The pid was taken at connect; the
         * connection is still open, so the process (or its fd's inheritor) lives. */
        fd = (int)syscall(SYS_pidfd_open, c->id.pid, 0);
        if (fd < 0) return 0; /* no pidfds: the hang-up alone tells */
    }
    proc *p = calloc(1, sizeof *p);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (!p || epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(p);
        close(fd);
        return 0;
    }
    p->t.kind = T_PIDFD;
    p->pid = c->id.pid;
    p->pidfd = fd;
    p->refs = 1;
    p->u = c->u;
    p->u->used.fds++;
    p->next = b->procs;
    b->procs = p;
    c->proc = p;
    return 0;
}

static void unwatch_pid(broker *b, conn *c)
{
    proc *p = c->proc;
    c->proc = NULL;
    if (!p || --p->refs > 0) return;
    for (proc **l = &b->procs; *l; l = &(*l)->next)
        if (*l == p) {
            *l = p->next;
            break;
        }
    close(p->pidfd); /* also leaves the epoll set */
    p->u->used.fds--;
    free(p);
}

/* Is fd what an object of `kind` is? Semaphores, mutexes, barriers and broadcast rings
 * are sealed memfds whose header says so (ferry__obj_check: read with pread, never
 * mapped); an event queue and a mailbox are carriers (shm/obj.h), checked by
 * ferry__carrier_open: the duplicates its peek installs are closed at once, so a
 * carrier costs ferryd one descriptor. A connection to ferryd, any other socket, a
 * message without the kind's magic, a wrong memfd or a foreign doorbell are refused:
 * nothing in what ferryd is given steers more than the fixed-size peek. */
static int is_object_fd(int fd, uint32_t kind)
{
    if (kind == FERRY_OBJ_EVENT || kind == FERRY_OBJ_MAILBOX) {
        int mfd, ring;
        if (ferry__carrier_open(fd, kind, &mfd, &ring) < 0) return 0;
        close(mfd);
        close(ring);
        return 1;
    }
    return ferry__obj_check(fd, kind) == 0;
}

/* Is the mutex behind fd (checked by is_object_fd) a plain one — a glibc robust mutex
 * whose sharers can make each other write through pointers they store in it? Its flags
 * word, read once onto a private copy; an unreadable one counts as plain. */
static int plain_mutex(int fd)
{
    uint32_t flags;
    return ferry__obj_read(fd, FERRY__MUTEX_FLAGS_OFF, &flags, sizeof flags) < 0 ||
           !(flags & FERRY_MUTEX_FAIR);
}

/* May anyone but the owner's uid (root aside, which may open anything) open a name under
 * pol: group or other connect right, a group in the allow list, another uid in it? */
static int opens_to_others(const ferry_policy *pol, uid_t owner)
{
    if ((pol->mode & 0022) || pol->n_gids > 0) return 1;
    for (uint32_t i = 0; i < pol->n_uids && i < FERRY_POLICY_MAX_IDS; i++)
        if (pol->allow_uids[i] != owner) return 1;
    return 0;
}

/* May ferryd look at the file behind fd at all? Only a memfd or another tmpfs or
 * hugetlbfs file: F_GET_SEALS answers for those alone, and it asks no file system (so it
 * is asked first, before any fstat). A file on any other file system is refused unread:
 * on FUSE — which an unprivileged user can mount in a user namespace, directly or as an
 * overlayfs layer — even an fstat waits on the file system's server (possibly the
 * publisher itself), and ferryd has one thread. */
static int shmem_file(int fd)
{
    return fcntl(fd, F_GET_SEALS) >= 0;
}

/* The descriptors of a region (rwfd and rofd) or a state (rofd; rwfd -1) that c
 * publishes. Checked in this order, so that nothing is asked of a file before it is
 * known to be one ferryd may look at: rofd is open O_RDONLY, a tmpfs or hugetlbfs file
 * (shmem_file) and a regular one, rwfd (a region's) O_RDWR on the same inode (a state's writer
 * keeps its write right: none is accepted); the read-only one stays read-only in the kernel — the
 * inode is owned by c's uid (only the owner may chmod it) and grants group and others no write
 * (otherwise an opener of another uid could reopen /proc/self/fd/N writable): -EPERM; then a
 * genuine one of that kind (region/region.h: seals, header read once with pread, a file owned by
 * c's uid). The rest: -EINVAL. On success the size, device and inode go into id[0..3)
 * (ferry_name_info), and id[3] is 1 for a file (persistent). */
static int region_fds_ok(const conn *c, uint32_t kind, int rwfd, int rofd, uint64_t id[4])
{
    struct stat ro, rw;
    if ((fcntl(rofd, F_GETFL) & (O_ACCMODE | O_PATH)) != O_RDONLY || !shmem_file(rofd) ||
        fstat(rofd, &ro) < 0 || !S_ISREG(ro.st_mode))
        return -EINVAL;
    if (kind == FERRY_OBJ_REGION) {
        if (rwfd < 0 || !shmem_file(rwfd) || fstat(rwfd, &rw) < 0 || rw.st_dev != ro.st_dev ||
            rw.st_ino != ro.st_ino || (fcntl(rwfd, F_GETFL) & (O_ACCMODE | O_PATH)) != O_RDWR)
            return -EINVAL;
    } else if (rwfd >= 0) {
        return -EINVAL;
    }
    if (ro.st_uid != c->id.uid || (ro.st_mode & 0022)) return -EPERM;
    uint32_t k;
    int w, persistent;
    uint64_t size;
    if (ferry__region_check(rofd, c->id.uid, &k, &w, &size, &persistent) < 0 || k != kind || w)
        return -EINVAL;
    id[0] = size;
    id[1] = (uint64_t)ro.st_dev;
    id[2] = (uint64_t)ro.st_ino;
    id[3] = persistent != 0;
    return 0;
}

static int register_name(broker *b, conn *c, const char *nm, const ferry_policy *polp,
                         uint32_t kind, int objfd, int rofd)
{
    ferry_policy pol = *polp;
    uint64_t rid[4] = {0, 0, 0, 0}; /* a region's size, dev, ino, persistent */
    if (ferry__name_valid(nm) < 0 || ferry__policy_valid_for(&pol, kind) < 0) return -EINVAL;
    if (kind == FERRY_OBJ_REGION || kind == FERRY_OBJ_STATE) {
        int rc = region_fds_ok(c, kind, objfd, rofd, rid);
        if (rc < 0) return rc;
    } else if (kind && (kind > FERRY_OBJ_BCAST || rofd >= 0 || !is_object_fd(objfd, kind))) {
        return -EINVAL;
    }
    uint64_t nfds = (uint64_t)(objfd >= 0) + (uint64_t)(rofd >= 0);
    /* A plain mutex goes to other uids only if the publisher says it trusts them. */
    if (kind == FERRY_OBJ_MUTEX && !(pol.flags & FERRY_POLICY_TRUSTED_SHARERS) &&
        opens_to_others(&pol, c->id.uid) && plain_mutex(objfd))
        return -EPERM;
    if (!ferry__sysconf_may_own(b->sys, nm, &c->id)) return -EACCES;
    int found;
    size_t i = name_pos(b, nm, &found);
    name *old = found ? b->names[i] : NULL;
    /* An orphan (FERRY_POLICY_KEEP, its publisher gone) is taken over by the same rule:
     * its policy has FERRY_TAKEOVER (KEEP requires it), the caller is its uid or root. */
    if (old && (old->owner == c || !(old->pol.flags & FERRY_TAKEOVER) ||
                (c->id.uid != old->ouid && c->id.uid != 0)))
        return -EEXIST;
    /* A takeover from the same uid moves a name it already holds: no new name. */
    if ((!old || old->ou != c->u) && !QUOTA_OK(b, c->u, names, 1)) return -EDQUOT;
    /* The pidfd first (charged when it is opened), then the object's descriptors against
     * what is left: checking both against the same count let one more through. */
    int rc = watch_pid(b, c);
    if (rc < 0) return rc;
    if (nfds && (!QUOTA_OK(b, c->u, fds, nfds) || !fd_room(b, c->u, 0, nfds))) return -EDQUOT;
    name *n = malloc(sizeof *n + strlen(nm) + 1);
    if (!n) return -ENOMEM;
    if (!old && b->nnames == b->capnames) {
        size_t cap = b->capnames ? b->capnames * 2 : 64;
        name **a = realloc(b->names, cap * sizeof *a);
        if (!a) {
            free(n);
            return -ENOMEM;
        }
        b->names = a;
        b->capnames = cap;
    }
    strcpy(n->name, nm);
    n->owner = c;
    n->ouid = c->id.uid;
    n->ou = c->u;
    n->pol = pol;
    n->gid = pol.gid == (gid_t)-1 ? c->id.gid : pol.gid;
    n->connects = 0;
    n->kind = kind;
    n->objfd = objfd;
    n->rofd = rofd;
    n->size = rid[0];
    n->dev = rid[1];
    n->ino = rid[2];
    n->persistent = (int)rid[3];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    n->since_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    c->nnames++;
    c->u->used.names++;
    c->u->used.fds += nfds;
    if (old) { /* a takeover: the old owner (an orphan has none) hears it lost the name */
        uint8_t buf[300];
        ferry__bw w = {.p = buf, .cap = sizeof buf};
        ferry__bw_str(&w, nm);
        if (old->owner) emit(b, old->owner, FERRY__OP_LOST, 0, &w, -1);
        name_unown(old);
        n->connects = old->connects;
        b->names[i] = n;
        announce(b, n, FERRY_EV_CHANGED, old);
        free(old);
    } else {
        memmove(&b->names[i + 1], &b->names[i], (b->nnames - i) * sizeof *b->names);
        b->names[i] = n;
        b->nnames++;
        announce(b, n, FERRY_EV_OWNED, NULL);
    }
    return 0;
}

/* REGISTER (publish 0, no fds) and PUBLISH (an object kind and its descriptors, which
 * this takes over in every case: fds[0..nfds)). A region comes with its write lists and
 * two descriptors (read-write, read-only), a state with one (read-only), any other
 * object with one; anything else is -EBADMSG. */
static int do_register(broker *b, conn *c, ferry__br *r, int publish, const int *fds, int nfds)
{
    char nm[256];
    ferry_policy pol;
    uint32_t kind = 0;
    int rc = ferry__br_register_body(r, nm, &pol);
    if (publish) kind = ferry__br_u32(r);
    if (rc == 0 && kind == FERRY_OBJ_REGION) rc = ferry__br_write_lists(r, &pol);
    int want = !publish ? 0 : kind == FERRY_OBJ_REGION ? 2 : 1;
    int objfd = -1, rofd = -1;
    if (rc < 0 || ferry__br_end(r) < 0 || (publish && !kind) || nfds != want) {
        for (int i = 0; i < nfds; i++) close(fds[i]);
        return -EBADMSG;
    }
    if (kind == FERRY_OBJ_REGION) {
        objfd = fds[0];
        rofd = fds[1];
    } else if (kind == FERRY_OBJ_STATE) {
        rofd = fds[0];
    } else if (publish) {
        objfd = fds[0];
    }
    rc = register_name(b, c, nm, &pol, kind, objfd, rofd);
    if (rc < 0) {
        if (objfd >= 0) close(objfd);
        if (rofd >= 0) close(rofd);
    }
    return rc;
}

static int do_unregister(broker *b, conn *c, ferry__br *r)
{
    char nm[256];
    ferry__br_str(r, nm, sizeof nm);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    int found;
    size_t i = name_pos(b, nm, &found);
    if (!found || b->names[i]->owner != c) return -ENOENT;
    name_remove(b, i, FERRY_EV_RELEASED);
    return 0;
}

/* ------------------------------------------------------------------ introductions */

static void intro_release(conn *server, size_t k)
{
    uidrec *u = server->intros[k].asker;
    u->used.pending--;
    u->used.fds--;
    server->intros[k] = server->intros[--server->nintros];
}

static int do_connect(broker *b, conn *c, uint64_t seq, ferry__br *r)
{
    char nm[256];
    ferry__br_str(r, nm, sizeof nm);
    uint32_t kind = ferry__br_u32(r);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    if (kind != FERRY_KIND_SHM && kind != FERRY_KIND_UNIX) return -EINVAL;
    if (ferry__name_valid(nm) < 0) return -EINVAL;
    name *n = name_find(b, nm);
    if (!n || !visible(n, &c->id, FERRY__SEE)) return -ENOENT;
    if (!visible(n, &c->id, FERRY__CONNECT)) return -EACCES;
    if (n->kind) return -EPROTOTYPE; /* an object, not a server: ferry_X_open it */
    if (!QUOTA_OK(b, c->u, pending, 1) || !QUOTA_OK(b, c->u, fds, 1)) return -EDQUOT;
    if (!fd_room(b, c->u, 0, 2)) return -EDQUOT; /* the pair; one end may wait in a queue */
    conn *s = n->owner;
    if (s->nintros == s->capintros) {
        size_t cap = s->capintros ? s->capintros * 2 : 8;
        intro *a = realloc(s->intros, cap * sizeof *a);
        if (!a) return -ENOMEM;
        s->intros = a;
        s->capintros = cap;
    }
    int sv[2];
    /* Non-blocking, as every transport expects of its link (the flag travels with it). */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return -errno;
    uint64_t id = ++b->next_intro;
    s->intros[s->nintros++] = (intro){.id = id, .asker = c->u};
    c->u->used.pending++;
    c->u->used.fds++;
    n->connects++;

    uint8_t buf[64];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_u64(&w, id);
    ferry__bw_u32(&w, kind);
    ferry__bw_cred(&w, &(ferry_cred){.uid = c->id.uid, .gid = c->id.gid, .pid = c->id.pid});
    /* The server's uid is not charged for what its clients ask: a slow server is not
     * dropped; the asker whose share of its queue is full is refused. */
    int rc = emit_for(b, s, c->u, FERRY__OP_INTRO, &w, sv[0]);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
        intro_release(s, s->nintros - 1);
        n->connects--;
        return rc; /* -EPIPE: the server is going (ferry_connect's meaning) */
    }

    w.len = 0;
    ferry__bw_u32(&w, 0);
    ferry__bw_cred(&w, &(ferry_cred){.uid = s->id.uid, .gid = s->id.gid, .pid = s->id.pid});
    emit(b, c, FERRY__OP_REPLY, seq, &w, sv[1]);
    return 1; /* replied */
}

static int do_accepted(conn *c, ferry__br *r)
{
    uint64_t id = ferry__br_u64(r);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    for (size_t k = 0; k < c->nintros; k++)
        if (c->intros[k].id == id) {
            intro_release(c, k);
            return 0;
        }
    return -EBADMSG; /* an id it was never given */
}

/* ------------------------------------------------------------------ queries */

/* OPEN name kind [want]: a duplicate of the published object's descriptor, and oflags.
 * A region or state: its read-only descriptor, or with FERRY__WANT_WRITE (the write
 * right) a region's read-write one — the only place a writable one leaves ferryd. */
static int do_open(broker *b, conn *c, uint64_t seq, ferry__br *r)
{
    char nm[256];
    ferry__br_str(r, nm, sizeof nm);
    uint32_t kind = ferry__br_u32(r);
    uint32_t want = r->off < r->len ? ferry__br_u32(r) : 0; /* absent: 0 (older clients) */
    if (ferry__br_end(r) < 0) return -EBADMSG;
    if (ferry__name_valid(nm) < 0 || kind == 0 || kind > FERRY_OBJ_STATE ||
        (want & ~FERRY__WANT_WRITE) || (want && kind != FERRY_OBJ_REGION))
        return -EINVAL;
    name *n = name_find(b, nm);
    if (!n || !visible(n, &c->id, FERRY__SEE)) return -ENOENT;
    if (!visible(n, &c->id, FERRY__CONNECT)) return -EACCES;
    if (n->kind != kind) return -EPROTOTYPE;
    if (want && !visible(n, &c->id, FERRY__WRITE)) return -EACCES;
    /* A file's read-write descriptor lets its holder truncate it under every mapper
     * (SIGBUS: a memfd is sealed against that, a file cannot be): it goes to the
     * publisher's uid (the file's owner, checked at publish) and root only, whatever the
     * policy grants. */
    if (want && n->persistent && c->id.uid != n->ouid && c->id.uid != 0) return -EACCES;
    int src = kind == FERRY_OBJ_REGION || kind == FERRY_OBJ_STATE ? (want ? n->objfd : n->rofd)
                                                                  : n->objfd;
    /* Trusted with the object's sharers: the owner's own uid (root too is another uid
     * here), or anyone when the publisher says so. */
    int trusted = c->id.uid == n->ouid || (n->pol.flags & FERRY_POLICY_TRUSTED_SHARERS);
    /* A plain mutex goes to trusted openers only: its mode is read again, since the
     * publisher may have changed the word. It may change it again after this read, so
     * the reply says whether the opener is trusted and the library judges the mode by
     * its own read (FERRY__OPEN_TRUSTED, proto.h). */
    if (kind == FERRY_OBJ_MUTEX && !trusted && plain_mutex(n->objfd)) return -EPERM;
    int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -errno;
    n->connects++;
    uint8_t buf[8];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_u32(&w, 0);
    ferry__bw_open_reply(&w, trusted ? FERRY__OPEN_TRUSTED : 0);
    emit(b, c, FERRY__OP_REPLY, seq, &w, fd);
    return 1;
}

/* What kill(2) looks at in a process: its uids and whether it holds CAP_KILL in ferryd's
 * user namespace. */
typedef struct kcred {
    uid_t ruid, euid, suid;
    int cap_kill;
} kcred;

/* The contents of the small /proc file at path (up to cap - 1 bytes, NUL-terminated):
 * its length, or -1 (unreadable, or too long to compare). */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0) len += (size_t)n;
    n = len == cap - 1 ? -1 : (ssize_t)len; /* possibly cut: no answer */
    close(fd);
    if (n >= 0) buf[n] = '\0';
    return n;
}

/* Are /proc/PID/NAME and /proc/self/NAME the same text? */
static int same_map(pid_t pid, const char *name)
{
    char path[64], theirs[1024], mine[1024];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    ssize_t a = read_small(path, theirs, sizeof theirs);
    snprintf(path, sizeof path, "/proc/self/%s", name);
    ssize_t b = read_small(path, mine, sizeof mine);
    return a >= 0 && a == b && memcmp(theirs, mine, (size_t)a) == 0;
}

/* Is process pid in ferryd's user namespace (where its capabilities count)? By the
 * namespace itself (/proc/PID/ns/user: the same inode as ferryd's) where ferryd may look:
 * that takes ptrace read access, which root has, and which a ferryd that runs as an
 * unprivileged user with CAP_KILL (its systemd unit) has for its own uid's processes
 * only. Where it may not, by the namespace's maps: /proc/PID/uid_map and gid_map
 * (readable by anyone, shown relative to ferryd's namespace) must equal ferryd's own.
 * Another namespace shows the same maps only if a process holding CAP_SETUID and
 * CAP_SETGID in ferryd's namespace (root) made it with ferryd's full maps; a namespace
 * an unprivileged user can make maps a few ids and never passes. 1 or 0. */
static int same_userns(pid_t pid)
{
    char path[64];
    struct stat mine, theirs;
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    if (stat("/proc/self/ns/user", &mine) < 0) return 0;
    if (stat(path, &theirs) == 0)
        return mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
    if (errno != EACCES && errno != EPERM) return 0; /* gone, or no /proc/PID/ns */
    return same_map(pid, "uid_map") && same_map(pid, "gid_map");
}

/* Read the kcred of process pid from /proc/PID/status; pidfd (the same process) pins
 * it: read after, a pidfd that is not readable says the pid was not recycled meanwhile.
 * 0, or -ESRCH (gone or unreadable: the caller then knows nothing of it). */
static int read_kcred(pid_t pid, int pidfd, kcred *k)
{
    char path[64], buf[4096];
    if (pid <= 0 || pidfd < 0) return -ESRCH;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -ESRCH;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -ESRCH;
    buf[n] = '\0';
    const char *u = strstr(buf, "\nUid:"), *cap = strstr(buf, "\nCapEff:");
    unsigned r, e, sv;
    unsigned long long capv;
    if (!u || !cap || sscanf(u, "\nUid: %u %u %u", &r, &e, &sv) != 3 ||
        sscanf(cap, "\nCapEff: %llx", &capv) != 1)
        return -ESRCH;
    k->ruid = r;
    k->euid = e;
    k->suid = sv;
    /* CAP_KILL (5) counts in ferryd's user namespace only (a capability in a child
     * namespace does not reach a process outside it). */
    k->cap_kill = ((capv >> 5) & 1) && same_userns(pid);
    return pidfd_exited(pidfd) ? -ESRCH : 0;
}

/* Would kill(2) let the caller c signal the process t? Both what the kernel stamped at
 * connect (SO_PEERCRED: the euid then; uid 0 counts as privileged) and the caller's
 * credentials now (real or effective uid equal to the target's real or saved uid, or
 * CAP_KILL), when they can be read: a process that dropped its privilege since it
 * connected does not keep it here. A target whose uids cannot be read is signalled only
 * for the privileged. 1 or 0. */
static int kill_rule_allows(conn *c, proc *t)
{
    kcred tc, cc;
    int tok = read_kcred(t->pid, t->pidfd, &tc) == 0;
    if (c->id.uid != 0 && !(tok && (c->id.uid == tc.ruid || c->id.uid == tc.suid))) return 0;
    int pfd = -1;
    socklen_t l = sizeof pfd;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &l) < 0) pfd = -1;
    int cok = pfd >= 0 && read_kcred(c->id.pid, pfd, &cc) == 0;
    if (pfd >= 0) close(pfd);
    if (!cok) return 1; /* only the stamp is known, and it passed */
    if (cc.cap_kill) return 1;
    return tok &&
           (cc.ruid == tc.ruid || cc.ruid == tc.suid || cc.euid == tc.ruid || cc.euid == tc.suid);
}

/* KILL name sig: a signal to the name's owner, by its pidfd (never a recycled pid).
 * ferryd's own privilege is lent only where the name's policy or the system policy
 * grants a signal right; otherwise the caller must be able to connect and kill(2)'s rule
 * must let it signal the owner itself. */
static int do_kill(broker *b, conn *c, ferry__br *r)
{
    char nm[256];
    ferry__br_str(r, nm, sizeof nm);
    uint32_t sig = ferry__br_u32(r);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    if (ferry__name_valid(nm) < 0 || sig == 0 || sig > 64) return -EINVAL;
    name *n = name_find(b, nm);
    /* Grants are for the unprivileged: root's stamp grants everything, but whether a
     * process stamped root may still signal is for kill(2)'s rule to say (it may have
     * dropped its privilege since it connected). */
    int unpriv = c->id.uid != 0;
    int sys = n && unpriv && ferry__sysconf_may_signal(b->sys, nm, &c->id);
    if (!n || (!sys && !visible(n, &c->id, FERRY__SEE))) return -ENOENT;
    proc *t = n->owner ? n->owner->proc : NULL; /* an orphan: nobody to signal */
    int granted = sys || (unpriv && visible(n, &c->id, FERRY__SIGNAL));
    if (!granted && !visible(n, &c->id, FERRY__CONNECT)) return -EACCES;
    if (!t) return -ESRCH; /* no pidfd: its death is under way or unknowable */
    if (!granted && !kill_rule_allows(c, t)) return -EPERM;
    if (syscall(SYS_pidfd_send_signal, t->pidfd, (int)sig, NULL, 0) < 0) return -errno;
    return 0;
}

static int do_lookup(broker *b, conn *c, uint64_t seq, ferry__br *r)
{
    char nm[256];
    ferry__br_str(r, nm, sizeof nm);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    name *n = ferry__name_valid(nm) == 0 ? name_find(b, nm) : NULL;
    if (!n || !visible(n, &c->id, FERRY__SEE)) return -ENOENT;
    uint8_t buf[512];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry_name_info in;
    info_of(n, &in);
    ferry__bw_u32(&w, 0);
    ferry__bw_info(&w, &in);
    emit(b, c, FERRY__OP_REPLY, seq, &w, -1);
    return 1;
}

static int do_list(broker *b, conn *c, uint64_t seq, ferry__br *r)
{
    char after[256];
    ferry__br_str(r, after, sizeof after);
    uint32_t max = ferry__br_u32(r);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    static uint8_t buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, 0); /* the count, filled in below */
    uint32_t count = 0;
    int found;
    size_t i = after[0] ? name_pos(b, after, &found) + (size_t)found : 0;
    for (; i < b->nnames && count < max; i++) {
        name *n = b->names[i];
        if (!visible(n, &c->id, FERRY__SEE)) continue;
        ferry_name_info in;
        info_of(n, &in);
        size_t before = w.len;
        ferry__bw_info(&w, &in);
        if (w.err) { /* the page is full: the caller asks again from the last name */
            w.len = before;
            w.err = 0;
            break;
        }
        count++;
    }
    uint8_t *cp = buf + 4;
    cp[0] = (uint8_t)count;
    cp[1] = (uint8_t)(count >> 8);
    cp[2] = (uint8_t)(count >> 16);
    cp[3] = (uint8_t)(count >> 24);
    emit(b, c, FERRY__OP_REPLY, seq, &w, -1);
    return 1;
}

static int do_watch(conn *c, ferry__br *r)
{
    char pat[258];
    ferry__br_str(r, pat, sizeof pat);
    if (ferry__br_end(r) < 0) return -EBADMSG;
    if (ferry__pattern_valid(pat) < 0) return -EINVAL;
    char *p = strdup(pat);
    if (!p) return -ENOMEM;
    free(c->watch);
    c->watch = p;
    return 0;
}

/* ------------------------------------------------------------------ connections */

/* c's names go with it (watchers hear FERRY_EV_DIED), except those published with
 * FERRY_POLICY_KEEP: they stay, with their object and policy, as orphans (no owner,
 * still charged to their uid) until a takeover or ferryd's exit. */
static void conn_free(broker *b, conn *c)
{
    for (size_t i = b->nnames; i-- > 0;) {
        name *n = b->names[i];
        if (n->owner != c) continue;
        if (n->pol.flags & FERRY_POLICY_KEEP) {
            announce(b, n, FERRY_EV_DIED, NULL); /* about the owner that died */
            n->owner = NULL;
            c->nnames--;
        } else {
            name_remove(b, i, FERRY_EV_DIED);
        }
    }
    while (c->nintros) intro_release(c, 0);
    free(c->intros);
    while (c->oq) unqueue(c); /* the shares go with their last packet */
    unwatch_pid(b, c);
    b->freed = 1;
    close(c->fd);
    c->u->used.conns--;
    c->u->used.fds--;
    free(c->watch);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

/* Mark c to be closed once the current event is handled (its names freed then). */
static void drop(broker *b, conn *c, const char *why)
{
    (void)b;
    if (c->dropping) return;
    c->dropping = 1;
    if (why && b->cfg->verbose)
        logf_(LOG_INFO, "dropping pid %d uid %u: %s", (int)c->id.pid, (unsigned)c->id.uid, why);
}

static void reap(broker *b)
{
    for (conn *c = b->conns, *next; c; c = next) {
        next = c->next;
        if (c->dropping) conn_free(b, c);
    }
}

static int peer_ident(int fd, ferry__ident *id)
{
    struct ucred u;
    socklen_t l = sizeof u;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &l) < 0) return -errno;
    memset(id, 0, sizeof *id);
    id->uid = u.uid;
    id->gid = u.gid;
    id->pid = u.pid;
    gid_t g[FERRY__MAX_GROUPS];
    l = sizeof g;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &l) == 0) {
        id->ngroups = l / sizeof(gid_t);
        memcpy(id->groups, g, l);
    } /* ERANGE: more groups than we keep; membership then counts the primary gid only
         and the ones that fit would be wrong to guess, so none are kept */
    return 0;
}

/* Stop polling the listener (no room for any new connection, or the kernel said
 * EMFILE/ENFILE): connections wait in its backlog instead of making ferryd spin. It is
 * polled again once a connection was freed, or at the next tick. */
static void listen_pause(broker *b, const char *why)
{
    if (b->lpaused) return;
    if (epoll_ctl(b->ep, EPOLL_CTL_DEL, b->cfg->listen_fd, NULL) < 0) return;
    b->lpaused = 1;
    b->freed = 0;
    rlogf(b, LOG_WARNING, "not accepting connections for now: %s (%llu fds held of %llu)", why,
          (unsigned long long)fds_held(b), (unsigned long long)b->fd_avail);
}

static void listen_resume(broker *b)
{
    if (!b->lpaused) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->lt};
    if (epoll_ctl(b->ep, EPOLL_CTL_ADD, b->cfg->listen_fd, &ev) == 0) b->lpaused = 0;
}

static void refuse(int fd, int status)
{
    uint8_t buf[4];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_u32(&w, (uint32_t)status);
    ferry__bsend(fd, FERRY__OP_REPLY, 0, w.p, w.len, -1); /* then hang up */
    close(fd);
}

static void on_accept(broker *b)
{
    /* A bounded number per round, then the requests of those already connected get their
     * turn (the listening socket stays ready): a uid that connects without pause (and is
     * refused each time) must not keep ferryd in this loop. */
    for (int k = 0; k < 64; k++) {
        if (!fd_fits(b, 0, 1, 1)) { /* not even root could come in now */
            listen_pause(b, "the fd budget is full");
            return;
        }
        int fd = accept4(b->cfg->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) return;
            rlogf(b, LOG_ERR, "accept: %s", strerror(errno));
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listen_pause(b, strerror(errno));
            return;
        }
        ferry__ident id = {0};
        uidrec *u;
        conn *c;
        if (peer_ident(fd, &id) < 0 || !(u = uid_get(b, id.uid))) {
            close(fd);
            continue;
        }
        if (!QUOTA_OK(b, u, conns, 1) || !QUOTA_OK(b, u, fds, 1) || !fd_room(b, u, 1, 1)) {
            refuse(fd, -EDQUOT);
            continue;
        }
        if (!(c = calloc(1, sizeof *c))) {
            close(fd);
            continue;
        }
        c->t.kind = T_CONN;
        c->fd = fd;
        c->id = id;
        c->u = u;
        c->last_ns = ferry__now_ns();
        c->oqtail = &c->oq;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->t};
        if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        u->used.conns++;
        u->used.fds++;
        c->next = b->conns;
        if (b->conns) b->conns->prev = c;
        b->conns = c;
    }
}

static void on_request(broker *b, conn *c)
{
    static uint8_t buf[FERRY__BMSG_MAX];
    for (int k = 0; k < 64 && !c->dropping; k++) { /* then let the others have a turn */
        int64_t op;
        uint64_t seq;
        size_t len;
        int fds[FERRY__BFDS_MAX], nfds;
        int rc = ferry__brecvn(c->fd, buf, &op, &seq, &len, fds, FERRY__BFDS_MAX, &nfds);
        if (rc == 0) return;
        if (rc < 0) {
            drop(b, c, rc == -EPIPE ? NULL : "bad packet");
            return;
        }
        if (nfds > 0 && op != FERRY__OP_PUBLISH) { /* only a published object rides along */
            for (int i = 0; i < nfds; i++) close(fds[i]);
            drop(b, c, "sent a descriptor");
            return;
        }
        c->last_ns = ferry__now_ns();
        ferry__br r = {.p = buf, .len = len};
        switch (op) {
        case FERRY__OP_REGISTER:
            rc = do_register(b, c, &r, 0, fds, 0);
            break;
        case FERRY__OP_PUBLISH:
            rc = do_register(b, c, &r, 1, fds, nfds);
            break;
        case FERRY__OP_OPEN:
            rc = do_open(b, c, seq, &r);
            break;
        case FERRY__OP_KILL:
            rc = do_kill(b, c, &r);
            break;
        case FERRY__OP_UNREGISTER:
            rc = do_unregister(b, c, &r);
            break;
        case FERRY__OP_CONNECT:
            rc = do_connect(b, c, seq, &r);
            break;
        case FERRY__OP_LOOKUP:
            rc = do_lookup(b, c, seq, &r);
            break;
        case FERRY__OP_LIST:
            rc = do_list(b, c, seq, &r);
            break;
        case FERRY__OP_WATCH:
            rc = do_watch(c, &r);
            break;
        case FERRY__OP_ACCEPTED:
            rc = do_accepted(c, &r);
            if (rc == 0) rc = 1; /* no reply */
            break;
        default:
            rc = -EBADMSG;
        }
        if (b->cfg->verbose)
            logf_(LOG_DEBUG, "pid %d uid %u op %lld: %d", (int)c->id.pid, (unsigned)c->id.uid,
                  (long long)op, rc);
        if (rc == -EBADMSG) {
            drop(b, c, "malformed request");
            return;
        }
        if (rc <= 0) reply(b, c, seq, rc);
    }
}

static void on_tick(broker *b)
{
    uint64_t n;
    if (read(b->tfd, &n, sizeof n) < 0) { /* nothing: a spurious wake */
    }
    int64_t now = ferry__now_ns(), idle = (int64_t)b->cfg->idle_ms * 1000000;
    for (conn *c = b->conns; c; c = c->next)
        if (!c->nnames && !c->watch && !c->nintros && now - c->last_ns > idle) drop(b, c, "idle");
    if (b->conns || b->nnames) { /* orphans (FERRY_POLICY_KEEP) keep ferryd up too */
        b->idle_since = 0;
    } else if (!b->idle_since) {
        b->idle_since = now;
    } else if (b->cfg->exit_idle_s > 0 &&
               now - b->idle_since >= (int64_t)b->cfg->exit_idle_s * 1000000000) {
        b->stop = 1;
    }
}

/* Tell the service manager (through cfg->on_state) what ferryd is doing now. */
static void state(broker *b, const char *st)
{
    if (b->cfg->on_state) b->cfg->on_state(b->cfg->state_arg, st);
}

static void on_signal(broker *b)
{
    struct signalfd_siginfo si;
    while (read(b->cfg->signal_fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            state(b, "RELOADING=1");
            char err[256] = "";
            ferry__sysconf *s;
            int rc = ferry__sysconf_load(b->cfg->policy_path, &s, err, sizeof err);
            if (rc < 0) {
                logf_(LOG_ERR, "policy not reloaded, keeping the old one: %s",
                      err[0] ? err : strerror(-rc));
            } else {
                ferry__sysconf_free(b->sys);
                b->sys = s;
                logf_(LOG_INFO, "policy reloaded from %s", b->cfg->policy_path);
            }
            state(b, "READY=1");
        } else {
            b->stop = 1;
        }
    }
}

int ferry__broker_run(const ferry__broker_cfg *cfg)
{
    broker b = {.cfg = cfg, .tfd = -1};
    char err[256] = "";
    int rc = ferry__sysconf_load(cfg->policy_path, &b.sys, err, sizeof err);
    if (rc < 0) {
        logf_(LOG_ERR, "%s", err[0] ? err : strerror(-rc));
        return rc;
    }
    b.lt.kind = T_LISTEN;
    b.st.kind = T_SIGNAL;
    b.tt.kind = T_TIMER;
    b.ep = epoll_create1(EPOLL_CLOEXEC);
    b.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec its = {.it_interval = {0, 250000000}, .it_value = {0, 250000000}};
    struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &b.lt};
    struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &b.st};
    struct epoll_event e3 = {.events = EPOLLIN, .data.ptr = &b.tt};
    if (b.ep < 0 || b.tfd < 0 || timerfd_settime(b.tfd, 0, &its, NULL) < 0 ||
        epoll_ctl(b.ep, EPOLL_CTL_ADD, cfg->listen_fd, &e1) < 0 ||
        epoll_ctl(b.ep, EPOLL_CTL_ADD, cfg->signal_fd, &e2) < 0 ||
        epoll_ctl(b.ep, EPOLL_CTL_ADD, b.tfd, &e3) < 0) {
        rc = -errno;
        goto out;
    }
    budget_init(&b);
    state(&b, "READY=1"); /* the listener is polled: connections are served from now */
    while (!b.stop) {
        struct epoll_event evs[64];
        int ticked = 0;
        int n = epoll_wait(b.ep, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            tag *t = evs[i].data.ptr;
            switch (t->kind) {
            case T_LISTEN:
                on_accept(&b);
                break;
            case T_SIGNAL:
                on_signal(&b);
                break;
            case T_TIMER:
                on_tick(&b);
                ticked = 1;
                break;
            case T_PIDFD: { /* the process died: its connections go too */
                for (conn *c = b.conns; c; c = c->next)
                    if (c->proc == (proc *)t) drop(&b, c, "process exited");
                break;
            }
            case T_CONN: {
                conn *c = (conn *)t;
                if (c->dropping) break;
                if (evs[i].events & EPOLLOUT) flush_out(&b, c);
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_request(&b, c);
                break;
            }
            }
        }
        reap(&b); /* only now: a later event of this round may name a dropped conn */
        uid_sweep(&b);
        if (b.lpaused && (b.freed || ticked)) listen_resume(&b);
    }
    state(&b, "STOPPING=1");
out:
    for (conn *c = b.conns; c; c = c->next) c->dropping = 1;
    reap(&b);
    while (b.nnames) { /* the orphans left (FERRY_POLICY_KEEP): a restart loses them */
        name *n = b.names[--b.nnames];
        name_unown(n);
        free(n);
    }
    while (b.uids) {
        uidrec *u = b.uids;
        b.uids = u->next;
        free(u);
    }
    free(b.names);
    ferry__sysconf_free(b.sys);
    if (b.tfd >= 0) close(b.tfd);
    if (b.ep >= 0) close(b.ep);
    return rc;
}
