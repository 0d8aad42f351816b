// SPDX-License-Identifier: MIT
/*
 * fuzz_adopt.c — libFuzzer harness for the shared objects a peer hands over: a mailbox,
 * an event queue or a broadcast ring adopted from a hostile image (src/mailbox/mailbox.c,
 * src/sync/event.c, src/bcast/bcast.c), driven through the public API only (so that the
 * objects' internals may change under it).
 *
 * Input: [kind][mode][shape][pre][ops...].
 *   kind % 3   0 mailbox, 1 event queue, 2 broadcast ring.
 *   shape      the creation options (capacity, max_msg, slots: small tables below).
 *   pre % 8    messages the creator sends (posts, publishes) before the adopt.
 *   mode % 6   how the adopted descriptor is made:
 *     0  a real object (ferry_X_create); the ops' patches before the first call are
 *        applied to its memory (a sharer that maps the memfd writes it) before the
 *        adopt, later ones between calls: a hostile sharer scribbling as the victim works;
 *     1  a raw image: a sealed memfd of 1..4 pages (+1 for a mailbox) holding a valid
 *        object header (magic, kind, version, size) and then the input's next bytes; for
 *        a mailbox or event queue it rides in a carrier made here, as ferry makes it;
 *     2..5  a broken descriptor around a real object's memory: carrier with a wrong
 *        magic, with one or three descriptors, with an unsealed copy of the memfd, or not
 *        a SEQPACKET socket / a doorbell that is a pipe (broadcast: an unsealed copy, a
 *        sealed copy one page longer than its header says, a pipe, a socket). These must
 *        be refused with -EBADMSG.
 *   ops        each [op][arg]: op % 16 == 0 is a patch [op][u32 off][u8 n][n bytes]
 *              (n % 17 bytes written at off modulo the image size, mode 0 and 1), other
 *              ops call the object (send/recv/peek/loan/attach..., post/next...,
 *              publish/subscribe/sub_recv/sub_peek...), all with FERRY_NOW. At most
 *              256 ops.
 * The broadcast ring's model, while it is clean (mode 0 and no patch so far): every
 * subscription's ferry_sub_seq is its start + the messages it received + ferry_sub_lost;
 * the counters' published is the pre-publishes + publishes + commits + the skipped n of
 * ferry_bcast_skip; a subscription that finds nothing (-EAGAIN, -EPIPE) has its
 * ferry_sub_seq at published, and a lossless one's lost is then exactly the n skipped
 * since it subscribed.
 * Invariants (abort when broken): no crash, no UB, no access outside the mapping
 * (ASan/UBSan); adopt answers 0 or -EBADMSG (modes 2..5: -EBADMSG); every call returns
 * data or an error its ferry.h entry documents (or -ENOTRECOVERABLE: a lock a sharer broke),
 * a received length within the buffer and max_msg; no FERRY_NOW call takes longer than
 * 2 s, less the time the harness's thread waited runnable for a CPU during the call
 * (call_wait_ns: a loaded machine's cost, not the call's; raw figure printed when over);
 * after closing everything, no descriptor is left (/proc/self/fd) and no memory
 * (LeakSanitizer).
 * FERRY_FUZZ_SKIP_MAILBOX=1 in the environment skips mailbox inputs: only for measuring
 * the other two on a tree whose mailbox lock is still a robust pthread mutex in the
 * shared memory, which a scribble turns into a hang (ferry_mailbox_close waits forever;
 * issue 11, finding 2). CI never sets it.
 * Built with -fsanitize=fuzzer as `fuzz_adopt`, and with replay_main.c as
 * `fuzz_adopt_replay`, which CTest runs over corpus/adopt.
 */
#define _GNU_SOURCE /* memfd_create, MSG_CMSG_CLOEXEC, F_ADD_SEALS */
#include "sync/obj.h"
#include "fuzzutil.h"

#include <ferry/ferry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS 256
#define PAGE    4096u
#define MSG_CAP 4096u /* the largest max_msg the shapes use */

enum { K_MAILBOX, K_EVENT, K_BCAST };

static const uint32_t kinds[3] = {FERRY_OBJ_MAILBOX, FERRY_OBJ_EVENT, FERRY_OBJ_BCAST};

/* ------------------------------------------------------------------ helpers */

/* The memfd inside a carrier (MSG_PEEK: it stays), or -1. The doorbell end is closed. */
static int carrier_memfd(int carrier)
{
    char b[8];
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {b, sizeof b};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    if (recvmsg(carrier, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0) return -1;
    int got[4], n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && n < 4; i++)
            memcpy(&got[n++], CMSG_DATA(c) + i * sizeof(int), 4);
    }
    for (int i = 1; i < n; i++) close(got[i]);
    return n ? got[0] : -1;
}

/* A carrier as ferry makes one: socketpair (A, B), one message `magic` on A carrying
 * fds[0..nfds) (-1 in fds means A itself), A closed. Returns B. */
static int make_carrier(const char *magic, const int *fds, int nfds, int type)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == 0);
    int f[4];
    for (int i = 0; i < nfds; i++) f[i] = fds[i] < 0 ? sv[0] : fds[i];
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {(void *)magic, 4};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), f, nfds * sizeof(int));
    REQUIRE(sendmsg(sv[0], &mh, MSG_NOSIGNAL) == 4);
    close(sv[0]);
    return sv[1];
}

/* A memfd of size bytes holding img[0..n) (rest zero), sealed against shrink and grow
 * unless `unsealed`. */
static int make_memfd(const void *img, size_t n, size_t size, int unsealed)
{
    int fd = memfd_create("fuzz-adopt", MFD_CLOEXEC | (unsealed ? 0 : MFD_ALLOW_SEALING));
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, (off_t)size) == 0);
    if (n > size) n = size;
    REQUIRE(n == 0 || pwrite(fd, img, n, 0) == (ssize_t)n);
    if (!unsealed) REQUIRE(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    return fd;
}

/* ------------------------------------------------------------------ the input */

/* A patch op's body: write it to map (size bytes) if map is not NULL. */
static void patch(fuzz_in *r, uint8_t *map, size_t size)
{
    uint32_t off = 0;
    fuzz_take(r, &off, 4);
    size_t n = fuzz_byte(r) % 17;
    if (n > r->n) n = r->n;
    if (map && size >= n) {
        size_t at = off % (size - n + 1);
        memcpy(map + at, r->p, n);
    }
    r->p += n;
    r->n -= n;
}

static int is_one_of(long v, const int *ok, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v == ok[i]) return 1;
    return 0;
}

#define ALLOWED(v, ...)                                                                            \
    do {                                                                                           \
        static const int ok_[] = {__VA_ARGS__};                                                    \
        long v_ = (long)(v);                                                                       \
        if (v_ < 0 && !is_one_of(v_, ok_, sizeof ok_ / sizeof ok_[0])) {                           \
            fprintf(stderr, "%s:%d: undocumented result %ld\n", __FILE__, __LINE__, v_);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Errors a hostile sharer may cause on any call: a corrupted object, a broken lock. */
#define HOSTILE -EBADMSG, -ENOTRECOVERABLE
/* A mailbox call without a deadline whose lock a scribble left held by a live process:
 * -ETIMEDOUT after the 1 s grace (ferry.h, "Trust"). */
#define MB_LOCKED -ETIMEDOUT

/* ------------------------------------------------------------------ mailbox */

static const uint32_t mb_caps[4] = {0, 1, 4, FERRY_UNBOUNDED};
static const size_t msg_sizes[4] = {1, 64, 100, MSG_CAP};

static void *mb_create(uint8_t shape, uint8_t pre, int *fd)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = mb_caps[shape & 3];
    if (o.capacity == 4 && (shape & 64)) o.capacity = 64;
    o.max_msg = msg_sizes[(shape >> 2) & 3];
    o.flags = (shape >> 4) & 3;
    ferry_mailbox *mb;
    REQUIRE(ferry_mailbox_create(&o, &mb) == 0);
    for (uint8_t i = 0; i < pre % 8 && o.capacity; i++)
        REQUIRE(ferry_mailbox_send(mb, i % 3, "pre-message", o.max_msg < 11 ? 1 : 11, FERRY_NOW) ==
                    0 ||
                i >= o.capacity);
    *fd = ferry_mailbox_fd(mb);
    return mb;
}

/* The calling thread's run-queue wait so far (ns): the time it was runnable but not
 * running (second field of /proc/thread-self/schedstat); -1 when unreadable. The file
 * stays open for the whole run (one descriptor, opened by the harness before it counts
 * descriptors, so no input sees it appear), read with pread: cheap enough per call. */
FUZZ_NOCOV static int64_t call_wait_ns(void)
{
    static int fd = -2;
    if (fd == -2) fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char b[96];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0) return -1;
    b[n] = 0;
    unsigned long long run, wait;
    return sscanf(b, "%llu %llu", &run, &wait) == 2 ? (int64_t)wait : -1;
}

#define CALL_BOUND_NS 2000000000 /* a FERRY_NOW call: never a wait past the lock's 1 s grace */

/* Require that a call begun at t0 (wait reading w0) took < CALL_BOUND_NS, less this
 * thread's run-queue wait in it; returns the raw time taken. */
FUZZ_NOCOV static int64_t call_took(int64_t t0, int64_t w0)
{
    int64_t took = fuzz_now_ns() - t0;
    if (took >= CALL_BOUND_NS) {
        int64_t w = call_wait_ns(), waited = w0 >= 0 && w >= w0 ? w - w0 : 0;
        fprintf(stderr,
                "fuzz_adopt: a FERRY_NOW call took %.1f ms, %.1f ms of it waiting for "
                "a CPU\n",
                (double)took / 1e6, (double)waited / 1e6);
        REQUIRE(took - waited < CALL_BOUND_NS);
    }
    return took;
}

static void mb_ops(ferry_mailbox *mb, fuzz_in *r, uint8_t *map, size_t size)
{
    static uint8_t buf[MSG_CAP + 64];
    int peeked = 0, loaned = 0;
    for (int k = 0; k < MAX_OPS && r->n; k++) {
        uint8_t op = fuzz_byte(r) % 16, a = fuzz_byte(r);
        if (op == 0) {
            patch(r, map, size);
            continue;
        }
        int64_t w0 = call_wait_ns(), t0 = fuzz_now_ns();
        switch (op) {
        case 1:
        case 9: {
            int rc = ferry_mailbox_send(mb, a % 4, buf, (a * 13u) % (MSG_CAP + 2), FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EMSGSIZE, -ENOBUFS, HOSTILE);
            break;
        }
        case 2:
        case 10:
        case 11: {
            size_t cap = a & 1 ? MSG_CAP : a % 70;
            int64_t type = -1;
            ssize_t n = ferry_mailbox_recv(mb, (int64_t)(a % 5) - 2, &type, buf, cap, FERRY_NOW);
            ALLOWED(n, -EAGAIN, -EMSGSIZE, -EPERM, HOSTILE);
            if (n >= 0) REQUIRE((size_t)n <= cap && type >= 0);
            break;
        }
        case 3: {
            if (peeked) {
                REQUIRE(ferry_mailbox_release(mb) == 0);
                peeked = 0;
                break;
            }
            const void *d;
            size_t len;
            int64_t type;
            int rc = ferry_mailbox_peek(mb, (int64_t)(a % 5) - 2, &d, &len, &type, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EPERM, HOSTILE);
            if (rc == 0) {
                REQUIRE(len <= MSG_CAP);
                /* Read the whole view: outside the object's mapping it would fault. */
                volatile uint8_t sink = 0;
                for (size_t i = 0; i < len; i++) sink ^= ((const uint8_t *)d)[i];
                (void)sink;
                peeked = 1;
            }
            break;
        }
        case 4: {
            if (loaned) {
                int rc = ferry_mailbox_commit(mb, a % 3, a % 80);
                ALLOWED(rc, -EINVAL, MB_LOCKED, HOSTILE);
                if (rc == 0) loaned = 0; /* on an error the loan is kept (ferry.h) */
                break;
            }
            void *p;
            int rc = ferry_mailbox_loan(mb, &p, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -ENOBUFS, -EOPNOTSUPP, HOSTILE);
            if (rc == 0) {
                memset(p, a, 1);
                loaned = 1;
            }
            break;
        }
        case 5: {
            int rc = ferry_mailbox_attach(mb, FERRY_NOW);
            ALLOWED(rc, -EBUSY, -EINVAL, -EAGAIN, HOSTILE);
            break;
        }
        case 6: {
            int rc = ferry_mailbox_detach(mb);
            ALLOWED(rc, -EPERM, -EINVAL, MB_LOCKED, HOSTILE);
            break;
        }
        case 7: {
            int rc = ferry_mailbox_poll_fd(mb);
            ALLOWED(rc, MB_LOCKED, HOSTILE);
            break;
        }
        case 8: {
            ferry_mailbox_counters st;
            ferry_mailbox_counters_init(&st);
            int rc = ferry_mailbox_stats(mb, &st);
            ALLOWED(rc, MB_LOCKED, HOSTILE);
            break;
        }
        default: {
            int rc = ferry_mailbox_send(mb, a % 4, buf, a % 16, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EMSGSIZE, -ENOBUFS, HOSTILE);
            break;
        }
        }
        int64_t took = call_took(t0, w0);
        /* A call that waited out the grace met a lock the scribble left to a live process:
         * every further call would wait the same second. Stop here, so that one input
         * stays far below libFuzzer's -timeout. */
        if (took > 500000000) break;
    }
}

/* ------------------------------------------------------------------ event queue */

static const uint32_t ev_caps[4] = {1, 2, 7, 64};

static void *ev_create(uint8_t shape, uint8_t pre, int *fd)
{
    ferry_event *e;
    REQUIRE(ferry_event_create(ev_caps[shape & 3], &e) == 0);
    for (uint8_t i = 0; i < pre % 8; i++) ferry_event_post(e, i, i & 1, FERRY_NOW);
    *fd = ferry_event_fd(e);
    return e;
}

static void ev_ops(ferry_event *e, fuzz_in *r, uint8_t *map, size_t size)
{
    for (int k = 0; k < MAX_OPS && r->n; k++) {
        uint8_t op = fuzz_byte(r) % 16, a = fuzz_byte(r);
        if (op == 0) {
            patch(r, map, size);
            continue;
        }
        int64_t w0 = call_wait_ns(), t0 = fuzz_now_ns();
        switch (op % 4) {
        case 1: {
            int rc = ferry_event_post(e, a % 5, a & 1 ? FERRY_EVENT_COALESCE : 0, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, HOSTILE);
            break;
        }
        case 2: {
            uint64_t v;
            int rc = ferry_event_next(e, &v, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, HOSTILE);
            break;
        }
        case 3: {
            int rc = op & 4 ? ferry_event_poll_fd(e)
                            : ferry_event_stats(
                                  e, &(ferry_event_counters){.size = sizeof(ferry_event_counters)});
            ALLOWED(rc, HOSTILE);
            break;
        }
        default: {
            uint64_t v;
            int rc = ferry_event_next(e, &v, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, HOSTILE);
            break;
        }
        }
        call_took(t0, w0);
    }
}

/* ------------------------------------------------------------------ broadcast ring */

static const uint32_t bc_slots[4] = {2, 4, 16, 64};
static const uint32_t bc_subs[4] = {1, 2, 4, 32};

static void *bc_create(uint8_t shape, uint8_t pre, int *fd)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = bc_slots[shape & 3];
    o.max_msg = msg_sizes[(shape >> 2) & 3];
    o.max_subs = bc_subs[(shape >> 4) & 3];
    ferry_bcast *b;
    REQUIRE(ferry_bcast_create(&o, &b) == 0);
    for (uint8_t i = 0; i < pre % 8; i++) ferry_bcast_publish(b, i, "pre", 1, FERRY_NOW);
    *fd = ferry_bcast_fd(b);
    return b;
}

#define NSUBS 4

/* The model of a clean ring (top of the file). */
typedef struct bc_model {
    int clean;
    uint64_t stream;         /* messages published + skipped */
    uint64_t start[NSUBS];   /* ferry_sub_seq when it subscribed */
    uint64_t got[NSUBS];     /* messages it received (a peek: at its release) */
    uint64_t skipped[NSUBS]; /* n skipped since it subscribed */
    int lossless[NSUBS];
} bc_model;

static void bc_check(ferry_bcast *b, const bc_model *mo, ferry_sub *s, int i, int peeked,
                     int caught_up)
{
    if (!mo->clean) return;
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    REQUIRE(ferry_bcast_stats(b, &st) == 0 && st.published == mo->stream);
    if (!s || peeked) return;
    REQUIRE(ferry_sub_seq(s) == mo->start[i] + mo->got[i] + ferry_sub_lost(s));
    if (!caught_up) return;
    REQUIRE(ferry_sub_seq(s) == mo->stream);
    if (mo->lossless[i]) REQUIRE(ferry_sub_lost(s) == mo->skipped[i]);
}

static void bc_ops(ferry_bcast *b, fuzz_in *r, uint8_t *map, size_t size, int clean, uint64_t pre)
{
    static uint8_t buf[MSG_CAP + 64];
    ferry_sub *subs[NSUBS] = {0};
    int peeked[NSUBS] = {0}, loaned = 0;
    bc_model mo = {.clean = clean, .stream = pre};
    for (int k = 0; k < MAX_OPS && r->n; k++) {
        uint8_t op = fuzz_byte(r) % 16, a = fuzz_byte(r);
        if (op == 0) {
            patch(r, map, size);
            mo.clean = 0;
            continue;
        }
        int64_t w0 = call_wait_ns(), t0 = fuzz_now_ns();
        int si = a % NSUBS, caught_up = 0;
        ferry_sub **s = &subs[si];
        int *pk = &peeked[si];
        switch (op) {
        case 1:
        case 9: {
            int rc = ferry_bcast_publish(b, a % 3, buf, (a * 13u) % (MSG_CAP + 2), FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EMSGSIZE, -EPIPE, -EBUSY, HOSTILE);
            if (rc == 0) mo.stream++;
            break;
        }
        case 2:
        case 10: {
            if (*s) break;
            int rc = ferry_bcast_subscribe(b, a & 4 ? FERRY_SUB_DROP_OLDEST : 0, s);
            ALLOWED(rc, -ENOSPC, HOSTILE);
            if (rc < 0) *s = NULL;
            if (rc == 0) {
                mo.start[si] = ferry_sub_seq(*s);
                mo.got[si] = mo.skipped[si] = 0;
                mo.lossless[si] = !(a & 4);
                if (mo.clean) REQUIRE(mo.start[si] == mo.stream && ferry_sub_lost(*s) == 0);
            }
            break;
        }
        case 3:
        case 11:
        case 12: {
            if (!*s) break;
            size_t cap = a & 8 ? MSG_CAP : a % 70;
            int64_t type = -1;
            ssize_t n = ferry_sub_recv(*s, buf, cap, &type, FERRY_NOW);
            ALLOWED(n, -EAGAIN, -EMSGSIZE, -EPIPE, -EBUSY, HOSTILE);
            if (n >= 0) REQUIRE((size_t)n <= cap);
            if (n >= 0) mo.got[si]++;
            caught_up = n == -EAGAIN || n == -EPIPE;
            break;
        }
        case 4: {
            if (!*s) break;
            if (*pk) {
                REQUIRE(ferry_sub_release(*s) == 0);
                *pk = 0;
                mo.got[si]++;
                break;
            }
            ferry_msg m;
            int rc = ferry_sub_peek(*s, &m, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EPIPE, HOSTILE);
            caught_up = rc == -EAGAIN || rc == -EPIPE;
            if (rc == 0) {
                REQUIRE(m.len <= ferry_bcast_max_msg(b) && m.nfds == 0);
                /* Read the whole view: outside the object's mapping it would fault. */
                volatile uint8_t sink = 0;
                for (size_t i = 0; i < m.len; i++) sink ^= ((const uint8_t *)m.data)[i];
                (void)sink;
                *pk = 1;
            }
            break;
        }
        case 5: {
            if (!*s) break;
            int rc = ferry_sub_poll_fd(*s);
            ALLOWED(rc, -EMFILE, -ENOMEM, -EADDRINUSE, HOSTILE);
            break;
        }
        case 6:
            ferry_sub_close(*s);
            *s = NULL;
            *pk = 0;
            break;
        case 7: {
            if (loaned) {
                int rc = ferry_bcast_commit(b, a % 3, a % 80);
                ALLOWED(rc, -EINVAL);
                if (rc == 0) {
                    loaned = 0;
                    mo.stream++;
                }
                break;
            }
            void *p;
            int rc = ferry_bcast_loan(b, a % 80, &p, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EMSGSIZE, -EPIPE, HOSTILE);
            if (rc == 0) {
                memset(p, a, a % 80);
                loaned = 1;
            }
            break;
        }
        case 8:
            REQUIRE(ferry_bcast_subscribers(b) >= 0);
            if (*s) (void)ferry_sub_lost(*s);
            break;
        case 13:
            if (a == 0x5a) REQUIRE(ferry_bcast_end(b) == 0);
            break;
        case 14: { /* a gap: 0..31 messages */
            uint64_t n = a >> 3;
            int rc = ferry_bcast_skip(b, n, FERRY_NOW);
            ALLOWED(rc, -EAGAIN, -EPIPE, -EBUSY, -EOVERFLOW, HOSTILE);
            if (rc == 0) {
                mo.stream += n;
                for (int i = 0; i < NSUBS; i++) mo.skipped[i] += n;
            }
            break;
        }
        default: {
            if (!*s) break;
            ssize_t n = ferry_sub_recv(*s, buf, MSG_CAP, NULL, FERRY_NOW);
            ALLOWED(n, -EAGAIN, -EPIPE, -EBUSY, HOSTILE);
            if (n >= 0) mo.got[si]++;
            caught_up = n == -EAGAIN || n == -EPIPE;
            break;
        }
        }
        call_took(t0, w0);
        if (op != 6) bc_check(b, &mo, *s, si, *pk, caught_up);
    }
    for (int i = 0; i < NSUBS; i++) ferry_sub_close(subs[i]);
}

/* ------------------------------------------------------------------ the harness */

static int adopt(int kind, int fd, void **out)
{
    switch (kind) {
    case K_MAILBOX:
        return ferry_mailbox_adopt(fd, (ferry_mailbox **)out);
    case K_EVENT:
        return ferry_event_adopt(fd, (ferry_event **)out);
    default:
        return ferry_bcast_adopt(fd, (ferry_bcast **)out);
    }
}

static void close_obj(int kind, void *o)
{
    switch (kind) {
    case K_MAILBOX:
        ferry_mailbox_close(o);
        break;
    case K_EVENT:
        ferry_event_close(o);
        break;
    default:
        ferry_bcast_close(o);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int skip_mailbox = -1;
    if (skip_mailbox < 0) {
        const char *e = getenv("FERRY_FUZZ_SKIP_MAILBOX");
        skip_mailbox = e && *e == '1';
    }
    if (size < 4) return 0;
    int kind = data[0] % 3, mode = data[1] % 6;
    if (kind == K_MAILBOX && skip_mailbox) return 0;
    uint8_t shape = data[2], pre = data[3];
    fuzz_in r = {data + 4, size - 4};
    call_wait_ns(); /* its descriptor, open for the run, before the count */
    int fds_before = fuzz_fd_count();

    /* The real object (every mode but 1 starts from one). */
    void *orig = NULL;
    int ofd = -1, memfd = -1;
    if (mode != 1) {
        orig = kind == K_MAILBOX ? mb_create(shape, pre, &ofd)
               : kind == K_EVENT ? ev_create(shape, pre, &ofd)
                                 : bc_create(shape, pre, &ofd);
        memfd = kind == K_BCAST ? fcntl(ofd, F_DUPFD_CLOEXEC, 0) : carrier_memfd(ofd);
        REQUIRE(memfd >= 0);
    }
    const char *magic = kind == K_MAILBOX ? "FMB1" : "FEV1";
    uint8_t *map = NULL;
    size_t msize = 0;
    int fd = -1; /* what is adopted */
    if (mode == 1) {
        msize = PAGE * (1 + (shape & 3) + (kind == K_MAILBOX));
        uint8_t *img = calloc(1, msize);
        REQUIRE(img != NULL);
        ferry__obj_hdr h = {FERRY__OBJ_MAGIC, kinds[kind], FERRY__OBJ_VERSION, (uint32_t)msize};
        memcpy(img, &h, sizeof h);
        size_t n = r.n < msize - sizeof h ? r.n : msize - sizeof h;
        memcpy(img + sizeof h, r.p, n);
        r.p += n;
        r.n -= n;
        memfd = make_memfd(img, msize, msize, 0);
        free(img);
        fd = kind == K_BCAST ? fcntl(memfd, F_DUPFD_CLOEXEC, 0)
                             : make_carrier(magic, (int[]){memfd, -1}, 2, SOCK_SEQPACKET);
    } else if (mode == 0) {
        fd = fcntl(ofd, F_DUPFD_CLOEXEC, 0);
    } else { /* 2..5: broken descriptors around the real object's memory */
        struct stat st;
        REQUIRE(fstat(memfd, &st) == 0);
        size_t sz = (size_t)st.st_size;
        uint8_t *img = malloc(sz);
        REQUIRE(img && pread(memfd, img, sz, 0) == (ssize_t)sz);
        int p[2] = {-1, -1};
        if (kind == K_BCAST) {
            switch (mode) {
            case 2:
                fd = make_memfd(img, sz, sz, 1);
                break;
            case 3:
                fd = make_memfd(img, sz, sz + PAGE, 0);
                break;
            case 4:
                REQUIRE(pipe2(p, O_CLOEXEC) == 0);
                fd = p[0];
                close(p[1]);
                break;
            default:
                REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) == 0);
                fd = p[0];
                close(p[1]);
                break;
            }
        } else {
            switch (mode) {
            case 2:
                fd = make_carrier("XXXX", (int[]){memfd, -1}, 2, SOCK_SEQPACKET);
                break;
            case 3:
                fd = pre & 1 ? make_carrier(magic, (int[]){memfd}, 1, SOCK_SEQPACKET)
                             : make_carrier(magic, (int[]){memfd, -1, memfd}, 3, SOCK_SEQPACKET);
                break;
            case 4: {
                int u = make_memfd(img, sz, sz, 1);
                fd = make_carrier(magic, (int[]){u, -1}, 2, SOCK_SEQPACKET);
                close(u);
                break;
            }
            default:
                if (pre & 1) {
                    fd = make_carrier(magic, (int[]){memfd, -1}, 2, SOCK_DGRAM);
                } else {
                    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
                    fd = make_carrier(magic, (int[]){memfd, p[0]}, 2, SOCK_SEQPACKET);
                    close(p[0]);
                    close(p[1]);
                }
                break;
            }
        }
        free(img);
    }
    REQUIRE(fd >= 0);
    if (mode <= 1) {
        struct stat st;
        REQUIRE(fstat(memfd, &st) == 0);
        msize = (size_t)st.st_size;
        map = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        REQUIRE(map != MAP_FAILED);
        /* Patches before the first call go in before the adopt. */
        while (r.n && r.p[0] % 16 == 0) {
            r.p++;
            r.n--;
            patch(&r, map, msize);
        }
    }

    /* Clean: a real object nobody has scribbled on (yet). */
    int clean = mode == 0 && r.n == size - 4;
    void *obj = NULL;
    int rc = adopt(kind, fd, &obj);
    if (mode >= 2) {
        if (rc != -EBADMSG) fprintf(stderr, "kind %d mode %d: adopt %d\n", kind, mode, rc);
        REQUIRE(rc == -EBADMSG);
    } else {
        ALLOWED(rc, -EBADMSG);
    }
    if (rc == 0) {
        if (kind == K_MAILBOX)
            mb_ops(obj, &r, map, msize);
        else if (kind == K_EVENT)
            ev_ops(obj, &r, map, msize);
        else
            bc_ops(obj, &r, map, msize, clean, pre % 8);
        close_obj(kind, obj);
    }
    if (map) munmap(map, msize);
    if (memfd >= 0) close(memfd);
    if (orig) close_obj(kind, orig);
    int after = fuzz_fd_count();
    if (after != fds_before)
        fprintf(stderr, "descriptors: %d before, %d after\n", fds_before, after);
    REQUIRE(after == fds_before);
    return 0;
}
