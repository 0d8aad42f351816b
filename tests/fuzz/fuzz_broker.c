// SPDX-License-Identifier: MIT
/*
 * fuzz_broker.c — libFuzzer harness for the broker protocol codec (src/broker/proto.c)
 * and the name checks ferryd runs on what it decodes (src/broker/policy.c).
 *
 * Input: [op byte][payload]. The op byte picks the decoding a packet of that type gets:
 *  - requests, as ferryd decodes them (server.c): REGISTER (ferry__br_register), PUBLISH
 *    (the register body, a kind, a region's write lists: ferry__br_write_lists),
 *    UNREGISTER and LOOKUP (a name), WATCH (a pattern), CONNECT (name, kind), OPEN (name,
 *    kind, an optional want), LIST (after, max), ACCEPTED (id);
 *  - what the client library decodes (client.c): REPLY (status, then nothing, a cred, an
 *    info, OPEN's oflags (ferry__br_open_reply), or a count and that many infos: every
 *    shape is tried), INTRO (id, kind, cred),
 *    EVENT (kind, info), LOST (a name);
 *  - any other op byte: every one of the above.
 * Then the whole input goes as one packet (with 0..3 descriptors, from the byte at the
 * header's nfds offset) through a socketpair into ferry__brecv, and a packet it accepts
 * is decoded as its header's op says.
 * Invariants (abort when broken): no crash or UB (ASan/UBSan); a decoder fails only with
 * -EBADMSG; every decoded string is NUL-terminated and shorter than its buffer, also after
 * a failure; a successful decode re-encodes with ferry__bw_* to exactly its input bytes;
 * ferry__name_valid / ferry__pattern_valid / ferry__policy_valid only answer 0 or -EINVAL
 * (and -EINVAL for FERRY_POLICY_KEEP on a server, or without FERRY_TAKEOVER);
 * ferry__brecvn (ferryd's, up to two fds) answers 1 exactly for a valid frame of the
 * packet's size with at most two fds and as many as the header says, hands back the
 * header's fields and payload (and ferry__bsendn sends the same packet again, which
 * ferry__brecv, the client's, takes exactly when it has at most one fd), and leaves no
 * descriptor open otherwise.
 * Built with -fsanitize=fuzzer as `fuzz_broker`, and with replay_main.c as
 * `fuzz_broker_replay`, which CTest runs over corpus/broker.
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC */
#include "broker/policy.h"
#include "broker/proto.h"
#include "core/frame.h"
#include "fuzzutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INFO_MIN 26u                    /* bytes of the smallest encoded info */
#define SEND_MAX (FERRY__BMSG_MAX + 64) /* larger inputs are cut (still over the max) */

static uint8_t enc[FERRY__BMSG_MAX + 4096]; /* re-encodings */

/* The decoder was given cap bytes for the string: it must have left a terminated string
 * shorter than cap there (the callers poison the buffer first, and check the byte after). */
static void check_str(const char *s, size_t cap)
{
    REQUIRE(memchr(s, 0, cap) != NULL);
}

static void check_name(const char *s)
{
    int v = ferry__name_valid(s);
    REQUIRE(v == 0 || v == -EINVAL);
    int p = ferry__pattern_valid(s);
    REQUIRE(p == 0 || p == -EINVAL);
    if (v == 0) REQUIRE(p == 0); /* every name is a pattern (itself) */
    if (v == 0) REQUIRE(ferry__pattern_match(s, s) == 1);
}

/* A decode that ended: -EBADMSG, or 0 and w holds the same bytes as the input. */
static void check_end(const ferry__br *r, const ferry__bw *w, int rc)
{
    REQUIRE(rc == 0 || rc == -EBADMSG);
    REQUIRE(rc == ferry__br_end(r));
    if (rc != 0) return;
    REQUIRE(r->off == r->len);
    REQUIRE(w->err == 0);
    REQUIRE(w->len == r->len);
    REQUIRE(r->len == 0 || memcmp(w->p, r->p, r->len) == 0);
}

#define READER(p, n) ((ferry__br){.p = (p), .len = (n)})
#define WRITER()     ((ferry__bw){.p = enc, .cap = sizeof enc})

static void check_info(const ferry_name_info *in)
{
    check_str(in->name, sizeof in->name);
}

/* ------------------------------------------------------------------ requests (ferryd) */

/* A REGISTER body's name (into name[256 + 16], guard bytes past 256) and policy, read by
 * decode (ferry__br_register or ferry__br_register_body): its result, 0 or -EBADMSG; the
 * name is terminated within 256 bytes and the guard is intact either way. */
static int register_head(ferry__br *r, int (*decode)(ferry__br *, char *, ferry_policy *),
                         char *name, ferry_policy *pol)
{
    memset(name, 0xaa, 256 + 16);
    int rc = decode(r, name, pol);
    REQUIRE(rc == 0 || rc == -EBADMSG);
    check_str(name, 256);
    REQUIRE((uint8_t)name[256] == 0xaa);
    return rc;
}

static void req_register(const uint8_t *p, size_t n)
{
    char name[256 + 16];
    ferry_policy pol;
    ferry__br r = READER(p, n);
    int rc = register_head(&r, ferry__br_register, name, &pol);
    if (rc != 0) return;
    REQUIRE(pol.n_uids <= FERRY_POLICY_MAX_IDS && pol.n_gids <= FERRY_POLICY_MAX_IDS);
    check_name(name);
    int pv = ferry__policy_valid(&pol);
    REQUIRE(pv == 0 || pv == -EINVAL);
    /* a server's name is never kept (FERRY_POLICY_KEEP: published objects only) */
    if (pol.flags & FERRY_POLICY_KEEP) REQUIRE(ferry__policy_valid_for(&pol, 0) == -EINVAL);
    ferry__bw w = WRITER();
    ferry__bw_register(&w, name, &pol);
    check_end(&r, &w, rc);
}

/* PUBLISH: the register body, a kind, and for a region its write lists (server.c). */
static void req_publish(const uint8_t *p, size_t n)
{
    char name[256 + 16];
    ferry_policy pol;
    ferry__br r = READER(p, n);
    int rc = register_head(&r, ferry__br_register_body, name, &pol);
    uint32_t kind = ferry__br_u32(&r);
    if (rc == 0 && kind == FERRY_OBJ_REGION) {
        rc = ferry__br_write_lists(&r, &pol);
        REQUIRE(rc == 0 || rc == -EBADMSG);
        REQUIRE(pol.n_write_uids <= FERRY_POLICY_MAX_IDS &&
                pol.n_write_gids <= FERRY_POLICY_MAX_IDS);
    }
    if (rc == 0) rc = ferry__br_end(&r);
    if (rc != 0) return;
    int pv = ferry__policy_valid_for(&pol, kind);
    REQUIRE(pv == 0 || pv == -EINVAL);
    /* a kept name (an orphan once its publisher dies) needs FERRY_TAKEOVER, its way out */
    if ((pol.flags & FERRY_POLICY_KEEP) && (kind == 0 || !(pol.flags & FERRY_TAKEOVER)))
        REQUIRE(pv == -EINVAL);
    ferry__bw w = WRITER();
    ferry__bw_register(&w, name, &pol);
    ferry__bw_u32(&w, kind);
    if (kind == FERRY_OBJ_REGION) ferry__bw_write_lists(&w, &pol);
    check_end(&r, &w, rc);
}

/* OPEN: a name, a kind, and a want when anything is left (server.c). */
static void req_open(const uint8_t *p, size_t n)
{
    char nm[256 + 16];
    memset(nm, 0xaa, sizeof nm);
    ferry__br r = READER(p, n);
    ferry__br_str(&r, nm, 256);
    uint32_t kind = ferry__br_u32(&r);
    int has_want = r.off < r.len;
    uint32_t want = has_want ? ferry__br_u32(&r) : 0;
    check_str(nm, 256);
    int rc = ferry__br_end(&r);
    if (rc != 0) return;
    check_name(nm);
    ferry__bw w = WRITER();
    ferry__bw_str(&w, nm);
    ferry__bw_u32(&w, kind);
    if (has_want) ferry__bw_u32(&w, want);
    check_end(&r, &w, rc);
}

/* UNREGISTER and LOOKUP: a name. LOST (to a server) is the same body. */
static void req_name(const uint8_t *p, size_t n)
{
    char nm[256 + 16];
    memset(nm, 0xaa, sizeof nm);
    ferry__br r = READER(p, n);
    ferry__br_str(&r, nm, 256);
    check_str(nm, 256);
    REQUIRE((uint8_t)nm[256] == 0xaa);
    int rc = ferry__br_end(&r);
    if (rc != 0) return;
    check_name(nm);
    ferry__bw w = WRITER();
    ferry__bw_str(&w, nm);
    check_end(&r, &w, rc);
}

/* WATCH: ferryd reads the pattern into 258 bytes ("<255-byte name>.*" fits). */
static void req_watch(const uint8_t *p, size_t n)
{
    char pat[258 + 16];
    memset(pat, 0xaa, sizeof pat);
    ferry__br r = READER(p, n);
    ferry__br_str(&r, pat, 258);
    check_str(pat, 258);
    REQUIRE((uint8_t)pat[258] == 0xaa);
    int rc = ferry__br_end(&r);
    if (rc != 0) return;
    size_t len = strlen(pat);
    int pv = ferry__pattern_valid(pat);
    REQUIRE(pv == 0 || pv == -EINVAL);
    if (pv == 0) REQUIRE(len <= FERRY__NAME_MAX + 2);
    int nv = ferry__name_valid(pat);
    REQUIRE(nv == 0 || nv == -EINVAL);
    (void)ferry__pattern_match(pat, "a.b");
    ferry__bw w = WRITER();
    ferry__bw_str(&w, pat);
    if (len > FERRY__NAME_MAX) { /* the writer refuses it: check the bytes by hand */
        REQUIRE(w.err == -EINVAL);
        w = WRITER();
        uint8_t b[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
        memcpy(enc, b, 2);
        memcpy(enc + 2, pat, len);
        w.len = 2 + len;
    }
    check_end(&r, &w, rc);
}

/* CONNECT and OPEN (name, kind) and LIST (after, max): a name and a u32. */
static void req_name_u32(const uint8_t *p, size_t n, int is_list)
{
    char nm[256 + 16];
    memset(nm, 0xaa, sizeof nm);
    ferry__br r = READER(p, n);
    ferry__br_str(&r, nm, 256);
    uint32_t v = ferry__br_u32(&r);
    check_str(nm, 256);
    REQUIRE((uint8_t)nm[256] == 0xaa);
    int rc = ferry__br_end(&r);
    if (rc != 0) return;
    if (!is_list || nm[0]) check_name(nm);
    ferry__bw w = WRITER();
    ferry__bw_str(&w, nm);
    ferry__bw_u32(&w, v);
    check_end(&r, &w, rc);
}

static void req_accepted(const uint8_t *p, size_t n)
{
    ferry__br r = READER(p, n);
    uint64_t id = ferry__br_u64(&r);
    ferry__bw w = WRITER();
    ferry__bw_u64(&w, id);
    check_end(&r, &w, ferry__br_end(&r));
}

/* ------------------------------------------------------------------ what clients read */

/* REPLY in each shape; every one starts with the status. */
static void rep_reply(const uint8_t *p, size_t n)
{
    /* status alone (REGISTER, UNREGISTER, WATCH) */
    ferry__br r = READER(p, n);
    uint32_t st = ferry__br_u32(&r);
    ferry__bw w = WRITER();
    ferry__bw_u32(&w, st);
    check_end(&r, &w, ferry__br_end(&r));

    /* status, server cred (CONNECT) */
    ferry_cred c;
    r = READER(p, n);
    st = ferry__br_u32(&r);
    ferry__br_cred(&r, &c);
    w = WRITER();
    ferry__bw_u32(&w, st);
    ferry__bw_cred(&w, &c);
    check_end(&r, &w, ferry__br_end(&r));

    /* status, oflags (OPEN): only known bits pass, and a refusal leaves no bit set */
    r = READER(p, n);
    st = ferry__br_u32(&r);
    uint32_t of = 0xaaaaaaaau;
    int orc = ferry__br_open_reply(&r, &of);
    REQUIRE(orc == 0 || orc == -EBADMSG);
    REQUIRE((of & ~FERRY__OPEN_TRUSTED) == 0);
    if (orc != 0) REQUIRE(of == 0);
    if (orc == 0) {
        w = WRITER();
        ferry__bw_u32(&w, st);
        ferry__bw_open_reply(&w, of);
        check_end(&r, &w, orc);
    }

    /* status, info (LOOKUP) */
    ferry_name_info in;
    memset(&in, 0xaa, sizeof in);
    r = READER(p, n);
    st = ferry__br_u32(&r);
    ferry__br_info(&r, &in);
    check_info(&in);
    int rc = ferry__br_end(&r);
    if (rc == 0) {
        check_name(in.name);
        w = WRITER();
        ferry__bw_u32(&w, st);
        ferry__bw_info(&w, &in);
        check_end(&r, &w, rc);
    }

    /* status, count, infos (LIST); as client.c, the count is bounded by the room */
    r = READER(p, n);
    st = ferry__br_u32(&r);
    uint32_t count = ferry__br_u32(&r);
    size_t room = n / INFO_MIN + 1;
    if (r.err || count > room) return;
    ferry_name_info *list = malloc((count ? count : 1) * sizeof *list);
    REQUIRE(list != NULL);
    memset(list, 0xaa, (count ? count : 1) * sizeof *list);
    for (uint32_t i = 0; i < count && !r.err; i++) {
        ferry__br_info(&r, &list[i]);
        check_info(&list[i]);
    }
    rc = ferry__br_end(&r);
    if (rc == 0) {
        w = WRITER();
        ferry__bw_u32(&w, st);
        ferry__bw_u32(&w, count);
        for (uint32_t i = 0; i < count; i++) ferry__bw_info(&w, &list[i]);
        check_end(&r, &w, rc);
    }
    free(list);
}

static void rep_intro(const uint8_t *p, size_t n)
{
    ferry__br r = READER(p, n);
    uint64_t id = ferry__br_u64(&r);
    uint32_t kind = ferry__br_u32(&r);
    ferry_cred c;
    ferry__br_cred(&r, &c);
    ferry__bw w = WRITER();
    ferry__bw_u64(&w, id);
    ferry__bw_u32(&w, kind);
    ferry__bw_cred(&w, &c);
    check_end(&r, &w, ferry__br_end(&r));
}

static void rep_event(const uint8_t *p, size_t n)
{
    ferry_name_info in;
    memset(&in, 0xaa, sizeof in);
    ferry__br r = READER(p, n);
    uint32_t kind = ferry__br_u32(&r);
    ferry__br_info(&r, &in);
    check_info(&in);
    int rc = ferry__br_end(&r);
    if (rc != 0) return;
    check_name(in.name);
    ferry__bw w = WRITER();
    ferry__bw_u32(&w, kind);
    ferry__bw_info(&w, &in);
    check_end(&r, &w, rc);
}

/* Decode payload p[0..n) as a packet of type op. */
static void dispatch(int64_t op, const uint8_t *p, size_t n)
{
    switch (op) {
    case FERRY__OP_REGISTER:
        req_register(p, n);
        break;
    case FERRY__OP_UNREGISTER:
    case FERRY__OP_LOOKUP:
    case FERRY__OP_LOST:
        req_name(p, n);
        break;
    case FERRY__OP_CONNECT:
        req_name_u32(p, n, 0);
        break;
    case FERRY__OP_OPEN:
        req_open(p, n);
        break;
    case FERRY__OP_PUBLISH:
        req_publish(p, n);
        break;
    case FERRY__OP_LIST:
        req_name_u32(p, n, 1);
        break;
    case FERRY__OP_WATCH:
        req_watch(p, n);
        break;
    case FERRY__OP_ACCEPTED:
        req_accepted(p, n);
        break;
    case FERRY__OP_REPLY:
        rep_reply(p, n);
        break;
    case FERRY__OP_INTRO:
        rep_intro(p, n);
        break;
    case FERRY__OP_EVENT:
        rep_event(p, n);
        break;
    default:
        req_register(p, n);
        req_publish(p, n);
        req_open(p, n);
        req_name(p, n);
        req_name_u32(p, n, 0);
        req_name_u32(p, n, 1);
        req_watch(p, n);
        req_accepted(p, n);
        rep_reply(p, n);
        rep_intro(p, n);
        rep_event(p, n);
    }
}

/* ------------------------------------------------------------------ packets */

/* The lowest free descriptor number: it moves if a descriptor leaked. */
static int lowest_free_fd(int any)
{
    int fd = dup(any);
    REQUIRE(fd >= 0);
    close(fd);
    return fd;
}

static void packet(const uint8_t *data, size_t size)
{
    static int sv[2] = {-1, -1};
    static uint8_t buf[FERRY__BMSG_MAX];
    if (sv[0] < 0) {
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        int big = 1 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    }
    if (size > SEND_MAX) size = SEND_MAX;
    int before = lowest_free_fd(sv[1]);

    /* 0..3 descriptors: the low bits of what would be the header's nfds byte. */
    int nsend = size > 6 ? data[6] & 3 : 0;
    int fds[3];
    for (int i = 0; i < nsend; i++) REQUIRE((fds[i] = dup(sv[1])) >= 0);
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof fds)];
    } ctrl;
    struct iovec iov = {(void *)data, size};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nsend) {
        memset(&ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl.b;
        mh.msg_controllen = CMSG_SPACE(nsend * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nsend * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nsend * sizeof(int));
    }
    ssize_t sent = sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    REQUIRE(sent == (ssize_t)size);
    for (int i = 0; i < nsend; i++) close(fds[i]);

    int64_t op = -1;
    uint64_t seq = 0;
    size_t len = 0;
    int got[FERRY__BFDS_MAX], ngot = -1;
    int rc = ferry__brecvn(sv[1], buf, &op, &seq, &len, got, FERRY__BFDS_MAX, &ngot);
    REQUIRE(rc == 1 || rc == -EBADMSG);

    ferry__frame f;
    int valid = size >= FERRY__FRAME_HDR && size <= FERRY__FRAME_HDR + FERRY__BMSG_MAX &&
                ferry__frame_decode(data, FERRY__BMSG_MAX, &f) == 0 && f.flags == 0 &&
                size == FERRY__FRAME_HDR + f.len && f.nfds == nsend && nsend <= 2;
    REQUIRE((rc == 1) == valid);
    if (rc == 1) {
        REQUIRE(op == f.type && seq == f.seq && len == f.len);
        REQUIRE(len == 0 || memcmp(buf, data + FERRY__FRAME_HDR, len) == 0);
        REQUIRE(ngot == nsend);
        for (int i = 0; i < ngot; i++) REQUIRE(fcntl(got[i], F_GETFD) == FD_CLOEXEC);
        for (int i = ngot; i < (int)FERRY__BFDS_MAX; i++) REQUIRE(got[i] == -1);
        /* The packet again, sent by ferry__bsendn: ferry__brecv (at most one fd) takes
         * it the same, or refuses it (-EBADMSG, closing both) when it has two. */
        static uint8_t again[FERRY__BMSG_MAX];
        int64_t op2;
        uint64_t seq2;
        size_t len2;
        int fd2;
        REQUIRE(ferry__bsendn(sv[0], op, seq, buf, len, got, ngot) == 0);
        int rc2 = ferry__brecv(sv[1], again, &op2, &seq2, &len2, &fd2);
        REQUIRE(rc2 == (ngot <= 1 ? 1 : -EBADMSG));
        if (rc2 == 1) {
            REQUIRE(op2 == op && seq2 == seq && len2 == len && (fd2 >= 0) == (ngot == 1));
            REQUIRE(len == 0 || memcmp(again, buf, len) == 0);
        } else {
            REQUIRE(fd2 == -1);
        }
        for (int i = 0; i < ngot; i++) close(got[i]);
        if (fd2 >= 0) close(fd2);
        dispatch(op, buf, len);
    } else {
        REQUIRE(ngot == 0 && got[0] == -1 && got[1] == -1);
    }
    /* Nothing left queued, nothing leaked. */
    int fd;
    REQUIRE(ferry__brecv(sv[1], buf, &op, &seq, &len, &fd) == 0);
    REQUIRE(lowest_free_fd(sv[1]) == before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    dispatch(data[0], data + 1, size - 1);
    packet(data, size);
    return 0;
}
