// SPDX-License-Identifier: MIT
/*
 * policy.c — ferryd's rules (see policy.h): a name's ferry_policy (who may see / connect to it),
 * and the system policy file (who may own which names, who may signal whose, the quotas of each
 * uid). The file is parsed once into a ferry__sysconf: `own` and `signal` rules (pattern, its rank,
 * and the WHOs, user and group names resolved at load) and quotas (a general set, and per-uid
 * overrides with a mask of the kinds they set).
 *
 * _POSIX_C_SOURCE (not _GNU_SOURCE): -std=c11 hides getpwnam_r, getgrnam_r, fdopen,
 * strdup and O_CLOEXEC otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include "broker/policy.h"
#include "core/abi.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ a name's ferry_policy */

/* The defaults of a policy, as a full struct of this version. */
static void policy_defaults(ferry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->mode = 0600;
    p->gid = (gid_t)-1;
}

void ferry_policy_init_sized(ferry_policy *p, size_t size)
{
    ferry_policy d;
    policy_defaults(&d);
    ferry__sized_init(p, size, &d, sizeof d);
}

int ferry__policy_in(const ferry_policy *in, ferry_policy *p)
{
    policy_defaults(p);
    return ferry__sized_in(p, sizeof *p, in, FERRY__POLICY_V0);
}

int ferry__ident_in_group(const ferry__ident *who, gid_t gid)
{
    if (!who) return 0;
    if (who->gid == gid) return 1;
    uint32_t n = who->ngroups < FERRY__MAX_GROUPS ? who->ngroups : FERRY__MAX_GROUPS;
    for (uint32_t i = 0; i < n; i++)
        if (who->groups[i] == gid) return 1;
    return 0;
}

int ferry__policy_valid(const ferry_policy *p)
{
    if (!p || p->mode > 0777 || p->n_uids > FERRY_POLICY_MAX_IDS ||
        p->n_gids > FERRY_POLICY_MAX_IDS || p->n_write_uids > FERRY_POLICY_MAX_IDS ||
        p->n_write_gids > FERRY_POLICY_MAX_IDS || p->reserved0 != 0 ||
        (p->flags & ~(uint32_t)(FERRY_TAKEOVER | FERRY_SIGNAL_GROUP | FERRY_SIGNAL_ALLOWED |
                                FERRY_SIGNAL_ANYONE | FERRY_POLICY_TRUSTED_SHARERS |
                                FERRY_WRITE_ANYONE | FERRY_POLICY_KEEP)) != 0)
        return -EINVAL;
    return 0;
}

int ferry__policy_grants_write(const ferry_policy *p)
{
    return p && ((p->flags & FERRY_WRITE_ANYONE) || p->n_write_uids || p->n_write_gids);
}

int ferry__policy_valid_for(const ferry_policy *p, uint32_t kind)
{
    if (ferry__policy_valid(p) < 0) return -EINVAL;
    /* The write right means something for a region only (a state has one writer). */
    if (kind != FERRY_OBJ_REGION && ferry__policy_grants_write(p)) return -EINVAL;
    /* A kept name is a published object's (a server's name is nothing without its
     * process), and its orphan needs a way out: a takeover by its uid. */
    if ((p->flags & FERRY_POLICY_KEEP) && (kind == 0 || !(p->flags & FERRY_TAKEOVER)))
        return -EINVAL;
    return 0;
}

/* Is who in p's allow_uids, or a member of one of its allow_gids? */
static int in_allow_lists(const ferry_policy *p, const ferry__ident *who)
{
    uint32_t nu = p->n_uids < FERRY_POLICY_MAX_IDS ? p->n_uids : FERRY_POLICY_MAX_IDS;
    uint32_t ng = p->n_gids < FERRY_POLICY_MAX_IDS ? p->n_gids : FERRY_POLICY_MAX_IDS;
    for (uint32_t i = 0; i < nu; i++)
        if (p->allow_uids[i] == who->uid) return 1;
    for (uint32_t i = 0; i < ng; i++)
        if (ferry__ident_in_group(who, p->allow_gids[i])) return 1;
    return 0;
}

/* Is who in p's write_uids, or a member of one of its write_gids? */
static int in_write_lists(const ferry_policy *p, const ferry__ident *who)
{
    uint32_t nu = p->n_write_uids < FERRY_POLICY_MAX_IDS ? p->n_write_uids : FERRY_POLICY_MAX_IDS;
    uint32_t ng = p->n_write_gids < FERRY_POLICY_MAX_IDS ? p->n_write_gids : FERRY_POLICY_MAX_IDS;
    for (uint32_t i = 0; i < nu; i++)
        if (p->write_uids[i] == who->uid) return 1;
    for (uint32_t i = 0; i < ng; i++)
        if (ferry__ident_in_group(who, p->write_gids[i])) return 1;
    return 0;
}

int ferry__policy_allows(const ferry_policy *p, uid_t owner_uid, gid_t owner_gid,
                         const ferry__ident *who, unsigned right)
{
    if (!p || !who) return 0;
    if (right != FERRY__SEE && right != FERRY__CONNECT && right != FERRY__SIGNAL &&
        right != FERRY__WRITE)
        return 0;
    if (who->uid == 0) return 1;
    gid_t group = p->gid == (gid_t)-1 ? owner_gid : p->gid;
    if (right ==
        FERRY__WRITE) /* explicit grants only: the write lists, or anyone who may connect */
        return in_write_lists(p, who) ||
               ((p->flags & FERRY_WRITE_ANYONE) &&
                ferry__policy_allows(p, owner_uid, owner_gid, who, FERRY__CONNECT));
    if (right == FERRY__SIGNAL) { /* explicit grants only, to those who may see the name */
        if (!ferry__policy_allows(p, owner_uid, owner_gid, who, FERRY__SEE)) return 0;
        if (p->flags & FERRY_SIGNAL_ANYONE) return 1;
        if ((p->flags & FERRY_SIGNAL_GROUP) && ferry__ident_in_group(who, group)) return 1;
        return (p->flags & FERRY_SIGNAL_ALLOWED) && in_allow_lists(p, who);
    }
    if (in_allow_lists(p, who) || in_write_lists(p, who)) return 1; /* write implies connect */

    /* One class, as for a file: the owner's bits, else the group's, else the others'. */
    unsigned bits;
    if (who->uid == owner_uid)
        bits = p->mode >> 6;
    else if (ferry__ident_in_group(who, group))
        bits = p->mode >> 3;
    else
        bits = p->mode;
    unsigned need = right == FERRY__SEE ? FERRY__SEE | FERRY__CONNECT : FERRY__CONNECT;
    return (bits & need) != 0;
}

/* ------------------------------------------------------------ the system policy */

#define LINE_LEN 4096 /* bytes of a line, without its newline */

enum { WHO_ANY, WHO_UID, WHO_GID };

typedef struct who_spec {
    int kind;    /* WHO_* */
    unsigned id; /* the uid or gid */
} who_spec;

typedef struct own_rule {
    char *pat;
    size_t rank; /* "*" 1, a prefix 1 + its length, an exact name SIZE_MAX */
    size_t nwho;
    who_spec *who;
} own_rule;

enum { Q_NAMES, Q_CONNS, Q_PENDING, Q_FDS, Q_BYTES, Q_N };

static const char *const kind_names[Q_N] = {"names", "conns", "pending", "fds", "bytes"};
static const uint64_t kind_defaults[Q_N] = {256, 256, 64, 128, 1048576};

typedef struct uid_quota {
    uid_t uid;
    unsigned set; /* bit k: v[k] was given */
    uint64_t v[Q_N];
} uid_quota;

/* A list of own (or signal) rules. */
typedef struct rule_set {
    own_rule *rules;
    size_t nrules, caprules;
} rule_set;

struct ferry__sysconf {
    rule_set own, sig;
    uint64_t general[Q_N];
    uid_quota *quotas;
    size_t nquotas, capquotas;
};

/* arr with room for n + 1 items of size bytes (maybe moved; *cap updated), or NULL
 * (arr untouched). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return arr;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > SIZE_MAX / size) return NULL;
    void *p = realloc(arr, ncap * size);
    if (p) *cap = ncap;
    return p;
}

int ferry__sysconf_default(ferry__sysconf **out)
{
    if (!out) return -EINVAL;
    ferry__sysconf *c = calloc(1, sizeof *c);
    *out = c;
    if (!c) return -ENOMEM;
    memcpy(c->general, kind_defaults, sizeof c->general);
    return 0;
}

void ferry__sysconf_free(ferry__sysconf *c)
{
    if (!c) return;
    rule_set *sets[2] = {&c->own, &c->sig};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sets[k]->nrules; i++) {
            free(sets[k]->rules[i].pat);
            free(sets[k]->rules[i].who);
        }
        free(sets[k]->rules);
    }
    free(c->quotas);
    free(c);
}

/* Where a parse is, to report errors as "PATH:LINE: what". */
typedef struct parse_ctx {
    const char *path;
    unsigned line;
    char *err;
    size_t errlen;
} parse_ctx;

__attribute__((format(printf, 2, 3))) static int syntax(parse_ctx *x, const char *fmt, ...)
{
    if (x->err && x->errlen) {
        int n = snprintf(x->err, x->errlen, "%s:%u: ", x->path, x->line);
        if (n >= 0 && (size_t)n < x->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The next blank-separated word of *p (NUL-terminated in place), or NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p;
    while (blank(*s)) s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    char *w = s;
    while (*s && !blank(*s)) s++;
    if (*s) *s++ = '\0';
    *p = s;
    return w;
}

/* Decimal digits only, no sign, no overflow: 0; else -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* The uid of user `name` (group: the gid of group `name`): 0, -ENOENT, -ENOMEM. */
static int lookup_id(const char *name, int group, unsigned *id)
{
    long hint = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    size_t len = hint > 0 ? (size_t)hint : 1024;
    for (;;) {
        char *buf = malloc(len);
        if (!buf) return -ENOMEM;
        int rc, found = 0;
        if (group) {
            struct group gr, *res = NULL;
            rc = getgrnam_r(name, &gr, buf, len, &res);
            if (rc == 0 && res) found = 1, *id = gr.gr_gid;
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwnam_r(name, &pw, buf, len, &res);
            if (rc == 0 && res) found = 1, *id = pw.pw_uid;
        }
        free(buf);
        if (rc == ERANGE && len < (1u << 20)) {
            len *= 2;
            continue;
        }
        if (rc == ENOMEM) return -ENOMEM;
        return found ? 0 : -ENOENT;
    }
}

/* One WHO: "*", a uid or user name, "@" and a gid or group name (only a user when
 * user_only). */
static int parse_who(parse_ctx *x, const char *w, int user_only, who_spec *out)
{
    if (strcmp(w, "*") == 0) {
        if (user_only) return syntax(x, "quota: WHO must be a uid or user name, not '*'");
        out->kind = WHO_ANY;
        return 0;
    }
    int group = w[0] == '@';
    if (group && user_only) return syntax(x, "quota: WHO must be a uid or user name: '%s'", w);
    const char *s = group ? w + 1 : w;
    if (!*s) return syntax(x, "missing group after '@'");
    out->kind = group ? WHO_GID : WHO_UID;
    if (all_digits(s)) {
        uint64_t v;
        if (parse_u64(s, &v) != 0 || v >= (uint64_t)(uid_t)-1)
            return syntax(x, "%s out of range: '%s'", group ? "gid" : "uid", s);
        out->id = (unsigned)v;
        return 0;
    }
    int rc = lookup_id(s, group, &out->id);
    if (rc == -ENOENT) return syntax(x, "unknown %s '%s'", group ? "group" : "user", s);
    return rc;
}

/* "own PATTERN WHO..." or "signal PATTERN WHO..." (kw; rest: after the keyword), into
 * set. */
static int parse_own(parse_ctx *x, rule_set *set, const char *kw, char *rest)
{
    char *pat = next_word(&rest);
    if (!pat) return syntax(x, "%s: missing pattern", kw);
    if (ferry__pattern_valid(pat) != 0) return syntax(x, "%s: bad pattern '%s'", kw, pat);
    size_t n = strlen(pat), cap = 0;
    own_rule r = {.rank = strcmp(pat, "*") == 0              ? 1
                          : ferry__pattern_is_prefix(pat, n) ? 1 + n
                                                             : SIZE_MAX};
    int rc = 0;
    for (char *w; (w = next_word(&rest)) != NULL; r.nwho++) {
        who_spec *a = grow(r.who, &cap, r.nwho, sizeof *a);
        if (!a) {
            rc = -ENOMEM;
            goto fail;
        }
        r.who = a;
        if ((rc = parse_who(x, w, 0, &r.who[r.nwho])) != 0) goto fail;
    }
    if (r.nwho == 0) {
        rc = syntax(x, "%s: missing WHO after '%s'", kw, pat);
        goto fail;
    }
    own_rule *rules = grow(set->rules, &set->caprules, set->nrules, sizeof *rules);
    if (!rules || !(r.pat = strdup(pat))) {
        rc = -ENOMEM;
        if (rules) set->rules = rules;
        goto fail;
    }
    set->rules = rules;
    set->rules[set->nrules++] = r;
    return 0;
fail:
    free(r.who);
    return rc;
}

/* "quota KIND N [WHO]" (rest: after the keyword). */
static int parse_quota(parse_ctx *x, ferry__sysconf *c, char *rest)
{
    char *kind = next_word(&rest), *num = next_word(&rest), *w = next_word(&rest);
    if (!kind) return syntax(x, "quota: missing KIND");
    int k = 0;
    while (k < Q_N && strcmp(kind, kind_names[k]) != 0) k++;
    if (k == Q_N) return syntax(x, "quota: unknown KIND '%s'", kind);
    if (!num) return syntax(x, "quota: missing N");
    uint64_t v;
    if (parse_u64(num, &v) != 0) return syntax(x, "quota: bad number '%s'", num);
    if (next_word(&rest)) return syntax(x, "quota: too many fields");
    if (!w) {
        c->general[k] = v;
        return 0;
    }
    who_spec who;
    int rc = parse_who(x, w, 1, &who);
    if (rc) return rc;
    size_t i = 0;
    while (i < c->nquotas && c->quotas[i].uid != (uid_t)who.id) i++;
    if (i == c->nquotas) {
        uid_quota *q = grow(c->quotas, &c->capquotas, c->nquotas, sizeof *q);
        if (!q) return -ENOMEM;
        c->quotas = q;
        c->quotas[c->nquotas++] = (uid_quota){.uid = (uid_t)who.id};
    }
    c->quotas[i].v[k] = v;
    c->quotas[i].set |= 1u << k;
    return 0;
}

static int parse_line(parse_ctx *x, ferry__sysconf *c, char *line)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *rest = line, *kw = next_word(&rest);
    if (!kw) return 0;
    if (strcmp(kw, "own") == 0) return parse_own(x, &c->own, kw, rest);
    if (strcmp(kw, "signal") == 0) return parse_own(x, &c->sig, kw, rest);
    if (strcmp(kw, "quota") == 0) return parse_quota(x, c, rest);
    return syntax(x, "unknown keyword '%s'", kw);
}

/* The next line into buf (LINE_LEN + 1 bytes), without its newline: 1, 0 at the end,
 * or an error. */
static int read_line(FILE *f, char *buf, parse_ctx *x)
{
    size_t n = 0;
    int ch;
    errno = 0;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (ch == '\0') return syntax(x, "NUL byte in line");
        if (n == LINE_LEN) return syntax(x, "line longer than %d bytes", LINE_LEN);
        buf[n++] = (char)ch;
    }
    if (ch == EOF && ferror(f)) return errno ? -errno : -EIO;
    if (ch == EOF && n == 0) return 0;
    buf[n] = '\0';
    return 1;
}

int ferry__sysconf_load(const char *path, ferry__sysconf **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out) return -EINVAL;
    *out = NULL;
    if (!path) return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? ferry__sysconf_default(out) : -errno;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int e = errno;
        close(fd);
        return -e;
    }
    ferry__sysconf *c;
    int rc = ferry__sysconf_default(&c);
    parse_ctx x = {.path = path, .err = err, .errlen = errlen};
    char line[LINE_LEN + 1];
    while (rc == 0) {
        x.line++;
        rc = read_line(f, line, &x);
        if (rc <= 0) break;
        rc = parse_line(&x, c, line);
    }
    fclose(f);
    if (rc < 0) {
        ferry__sysconf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int rule_has(const own_rule *r, const ferry__ident *who)
{
    for (size_t i = 0; i < r->nwho; i++) {
        const who_spec *w = &r->who[i];
        if (w->kind == WHO_ANY || (w->kind == WHO_UID && who->uid == (uid_t)w->id) ||
            (w->kind == WHO_GID && ferry__ident_in_group(who, (gid_t)w->id)))
            return 1;
    }
    return 0;
}

/* The most specific rules of set matching name: 1 if they grant who, 0 if not, -1 if no
 * rule matches. */
static int rules_decide(const rule_set *set, const char *name, const ferry__ident *who)
{
    size_t best = 0; /* the rank of the most specific matching rule so far */
    int ok = 0;
    for (size_t i = 0; i < set->nrules; i++) {
        const own_rule *r = &set->rules[i];
        if (r->rank < best || !ferry__pattern_match(r->pat, name)) continue;
        if (r->rank > best) best = r->rank, ok = 0;
        if (!ok) ok = rule_has(r, who); /* equal ranks: the same pattern, lines add up */
    }
    return best == 0 ? -1 : ok;
}

int ferry__sysconf_may_own(const ferry__sysconf *c, const char *name, const ferry__ident *who)
{
    if (!who || ferry__name_valid(name) != 0) return 0;
    if (who->uid == 0 || !c) return 1;
    return rules_decide(&c->own, name, who) != 0; /* no rule: anyone */
}

int ferry__sysconf_may_signal(const ferry__sysconf *c, const char *name, const ferry__ident *who)
{
    if (!who || ferry__name_valid(name) != 0) return 0;
    if (who->uid == 0) return 1;
    return c && rules_decide(&c->sig, name, who) == 1; /* no rule: nobody */
}

void ferry__sysconf_quota(const ferry__sysconf *c, uid_t uid, ferry__quota *out)
{
    uint64_t v[Q_N];
    if (!out) return;
    if (uid == 0) {
        for (int k = 0; k < Q_N; k++) v[k] = UINT64_MAX;
    } else {
        memcpy(v, c ? c->general : kind_defaults, sizeof v);
        for (size_t i = 0; c && i < c->nquotas; i++) {
            if (c->quotas[i].uid != uid) continue;
            for (int k = 0; k < Q_N; k++)
                if (c->quotas[i].set & (1u << k)) v[k] = c->quotas[i].v[k];
        }
    }
    out->names = v[Q_NAMES];
    out->conns = v[Q_CONNS];
    out->pending = v[Q_PENDING];
    out->fds = v[Q_FDS];
    out->bytes = v[Q_BYTES];
}
