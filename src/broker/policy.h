// SPDX-License-Identifier: MIT
/*
 * policy.h — ferryd's rules, with no I/O but reading the policy file: what a valid name
 * and watch pattern are, who may see / connect to a name (the name's ferry_policy, set by
 * its server), who may own which names and how much each uid may hold (the system policy
 * file, /etc/ferry/policy.conf). Used by ferryd (src/broker/server.c) and by the client
 * library to refuse bad names before asking.
 *
 * Identity (ferry__ident) is always what the kernel said about a peer (SO_PEERCRED and
 * SO_PEERGROUPS), never anything a peer wrote. uid 0 (root) may see, connect to and own
 * everything, and has no quota.
 *
 * The policy file, one rule per line (at most 4096 bytes, no NUL), '#' anywhere starts
 * a comment to the end of the line, words separated by blanks (spaces, tabs; '\r' too):
 *   own PATTERN WHO...          who may own names matching PATTERN
 *   quota KIND N [WHO]          a quota for every uid, or for one uid when WHO is given
 *   signal PATTERN WHO...       who may signal (ferry_kill) the owners of names matching
 *                               PATTERN, whatever the name's policy says (an explicit
 *                               grant: ferryd then sends with its own privilege)
 * PATTERN is a name ("org.example.echo": that name only), a prefix of whole parts ending
 * in ".*" ("org.example.*": every name below org.example, not org.example itself), or
 * "*" (every name). WHO is a uid number, a user name, "@" and a gid number or group
 * name, or "*" (everyone); all digits is a number (below (uid_t)-1), names are resolved
 * when the file is loaded (an unknown one is an error). The most specific matching `own`
 * rule decides (an exact name beats any prefix, a longer prefix beats a shorter one, "*"
 * is last); several lines with the same pattern add up (any of their WHOs may own); a
 * name no rule matches may be owned by anyone. `signal` rules are chosen the same way
 * (the most specific matching pattern decides, lines with one pattern add up), but a name
 * no signal rule matches grants nobody anything. KIND is one of names, conns, pending,
 * fds, bytes; N is a decimal u64 (digits only); the WHO of a quota is a uid or user name
 * only (not a group, not "*": leave WHO out for everyone). A uid's quota lines override
 * the general ones kind by kind; of two lines for the same kind and uid (or both
 * general), the last wins.
 * Defaults: names 256, conns 256, pending 64, fds 128, bytes 1048576.
 * Errors in the file are reported with the line number; a missing file is no error (the
 * defaults hold).
 */
#ifndef FERRY_BROKER_POLICY_H
#define FERRY_BROKER_POLICY_H

#include "core/name.h"
#include "ferry/ferry.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FERRY__MAX_GROUPS 64

/* Who a peer is, as the kernel stamped it. */
typedef struct ferry__ident {
    uid_t uid;
    gid_t gid; /* primary */
    pid_t pid;
    uint32_t ngroups; /* supplementary groups (SO_PEERGROUPS), at most FERRY__MAX_GROUPS */
    gid_t groups[FERRY__MAX_GROUPS];
} ferry__ident;

/* Is gid the primary or a supplementary group of who? 1 or 0. */
int ferry__ident_in_group(const ferry__ident *who, gid_t gid);

/* Rights in ferry_policy.mode, per class (owner 0700, group 0070, other 0007). */
#define FERRY__SEE     4u
#define FERRY__CONNECT 2u
/* Not a mode bit: the signal right of a name, from its policy's FERRY_SIGNAL_* flags. */
#define FERRY__SIGNAL 1u
/* Not a mode bit: the write right of a region, from its policy's write lists and
 * FERRY_WRITE_ANYONE. It implies CONNECT (the write lists grant see and connect too). */
#define FERRY__WRITE 8u

/* The caller's policy in (NULL: none) as a full struct of this version in *p: the
 * defaults, then min(in->size, sizeof) bytes of in (core/abi.h). 0, -EINVAL (in->size 0,
 * too small, too large) or -E2BIG (fields this version does not know, set). Every public
 * function that takes a ferry_policy calls it first. */
int ferry__policy_in(const ferry_policy *in, ferry_policy *p);

/* 0 if p is acceptable from a server (mode <= 0777, n_uids/n_gids and the write lists'
 * counts <= the maximum, reserved0 0, no unknown flags), else -EINVAL. */
int ferry__policy_valid(const ferry_policy *p);

/* Does p grant a write right to anyone (write lists, FERRY_WRITE_ANYONE)? 1 or 0. */
int ferry__policy_grants_write(const ferry_policy *p);

/* ferry__policy_valid, and no write right unless kind is FERRY_OBJ_REGION (kind 0: a
 * server); FERRY_POLICY_KEEP only for a published object (kind > 0) and only with
 * FERRY_TAKEOVER. 0 or -EINVAL. */
int ferry__policy_valid_for(const ferry_policy *p, uint32_t kind);

/* Does policy p of a name owned by owner_uid (whose group is p->gid, or owner_gid when
 * p->gid is (gid_t)-1) grant `right` (FERRY__SEE, FERRY__CONNECT, FERRY__SIGNAL or
 * FERRY__WRITE) to who? CONNECT implies SEE. allow lists grant both, the write lists
 * all three of SEE, CONNECT and WRITE. WRITE is granted only explicitly: the write lists,
 * or FERRY_WRITE_ANYONE to whoever has CONNECT (the mode grants no write, not even to
 * the owner's uid). root is always granted. As for a
 * file, one class counts: the owner's bits for the owner uid, else the group's for a
 * member, else the others' (mode 0066 denies the owner). FERRY__SIGNAL is granted only
 * explicitly, and only with SEE: FERRY_SIGNAL_ANYONE to everyone, FERRY_SIGNAL_GROUP to
 * the group's members, FERRY_SIGNAL_ALLOWED to the allow lists (the mode grants no
 * signal, not even to the owner: the owner's uid passes kill(2)'s rule by itself).
 * Any other `right`, or a NULL: 0. 1 or 0. */
int ferry__policy_allows(const ferry_policy *p, uid_t owner_uid, gid_t owner_gid,
                         const ferry__ident *who, unsigned right);

/* Quotas of one uid. */
typedef struct ferry__quota {
    uint64_t names;   /* names owned */
    uint64_t conns;   /* connections to ferryd open at once */
    uint64_t pending; /* introductions asked for and not yet accepted by the server */
    uint64_t fds;     /* descriptors ferryd holds or has in flight for the uid (its
                         connections, its name-owning processes' pidfds, its published
                         objects (a region: two), queued descriptors, its introductions
                         in flight) */
    uint64_t bytes;   /* bytes queued in ferryd for the uid's connections, and of the
                         introductions it asked for that wait for a slow server */
} ferry__quota;

typedef struct ferry__sysconf ferry__sysconf;

/*
 * Read the policy file at path. A missing file (ENOENT) gives the defaults. On a syntax
 * error returns -EINVAL and writes "PATH:LINE: what" into err (errlen bytes, may be 0).
 * The caller owns *out (ferry__sysconf_free). Errors: -EINVAL, -ENOMEM, -EACCES, -errno
 * of reading the file.
 */
int ferry__sysconf_load(const char *path, ferry__sysconf **out, char *err, size_t errlen);

/* The defaults (no rules, default quotas). The caller owns *out. -ENOMEM. */
int ferry__sysconf_default(ferry__sysconf **out);

void ferry__sysconf_free(ferry__sysconf *c);

/* May who own name under the system policy? 1 or 0. root: always 1. An invalid name:
 * 0 (even for root). c NULL: the defaults (anyone). */
int ferry__sysconf_may_own(const ferry__sysconf *c, const char *name, const ferry__ident *who);

/* Does the system policy grant who the right to signal the owner of name (a `signal`
 * rule)? 1 or 0. root: 1. An invalid name, or c NULL (the defaults): 0. */
int ferry__sysconf_may_signal(const ferry__sysconf *c, const char *name, const ferry__ident *who);

/* The quota of uid (its own lines, else the general ones, else the defaults). root gets
 * UINT64_MAX everywhere. */
void ferry__sysconf_quota(const ferry__sysconf *c, uid_t uid, ferry__quota *out);

#endif
