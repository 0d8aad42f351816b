// SPDX-License-Identifier: MIT
/*
 * test_policy.c — ferryd's rules with no broker: valid names (the length and part limits,
 * dots, characters), watch patterns and their matching, a name's ferry_policy (owner,
 * group by primary and supplementary gid, others, root, allow lists; see and connect;
 * several modes), and the policy file: comments, every syntax error with its line, user
 * and group names, a missing file, quotas and their precedence, the most specific `own`
 * rule winning, root; and no descriptor left open.
 */
#include "testutil.h" /* first: it defines _GNU_SOURCE (mkstemp) */

#include "broker/policy.h"
#include "core/abi.h"

#include <stdint.h>

static void check_names(void)
{
    char buf[300];
    CHECK_EQ(ferry__name_valid("a"), 0);
    CHECK_EQ(ferry__name_valid("org.example.echo"), 0);
    CHECK_EQ(ferry__name_valid("A-z_0.9"), 0);
    CHECK_EQ(ferry__name_valid(NULL), -EINVAL);
    CHECK_EQ(ferry__name_valid(""), -EINVAL);
    CHECK_EQ(ferry__name_valid("."), -EINVAL);
    CHECK_EQ(ferry__name_valid(".a"), -EINVAL);
    CHECK_EQ(ferry__name_valid("a."), -EINVAL);
    CHECK_EQ(ferry__name_valid("a..b"), -EINVAL);
    CHECK_EQ(ferry__name_valid("a b"), -EINVAL);
    CHECK_EQ(ferry__name_valid("a/b"), -EINVAL);
    CHECK_EQ(ferry__name_valid("a*"), -EINVAL);
    CHECK_EQ(ferry__name_valid("*"), -EINVAL);
    CHECK_EQ(ferry__name_valid("caf\xc3\xa9"), -EINVAL);

    /* a part: 63 ok, 64 not */
    memset(buf, 'p', 63);
    strcpy(buf + 63, ".x");
    CHECK_EQ(ferry__name_valid(buf), 0);
    memset(buf, 'p', 64);
    strcpy(buf + 64, ".x");
    CHECK_EQ(ferry__name_valid(buf), -EINVAL);
    strcpy(buf, "x.");
    memset(buf + 2, 'p', 64);
    buf[66] = '\0';
    CHECK_EQ(ferry__name_valid(buf), -EINVAL);

    /* the whole: 255 ok (four parts of 63), 256 not (even with every part short enough) */
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        memset(buf + n, 'a' + i, 63);
        n += 63;
        buf[n++] = '.';
    }
    memset(buf + n, 'd', 63);
    buf[n + 63] = '\0';
    CHECK_EQ(strlen(buf), 255);
    CHECK_EQ(ferry__name_valid(buf), 0);
    memset(buf + n, 'e', 61);
    strcpy(buf + n + 61, ".xy");
    CHECK_EQ(strlen(buf), 256);
    CHECK_EQ(ferry__name_valid(buf), -EINVAL);
}

static void check_patterns(void)
{
    char buf[300];
    CHECK_EQ(ferry__pattern_valid("*"), 0);
    CHECK_EQ(ferry__pattern_valid("a"), 0);
    CHECK_EQ(ferry__pattern_valid("a.b"), 0);
    CHECK_EQ(ferry__pattern_valid("a.*"), 0);
    CHECK_EQ(ferry__pattern_valid("a.b.*"), 0);
    CHECK_EQ(ferry__pattern_valid(NULL), -EINVAL);
    CHECK_EQ(ferry__pattern_valid(""), -EINVAL);
    CHECK_EQ(ferry__pattern_valid(".*"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a."), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a*"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a.b*"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("*.a"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a.*.b"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("**"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a..*"), -EINVAL);
    CHECK_EQ(ferry__pattern_valid("a.*.*"), -EINVAL);
    /* A pattern is at most 255 bytes: a 253-byte name and ".*" is fine (it matches the
     * 255-byte names below it); a longer base could match no name at all. */
    memset(buf, 'a', 254);
    buf[63] = buf[127] = buf[191] = '.';
    strcpy(buf + 253, ".*");
    CHECK_EQ(ferry__pattern_valid(buf), 0);
    buf[253] = 'a';
    strcpy(buf + 254, ".*");
    CHECK_EQ(ferry__pattern_valid(buf), -EINVAL);

    CHECK_EQ(ferry__pattern_match("a.b.*", "a.b.c"), 1);
    CHECK_EQ(ferry__pattern_match("a.b.*", "a.b.c.d"), 1);
    CHECK_EQ(ferry__pattern_match("a.b.*", "a.b"), 0);
    CHECK_EQ(ferry__pattern_match("a.b.*", "a.bc"), 0);
    CHECK_EQ(ferry__pattern_match("a.b.*", "a.bc.d"), 0);
    CHECK_EQ(ferry__pattern_match("a.b.*", "x.a.b.c"), 0);
    CHECK_EQ(ferry__pattern_match("a.b", "a.b"), 1);
    CHECK_EQ(ferry__pattern_match("a.b", "a.b.c"), 0);
    CHECK_EQ(ferry__pattern_match("a.b", "a"), 0);
    CHECK_EQ(ferry__pattern_match("*", "a"), 1);
    CHECK_EQ(ferry__pattern_match("*", "a.b.c"), 1);
}

static ferry__ident ident(uid_t uid, gid_t gid, uint32_t ngroups, const gid_t *groups)
{
    ferry__ident w = {.uid = uid, .gid = gid, .pid = 1, .ngroups = ngroups};
    for (uint32_t i = 0; i < ngroups; i++) w.groups[i] = groups[i];
    return w;
}

/* The rights of `who` on a name owned by 1000:100 under mode: bit 2 see, bit 1 connect. */
static int rights(const ferry_policy *p, const ferry__ident *who)
{
    return (ferry__policy_allows(p, 1000, 100, who, FERRY__SEE) ? 2 : 0) |
           (ferry__policy_allows(p, 1000, 100, who, FERRY__CONNECT) ? 1 : 0);
}

static void check_policy(void)
{
    ferry_policy p;
    memset(&p, 0xAB, sizeof p);
    ferry_policy_init(&p);
    CHECK_EQ(p.mode, 0600);
    CHECK(p.gid == (gid_t)-1);
    CHECK_EQ(p.flags, 0);
    CHECK_EQ(p.n_uids, 0);
    CHECK_EQ(p.n_gids, 0);
    CHECK_EQ(ferry__policy_valid(&p), 0);

    ferry_policy q = p;
    CHECK_EQ(ferry__policy_valid(NULL), -EINVAL);
    q.mode = 01000;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);
    q.mode = 04777;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);
    q.mode = 0777;
    CHECK_EQ(ferry__policy_valid(&q), 0);
    q.n_uids = FERRY_POLICY_MAX_IDS;
    q.n_gids = FERRY_POLICY_MAX_IDS;
    q.flags = FERRY_TAKEOVER;
    CHECK_EQ(ferry__policy_valid(&q), 0);
    q.n_uids = FERRY_POLICY_MAX_IDS + 1;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);
    q.n_uids = 0;
    q.n_gids = FERRY_POLICY_MAX_IDS + 1;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);
    q.n_gids = 0;
    q.flags = FERRY_SIGNAL_GROUP | FERRY_SIGNAL_ALLOWED | FERRY_SIGNAL_ANYONE;
    CHECK_EQ(ferry__policy_valid(&q), 0);
    q.flags = FERRY_WRITE_ANYONE;
    CHECK_EQ(ferry__policy_valid(&q), 0);
    q.flags = FERRY_POLICY_KEEP | FERRY_TAKEOVER;
    CHECK_EQ(ferry__policy_valid(&q), 0);
    CHECK_EQ(ferry__policy_valid_for(&q, FERRY_OBJ_MAILBOX), 0);
    CHECK_EQ(ferry__policy_valid_for(&q, 0), -EINVAL); /* a server's name is never kept */
    q.flags = FERRY_POLICY_KEEP;                       /* an orphan needs its takeover */
    CHECK_EQ(ferry__policy_valid_for(&q, FERRY_OBJ_MAILBOX), -EINVAL);
    q.flags = 1u << 7;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);
    q.flags = 1u << 31;
    CHECK_EQ(ferry__policy_valid(&q), -EINVAL);

    const gid_t sup[] = {7, 100};
    const gid_t sup200[] = {7, 200};
    ferry__ident owner = ident(1000, 100, 0, NULL);
    ferry__ident member = ident(2000, 100, 0, NULL);   /* primary gid 100 */
    ferry__ident supp = ident(2001, 50, 2, sup);       /* supplementary 100 */
    ferry__ident other = ident(3000, 300, 1, sup + 0); /* 7 only */
    ferry__ident g200 = ident(3001, 300, 2, sup200);   /* supplementary 200 */
    ferry__ident root = ident(0, 0, 0, NULL);
    ferry__ident rootg = ident(0, 999, 0, NULL);

    struct {
        unsigned mode;
        int owner, group, other;
    } t[] = {
        {0600, 3, 0, 0}, {0640, 3, 2, 0}, {0660, 3, 3, 0}, {0604, 3, 0, 2},
        {0000, 0, 0, 0}, {0006, 0, 0, 3}, {0200, 3, 0, 0}, {0420, 2, 3, 0},
        {0777, 3, 3, 3}, {0111, 0, 0, 0}, {0060, 0, 3, 0}, {0022, 0, 3, 3},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ferry_policy_init(&p);
        p.mode = t[i].mode;
        CHECK_EQ(rights(&p, &owner), t[i].owner);
        CHECK_EQ(rights(&p, &member), t[i].group);
        CHECK_EQ(rights(&p, &supp), t[i].group);
        CHECK_EQ(rights(&p, &other), t[i].other);
        CHECK_EQ(rights(&p, &g200), t[i].other);
        CHECK_EQ(rights(&p, &root), 3);
        CHECK_EQ(rights(&p, &rootg), 3);
    }

    /* the owner is judged by the owner's bits only, as for a file */
    ferry__ident owner_in_group = ident(1000, 100, 1, sup);
    ferry_policy_init(&p);
    p.mode = 0066;
    CHECK_EQ(rights(&p, &owner_in_group), 0);

    /* an explicit gid replaces the owner's */
    ferry_policy_init(&p);
    p.mode = 0640;
    p.gid = 200;
    CHECK_EQ(rights(&p, &member), 0);
    CHECK_EQ(rights(&p, &supp), 0);
    CHECK_EQ(rights(&p, &g200), 2);
    CHECK_EQ(rights(&p, &owner), 3);

    /* allow lists grant see and connect whatever the mode */
    ferry_policy_init(&p);
    p.mode = 0000;
    p.allow_uids[0] = 42;
    p.allow_uids[1] = 3000;
    p.n_uids = 2;
    CHECK_EQ(rights(&p, &other), 3);
    CHECK_EQ(rights(&p, &member), 0);
    CHECK_EQ(rights(&p, &owner), 0);
    p.n_uids = 1; /* entries past n_uids do not count */
    CHECK_EQ(rights(&p, &other), 0);
    p.n_uids = 0;
    p.allow_gids[0] = 9;
    p.allow_gids[1] = 200;
    p.n_gids = 2;
    CHECK_EQ(rights(&p, &g200), 3); /* supplementary */
    ferry__ident prim200 = ident(4000, 200, 0, NULL);
    CHECK_EQ(rights(&p, &prim200), 3); /* primary */
    CHECK_EQ(rights(&p, &other), 0);
    CHECK_EQ(rights(&p, &member), 0);

    /* a right that is neither SEE nor CONNECT is never granted; NULLs are refused */
    ferry_policy_init(&p);
    p.mode = 0777;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, 0), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__SIGNAL), 0); /* not a bit */
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__SEE | FERRY__CONNECT), 0);
    CHECK_EQ(ferry__policy_allows(NULL, 1000, 100, &owner, FERRY__SEE), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, NULL, FERRY__SEE), 0);

    /* the signal right: explicit grants only, to those who may see; root always */
    ferry_policy_init(&p);
    p.mode = 0666;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__SIGNAL), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &root, FERRY__SIGNAL), 1);
    p.flags = FERRY_SIGNAL_GROUP;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &supp, FERRY__SIGNAL), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 0);
    p.flags = FERRY_SIGNAL_ANYONE;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 1);
    p.mode = 0660; /* anyone who may see: the others may not */
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &member, FERRY__SIGNAL), 1);
    p.flags = FERRY_SIGNAL_ALLOWED;
    p.mode = 0600;
    p.allow_uids[0] = 3000;
    p.n_uids = 1;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &member, FERRY__SIGNAL), 0);
    p.flags = 0; /* the allow list alone grants see and connect, not signal */
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__SIGNAL), 0);

    CHECK_EQ(ferry__ident_in_group(&supp, 50), 1);
    CHECK_EQ(ferry__ident_in_group(&supp, 7), 1);
    CHECK_EQ(ferry__ident_in_group(&supp, 100), 1);
    CHECK_EQ(ferry__ident_in_group(&supp, 200), 0);
}

/* The write right of a region (FERRY__WRITE): granted only explicitly (write lists, which
 * also grant see and connect; FERRY_WRITE_ANYONE to whoever may connect), never by the
 * mode, not even to the owner; root always. Write rights are valid on a region only. */
static void check_write(void)
{
    const gid_t sup[] = {7, 100};
    ferry__ident owner = ident(1000, 100, 0, NULL);
    ferry__ident member = ident(2000, 100, 0, NULL);
    ferry__ident supp = ident(2001, 50, 2, sup);
    ferry__ident other = ident(3000, 300, 0, NULL);
    ferry__ident root = ident(0, 0, 0, NULL);
    ferry_policy p;
    ferry_policy_init(&p);
    CHECK_EQ(p.n_write_uids, 0);
    CHECK_EQ(p.n_write_gids, 0);
    CHECK_EQ(p.reserved0, 0);
    CHECK_EQ(ferry__policy_grants_write(&p), 0);
    p.mode = 0777;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__WRITE), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &root, FERRY__WRITE), 1);
    /* anyone who may connect; those who may only see get nothing */
    p.flags = FERRY_WRITE_ANYONE;
    p.mode = 0664;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__WRITE), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &member, FERRY__WRITE), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 0);
    CHECK_EQ(rights(&p, &other), 2);
    CHECK_EQ(ferry__policy_grants_write(&p), 1);
    CHECK_EQ(ferry__policy_valid_for(&p, FERRY_OBJ_REGION), 0);
    CHECK_EQ(ferry__policy_valid_for(&p, FERRY_OBJ_STATE), -EINVAL);
    CHECK_EQ(ferry__policy_valid_for(&p, 0), -EINVAL);
    CHECK_EQ(ferry__policy_valid_for(&p, FERRY_OBJ_SEM), -EINVAL);
    /* the write lists: see, connect and write whatever the mode; past the count nothing */
    ferry_policy_init(&p);
    p.mode = 0600;
    p.write_uids[0] = 3000;
    p.n_write_uids = 1;
    CHECK_EQ(rights(&p, &other), 3);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &member, FERRY__WRITE), 0);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &owner, FERRY__WRITE), 0);
    CHECK_EQ(ferry__policy_valid_for(&p, FERRY_OBJ_REGION), 0);
    CHECK_EQ(ferry__policy_valid_for(&p, FERRY_OBJ_MUTEX), -EINVAL);
    p.n_write_uids = 0;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 0);
    CHECK_EQ(rights(&p, &other), 0);
    p.write_gids[0] = 100;
    p.n_write_gids = 1;
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &supp, FERRY__WRITE), 1); /* supplementary */
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &member, FERRY__WRITE), 1);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 0);
    /* the allow lists grant connect (read-only), not write */
    ferry_policy_init(&p);
    p.allow_uids[0] = 3000;
    p.n_uids = 1;
    CHECK_EQ(rights(&p, &other), 3);
    CHECK_EQ(ferry__policy_allows(&p, 1000, 100, &other, FERRY__WRITE), 0);
    /* counts and the padding word are checked */
    ferry_policy_init(&p);
    p.n_write_uids = FERRY_POLICY_MAX_IDS + 1;
    CHECK_EQ(ferry__policy_valid(&p), -EINVAL);
    p.n_write_uids = 0;
    p.n_write_gids = FERRY_POLICY_MAX_IDS + 1;
    CHECK_EQ(ferry__policy_valid(&p), -EINVAL);
    p.n_write_gids = 0;
    p.reserved0 = 1;
    CHECK_EQ(ferry__policy_valid(&p), -EINVAL);
    /* an older caller's struct (without the write fields) reads as no write right */
    ferry_policy old;
    memset(&old, 0x7f, sizeof old);
    ferry_policy_init_sized(&old, FERRY__POLICY_V0);
    CHECK_EQ(old.n_write_uids, 0x7f7f7f7fu); /* untouched past its size */
    ferry_policy in;
    CHECK_EQ(ferry__policy_in(&old, &in), 0);
    CHECK_EQ(in.n_write_uids, 0);
    CHECK_EQ(in.n_write_gids, 0);
    CHECK_EQ(in.reserved0, 0);
}

/* ------------------------------------------------------------ the policy file */

static char path[64];

/* Write content (len bytes) to a new temporary file named in `path`. */
static void write_file(const char *content, size_t len)
{
    strcpy(path, "/tmp/ferry-policy-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, content, len), (ssize_t)len);
    CHECK_EQ(close(fd), 0);
}

/* Load content; returns the result, *out the config (or NULL), err the message. */
static int load(const char *content, ferry__sysconf **out, char *err, size_t errlen)
{
    write_file(content, strlen(content));
    int rc = ferry__sysconf_load(path, out, err, errlen);
    CHECK_EQ(unlink(path), 0);
    return rc;
}

/* content must fail on `line` with a message containing `what`. */
static void check_error(const char *content, unsigned line, const char *what)
{
    char err[256], want[128];
    ferry__sysconf *c = (ferry__sysconf *)&c;
    memset(err, 'z', sizeof err);
    CHECK_EQ(load(content, &c, err, sizeof err), -EINVAL);
    CHECK(c == NULL);
    snprintf(want, sizeof want, "%s:%u: ", path, line);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, what)) {
        fprintf(stderr, "content <%s>: got \"%s\", wanted \"%s...%s\"\n", content, err, want, what);
        exit(1);
    }
    /* with no room for the message, or none at all */
    CHECK_EQ(load(content, &c, NULL, 0), -EINVAL);
    err[0] = 'q';
    CHECK_EQ(load(content, &c, err, 1), -EINVAL);
    CHECK_EQ(err[0], '\0');
    CHECK_EQ(load(content, &c, err, 8), -EINVAL);
    CHECK_EQ(strlen(err), 7);
}

static void check_syntax_errors(void)
{
    check_error("frob a.b 1\n", 1, "unknown keyword 'frob'");
    check_error("# hello\n\n   \nown a.b 1\nOwn a.b 1\n", 5, "unknown keyword 'Own'");
    check_error("own\n", 1, "missing pattern");
    check_error("own   # a comment\n", 1, "missing pattern");
    check_error("own a.b\n", 1, "missing WHO");
    check_error("own a.b # 1000\n", 1, "missing WHO");
    check_error("own a..b 1\n", 1, "bad pattern 'a..b'");
    check_error("own a.b* 1\n", 1, "bad pattern");
    check_error("own *.a 1\n", 1, "bad pattern");
    check_error("own a. 1\n", 1, "bad pattern");
    check_error("\nown a.b 1 ferry-no-such-user-x\n", 2, "unknown user 'ferry-no-such-user-x'");
    check_error("own a.b @ferry-no-such-group-x\n", 1, "unknown group 'ferry-no-such-group-x'");
    check_error("own a.b @\n", 1, "missing group");
    check_error("own a.b 4294967295\n", 1, "uid out of range");
    check_error("own a.b @4294967295\n", 1, "gid out of range");
    check_error("own a.b 99999999999999999999999\n", 1, "uid out of range");
    check_error("own a.b 12x\n", 1, "unknown user '12x'");
    check_error("quota\n", 1, "missing KIND");
    check_error("quota names\n", 1, "missing N");
    check_error("quota nmes 1\n", 1, "unknown KIND 'nmes'");
    check_error("quota Names 1\n", 1, "unknown KIND");
    check_error("quota names 10x\n", 1, "bad number '10x'");
    check_error("quota names -1\n", 1, "bad number");
    check_error("quota names +1\n", 1, "bad number");
    check_error("quota names 0x10\n", 1, "bad number");
    check_error("quota names 18446744073709551616\n", 1, "bad number");
    check_error("quota names 1 1000 2000\n", 1, "too many fields");
    check_error("quota names 1 @root\n", 1, "WHO must be a uid or user name");
    check_error("quota names 1 @0\n", 1, "WHO must be a uid or user name");
    check_error("quota names 1 *\n", 1, "WHO must be a uid or user name");
    check_error("quota names 1 ferry-no-such-user-x\n", 1, "unknown user");
    check_error("quota fds 1\nquota names 2\nquota bytes 1 4294967295\n", 3, "uid out of range");

    /* a NUL byte */
    char err[256];
    ferry__sysconf *c = NULL;
    write_file("own a 1\nown b\0 1\n", 17);
    CHECK_EQ(ferry__sysconf_load(path, &c, err, sizeof err), -EINVAL);
    CHECK(c == NULL);
    CHECK(strstr(err, ":2: NUL byte"));
    CHECK_EQ(unlink(path), 0);

    /* lines: 4096 bytes fine (with or without a last newline), 4097 not */
    char *big = malloc(3 * 4100);
    CHECK(big);
    memset(big, ' ', 4096);
    memcpy(big, "own a.b 1 #", 11);
    big[4096] = '\0';
    CHECK_EQ(load(big, &c, err, sizeof err), 0);
    CHECK(c != NULL);
    ferry__sysconf_free(c);
    big[4096] = '\n';
    big[4097] = '\0';
    CHECK_EQ(load(big, &c, err, sizeof err), 0);
    ferry__sysconf_free(c);
    strcpy(big, "\n\n");
    memset(big + 2, '#', 4097);
    strcpy(big + 2 + 4097, "\nown a.b 1\n");
    check_error(big, 3, "line longer than 4096 bytes");
    free(big);
}

static ferry__ident id_(uid_t uid, gid_t gid)
{
    return ident(uid, gid, 0, NULL);
}

/* `signal PATTERN WHO...`: the most specific pattern decides; no rule grants nothing. */
static void check_signal_rules(void)
{
    char err[256];
    ferry__sysconf *c = NULL;
    CHECK_EQ(load("signal org.* 2\nsignal org.example.* @500\nsignal org.example.* 3\n", &c, err,
                  sizeof err),
             0);
    const gid_t g500[] = {500};
    ferry__ident w500 = ident(9, 9, 1, g500), u2 = id_(2, 2), u3 = id_(3, 3), root = id_(0, 0);
    CHECK_EQ(ferry__sysconf_may_signal(c, "org.example.echo", &w500), 1);
    CHECK_EQ(ferry__sysconf_may_signal(c, "org.example.echo", &u3), 1);
    CHECK_EQ(ferry__sysconf_may_signal(c, "org.example.echo", &u2), 0); /* a longer prefix */
    CHECK_EQ(ferry__sysconf_may_signal(c, "org.other", &u2), 1);
    CHECK_EQ(ferry__sysconf_may_signal(c, "net.x", &u2), 0); /* no rule: nobody */
    CHECK_EQ(ferry__sysconf_may_signal(c, "net.x", &root), 1);
    CHECK_EQ(ferry__sysconf_may_signal(c, "bad..name", &root), 0);
    /* signal rules do not touch ownership, nor own rules signals */
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u2), 1);
    ferry__sysconf_free(c);
    CHECK_EQ(ferry__sysconf_may_signal(NULL, "net.x", &u2), 0);
    check_error("signal\n", 1, "signal: missing pattern");
    check_error("signal a.b\n", 1, "signal: missing WHO");
}

static void check_own(void)
{
    char err[256];
    ferry__sysconf *c = NULL;
    const char *conf = "# who owns what\n"
                       "own * 1\n"
                       "own org.* 2\n"
                       "own org.example.* 3 \t 33\n"
                       "  own org.example.echo 4  # the echo server\n"
                       "own org.example.echo @500\n"
                       "own net.x root\n"
                       "own grp.* @root\n"
                       "own gnum.* @77 888\n"
                       "own any.* *\n"
                       "\n";
    CHECK_EQ(load(conf, &c, err, sizeof err), 0);
    CHECK_EQ(err[0], '\0');
    const gid_t g500[] = {500};
    ferry__ident w500 = ident(9, 9, 1, g500);
    ferry__ident root = id_(0, 0);

    ferry__ident u1 = id_(1, 1), u2 = id_(2, 2), u3 = id_(3, 3), u33 = id_(33, 1);
    ferry__ident u4 = id_(4, 4), u9 = id_(9, 500);
    /* the exact name beats every prefix; its two lines add up */
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u4), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &w500), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u9), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u3), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u2), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u1), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &root), 1);
    /* the longer prefix beats the shorter one */
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.other", &u3), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo.sub", &u33), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo.sub", &u4), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.other", &u2), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.other", &u4), 0);
    /* "org.example.*" is not org.example itself */
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example", &u2), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example", &u3), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.examples", &u2), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.foo", &u2), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.foo", &u1), 0);
    /* "*" last */
    CHECK_EQ(ferry__sysconf_may_own(c, "org", &u1), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org", &u2), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "com.x", &u1), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "com.x", &u4), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "com.x", &root), 1);
    /* user "root" (uid 0) only: nobody else */
    CHECK_EQ(ferry__sysconf_may_own(c, "net.x", &u1), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "net.x", &root), 1);
    /* group "root" (gid 0), primary or supplementary; "@77" by number; "888" a uid */
    const gid_t g0[] = {3, 0}, g77[] = {77};
    ferry__ident gr_prim = id_(50, 0), gr_sup = ident(51, 51, 2, g0), nogr = id_(52, 52);
    ferry__ident g77_sup = ident(53, 53, 1, g77), u888 = id_(888, 1), gid888 = id_(54, 888);
    CHECK_EQ(ferry__sysconf_may_own(c, "grp.a", &gr_prim), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "grp.a", &gr_sup), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "grp.a", &nogr), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "gnum.a", &g77_sup), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "gnum.a", &u888), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "gnum.a", &gid888), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "gnum.a", &nogr), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "any.a.b", &nogr), 1);
    /* an invalid name: nobody, not even root */
    CHECK_EQ(ferry__sysconf_may_own(c, "org..x", &u1), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "", &root), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, NULL, &root), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.x", NULL), 0);
    ferry__sysconf_free(c);

    /* no "*" rule: a name no rule matches is anyone's */
    CHECK_EQ(load("own org.example.* 3\nown org.example.echo 4\n", &c, err, sizeof err), 0);
    ferry__ident u1234 = id_(1234, 1234);
    CHECK_EQ(ferry__sysconf_may_own(c, "com.other", &u1234), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example", &u1234), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.x", &u1234), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.x", &u3), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u3), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "org.example.echo", &u4), 1);
    ferry__sysconf_free(c);

    /* many rules: no fixed limit */
    size_t cap = 64 * 1000 + 1;
    char *many = malloc(cap), *p = many;
    CHECK(many);
    for (int i = 0; i < 2000; i++) p += sprintf(p, "own n%d.* %d %d\n", i, i + 1, i + 100000);
    CHECK_EQ(load(many, &c, err, sizeof err), 0);
    free(many);
    ferry__ident u1500 = id_(1500, 1), u1501 = id_(1501, 1), u101499 = id_(101499, 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "n1499.x", &u1500), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "n1499.x", &u101499), 1);
    CHECK_EQ(ferry__sysconf_may_own(c, "n1499.x", &u1501), 0);
    CHECK_EQ(ferry__sysconf_may_own(c, "n2000.x", &u1501), 1);
    ferry__sysconf_free(c);
}

static void check_quota(const ferry__sysconf *c, uid_t uid, uint64_t names, uint64_t conns,
                        uint64_t pending, uint64_t fds, uint64_t bytes)
{
    ferry__quota q;
    memset(&q, 0x5A, sizeof q);
    ferry__sysconf_quota(c, uid, &q);
    CHECK(q.names == names);
    CHECK(q.conns == conns);
    CHECK(q.pending == pending);
    CHECK(q.fds == fds);
    CHECK(q.bytes == bytes);
}

static void check_quotas(void)
{
    char err[256];
    ferry__sysconf *c = NULL;
    const uint64_t M = UINT64_MAX;

    /* the defaults: ferry__sysconf_default, a missing file, an empty one */
    CHECK_EQ(ferry__sysconf_default(&c), 0);
    check_quota(c, 1000, 256, 256, 64, 128, 1048576);
    check_quota(c, 0, M, M, M, M, M);
    ferry__ident u = id_(1000, 1000);
    CHECK_EQ(ferry__sysconf_may_own(c, "any.name", &u), 1);
    ferry__sysconf_free(c);
    ferry__sysconf_free(NULL);

    c = NULL;
    strcpy(err, "junk");
    CHECK_EQ(ferry__sysconf_load("/tmp/ferry-policy-no-such-file/x.conf", &c, err, sizeof err), 0);
    CHECK(c != NULL);
    CHECK_EQ(err[0], '\0');
    check_quota(c, 1000, 256, 256, 64, 128, 1048576);
    CHECK_EQ(ferry__sysconf_may_own(c, "any.name", &u), 1);
    ferry__sysconf_free(c);

    CHECK_EQ(load("", &c, err, sizeof err), 0);
    check_quota(c, 1000, 256, 256, 64, 128, 1048576);
    ferry__sysconf_free(c);

    /* a directory: the read's error */
    c = (ferry__sysconf *)&c;
    CHECK_EQ(ferry__sysconf_load("/tmp", &c, err, sizeof err), -EISDIR);
    CHECK(c == NULL);
    CHECK_EQ(ferry__sysconf_load(NULL, &c, err, sizeof err), -EINVAL);

    /* general, per uid, last wins, per kind fallback */
    const char *conf = "quota names 10\n"
                       "quota conns 20   # everyone\n"
                       "quota names 5 1000\n"
                       "quota fds 7 1000\n"
                       "quota names 6 1000\n"
                       "quota names 11\n"
                       "quota bytes 0 2000\n"
                       "quota pending 18446744073709551615 2000\n"
                       "quota names 3 root\n"
                       "quota conns 1 0\n";
    CHECK_EQ(load(conf, &c, err, sizeof err), 0);
    check_quota(c, 1000, 6, 20, 64, 7, 1048576);
    check_quota(c, 2000, 11, 20, M, 128, 0);
    check_quota(c, 3000, 11, 20, 64, 128, 1048576);
    check_quota(c, 0, M, M, M, M, M);
    /* the general line after a uid's line does not override it */
    ferry__sysconf_free(c);
    CHECK_EQ(load("quota names 5 1000\nquota names 9\n", &c, err, sizeof err), 0);
    check_quota(c, 1000, 5, 256, 64, 128, 1048576);
    check_quota(c, 1001, 9, 256, 64, 128, 1048576);
    ferry__sysconf_free(c);
}

int main(void)
{
    int fds = fd_count();
    check_names();
    check_patterns();
    check_policy();
    check_write();
    check_syntax_errors();
    check_own();
    check_signal_rules();
    check_quotas();
    CHECK_EQ(fd_count(), fds);
    printf("test_policy: ok\n");
    return 0;
}
