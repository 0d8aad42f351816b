// SPDX-License-Identifier: MIT
/*
 * proto.h — the broker protocol: what ferryd and the library say to each other over a
 * Unix SOCK_SEQPACKET connection to ferryd's socket.
 *
 * Every packet is one ferry frame (docs/architecture.md): the 32-byte header, then a payload of at
 * most FERRY__BMSG_MAX bytes. The header's type is the operation (FERRY__OP_*), its seq
 * the request id (the client picks it; the reply carries it back; unsolicited packets
 * from ferryd carry seq 0), nfds is 0 or 1, or 2 (a client sends descriptors only with
 * PUBLISH: two for a region, its read-write and its read-only descriptor). No crc: the kernel does
 * not corrupt a local socket, and a lying peer can compute a crc too.
 *
 * Payloads are little-endian fields in a fixed order per operation, strings as a u16
 * length and that many bytes (no NUL; a NUL inside is invalid). A decoder accepts exactly
 * the bytes of its operation: a short payload, a string too long, or bytes left over are
 * -EBADMSG, and ferryd drops a connection that sends one. Packets are read whole (a
 * truncated one is -EBADMSG) and their fds taken (closed when unexpected).
 *
 *   client -> ferryd                          ferryd -> client (seq = the request's)
 *   REGISTER name policy (mode gid flags       REPLY status
 *            n_uids uids n_gids gids)
 *   UNREGISTER name                            REPLY status
 *   CONNECT name kind                          REPLY status [server ident] + fd
 *   LOOKUP name                                REPLY status [info]
 *   LIST after max                             REPLY status count info...
 *   WATCH pattern                              REPLY status
 *   ACCEPTED id  (the server took introduction id; no reply)
 *   PUBLISH name policy kind [wlists] + fds    REPLY status
 *   OPEN name kind [want]                      REPLY status [oflags] + fd (a duplicate)
 *   KILL name sig                              REPLY status
 *                                             ferryd -> server / watcher (seq 0)
 *                                              INTRO id kind client-ident + fd
 *                                              LOST name  (taken over by another owner)
 *                                              EVENT kind info
 * status is 0 or a negative errno value. An info is: name uid gid pid mode connects kind
 * since [size dev ino] (kind: u32, 0 a server or a FERRY_OBJ_* kind, any other value
 * -EBADMSG; since: u64, CLOCK_REALTIME ns when the owner took the name; size, dev, ino:
 * u64 each, present exactly when kind is FERRY_OBJ_REGION or FERRY_OBJ_STATE).
 * Regions and states (docs/region-sharing.md): PUBLISH of FERRY_OBJ_REGION carries, after
 * the kind, wlists (n_write_uids uids n_write_gids gids, as the allow lists) and two
 * fds, the region's read-write descriptor then a read-only one of the same file;
 * FERRY_OBJ_STATE no wlists and one fd, read-only. Other kinds: no wlists, one fd.
 * OPEN's want (a u32, absent = 0) is FERRY__WANT_WRITE or 0: a region's writable
 * descriptor (the write right), else its read-only one; any other value, or the bit for
 * another kind, is -EINVAL.
 * An ident is: uid gid pid.
 * oflags (OPEN's reply, after status 0 only) is a u32 of FERRY__OPEN_* bits; any other bit
 * set is -EBADMSG. FERRY__OPEN_TRUSTED: ferryd trusts the opener with the object's
 * sharers — the publisher's policy has FERRY_POLICY_TRUSTED_SHARERS, or the opener's uid
 * is the publisher's. The library makes a plain (not fair) ferry_mutex only with it
 * (src/sync/mutex.c), judging the mode by its own single read of the object, since the
 * publisher can rewrite the mode after ferryd looked.
 */
#ifndef FERRY_BROKER_PROTO_H
#define FERRY_BROKER_PROTO_H

#include "ferry/ferry.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY__BMSG_MAX   16384u /* largest payload either side sends */
#define FERRY__BFDS_MAX   2u     /* most descriptors in one packet */
#define FERRY__WANT_WRITE 1u     /* OPEN's want: a region's writable descriptor */

enum {
    FERRY__OP_REGISTER = 1,
    FERRY__OP_UNREGISTER,
    FERRY__OP_CONNECT,
    FERRY__OP_LOOKUP,
    FERRY__OP_LIST,
    FERRY__OP_WATCH,
    FERRY__OP_ACCEPTED,
    FERRY__OP_PUBLISH,
    FERRY__OP_OPEN,
    FERRY__OP_KILL,
    FERRY__OP_REPLY = 64,
    FERRY__OP_INTRO,
    FERRY__OP_LOST,
    FERRY__OP_EVENT,
};

/* A payload being written: bytes p[0..len) of cap; err sticks at -EMSGSIZE on overflow. */
typedef struct ferry__bw {
    uint8_t *p;
    size_t len, cap;
    int err;
} ferry__bw;

void ferry__bw_u32(ferry__bw *w, uint32_t v);
void ferry__bw_u64(ferry__bw *w, uint64_t v);
void ferry__bw_str(ferry__bw *w, const char *s); /* at most FERRY__NAME_MAX bytes */
void ferry__bw_info(ferry__bw *w, const ferry_name_info *in);
/* A region's write lists (PUBLISH of FERRY_OBJ_REGION): counts over the maximum are
 * -EINVAL in w->err. */
void ferry__bw_write_lists(ferry__bw *w, const ferry_policy *p);
void ferry__bw_cred(ferry__bw *w, const ferry_cred *c);

/* A payload being read: p[off..len); err sticks at -EBADMSG once anything is wrong. */
typedef struct ferry__br {
    const uint8_t *p;
    size_t len, off;
    int err;
} ferry__br;

uint32_t ferry__br_u32(ferry__br *r);
uint64_t ferry__br_u64(ferry__br *r);
/* A string into out (cap bytes with its NUL). Too long for out, or a NUL inside: err. */
void ferry__br_str(ferry__br *r, char *out, size_t cap);
void ferry__br_info(ferry__br *r, ferry_name_info *out);
void ferry__br_cred(ferry__br *r, ferry_cred *out);
/* The write lists onto p (n_write_* and write_*): 0 or -EBADMSG (a count over the
 * maximum, short). */
int ferry__br_write_lists(ferry__br *r, ferry_policy *p);
/* 0 if everything read was valid and nothing is left over, else -EBADMSG. */
int ferry__br_end(const ferry__br *r);

#define FERRY__OPEN_TRUSTED 1u /* oflags: see above */

/* OPEN's reply after its status 0: oflags. The decoder reads them onto *oflags and
 * checks the end; unknown bits are -EBADMSG (*oflags is then 0). */
void ferry__bw_open_reply(ferry__bw *w, uint32_t oflags);
int ferry__br_open_reply(ferry__br *r, uint32_t *oflags);

/* A REGISTER request's body, decoded and validated (name, policy). The _body form
 * leaves what follows (PUBLISH: the kind) to be read, and does not check the end. */
int ferry__br_register(ferry__br *r, char name[256], ferry_policy *p);
int ferry__br_register_body(ferry__br *r, char name[256], ferry_policy *p);
void ferry__bw_register(ferry__bw *w, const char *name, const ferry_policy *p);

/* Send one packet (header, payload, optional fd) without blocking: 0, -EAGAIN (the
 * socket is full: nothing sent), -EPIPE, -errno. */
int ferry__bsend(int sock, int64_t op, uint64_t seq, const void *payload, size_t len, int fd);
/* The same with nfds (0 .. FERRY__BFDS_MAX) descriptors, in order; the caller keeps them.
 * -EINVAL for a count out of range. */
int ferry__bsendn(int sock, int64_t op, uint64_t seq, const void *payload, size_t len,
                  const int *fds, int nfds);

/* Receive one packet without blocking into buf (FERRY__BMSG_MAX bytes): sets *op, *seq,
 * *len and *fd (-1 if none; the caller owns it). Returns 1, 0 (nothing there),
 * -EPIPE (end), -EBADMSG (not a valid frame, truncated, extra fds: any fds are closed). */
int ferry__brecv(int sock, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fd);
/* The same accepting up to maxfds (<= FERRY__BFDS_MAX) descriptors: fds[0..*nfds) the
 * caller's, the rest of fds[0..maxfds) -1. More than maxfds came: all closed, -EBADMSG. */
int ferry__brecvn(int sock, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fds,
                  int maxfds, int *nfds);

#endif
