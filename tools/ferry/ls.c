// SPDX-License-Identifier: MIT
/*
 * ls.c — `ferry ls` (ferry's `ipcs -a`) and `ferry rm`: what the naming service holds,
 * and the kernel objects ferry's transports made, with the ones whose makers are gone
 * marked stale (docs/ferry-ls.md is the user's guide).
 *
 *   ferry ls [--json | --names] [--path DIR]... [--mqueue DIR] [--broker SOCKET]
 *   ferry rm [-n] [--path DIR]... [--mqueue DIR] (--stale | OBJECT...)
 *
 * Rules:
 *  - Never starts ferryd: FERRY_NO_AUTOSPAWN=1 is set for the tool's own calls. Names come
 *    from ferry_list (paged, 64 a call, 2 s per call), with their kind (server or the
 *    FERRY_OBJ_* of a published object); a mailbox's depth from ferry_mailbox_stats where
 *    the caller may open it; ferryd's pid from PATH.lock (its courtesy; absent under
 *    socket activation). ferryd not running is no error.
 *  - Kernel objects are found the way the transports name them:
 *      posixmq  queues NAME.c2s / NAME.s2c in the mqueue file system (--mqueue, default
 *               /dev/mqueue); when both exist their mq_msgsize must match and be >= 32
 *               (a ferry frame header), else they are not ferry's. One row per pair.
 *      sysvmq   by ferry's records (src/transport/sysvmq_rec.h, mtype LONG_MAX): a back
 *               queue's owner record names its door, a door's hello or attach record
 *               its back queue; one row per channel (door + back), also when one of
 *               the two is gone. Messages are read with MSG_COPY, which copies and
 *               takes nothing, so looking changes no queue (nor its lspid/lrpid); at
 *               most MAX_SCAN per queue, each bounded by msgmax and every field
 *               checked. A queue with ferry frames ("FRY1", mtype = type + 1) or
 *               records but no usable pairing is listed alone (never stale).
 *      fifo     PATH.c2s / PATH.s2c FIFOs, and socket files, only in --path DIRs.
 *  - Liveness, from what the kernel keeps:
 *      posixmq, fifo  live while some process has one of the pair open (every
 *               /proc/PID/fd is looked at; a ferry listener keeps its queues or its
 *               c2s FIFO open); stale when none does; unknown when a process that could
 *               open it had fds we may not read (root's are not counted for non-root).
 *      sysvmq   the kernel keeps no creator pid, so the records name the listener and
 *               the attached opener (pid + start time, core/proc.h). Live when any
 *               identity a record names is alive (a forged record can only make an
 *               object live). Stale only when proven (sv_judge): the back queue holds
 *               exactly one owner record that only its owner's uid could have written
 *               (no group/other write, owner = creator = the door's creator), the door
 *               exactly one hello or attach record agreeing with it, every identity
 *               named is dead, and the kernel's last sender and receiver of both
 *               queues are gone. A listener that has left its channel to the opener
 *               (a trusted owner record and the back queue's owner write bit cleared:
 *               sysvmq.c, "Lifetime") is shown "left" and counts as gone, and so does
 *               its pid as the kernel's last user while it is that process: the channel
 *               then lives with its opener. Anything else is unknown, with the reason
 *               in the note.
 *               rm --stale judges a sysvmq object again just before removing it.
 *      socket   live when it is in /proc/net/unix as listening, or a connect succeeds;
 *               stale when a connect is refused (ECONNREFUSED): nobody listens.
 *    A pid is alive when kill(pid, 0) succeeds or says EPERM (pids may be reused, and
 *    pids of another pid namespace read as 0: unknown); a recorded identity is dead when
 *    ferry__proc_dead says so (no such pid, another start time, or exited).
 *  - `ferry rm` uses the kernel's permission checks (mq_unlink, msgctl IPC_RMID,
 *    unlink): each failure is reported on stderr and the rest goes on. OBJECT is
 *    "/name" (a POSIX pair: both queues), "sysvmq:ID" (that queue, and when it is a
 *    ferry door the back queue its hello names; also the back queue's door), a path
 *    (a socket or FIFO; PATH whose PATH.c2s / PATH.s2c are FIFOs removes both), a
 *    ferry URL (posixmq:///x, sysvmq://#ID, fifo:///p, unix:///p, shm:///p), a
 *    persistent region's or state's file owned by the caller's euid (ls_region.c: its
 *    header read, never through a symlink; others' are refused with a message), or
 *    the name of a published one (when no file has that name: its file as its
 *    holders' descriptors or a --path DIR show it, of the inode ferryd reports).
 *    Other regular files and directories are never removed.
 *  - Regions and states (ls_region.c): the names ferryd lists with their size, and
 *    per region its holders — processes with a descriptor or a mapping of its inode,
 *    ferryd left out, a lower bound ("+?") when some process could not be looked at —
 *    and its file ("(memfd: volatile)" for a memfd, "?" unknown). In --path DIRs a
 *    region's file is an object "region" or "state": live while held, else kept (a
 *    persistent region is kept by design: rm --stale never removes it).
 *  - Exit status: 0 done; 1 something failed (ls: ferryd answered with an error; rm: an
 *    object could not be removed); 2 usage.
 */
#define _GNU_SOURCE
#include "commands.h"
#include "ls_region.h"

#include <ferry/ferry.h>

#include "core/proc.h"
#include "transport/sysvmq_rec.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <mqueue.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SEC_NS       ((int64_t)1000000000)
#define CALL_TIMEOUT (2 * SEC_NS)
#define PAGE         64
#define MAX_PIDS     8
#define MAX_DIRS     16
#define MAX_SCAN     100000      /* messages looked at per System V queue */
#define HDR          32          /* a ferry frame header */
#define FRAME_MAGIC  0x31595246u /* "FRY1" */

/* ST_KEPT: a persistent region's file nobody holds: kept by design, never stale. */
enum { ST_LIVE, ST_STALE, ST_UNKNOWN, ST_KEPT };
static const char *const state_names[] = {"live", "stale", "unknown", "kept"};

typedef struct pidref {
    pid_t pid;
    char role[12]; /* "open", "c2s.snd", "c2s.rcv", "s2c.snd", "s2c.rcv" */
    int alive;
} pidref;

/* One ferry object: a queue pair, a FIFO pair or a socket file. */
typedef struct obj {
    const char *kind;       /* "posixmq", "sysvmq", "fifo", "socket", "region", "state" */
    char name[PATH_MAX];    /* what `ferry rm` takes */
    char part[2][PATH_MAX]; /* c2s, s2c: queue names or paths; "" when missing */
    int id[2];              /* sysvmq: door (c2s) and back (s2c) ids, -1 missing */
    long long key;          /* sysvmq: the door's key (0: private) */
    dev_t dev[2];           /* posixmq, fifo: to find who has them open */
    ino_t ino[2];
    uid_t uid;
    unsigned mode;
    long depth[2]; /* messages queued c2s, s2c; -1 unknown */
    pidref pids[MAX_PIDS];
    int npids;
    int unreadable; /* a process that could hold it had fds we could not read */
    long long size; /* region, state: user bytes (the file's size less the header) */
    int holders;    /* region, state: processes with an fd or a mapping of it */
    int state;
    char note[160];
} obj;

typedef struct objlist {
    obj *v;
    size_t n, cap;
} objlist;

typedef struct scanopts {
    const char *mqdir;
    const char *dirs[MAX_DIRS];
    int ndirs;
} scanopts;

/* Notes about what could not be looked at (shown once, under the objects). */
typedef struct notes {
    char text[8][200];
    int n;
} notes;

static void note_add(notes *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(notes *ns, const char *fmt, ...)
{
    if (ns->n >= 8) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ns->text[ns->n++], sizeof ns->text[0], fmt, ap);
    va_end(ap);
}

static obj *obj_new(objlist *l, const char *kind)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        obj *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            fprintf(stderr, "ferry: out of memory\n");
            exit(1);
        }
        l->v = v;
        l->cap = cap;
    }
    obj *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->id[0] = o->id[1] = -1;
    o->depth[0] = o->depth[1] = -1;
    o->state = ST_UNKNOWN;
    return o;
}

/* ferryd's pid from its lock file (PATH.lock: its courtesy; absent under socket
 * activation), or 0. */
static pid_t ferryd_pid(void)
{
    char sock[108], lock[120];
    if (ferry_broker_path(sock, sizeof sock) < 0) return 0;
    snprintf(lock, sizeof lock, "%s.lock", sock);
    FILE *f = fopen(lock, "re");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1) pid = 0;
    if (f) fclose(f);
    return pid > 0 ? (pid_t)pid : 0;
}

/* A persistent region's or state's file (found in a --path DIR)? */
static int is_region_obj(const obj *o)
{
    return strcmp(o->kind, "region") == 0 || strcmp(o->kind, "state") == 0;
}

static int pid_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void pid_add(obj *o, pid_t pid, const char *role)
{
    if (pid <= 0) return;
    for (int i = 0; i < o->npids; i++)
        if (o->pids[i].pid == pid && strcmp(o->pids[i].role, role) == 0) return;
    if (o->npids == MAX_PIDS) return;
    pidref *p = &o->pids[o->npids++];
    p->pid = pid;
    snprintf(p->role, sizeof p->role, "%s", role);
    p->alive = pid_alive(pid);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------------ POSIX queues */

static void scan_posixmq(const scanopts *so, objlist *l, notes *ns)
{
    DIR *d = opendir(so->mqdir);
    if (!d) {
        note_add(ns, "POSIX queues not listed: %s: %s (mount -t mqueue none /dev/mqueue)",
                 so->mqdir, strerror(errno));
        return;
    }
    size_t first = l->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int side = ends_with(e->d_name, ".c2s") ? 0 : ends_with(e->d_name, ".s2c") ? 1 : -1;
        if (side < 0) continue;
        char base[NAME_MAX + 2];
        snprintf(base, sizeof base, "/%.*s", (int)(strlen(e->d_name) - 4), e->d_name);
        obj *o = NULL;
        for (size_t i = first; i < l->n; i++)
            if (strcmp(l->v[i].name, base) == 0) o = &l->v[i];
        if (!o) {
            o = obj_new(l, "posixmq");
            snprintf(o->name, sizeof o->name, "%s", base);
        }
        snprintf(o->part[side], sizeof o->part[side], "/%s", e->d_name);
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0) {
            o->dev[side] = st.st_dev;
            o->ino[side] = st.st_ino;
            o->uid = st.st_uid;
            o->mode = st.st_mode & 07777;
        }
    }
    closedir(d);
    /* Depths, and the shape check: a pair ferry made has equal msgsize >= 32. */
    for (size_t i = first; i < l->n;) {
        obj *o = &l->v[i];
        long msgsize[2] = {-1, -1};
        for (int s = 0; s < 2; s++) {
            if (!o->part[s][0]) continue;
            mqd_t q = mq_open(o->part[s], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            struct mq_attr a;
            if (q == (mqd_t)-1) continue;
            if (mq_getattr(q, &a) == 0) {
                o->depth[s] = a.mq_curmsgs;
                msgsize[s] = a.mq_msgsize;
            }
            mq_close(q);
        }
        int foreign = (msgsize[0] >= 0 && msgsize[0] < HDR) ||
                      (msgsize[1] >= 0 && msgsize[1] < HDR) ||
                      (msgsize[0] >= 0 && msgsize[1] >= 0 && msgsize[0] != msgsize[1]);
        if (foreign) {
            l->v[i] = l->v[--l->n];
            continue;
        }
        if (!o->part[0][0] || !o->part[1][0])
            snprintf(o->note, sizeof o->note, "half a pair: no %s",
                     o->part[0][0] ? ".s2c" : ".c2s");
        i++;
    }
}

/* ------------------------------------------------------------------ System V queues */

#define MAX_RECS 4 /* records kept per queue (more is already wrong: one is normal) */

typedef struct svq {
    int id;
    long long key;
    unsigned mode;
    uid_t uid, cuid;
    long qnum;
    pid_t lspid, lrpid;
    int nmsg_rec;                 /* messages of the records' mtype (LONG_MAX) */
    int bad;                      /* one of them is no record, or the scan was cut short,
                                     or the queue changed while looked at */
    int v1;                       /* a version-1 hello (no identities) */
    int v1_back;                  /* the back queue it names */
    int frames;                   /* holds a ferry frame */
    ferry__svq_rec rec[MAX_RECS]; /* the records found, in queue order */
    int nrec;
    int used;
} svq;

static long proc_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "re");
    long v = 0;
    if (!f) return dflt;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0) v = dflt;
    fclose(f);
    return v;
}

/* Look into q with MSG_COPY (nothing is taken, and the queue's lspid/lrpid stay): its
 * records and whether it holds a ferry frame. Every message is copied into buf (cap
 * bytes, MSG_NOERROR) and only its first bytes are parsed, each field checked. 0, or
 * -errno when it cannot be read (-ENOSYS: the kernel has no MSG_COPY). */
static int sv_classify(svq *q, void *buf, size_t cap)
{
    struct {
        long mtype;
        uint8_t text[];
    } *m = buf;
    long pos;
    for (pos = 0; pos < MAX_SCAN; pos++) {
        ssize_t n = msgrcv(q->id, m, cap, pos, IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
        if (n < 0) {
            if (errno == EINTR) {
                pos--;
                continue;
            }
            if (errno == ENOMSG) return 0;
            return -errno;
        }
        const uint8_t *t = m->text;
        if (m->mtype == FERRY__SVQ_REC_MTYPE) {
            ferry__svq_rec r;
            q->nmsg_rec++;
            if (svq_rec_decode(t, (size_t)n, &r) == 0) {
                if (q->nrec < MAX_RECS)
                    q->rec[q->nrec++] = r;
                else
                    q->bad = 1;
            } else if (n == FERRY__SVQ_HELLO1_LEN && svq_get32(t) == FERRY__SVQ_HELLO_MAGIC &&
                       t[4] == 1 && (int32_t)svq_get32(t + 8) >= 0) {
                q->v1 = 1;
                q->v1_back = (int)svq_get32(t + 8);
            } else {
                q->bad = 1;
            }
        } else if (n >= HDR && svq_get32(t) == FRAME_MAGIC && t[4] == 1) {
            int64_t type = (int64_t)svq_get64(t + 8);
            if (type >= 0 && type < LONG_MAX && m->mtype == type + 1) q->frames = 1;
        }
    }
    q->bad = 1; /* more than MAX_SCAN messages: not all were looked at */
    return 0;
}

/* Read queue q: its state (IPC_STAT) before and after looking into it; a queue that
 * changed meanwhile is marked bad (its records cannot be taken as they were). 0 or -errno. */
static int sv_read(svq *q, void *buf, size_t cap)
{
    struct msqid_ds a, b;
    if (msgctl(q->id, IPC_STAT, &a) < 0) return -errno;
    int rc = sv_classify(q, buf, cap);
    if (rc < 0) return rc;
    if (msgctl(q->id, IPC_STAT, &b) < 0) return -errno;
    if (a.msg_qnum != b.msg_qnum || a.msg_stime != b.msg_stime || a.msg_rtime != b.msg_rtime ||
        a.msg_lspid != b.msg_lspid || a.msg_lrpid != b.msg_lrpid)
        q->bad = 1;
    q->mode = b.msg_perm.mode & 0777;
    q->uid = b.msg_perm.uid;
    q->cuid = b.msg_perm.cuid;
    q->qnum = (long)b.msg_qnum;
    q->lspid = b.msg_lspid;
    q->lrpid = b.msg_lrpid;
    return 0;
}

static svq *sv_find(svq *qs, size_t nq, int id)
{
    for (size_t i = 0; id >= 0 && i < nq; i++)
        if (qs[i].id == id) return &qs[i];
    return NULL;
}

/* The one record of q (exactly one, and nothing else of that mtype), or NULL. */
static const ferry__svq_rec *sv_only(const svq *q)
{
    return q && q->nrec == 1 && q->nmsg_rec == 1 && !q->bad ? &q->rec[0] : NULL;
}

/* A back queue's owner record that only its owner could have written: the queue gives
 * no write right to group or others, and its owner is its creator. NULL otherwise. */
static const ferry__svq_rec *sv_trusted_owner(const svq *b)
{
    const ferry__svq_rec *r = sv_only(b);
    if (!r || r->kind != FERRY__SVQ_OWNER || (b->mode & 022) || b->uid != b->cuid) return NULL;
    return r;
}

static void sv_id_add(obj *o, uint64_t id, const char *role)
{
    pid_t pid = (pid_t)(id & ((UINT64_C(1) << 22) - 1));
    for (int i = 0; i < o->npids; i++)
        if (o->pids[i].pid == pid && strcmp(o->pids[i].role, role) == 0) return;
    if (o->npids == MAX_PIDS) return;
    pidref *p = &o->pids[o->npids++];
    p->pid = pid;
    snprintf(p->role, sizeof p->role, "%s", role);
    p->alive = !ferry__proc_dead(id);
}

/* Every identity the records of q claim (any alive makes the object live), except
 * `left`: a listener that has left the channel to its opener (sv_left), shown as "left". */
static int sv_claims(obj *o, const svq *q, uint64_t left)
{
    int alive = 0;
    for (int i = 0; q && i < q->nrec; i++) {
        if (left && q->rec[i].listener == left) {
            sv_id_add(o, left, "left");
        } else {
            sv_id_add(o, q->rec[i].listener, "listener");
            alive |= !ferry__proc_dead(q->rec[i].listener);
        }
        if (q->rec[i].kind == FERRY__SVQ_ATTACH) {
            sv_id_add(o, q->rec[i].opener, "opener");
            alive |= !ferry__proc_dead(q->rec[i].opener);
        }
    }
    return alive;
}

/* Show a kernel-recorded pid unless a record already names it. */
static void sv_pid_add(obj *o, pid_t pid, const char *role)
{
    for (int i = 0; i < o->npids; i++)
        if (o->pids[i].pid == pid &&
            (strcmp(o->pids[i].role, "listener") == 0 || strcmp(o->pids[i].role, "opener") == 0))
            return;
    pid_add(o, pid, role);
}

/* Are the kernel's last sender and receiver of q all gone (and the sender one we can
 * see: 0 means none, or one in another pid namespace)? A listener that has left (pid
 * left_pid, 0: none) counts as gone: it touches the queues no more. */
static int sv_kernel_gone(obj *o, const svq *q, int side, pid_t left_pid)
{
    sv_pid_add(o, q->lspid, side ? "s2c.snd" : "c2s.snd");
    sv_pid_add(o, q->lrpid, side ? "s2c.rcv" : "c2s.rcv");
    int snd_gone = q->lspid > 0 && (q->lspid == left_pid || !pid_alive(q->lspid));
    int rcv_gone = q->lrpid == 0 || q->lrpid == left_pid || !pid_alive(q->lrpid);
    return snd_gone && rcv_gone;
}

/* The listener that has left its channel to the opener (sysvmq.c, "Lifetime"): the
 * back queue's trusted owner record (only its owner can write it), and the owner's write
 * bit cleared (only the owner, its creator or root can). Its identity, or 0. */
static uint64_t sv_left(const svq *b)
{
    const ferry__svq_rec *own = sv_trusted_owner(b);
    return own && !(b->mode & 0200) ? own->listener : 0;
}

/*
 * Judge a sysvmq object from its door d and back queue b (either may be NULL):
 *  live     a process a record names is alive (a forged record can only make it live);
 *  stale    everything is proven: b holds exactly one trusted owner record naming d; d
 *           exactly one hello or attach record naming b, with the same listener; every
 *           identity named is dead (core/proc.h: no such pid, or another start time);
 *           and the kernel's last sender and receiver of both queues are gone;
 *  unknown  anything else (why: in o->note).
 */
static void sv_judge(obj *o, const svq *d, const svq *b)
{
    uint64_t left = sv_left(b);
    /* its pid as the kernel's last user counts as gone only while it is that process */
    pid_t left_pid =
        left && !ferry__proc_dead(left) ? (pid_t)(left & ((UINT64_C(1) << 22) - 1)) : 0;
    int alive = sv_claims(o, b, left) | sv_claims(o, d, left);
    int gone = 1;
    if (d) gone &= sv_kernel_gone(o, d, 0, left_pid);
    if (b) gone &= sv_kernel_gone(o, b, 1, left_pid);
    const char *why = NULL;
    const ferry__svq_rec *own = sv_trusted_owner(b), *dr = sv_only(d);
    if (alive) {
        o->state = ST_LIVE;
        return;
    }
    if (!d)
        why = "door queue gone: its opener cannot be proven gone";
    else if (!b)
        why = "back queue gone: the door's records alone prove nothing";
    else if (d->v1)
        why = "made by an older ferry (no identities recorded)";
    else if (!own || own->door != d->id || d->cuid != b->cuid)
        why = "no trustworthy owner record in the back queue";
    else if (!dr || (dr->kind != FERRY__SVQ_HELLO && dr->kind != FERRY__SVQ_ATTACH))
        why = d->nmsg_rec ? "the door holds records ferry did not write"
                          : "the door holds no record (a client may hold the hello)";
    else if (dr->back != b->id || dr->listener != own->listener ||
             (dr->kind == FERRY__SVQ_ATTACH && dr->door != d->id))
        why = "the door's record disagrees with the back queue's";
    else if (!gone)
        why = "a live or unseen process used it last";
    if (why) {
        o->state = ST_UNKNOWN;
        size_t n = strlen(o->note);
        snprintf(o->note + n, sizeof o->note - n, "%s%s", n ? "; " : "", why);
        return;
    }
    o->state = ST_STALE;
}

/* Fill a row for door d and back b (either may be NULL, not both). */
static void sv_row(objlist *l, svq *d, svq *b, int back_named)
{
    obj *o = obj_new(l, "sysvmq");
    svq *q0 = d ? d : b;
    snprintf(o->name, sizeof o->name, "sysvmq:%d", q0->id);
    o->key = q0->key;
    o->uid = q0->uid;
    o->mode = q0->mode;
    char keys[32] = "private";
    if (q0->key) snprintf(keys, sizeof keys, "0x%08llx", q0->key & 0xffffffffLL);
    if (d) {
        d->used = 1;
        o->id[0] = d->id;
        snprintf(o->part[0], sizeof o->part[0], "%d", d->id);
        o->depth[0] = d->qnum - d->nmsg_rec;
    }
    if (b) {
        b->used = 1;
        o->id[1] = b->id;
        snprintf(o->part[1], sizeof o->part[1], "%d", b->id);
        o->depth[1] = b->qnum - b->nmsg_rec;
    }
    if (d && b)
        snprintf(o->note, sizeof o->note, "key %s, back queue %d", keys, b->id);
    else if (d && back_named >= 0)
        snprintf(o->note, sizeof o->note, "key %s, back queue %d is gone", keys, back_named);
    else if (d)
        snprintf(o->note, sizeof o->note, "key %s", keys);
    else
        snprintf(o->note, sizeof o->note, "back queue of door %d", back_named);
    sv_judge(o, d, b);
}

/* The System V queues, from /proc/sysvipc/msg (ids and keys) and each one's own state. */
static void scan_sysvmq(objlist *l, notes *ns)
{
    FILE *f = fopen("/proc/sysvipc/msg", "re");
    if (!f) {
        note_add(ns, "System V queues not listed: /proc/sysvipc/msg: %s", strerror(errno));
        return;
    }
    svq *qs = NULL;
    size_t nq = 0, capq = 0;
    char line[512];
    if (!fgets(line, sizeof line, f)) line[0] = '\0'; /* the header */
    while (fgets(line, sizeof line, f)) {
        long long key;
        int id;
        if (sscanf(line, "%lld %d", &key, &id) != 2 || id < 0) continue;
        if (nq == capq) {
            capq = capq ? capq * 2 : 16;
            svq *v = realloc(qs, capq * sizeof *v);
            if (!v) break;
            qs = v;
        }
        qs[nq++] = (svq){.id = id, .key = key, .v1_back = -1};
    }
    fclose(f);
    size_t cap = (size_t)proc_long("/proc/sys/kernel/msgmax", 8192);
    void *buf = malloc(cap + sizeof(long));
    int unread = 0, nocopy = 0;
    size_t keep = 0;
    for (size_t i = 0; buf && i < nq; i++) {
        int rc = sv_read(&qs[i], buf, cap);
        if (rc == -ENOSYS)
            nocopy = 1;
        else if (rc == -EACCES || rc == -EPERM)
            unread++;
        if (rc == 0) qs[keep++] = qs[i]; /* gone meanwhile, or unreadable: not listed */
    }
    nq = buf ? keep : 0;
    free(buf);
    if (nocopy)
        note_add(ns, "System V queues: the kernel has no MSG_COPY; ferry's cannot be recognised");
    if (unread)
        note_add(ns, "System V queues: %d could not be read (permission); not listed", unread);
    /* 1. Back queues with an owner record, each with the door it names (when it exists
     *    and is not another's). */
    for (size_t i = 0; i < nq; i++) {
        const ferry__svq_rec *own = sv_only(&qs[i]);
        if (!own || own->kind != FERRY__SVQ_OWNER) continue;
        svq *d = sv_find(qs, nq, own->door);
        if (d && (d->used || d == &qs[i])) d = NULL;
        sv_row(l, d, &qs[i], own->door);
    }
    /* 2. Doors (a hello or an attach record) not taken yet, with the back queue they
     *    name when it is not another's. */
    for (size_t i = 0; i < nq; i++) {
        svq *d = &qs[i];
        if (d->used) continue;
        int back = d->v1 ? d->v1_back : -1;
        for (int k = 0; k < d->nrec; k++)
            if (d->rec[k].kind != FERRY__SVQ_OWNER) back = d->rec[k].back;
        if (back < 0) continue;
        svq *b = sv_find(qs, nq, back);
        if (b && (b->used || b == d)) b = NULL;
        sv_row(l, d, b, back);
    }
    /* 3. Anything else holding ferry frames or records: listed alone, never stale. */
    for (size_t i = 0; i < nq; i++) {
        svq *q = &qs[i];
        if (q->used || (!q->frames && !q->nrec)) continue;
        sv_row(l, q, NULL, -1);
        snprintf(l->v[l->n - 1].note, sizeof l->v[l->n - 1].note,
                 "holds ferry frames or records but no usable hello or owner record");
        if (l->v[l->n - 1].state != ST_LIVE) l->v[l->n - 1].state = ST_UNKNOWN;
    }
    free(qs);
}

/* ------------------------------------------------------------------ FIFOs and sockets */

/* Is path in /proc/net/unix as a listening socket? 1, 0, or -1 (cannot tell). */
static int unix_listening(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f) return -1;
    char line[PATH_MAX + 128];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long flags;
        char p[PATH_MAX + 1];
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4096s", &flags, p) != 2) continue;
        if ((flags & 0x10000) && strcmp(p, path) == 0) found = 1; /* __SO_ACCEPTCON */
    }
    fclose(f);
    return found;
}

/* Who listens at socket file path: ST_LIVE, ST_STALE (refused) or ST_UNKNOWN. */
static int socket_state(const char *path, char *why, size_t whylen)
{
    char real[PATH_MAX];
    if (unix_listening(path) == 1 || (realpath(path, real) && unix_listening(real) == 1))
        return ST_LIVE;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(why, whylen, "path too long to connect to");
        return ST_UNKNOWN;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    static const int types[] = {SOCK_SEQPACKET, SOCK_STREAM, SOCK_DGRAM};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int s = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) break;
        int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
        int err = errno;
        close(s);
        if (rc == 0 || err == EINPROGRESS || err == EAGAIN) return ST_LIVE;
        if (err == ECONNREFUSED) {
            snprintf(why, whylen, "nobody listens (connect: ECONNREFUSED)");
            return ST_STALE;
        }
        if (err != EPROTOTYPE) {
            snprintf(why, whylen, "connect: %s", strerror(err));
            return ST_UNKNOWN;
        }
    }
    return ST_UNKNOWN;
}

static void scan_dir(const char *dir, objlist *l, notes *ns)
{
    DIR *d = opendir(dir);
    if (!d) {
        note_add(ns, "--path %s: %s", dir, strerror(errno));
        return;
    }
    size_t first = l->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        char path[PATH_MAX];
        int n =
            snprintf(path, sizeof path, "%s%s%s", dir, ends_with(dir, "/") ? "" : "/", e->d_name);
        if (n < 0 || (size_t)n >= sizeof path) continue;
        if (S_ISSOCK(st.st_mode)) {
            obj *o = obj_new(l, "socket");
            snprintf(o->name, sizeof o->name, "%s", path);
            snprintf(o->part[0], sizeof o->part[0], "%s", path);
            o->uid = st.st_uid;
            o->mode = st.st_mode & 07777;
            o->state = socket_state(path, o->note, sizeof o->note);
            continue;
        }
        if (S_ISREG(st.st_mode)) { /* a persistent region's or state's file? */
            int fd = openat(dirfd(d), e->d_name,
                            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            struct stat fst;
            uint32_t k = fd >= 0 && fstat(fd, &fst) == 0 ? lsr_file_kind(fd, &fst) : 0;
            if (fd >= 0) close(fd);
            if (!k) continue;
            obj *o = obj_new(l, k == FERRY_OBJ_STATE ? "state" : "region");
            snprintf(o->name, sizeof o->name, "%s", path);
            snprintf(o->part[0], sizeof o->part[0], "%s", path);
            o->dev[0] = fst.st_dev;
            o->ino[0] = fst.st_ino;
            o->uid = fst.st_uid;
            o->mode = fst.st_mode & 07777;
            o->size = (long long)fst.st_size - (long long)LSR_HDR;
            continue;
        }
        int side = ends_with(path, ".c2s") ? 0 : ends_with(path, ".s2c") ? 1 : -1;
        if (!S_ISFIFO(st.st_mode) || side < 0) continue;
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(path) - 4), path);
        obj *o = NULL;
        for (size_t i = first; i < l->n; i++)
            if (strcmp(l->v[i].kind, "fifo") == 0 && strcmp(l->v[i].name, base) == 0) o = &l->v[i];
        if (!o) {
            o = obj_new(l, "fifo");
            snprintf(o->name, sizeof o->name, "%s", base);
        }
        snprintf(o->part[side], sizeof o->part[side], "%s", path);
        o->dev[side] = st.st_dev;
        o->ino[side] = st.st_ino;
        o->uid = st.st_uid;
        o->mode = st.st_mode & 07777;
    }
    closedir(d);
    for (size_t i = first; i < l->n; i++) {
        obj *o = &l->v[i];
        if (strcmp(o->kind, "fifo") == 0 && (!o->part[0][0] || !o->part[1][0]))
            snprintf(o->note, sizeof o->note, "half a pair: no %s",
                     o->part[0][0] ? ".s2c" : ".c2s");
    }
}

/* ------------------------------------------------------------------ who has what open */

/* Could a process of uid open o (by its mode bits)? root's processes are not counted
 * when we cannot read them (a non-root caller never can). */
static int could_open(const obj *o, uid_t uid)
{
    return uid != 0 && (uid == o->uid || (o->mode & 066));
}

/* Look at every process's fds for the posixmq and fifo objects. */
static void scan_holders(objlist *l)
{
    int want = 0;
    size_t nr = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (is_region_obj(&l->v[i]))
            nr++;
        else if (l->v[i].ino[0] || l->v[i].ino[1])
            want = 1;
    }
    if (nr) { /* regions: their holders (fds and mappings), by ls_region.c */
        lsr_target *t = calloc(nr, sizeof *t);
        size_t k = 0;
        for (size_t i = 0; t && i < l->n; i++)
            if (is_region_obj(&l->v[i])) {
                t[k].dev = l->v[i].dev[0];
                t[k].ino = l->v[i].ino[0];
                k++;
            }
        if (t) lsr_scan(t, nr, ferryd_pid());
        k = 0;
        for (size_t i = 0; i < l->n; i++)
            if (is_region_obj(&l->v[i])) {
                obj *o = &l->v[i];
                o->holders = t ? t[k].holders : 0;
                o->unreadable = t ? t[k].unknown : 1;
                k++;
            }
        free(t);
    }
    if (!want) return;
    DIR *proc = opendir("/proc");
    if (!proc) return;
    pid_t self = getpid();
    struct dirent *pe;
    while ((pe = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)pe->d_name[0])) continue;
        pid_t pid = (pid_t)atol(pe->d_name);
        if (pid == self) continue;
        char fdpath[64];
        snprintf(fdpath, sizeof fdpath, "/proc/%d/fd", (int)pid);
        DIR *fds = opendir(fdpath);
        if (!fds) {
            struct stat pst;
            if (errno == EACCES && fstatat(dirfd(proc), pe->d_name, &pst, 0) == 0)
                for (size_t i = 0; i < l->n; i++)
                    if (could_open(&l->v[i], pst.st_uid)) l->v[i].unreadable = 1;
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(fds)) != NULL) {
            struct stat st;
            if (fe->d_name[0] == '.') continue;
            if (fstatat(dirfd(fds), fe->d_name, &st, 0) < 0) continue;
            if (!S_ISFIFO(st.st_mode) && !S_ISREG(st.st_mode)) continue; /* mqueue: S_IFREG */
            for (size_t i = 0; i < l->n; i++) {
                obj *o = &l->v[i];
                if (is_region_obj(o)) continue;
                for (int s = 0; s < 2; s++)
                    if (o->ino[s] && o->ino[s] == st.st_ino && o->dev[s] == st.st_dev)
                        pid_add(o, pid, "open");
            }
        }
        closedir(fds);
    }
    closedir(proc);
}

static void decide(obj *o)
{
    if (strcmp(o->kind, "socket") == 0 || strcmp(o->kind, "sysvmq") == 0)
        return;             /* decided when found */
    if (is_region_obj(o)) { /* persistent by design: held or kept, never stale */
        o->state = o->holders ? ST_LIVE : ST_KEPT;
        snprintf(o->note, sizeof o->note, "%lld bytes, %d holder%s%s", o->size, o->holders,
                 o->holders == 1 ? "" : "s",
                 o->unreadable ? " (or more: some processes could not be read)" : "");
        return;
    }
    int alive = 0;
    for (int i = 0; i < o->npids; i++) alive |= o->pids[i].alive;
    if (alive) {
        o->state = ST_LIVE;
    } else {
        o->state = o->unreadable ? ST_UNKNOWN : ST_STALE;
        if (o->unreadable && !o->note[0])
            snprintf(o->note, sizeof o->note, "could not read the fds of some processes");
    }
}

/* Queues have a depth; FIFOs and sockets show none (looking would mean opening them). */
static int has_depth(const obj *o)
{
    return strcmp(o->kind, "posixmq") == 0 || strcmp(o->kind, "sysvmq") == 0;
}

static int kind_rank(const char *k)
{
    return strcmp(k, "posixmq") == 0  ? 0
           : strcmp(k, "sysvmq") == 0 ? 1
           : strcmp(k, "fifo") == 0   ? 2
           : strcmp(k, "socket") == 0 ? 3
                                      : 4;
}

/* Rows in a stable order: by kind, then name (System V ids numerically). */
static int obj_cmp(const void *a, const void *b)
{
    const obj *x = a, *y = b;
    int r = kind_rank(x->kind) - kind_rank(y->kind);
    if (r) return r;
    if (x->id[0] != y->id[0]) return x->id[0] < y->id[0] ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void scan_all(const scanopts *so, objlist *l, notes *ns)
{
    scan_posixmq(so, l, ns);
    scan_sysvmq(l, ns);
    for (int i = 0; i < so->ndirs; i++) scan_dir(so->dirs[i], l, ns);
    scan_holders(l);
    for (size_t i = 0; i < l->n; i++) decide(&l->v[i]);
    if (l->n) qsort(l->v, l->n, sizeof *l->v, obj_cmp);
}

/* ------------------------------------------------------------------ the broker */

static int names_only; /* ls --names: the names alone, one a line (for completion) */

typedef struct broker {
    char sock[108];
    int running;
    int err; /* ferry_list's error, when not "not running" */
    pid_t pid;
    ferry_name_info *names;
    long *depth; /* per name: a mailbox's queued messages, -1 not a mailbox or unknown */
    size_t n;
    lsr_target *rt; /* the regions and states among the names: their holders and files */
    long *rti;      /* per name: its index in rt, or -1 */
    size_t nrt;
} broker;

static const char *kind_of(uint32_t kind)
{
    static const char *const k[] = {"server",  "semaphore", "mutex",  "barrier", "event",
                                    "mailbox", "broadcast", "region", "state"};
    return kind < sizeof k / sizeof *k ? k[kind] : "?";
}

/* The holders and files of the regions and states among the names (ls_region.c: by the
 * device and inode ferryd reports, in every process the caller may look at). */
static void broker_regions(broker *b)
{
    if (names_only || !b->n) return;
    b->rti = malloc(b->n * sizeof *b->rti);
    if (!b->rti) return;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t k = b->names[i].kind;
        b->rti[i] = k == FERRY_OBJ_REGION || k == FERRY_OBJ_STATE ? (long)b->nrt++ : -1;
    }
    if (!b->nrt || !(b->rt = calloc(b->nrt, sizeof *b->rt))) {
        b->nrt = 0;
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->rti[i] >= 0) {
            b->rt[b->rti[i]].dev = b->names[i].dev;
            b->rt[b->rti[i]].ino = b->names[i].ino;
        }
    lsr_scan(b->rt, b->nrt, b->pid);
}

/* The path of the region file with that device and inode among the objects found in
 * --path DIRs, into out (left alone when there is none). */
static void region_path_from(const objlist *l, uint64_t dev, uint64_t ino, char *out, size_t cap)
{
    for (size_t i = 0; i < l->n; i++)
        if (is_region_obj(&l->v[i]) && (uint64_t)l->v[i].dev[0] == dev &&
            (uint64_t)l->v[i].ino[0] == ino) {
            snprintf(out, cap, "%s", l->v[i].name);
            return;
        }
}

static const lsr_target *region_of(const broker *b, size_t i)
{
    return b->rt && b->rti && b->rti[i] >= 0 ? &b->rt[b->rti[i]] : NULL;
}

/* Each mailbox's depth, where the caller may open it (ferry_mailbox_open: the connect
 * right); -1 for every other name, or when it cannot be opened, and beyond the first
 * MAX_DEPTHS mailboxes (a sharer holding a mailbox's lock delays its stats up to 1 s:
 * the bound keeps `ferry ls` quick). */
#define MAX_DEPTHS 256
static void broker_depths(broker *b)
{
    if (names_only) return;
    b->depth = calloc(b->n ? b->n : 1, sizeof *b->depth);
    int opened = 0;
    for (size_t i = 0; b->depth && i < b->n; i++) {
        b->depth[i] = -1;
        if (b->names[i].kind != FERRY_OBJ_MAILBOX || opened >= MAX_DEPTHS) continue;
        opened++;
        ferry_mailbox *mb;
        if (ferry_mailbox_open(b->names[i].name, &mb, CALL_TIMEOUT) < 0) continue;
        ferry_mailbox_counters st;
        ferry_mailbox_counters_init(&st);
        if (ferry_mailbox_stats(mb, &st) == 0) b->depth[i] = (long)st.queued;
        ferry_mailbox_close(mb);
    }
}

static long depth_of(const broker *b, size_t i)
{
    return b->depth ? b->depth[i] : -1;
}

static void broker_read(broker *b)
{
    memset(b, 0, sizeof *b);
    if (ferry_broker_path(b->sock, sizeof b->sock) < 0) b->sock[0] = '\0';
    char lock[sizeof b->sock + 8];
    snprintf(lock, sizeof lock, "%s.lock", b->sock);
    FILE *f = fopen(lock, "re");
    int pid;
    if (f && fscanf(f, "%d", &pid) == 1 && pid > 0) b->pid = pid;
    if (f) fclose(f);
    size_t cap = 0;
    char after[256] = "";
    for (;;) {
        if (b->n + PAGE > cap) {
            cap = cap ? cap * 2 : PAGE * 2;
            ferry_name_info *v = realloc(b->names, cap * sizeof *v);
            if (!v) {
                b->err = -ENOMEM;
                return;
            }
            b->names = v;
        }
        ssize_t n = ferry_list(after, b->names + b->n, PAGE, CALL_TIMEOUT);
        if (n < 0) {
            if (n != -ECONNREFUSED && n != -ENOENT) b->err = (int)n;
            if (b->n == 0 && (n == -ECONNREFUSED || n == -ENOENT)) return;
            b->running = 1;
            broker_depths(b);
            broker_regions(b);
            return;
        }
        b->running = 1;
        b->n += (size_t)n;
        if (n < PAGE) {
            broker_depths(b);
            broker_regions(b);
            return;
        }
        snprintf(after, sizeof after, "%s", b->names[b->n - 1].name);
    }
}

/* ------------------------------------------------------------------ output */

/* A JSON string: escapes, and invalid UTF-8 bytes as U+FFFD. */
static void json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            int ok = len > 0;
            for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xc0) == 0x80;
            if (ok && len == 3 && c == 0xe0 && p[1] < 0xa0) ok = 0;  /* overlong */
            if (ok && len == 3 && c == 0xed && p[1] >= 0xa0) ok = 0; /* surrogates */
            if (ok && len == 4 && c == 0xf0 && p[1] < 0x90) ok = 0;
            if (ok && len == 4 && c == 0xf4 && p[1] >= 0x90) ok = 0;
            if (ok) {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static void print_json(const broker *b, const objlist *l, const notes *ns)
{
    FILE *f = stdout;
    fputs("{\"broker\": {\"socket\": ", f);
    json_str(f, b->sock);
    fprintf(f, ", \"running\": %s, \"pid\": ", b->running ? "true" : "false");
    if (b->pid > 0)
        fprintf(f, "%d, \"pid_alive\": %s", (int)b->pid, pid_alive(b->pid) ? "true" : "false");
    else
        fputs("null, \"pid_alive\": null", f);
    fputs(", \"error\": ", f);
    if (b->err)
        json_str(f, ferry_strerror(b->err));
    else
        fputs("null", f);
    fputs("},\n \"names\": [", f);
    for (size_t i = 0; i < b->n; i++) {
        const ferry_name_info *n = &b->names[i];
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        json_str(f, n->name);
        fprintf(f,
                ", \"kind\": \"%s\", \"uid\": %u, \"gid\": %u, \"pid\": %d, \"mode\": \"%04o\", "
                "\"connects\": %llu, \"since_ns\": %llu, \"owner_alive\": %s",
                kind_of(n->kind), (unsigned)n->uid, (unsigned)n->gid, (int)n->pid, n->mode,
                (unsigned long long)n->connects, (unsigned long long)n->since_ns,
                pid_alive(n->pid) ? "true" : "false");
        if (depth_of(b, i) >= 0)
            fprintf(f, ", \"depth\": %ld", depth_of(b, i));
        else
            fputs(", \"depth\": null", f);
        const lsr_target *rt = region_of(b, i);
        if (rt) { /* a region or state: its size, holders, and its file if persistent */
            fprintf(f, ", \"size\": %llu, \"holders\": %d, \"holders_complete\": %s, \"path\": ",
                    (unsigned long long)n->size, rt->holders, rt->unknown ? "false" : "true");
            if (rt->path[0])
                json_str(f, rt->path);
            else
                fputs("null", f);
            fprintf(f, ", \"persistent\": %s",
                    rt->path[0]     ? "true"
                    : rt->volatile_ ? "false"
                                    : "null");
        }
        fputc('}', f);
    }
    fputs("],\n \"objects\": [", f);
    for (size_t i = 0; i < l->n; i++) {
        const obj *o = &l->v[i];
        fprintf(f, "%s{\"kind\": \"%s\", \"object\": ", i ? ",\n  " : "\n  ", o->kind);
        json_str(f, o->name);
        fputs(", \"parts\": [", f);
        int nparts = strcmp(o->kind, "socket") == 0 || is_region_obj(o) ? 1 : 2;
        for (int s = 0; s < nparts; s++) {
            if (s) fputs(", ", f);
            if (o->part[s][0])
                json_str(f, o->part[s]);
            else
                fputs("null", f);
        }
        fputc(']', f);
        if (strcmp(o->kind, "sysvmq") == 0) {
            fputs(", \"ids\": [", f);
            for (int s = 0; s < 2; s++) {
                if (s) fputs(", ", f);
                if (o->id[s] >= 0)
                    fprintf(f, "%d", o->id[s]);
                else
                    fputs("null", f);
            }
            fputc(']', f);
            if (o->key)
                fprintf(f, ", \"key\": \"0x%08llx\"", o->key & 0xffffffffLL);
            else
                fputs(", \"key\": null", f);
        }
        fprintf(f, ", \"uid\": %u, \"mode\": \"%04o\"", (unsigned)o->uid, o->mode);
        if (is_region_obj(o))
            fprintf(f, ", \"size\": %lld, \"holders\": %d, \"holders_complete\": %s", o->size,
                    o->holders, o->unreadable ? "false" : "true");
        if (has_depth(o)) {
            fputs(", \"depth\": [", f);
            for (int s = 0; s < 2; s++) {
                if (s) fputs(", ", f);
                if (o->depth[s] >= 0)
                    fprintf(f, "%ld", o->depth[s]);
                else
                    fputs("null", f);
            }
            fputc(']', f);
        }
        fprintf(f, ", \"state\": \"%s\", \"pids\": [", state_names[o->state]);
        for (int k = 0; k < o->npids; k++)
            fprintf(f, "%s{\"pid\": %d, \"role\": \"%s\", \"alive\": %s}", k ? ", " : "",
                    (int)o->pids[k].pid, o->pids[k].role, o->pids[k].alive ? "true" : "false");
        fputs("], \"note\": ", f);
        if (o->note[0])
            json_str(f, o->note);
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs("],\n \"notes\": [", f);
    for (int i = 0; i < ns->n; i++) {
        if (i) fputs(", ", f);
        json_str(f, ns->text[i]);
    }
    fputs("]}\n", f);
}

static void print_text(const broker *b, const objlist *l, const notes *ns)
{
    if (!b->running) {
        printf("ferryd: not running (socket %s)\n", b->sock);
    } else {
        printf("ferryd: running on %s", b->sock);
        if (b->pid > 0) printf(" (pid %d%s)", (int)b->pid, pid_alive(b->pid) ? "" : ", dead?");
        putchar('\n');
        if (b->err) printf("ferryd: list: %s\n", ferry_strerror(b->err));
        if (b->n == 0) {
            printf("no names\n");
        } else {
            printf("%-32s %-9s %6s %8s %5s %9s %5s %s\n", "NAME", "KIND", "UID", "PID", "MODE",
                   "CONNECTS", "DEPTH", "OWNER");
            for (size_t i = 0; i < b->n; i++) {
                const ferry_name_info *n = &b->names[i];
                char depth[24] = "-";
                if (depth_of(b, i) >= 0) snprintf(depth, sizeof depth, "%ld", depth_of(b, i));
                printf("%-32s %-9s %6u %8d %04o %9llu %5s %s\n", n->name, kind_of(n->kind),
                       (unsigned)n->uid, (int)n->pid, n->mode, (unsigned long long)n->connects,
                       depth, pid_alive(n->pid) ? "alive" : "dead");
            }
        }
        if (b->nrt) { /* the regions and states among them */
            printf("\n%-32s %-6s %12s %7s %s\n", "REGION", "KIND", "SIZE", "HOLDERS", "FILE");
            for (size_t i = 0; i < b->n; i++) {
                const lsr_target *rt = region_of(b, i);
                if (!rt) continue;
                char h[24];
                snprintf(h, sizeof h, "%d%s", rt->holders, rt->unknown ? "+?" : "");
                printf("%-32s %-6s %12llu %7s %s\n", b->names[i].name, kind_of(b->names[i].kind),
                       (unsigned long long)b->names[i].size, h,
                       rt->path[0]     ? rt->path
                       : rt->volatile_ ? "(memfd: volatile)"
                                       : "?");
            }
        }
    }
    putchar('\n');
    if (l->n == 0) {
        printf("no ferry-made kernel objects found\n");
    } else {
        printf("%-8s %-28s %6s %5s %-9s %-7s %s\n", "KIND", "OBJECT", "UID", "MODE", "DEPTH",
               "STATE", "PIDS; NOTE");
        for (size_t i = 0; i < l->n; i++) {
            const obj *o = &l->v[i];
            char depth[48] = "-", d0[24] = "?", d1[24] = "?";
            if (has_depth(o)) {
                if (o->depth[0] >= 0) snprintf(d0, sizeof d0, "%ld", o->depth[0]);
                if (o->depth[1] >= 0) snprintf(d1, sizeof d1, "%ld", o->depth[1]);
                snprintf(depth, sizeof depth, "%s/%s", d0, d1);
            }
            printf("%-8s %-28s %6u %04o %-9s %-*s", o->kind, o->name, (unsigned)o->uid, o->mode,
                   depth, o->npids || o->note[0] ? 7 : 0, state_names[o->state]);
            for (int k = 0; k < o->npids; k++)
                printf(" %s:%d%s", o->pids[k].role, (int)o->pids[k].pid,
                       o->pids[k].alive ? "" : "(dead)");
            if (o->note[0]) printf("%s %s", o->npids ? ";" : "", o->note);
            putchar('\n');
        }
    }
    for (int i = 0; i < ns->n; i++) printf("note: %s\n", ns->text[i]);
}

/* ------------------------------------------------------------------ options */

static void ls_usage(FILE *f)
{
    fputs("usage: ferry ls [--json | --names] [--path DIR]... [--mqueue DIR] [--broker SOCKET]\n"
          "  what ferryd holds (names, owners, connects; regions and states with their\n"
          "  size, holders and file) and the kernel objects ferry's transports made\n"
          "  (POSIX and System V queue pairs; FIFO pairs, socket files and persistent\n"
          "  region files in each --path DIR), each live, stale (its makers are gone),\n"
          "  unknown, or kept (a region file nobody holds: never stale).\n"
          "  --json           one JSON object: {\"broker\", \"names\", \"objects\", \"notes\"}\n"
          "  --names          only ferryd's names, one a line (what completion uses)\n"
          "  --path DIR       also look for FIFO pairs (*.c2s, *.s2c), sockets and region\n"
          "                   files in DIR\n"
          "  --mqueue DIR     where the mqueue file system is mounted (/dev/mqueue)\n"
          "  --broker SOCKET  ferryd's socket (default: as the library finds it)\n"
          "  ferryd is never started by this command. Exit: 0, 1 ferryd failed, 2 usage.\n",
          f);
}

static void rm_usage(FILE *f)
{
    fputs("usage: ferry rm [-n] [--path DIR]... [--mqueue DIR] (--stale | OBJECT...)\n"
          "  --stale     remove every stale object `ferry ls` (same options) shows\n"
          "  OBJECT      /name (both POSIX queues), sysvmq:ID (the queue, and its ferry\n"
          "              partner), a path (socket, FIFO, PATH.c2s + PATH.s2c, or a\n"
          "              persistent region's file you own), a URL, or the name of a\n"
          "              published persistent region (its file: found through its\n"
          "              holders, or in a --path DIR)\n"
          "  -n          say what would be removed, remove nothing\n"
          "  Exit: 0 all removed, 1 something could not be (each is reported), 2 usage.\n",
          f);
}

enum { OPT_JSON = 1000, OPT_PATH, OPT_MQUEUE, OPT_BROKER, OPT_STALE, OPT_NAMES };

/* Parse the options ls and rm share (and their own). Returns 0, or 2 after a usage
 * message; *help set for --help. */
static int parse(int argc, char **argv, int is_rm, scanopts *so, int *json, int *stale, int *dry,
                 int *help)
{
    static const struct option lopts[] = {{"json", no_argument, 0, OPT_JSON},
                                          {"path", required_argument, 0, OPT_PATH},
                                          {"mqueue", required_argument, 0, OPT_MQUEUE},
                                          {"broker", required_argument, 0, OPT_BROKER},
                                          {"stale", no_argument, 0, OPT_STALE},
                                          {"names", no_argument, 0, OPT_NAMES},
                                          {"dry-run", no_argument, 0, 'n'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    void (*usage)(FILE *) = is_rm ? rm_usage : ls_usage;
    int c;
    so->mqdir = "/dev/mqueue";
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, is_rm ? "+nh" : "+h", lopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            if (is_rm) goto bad;
            *json = 1;
            break;
        case OPT_PATH:
            if (so->ndirs == MAX_DIRS) {
                fprintf(stderr, "ferry: at most %d --path\n", MAX_DIRS);
                return 2;
            }
            so->dirs[so->ndirs++] = optarg;
            break;
        case OPT_MQUEUE:
            so->mqdir = optarg;
            break;
        case OPT_BROKER:
            if (is_rm) goto bad;
            setenv("FERRY_BROKER", optarg, 1);
            break;
        case OPT_NAMES:
            if (is_rm) goto bad;
            names_only = 1;
            break;
        case OPT_STALE:
            if (!is_rm) goto bad;
            *stale = 1;
            break;
        case 'n':
            *dry = 1;
            break;
        case 'h':
            *help = 1;
            usage(stdout);
            return 0;
        default:
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "ferry %s: bad option '%s'\n", is_rm ? "rm" : "ls",
            optind > 0 && optind <= argc ? argv[optind - 1] : "?");
    usage(stderr);
    return 2;
}

int ls_main(int argc, char **argv)
{
    scanopts so = {0};
    int json = 0, stale = 0, dry = 0, help = 0;
    int rc = parse(argc, argv, 0, &so, &json, &stale, &dry, &help);
    if (rc || help) return rc;
    if (optind < argc) {
        fprintf(stderr, "ferry ls: unexpected argument '%s'\n", argv[optind]);
        ls_usage(stderr);
        return 2;
    }
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    broker b;
    broker_read(&b);
    if (names_only) { /* no kernel objects, no depths: quick enough for a Tab */
        for (size_t i = 0; i < b.n; i++) printf("%s\n", b.names[i].name);
        free(b.names);
        free(b.depth);
        return fflush(stdout) != 0 || b.err ? 1 : 0;
    }
    objlist l = {0};
    notes ns = {0};
    scan_all(&so, &l, &ns);
    for (size_t i = 0; b.rt && i < b.n; i++) /* a region's file found in a --path DIR */
        if (b.rti[i] >= 0 && !b.rt[b.rti[i]].path[0])
            region_path_from(&l, b.names[i].dev, b.names[i].ino, b.rt[b.rti[i]].path,
                             sizeof b.rt[b.rti[i]].path);
    if (json)
        print_json(&b, &l, &ns);
    else
        print_text(&b, &l, &ns);
    free(b.names);
    free(b.depth);
    free(b.rt);
    free(b.rti);
    free(l.v);
    if (fflush(stdout) != 0) return 1;
    return b.err ? 1 : 0;
}

/* ------------------------------------------------------------------ rm */

static int failed; /* errors reported by this run of rm */

static void report(const char *what, int err)
{
    fprintf(stderr, "ferry rm: %s: %s\n", what, strerror(err));
    failed++;
}

static void rm_mq(const char *name, int dry, int *removed)
{
    if (dry) {
        printf("would remove posixmq %s\n", name);
        return;
    }
    if (mq_unlink(name) == 0) {
        printf("removed posixmq %s\n", name);
        (*removed)++;
    } else if (errno != ENOENT) {
        report(name, errno);
    }
}

static void rm_sysv(int id, int dry, int *removed)
{
    char what[32];
    snprintf(what, sizeof what, "sysvmq:%d", id);
    if (dry) {
        printf("would remove sysvmq %d\n", id);
        return;
    }
    if (msgctl(id, IPC_RMID, NULL) == 0) {
        printf("removed sysvmq %d\n", id);
        (*removed)++;
    } else if (errno != EINVAL && errno != EIDRM) { /* gone meanwhile */
        report(what, errno);
    }
}

static void rm_path(const char *path, int dry, int *removed)
{
    if (dry) {
        printf("would remove %s\n", path);
        return;
    }
    if (unlink(path) == 0) {
        printf("removed %s\n", path);
        (*removed)++;
    } else if (errno != ENOENT) {
        report(path, errno);
    }
}

static void rm_obj(const obj *o, int dry)
{
    int removed = 0;
    for (int s = 0; s < 2; s++) {
        if (!o->part[s][0]) continue;
        if (strcmp(o->kind, "posixmq") == 0)
            rm_mq(o->part[s], dry, &removed);
        else if (strcmp(o->kind, "sysvmq") == 0)
            rm_sysv(o->id[s], dry, &removed);
        else
            rm_path(o->part[s], dry, &removed);
    }
}

/* Is the sysvmq object o still stale? Judged again just before it is removed: a client
 * may have attached, or a listener come back, since the scan. */
static int sv_still_stale(const obj *o)
{
    objlist l = {0};
    notes ns = {0};
    scan_sysvmq(&l, &ns);
    int stale = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].id[0] == o->id[0] && l.v[i].id[1] == o->id[1]) stale = l.v[i].state == ST_STALE;
    free(l.v);
    return stale;
}

/* Is st a socket or FIFO (what ferry makes)? */
static int ferry_file(const char *path, struct stat *st)
{
    return lstat(path, st) == 0 && (S_ISSOCK(st->st_mode) || S_ISFIFO(st->st_mode));
}

/* Is arg no OBJECT at all? Says why and returns 1. Checked for every operand before
 * anything is removed. */
static int operand_bad(const char *arg)
{
    const char *p = arg;
    if (strncmp(p, "sysvmq://#", 10) == 0 || strncmp(p, "sysvmq:", 7) == 0) {
        const char *num = p + (p[7] == '/' ? 10 : 7);
        char *end;
        errno = 0;
        long id = strtol(num, &end, 10);
        if (isdigit((unsigned char)*num) && !*end && !errno && id <= INT_MAX) return 0;
        fprintf(stderr, "ferry rm: '%s': want sysvmq:ID (the msqid `ferry ls` shows)\n", arg);
        return 1;
    }
    if (strncmp(p, "posixmq://", 10) == 0)
        p += 10;
    else if (strncmp(p, "fifo://", 7) == 0)
        p += 7;
    else if (strncmp(p, "unix://", 7) == 0)
        p += 7;
    else if (strncmp(p, "shm://", 6) == 0)
        p += 6;
    if (!p[0] || p[0] == '@') {
        fprintf(stderr, "ferry rm: '%s': not a ferry object with a name to remove\n", arg);
        return 1;
    }
    return 0;
}

static const scanopts *rm_opts; /* rm's --path DIRs, for rm_region_name */

/* `ferry rm NAME` of a region or state published under NAME (no file by that name): its
 * file, found through the processes that hold it (ls_region.c), removed by the rules of
 * a path; a volatile one has no file (it goes with its last holder). 1 when NAME was
 * such a name (done, or reported), 0 when ferryd knows no region by it. */
static int rm_region_name(const char *name, int dry)
{
    ferry_name_info in;
    if (strchr(name, '/') || ferry_lookup(name, &in, CALL_TIMEOUT) < 0 ||
        (in.kind != FERRY_OBJ_REGION && in.kind != FERRY_OBJ_STATE))
        return 0;
    lsr_target t = {.dev = in.dev, .ino = in.ino};
    lsr_scan(&t, 1, ferryd_pid());
    if (!t.path[0] && rm_opts) { /* its file in a --path DIR? */
        objlist l = {0};
        notes ns = {0};
        for (int i = 0; i < rm_opts->ndirs; i++) scan_dir(rm_opts->dirs[i], &l, &ns);
        region_path_from(&l, in.dev, in.ino, t.path, sizeof t.path);
        free(l.v);
    }
    const char *what = in.kind == FERRY_OBJ_STATE ? "state" : "region";
    if (t.path[0]) {
        int rc = lsr_remove(t.path, dry, in.dev, in.ino);
        if (rc < 0) /* gone, or no longer a region's file, since its holder showed it */
            fprintf(stderr, "ferry rm: %s: its file %s: %s\n", name, t.path,
                    rc == -ENOENT ? strerror(ENOENT) : "no longer a region file; left alone");
        if (rc != 0) failed++;
    } else if (t.volatile_) {
        fprintf(stderr,
                "ferry rm: %s: a volatile %s (a memfd): no file to remove; it goes "
                "with its last holder\n",
                name, what);
        failed++;
    } else {
        fprintf(stderr,
                "ferry rm: %s: a %s whose file cannot be found (no holder you may "
                "look at shows its name; --path DIR looks in DIR); give its path\n",
                name, what);
        failed++;
    }
    return 1;
}

/* Remove one OBJECT operand (operand_bad said it is one). */
static void rm_one(const char *arg, int dry)
{
    const char *p = arg;
    int removed = 0;
    if (strncmp(p, "posixmq://", 10) == 0) p += 10;
    if (strncmp(p, "sysvmq://#", 10) == 0 || strncmp(p, "sysvmq:", 7) == 0) {
        long id = strtol(p + (p[7] == '/' ? 10 : 7), NULL, 10);
        /* The queue, and its ferry partner (door <-> back). */
        objlist l = {0};
        notes ns = {0};
        scan_sysvmq(&l, &ns);
        int other = -1;
        for (size_t i = 0; i < l.n; i++) {
            if (l.v[i].id[0] == (int)id) other = l.v[i].id[1];
            if (l.v[i].id[1] == (int)id) other = l.v[i].id[0];
        }
        free(l.v);
        if (!dry && msgctl((int)id, IPC_RMID, NULL) < 0) {
            report(arg, errno == EINVAL ? ENOENT : errno);
        } else if (dry) {
            printf("would remove sysvmq %ld\n", id);
        } else {
            printf("removed sysvmq %ld\n", id);
        }
        if (other >= 0) rm_sysv(other, dry, &removed);
        return;
    }
    const char *path = NULL;
    if (strncmp(arg, "fifo://", 7) == 0)
        path = arg + 7;
    else if (strncmp(arg, "unix://", 7) == 0 || strncmp(arg, "shm://", 6) == 0)
        path = strchr(arg, ':') + 3;
    if (!path && p[0] == '/' && p[1] && !strchr(p + 1, '/')) { /* a POSIX pair */
        char c2s[NAME_MAX + 2], s2c[NAME_MAX + 2];
        if (strlen(p) + 4 > NAME_MAX) {
            report(arg, ENAMETOOLONG);
            return;
        }
        snprintf(c2s, sizeof c2s, "%s.c2s", p);
        snprintf(s2c, sizeof s2c, "%s.s2c", p);
        int before = failed;
        rm_mq(c2s, dry, &removed);
        rm_mq(s2c, dry, &removed);
        if (!dry && !removed && failed == before) report(arg, ENOENT);
        return;
    }
    if (!path) path = arg;
    struct stat st;
    char buf[PATH_MAX];
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) { /* a persistent region's file? */
        int rc = lsr_remove(path, dry, 0, 0);
        if (rc == 0) return;
        if (rc == 1) {
            failed++;
            return;
        }
    }
    if (ferry_file(path, &st)) {
        rm_path(path, dry, &removed);
        int side = ends_with(path, ".c2s") ? 0 : ends_with(path, ".s2c") ? 1 : -1;
        if (S_ISFIFO(st.st_mode) && side >= 0) { /* its partner FIFO */
            snprintf(buf, sizeof buf, "%.*s%s", (int)(strlen(path) - 4), path,
                     side ? ".c2s" : ".s2c");
            if (lstat(buf, &st) == 0 && S_ISFIFO(st.st_mode)) rm_path(buf, dry, &removed);
        }
        return;
    }
    if (lstat(path, &st) == 0) {
        fprintf(stderr, "ferry rm: %s: not a socket, FIFO or region file; left alone\n", path);
        failed++;
        return;
    }
    int found = 0;
    for (int s = 0; s < 2; s++) {
        if (snprintf(buf, sizeof buf, "%s%s", path, s ? ".s2c" : ".c2s") >= (int)sizeof buf) break;
        if (lstat(buf, &st) == 0 && S_ISFIFO(st.st_mode)) {
            found = 1;
            rm_path(buf, dry, &removed);
        }
    }
    if (!found && !rm_region_name(arg, dry)) report(path, ENOENT);
}

int rm_main(int argc, char **argv)
{
    scanopts so = {0};
    int json = 0, stale = 0, dry = 0, help = 0;
    int rc = parse(argc, argv, 1, &so, &json, &stale, &dry, &help);
    if (rc || help) return rc;
    if (stale == (optind < argc)) {
        fprintf(stderr, "ferry rm: give --stale or the objects to remove (not both)\n");
        rm_usage(stderr);
        return 2;
    }
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    failed = 0;
    rm_opts = &so;
    if (stale) {
        objlist l = {0};
        notes ns = {0};
        scan_all(&so, &l, &ns);
        int n = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (l.v[i].state != ST_STALE) continue;
            n++;
            if (!dry && strcmp(l.v[i].kind, "sysvmq") == 0 && !sv_still_stale(&l.v[i])) {
                printf("kept %s: no longer stale\n", l.v[i].name);
                continue;
            }
            rm_obj(&l.v[i], dry);
        }
        if (n == 0) printf("nothing stale\n");
        free(l.v);
        return failed ? 1 : 0;
    }
    for (int i = optind; i < argc; i++)
        if (operand_bad(argv[i])) {
            rm_usage(stderr);
            return 2;
        }
    for (int i = optind; i < argc; i++) rm_one(argv[i], dry);
    return failed ? 1 : 0;
}
