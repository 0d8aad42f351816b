// SPDX-License-Identifier: MIT
/*
 * test_broker_authz — who may do what with a name, with a real ferryd and children that
 * drop to throwaway uids: the owner (60001), group members of the name's group 60100 (by
 * a supplementary group: 60002, by the primary group: 60005), another uid (60003) and
 * root. Columns: register (the system policy's `own` rules), takeover (FERRY_TAKEOVER),
 * lookup, list, watch and connect, over several modes and allow lists. A name the caller
 * may not see is -ENOENT everywhere (the same as a missing name); one it may see but not
 * connect to is -EACCES. Raw packets that forge fields or use ferryd's own opcodes are
 * dropped or answered by the rules, and identity stays the kernel's.
 * Needs root (to become other uids); otherwise prints SKIP and passes.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <signal.h>

static const ident OWNER = {60001, 60001, 0, {0}};
static const ident MEMB_S = {60002, 60002, 1, {60100}}; /* supplementary group */
static const ident MEMB_P = {60005, 60100, 0, {0}};     /* primary group */
static const ident OTHER = {60003, 60003, 0, {0}};
#define GRP 60100

enum { NONE, SEE, CONN }; /* what a caller may do with a name */

typedef struct row {
    const char *name;
    const ident *owner;
    unsigned mode;
    gid_t gid; /* the policy's gid ((gid_t)-1: the owner's) */
    uid_t allow_uid;
    gid_t allow_gid; /* 0: none */
    int exp[5];      /* OWNER, MEMB_S, MEMB_P, OTHER, ROOT */
    pid_t pid;       /* its server */
} row;

static const ident *const WHO[5] = {&OWNER, &MEMB_S, &MEMB_P, &OTHER, &ROOT};
static const char *const WHO_NAME[5] = {"owner", "member(supp)", "member(primary)", "other",
                                        "root"};

static row rows[] = {
    {"org.sec.m0600", &OWNER, 0600, GRP, 0, 0, {CONN, NONE, NONE, NONE, CONN}, 0},
    {"org.sec.m0640", &OWNER, 0640, GRP, 0, 0, {CONN, SEE, SEE, NONE, CONN}, 0},
    {"org.sec.m0660", &OWNER, 0660, GRP, 0, 0, {CONN, CONN, CONN, NONE, CONN}, 0},
    /* one class counts: members get the group's nothing although others may see */
    {"org.sec.m0604", &OWNER, 0604, GRP, 0, 0, {CONN, NONE, NONE, SEE, CONN}, 0},
    /* ... and the owner gets the owner's nothing */
    {"org.sec.m0066", &OWNER, 0066, GRP, 0, 0, {NONE, CONN, CONN, CONN, CONN}, 0},
    /* connect implies see */
    {"org.sec.m0620", &OWNER, 0620, GRP, 0, 0, {CONN, CONN, CONN, NONE, CONN}, 0},
    {"org.sec.m0602", &OWNER, 0602, GRP, 0, 0, {CONN, NONE, NONE, CONN, CONN}, 0},
    {"org.sec.m0400", &OWNER, 0400, GRP, 0, 0, {SEE, NONE, NONE, NONE, CONN}, 0},
    /* allow lists grant both, whatever the mode */
    {"org.sec.allowu", &OWNER, 0600, GRP, 60003, 0, {CONN, NONE, NONE, CONN, CONN}, 0},
    {"org.sec.allowg", &OWNER, 0600, GRP, 0, GRP, {CONN, CONN, CONN, NONE, CONN}, 0},
    {"org.sec.allowg0", &OWNER, 0000, GRP, 0, GRP, {NONE, CONN, CONN, NONE, CONN}, 0},
    /* gid -1: the owner's primary group (60001), which no member has */
    {"org.sec.gdef", &OWNER, 0640, (gid_t)-1, 0, 0, {CONN, NONE, NONE, NONE, CONN}, 0},
    /* a root-owned name: everyone else is "other" */
    {"org.sec.root", &ROOT, 0644, (gid_t)-1, 0, 0, {SEE, SEE, SEE, SEE, CONN}, 0},
};
#define NROWS (sizeof rows / sizeof rows[0])

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Run as WHO[*(int *)arg]: every name behaves as its row says. */
static void check_matrix(void *arg)
{
    int k = *(int *)arg;
    const char *visible[NROWS];
    size_t nvis = 0;
    int shm_done = 0;
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        int e = r->exp[k];
        ferry_name_info in;
        int rc = ferry_lookup(r->name, &in, 5 * SEC);
        if (rc != (e == NONE ? -ENOENT : 0))
            fprintf(stderr, "%s: lookup %s: %d\n", WHO_NAME[k], r->name, rc);
        CHECK_EQ(rc, e == NONE ? -ENOENT : 0);
        if (e != NONE) {
            visible[nvis++] = r->name;
            CHECK(strcmp(in.name, r->name) == 0);
            CHECK_EQ(in.uid, r->owner->uid);
            CHECK_EQ(in.pid, r->pid);
            CHECK_EQ(in.mode, r->mode);
            CHECK_EQ(in.gid, r->gid == (gid_t)-1 ? r->owner->gid : r->gid);
        }
        /* Only the kind of the first connect per caller is shm; the rest unix. */
        int kind = e == CONN && !shm_done ? FERRY_KIND_SHM : FERRY_KIND_UNIX;
        rc = connect_check(r->name, kind, r->owner->uid, r->pid);
        int want = e == NONE ? -ENOENT : e == SEE ? -EACCES : 0;
        if (rc != want) fprintf(stderr, "%s: connect %s: %d\n", WHO_NAME[k], r->name, rc);
        CHECK_EQ(rc, want);
        if (e == CONN) shm_done = 1;
    }
    /* Invisible is the same as missing. */
    ferry_name_info in;
    ferry_chan *ch;
    CHECK_EQ(ferry_lookup("org.sec.missing", &in, 5 * SEC), -ENOENT);
    CHECK_EQ(ferry_connect("org.sec.missing", FERRY_KIND_UNIX, NULL, &ch, 5 * SEC), -ENOENT);

    /* list: exactly the visible names, in order, also page by page. */
    qsort(visible, nvis, sizeof visible[0], cmp_str);
    ferry_name_info all[64];
    ssize_t n = ferry_list(NULL, all, 64, 5 * SEC);
    if (n != (ssize_t)nvis) fprintf(stderr, "%s: list: %zd\n", WHO_NAME[k], n);
    CHECK_EQ(n, (ssize_t)nvis);
    for (size_t i = 0; i < nvis; i++) CHECK(strcmp(all[i].name, visible[i]) == 0);
    char after[256] = "";
    for (size_t i = 0; i < nvis; i++) {
        CHECK_EQ(ferry_list(after, all, 1, 5 * SEC), 1);
        CHECK(strcmp(all[0].name, visible[i]) == 0);
        snprintf(after, sizeof after, "%s", all[0].name);
    }
    CHECK_EQ(ferry_list(after, all, 1, 5 * SEC), 0);
}

static void test_matrix(void)
{
    for (size_t i = 0; i < NROWS; i++) {
        row *r = &rows[i];
        ferry_policy p;
        ferry_policy_init(&p);
        p.mode = r->mode;
        p.gid = r->gid;
        if (r->allow_uid) p.allow_uids[p.n_uids++] = r->allow_uid;
        if (r->allow_gid) p.allow_gids[p.n_gids++] = r->allow_gid;
        r->pid = start_server(r->owner, r->name, &p, SRV_SERVE);
    }
    for (int k = 0; k < 5; k++) run_as(WHO[k], check_matrix, &k);
    for (size_t i = 0; i < NROWS; i++) kill_wait(rows[i].pid);
}

/* ------------------------------------------------------------------ register */

/* Register name as id with policy pol (NULL: defaults) and give it up at once. */
static int try_register(const ident *id, const char *name, const ferry_policy *pol)
{
    int rc;
    pid_t pid = spawn_server(id, name, pol, SRV_SINK, &rc);
    if (rc == 0)
        kill_wait(pid);
    else
        wait_ok(pid);
    return rc;
}

static void test_register(void)
{
    /* own org.sec.* 60001 */
    CHECK_EQ(try_register(&OWNER, "org.sec.a", NULL), 0);
    CHECK_EQ(try_register(&OTHER, "org.sec.a", NULL), -EACCES);
    CHECK_EQ(try_register(&MEMB_S, "org.sec.a", NULL), -EACCES);
    CHECK_EQ(try_register(&MEMB_P, "org.sec.a.b.c", NULL), -EACCES);
    CHECK_EQ(try_register(&ROOT, "org.sec.a", NULL), 0);
    /* own org.sec.special 60003: the exact name beats the prefix */
    CHECK_EQ(try_register(&OTHER, "org.sec.special", NULL), 0);
    CHECK_EQ(try_register(&OWNER, "org.sec.special", NULL), -EACCES);
    /* own org.sec.open.* *: a longer prefix beats a shorter one */
    CHECK_EQ(try_register(&OTHER, "org.sec.open.x", NULL), 0);
    CHECK_EQ(try_register(&MEMB_S, "org.sec.open.x", NULL), 0);
    /* own org.grp.* @60100: by supplementary or primary group */
    CHECK_EQ(try_register(&MEMB_S, "org.grp.a", NULL), 0);
    CHECK_EQ(try_register(&MEMB_P, "org.grp.a", NULL), 0);
    CHECK_EQ(try_register(&OTHER, "org.grp.a", NULL), -EACCES);
    CHECK_EQ(try_register(&OWNER, "org.grp.a", NULL), -EACCES);
    CHECK_EQ(try_register(&ROOT, "org.grp.a", NULL), 0);
    /* no rule matches (org.sec.* does not cover org.sec itself): anyone */
    CHECK_EQ(try_register(&OTHER, "org.sec", NULL), 0);
    CHECK_EQ(try_register(&OTHER, "net.free.a", NULL), 0);
    /* the takeover flag does not get around the system policy */
    ferry_policy tk;
    ferry_policy_init(&tk);
    tk.flags = FERRY_TAKEOVER;
    pid_t s = start_server(&OWNER, "org.sec.tk", &tk, SRV_SINK);
    CHECK_EQ(try_register(&OTHER, "org.sec.tk", &tk), -EACCES);
    kill_wait(s);
    /* nothing was left behind */
    ferry_name_info all[8];
    CHECK_EQ(ferry_list(NULL, all, 8, 5 * SEC), 0);
}

/* ------------------------------------------------------------------ takeover */

static void expect_owner(const char *name, uid_t uid, pid_t pid)
{
    ferry_name_info in;
    CHECK_EQ(ferry_lookup(name, &in, 5 * SEC), 0);
    CHECK_EQ(in.uid, uid);
    CHECK_EQ(in.pid, pid);
}

typedef struct conn_arg {
    const char *name;
    uid_t uid;
    pid_t pid;
} conn_arg;

static void connect_as(void *arg)
{
    conn_arg *a = arg;
    CHECK_EQ(connect_check(a->name, FERRY_KIND_UNIX, a->uid, a->pid), 0);
}

static void test_takeover(void)
{
    ferry_policy tk, plain;
    ferry_policy_init(&tk);
    tk.mode = 0666;
    tk.flags = FERRY_TAKEOVER;
    ferry_policy_init(&plain);
    plain.mode = 0666;
    const char *nm = "org.sec.open.tk";

    /* With FERRY_TAKEOVER: other uids still get -EEXIST (whatever flags they ask for)... */
    pid_t a = start_server(&OWNER, nm, &tk, SRV_LOST);
    CHECK_EQ(try_register(&OTHER, nm, &tk), -EEXIST);
    CHECK_EQ(try_register(&MEMB_S, nm, &tk), -EEXIST);
    CHECK_EQ(try_register(&OTHER, nm, &plain), -EEXIST);
    expect_owner(nm, OWNER.uid, a);
    /* ... the same uid takes it over: the old owner's accept says -ECONNABORTED ... */
    pid_t b2 = start_server(&OWNER, nm, &tk, SRV_SERVE);
    wait_ok(a);                      /* it saw -ECONNABORTED, twice, and closed its listener */
    expect_owner(nm, OWNER.uid, b2); /* the old listener's close released nothing */
    conn_arg ca = {nm, OWNER.uid, b2};
    run_as(&OTHER, connect_as, &ca); /* introductions go to the new owner */
    /* ... and so does root (here without the flag: now nobody may take it back). */
    pid_t c = start_server(&ROOT, nm, &plain, SRV_SERVE);
    wait_ok(b2); /* SRV_SERVE returns on -ECONNABORTED */
    expect_owner(nm, 0, c);
    ca = (conn_arg){nm, 0, c};
    run_as(&OTHER, connect_as, &ca);
    CHECK_EQ(try_register(&OWNER, nm, &tk), -EEXIST);
    CHECK_EQ(try_register(&ROOT, nm, &tk), -EEXIST);
    expect_owner(nm, 0, c);
    kill_wait(c);

    /* Without FERRY_TAKEOVER: -EEXIST for everyone, the same uid and root too. */
    const char *nm2 = "org.sec.open.notk";
    pid_t d = start_server(&OWNER, nm2, &plain, SRV_SERVE);
    CHECK_EQ(try_register(&OWNER, nm2, &tk), -EEXIST);
    CHECK_EQ(try_register(&ROOT, nm2, &tk), -EEXIST);
    CHECK_EQ(try_register(&OTHER, nm2, &tk), -EEXIST);
    expect_owner(nm2, OWNER.uid, d);
    /* Once its owner is gone, the name is free again. */
    kill_wait(d);
    CHECK_EQ(try_register(&OTHER, nm2, NULL), 0);

    /* A root-owned name with the flag: another uid may not take it over. */
    pid_t e = start_server(&ROOT, "org.sec.open.rt", &tk, SRV_SINK);
    CHECK_EQ(try_register(&OWNER, "org.sec.open.rt", &tk), -EEXIST);
    expect_owner("org.sec.open.rt", 0, e);
    kill_wait(e);
}

/* ------------------------------------------------------------------ watch */

typedef struct watch_arg {
    int ready;       /* write end: the watch is open */
    const char *see; /* the one name it must hear of (NULL: none) */
} watch_arg;

static void watch_as(void *arg)
{
    watch_arg *a = arg;
    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.sec.*", &w, 5 * SEC), 0);
    CHECK(write(a->ready, "r", 1) == 1);
    close(a->ready);
    ferry_watch_event ev;
    if (a->see) {
        CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
        CHECK_EQ(ev.kind, FERRY_EV_OWNED);
        CHECK(strcmp(ev.info.name, a->see) == 0);
        CHECK_EQ(ev.info.uid, OWNER.uid);
        CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
        CHECK_EQ(ev.kind, FERRY_EV_DIED);
        CHECK(strcmp(ev.info.name, a->see) == 0);
    }
    /* Nothing about the names it may not see. */
    CHECK_EQ(ferry_watch_next(w, &ev, 300 * MS), -ETIMEDOUT);
    ferry_watch_close(w);
}

static void test_watch(void)
{
    const ident *who[2] = {&OTHER, &MEMB_S};
    const char *see[2] = {"org.sec.w0604", NULL};
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        int p[2];
        CHECK(pipe(p) == 0);
        watch_arg a = {p[1], see[i]};
        pids[i] = spawn_as(who[i], watch_as, &a);
        close(p[1]);
        char c;
        CHECK(read(p[0], &c, 1) == 1);
        close(p[0]);
    }
    ferry_policy p;
    ferry_policy_init(&p);
    p.gid = GRP;
    pid_t s1 = start_server(&OWNER, "org.sec.w0600", &p, SRV_SINK);
    p.mode = 0604;
    pid_t s2 = start_server(&OWNER, "org.sec.w0604", &p, SRV_SINK);
    kill_wait(s1);
    kill_wait(s2);
    for (int i = 0; i < 2; i++) wait_ok(pids[i]);
}

/* ------------------------------------------------------------------ forged packets */

static test_broker *B;

typedef struct forge_arg {
    int ready, done; /* pipes to and from the parent */
} forge_arg;

static void put_str_raw(ferry__bw *w, const char *s, size_t n)
{
    ferry__bw_u32(w, 0); /* make room, then overwrite: u16 length and the bytes */
    w->len -= 4;
    uint8_t l[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
    memcpy(w->p + w->len, l, 2);
    memcpy(w->p + w->len + 2, s, n);
    w->len += 2 + n;
}

static void forge_as_other(void *arg)
{
    forge_arg *a = arg;
    uint8_t req[512], buf[FERRY__BMSG_MAX];
    ferry__bw w;
    ferry__br r;
    ferry_policy pol;
    ferry_policy_init(&pol);

    /* REGISTER a name the system policy keeps from us: answered -EACCES, conn kept. */
    int s = raw_dial(B);
    w = (ferry__bw){.p = req, .cap = sizeof req};
    ferry__bw_register(&w, "org.sec.forged", &pol);
    CHECK_EQ(raw_call(s, FERRY__OP_REGISTER, &w, buf, &r, NULL), -EACCES);
    /* The same with a forged field appended ("uid 60001"): dropped. */
    ferry__bw_u32(&w, OWNER.uid);
    CHECK_EQ(ferry__bsend(s, FERRY__OP_REGISTER, 7, w.p, w.len, -1), 0);
    expect_dropped(s, 2000);
    close(s);
    /* An allow list longer than the maximum: dropped. */
    s = raw_dial(B);
    w = (ferry__bw){.p = req, .cap = sizeof req};
    put_str_raw(&w, "net.free.big", 12);
    ferry__bw_u32(&w, 0666);
    ferry__bw_u32(&w, (uint32_t)-1);
    ferry__bw_u32(&w, 0);
    ferry__bw_u32(&w, FERRY_POLICY_MAX_IDS + 1);
    for (int i = 0; i <= FERRY_POLICY_MAX_IDS; i++) ferry__bw_u32(&w, 60003);
    ferry__bw_u32(&w, 0);
    CHECK_EQ(ferry__bsend(s, FERRY__OP_REGISTER, 7, w.p, w.len, -1), 0);
    expect_dropped(s, 2000);
    close(s);

    /* CONNECT to a name we may not see: -ENOENT, no descriptor. */
    s = raw_dial(B);
    w = (ferry__bw){.p = req, .cap = sizeof req};
    ferry__bw_str(&w, "org.sec.victim");
    ferry__bw_u32(&w, FERRY_KIND_UNIX);
    CHECK_EQ(raw_call(s, FERRY__OP_CONNECT, &w, buf, &r, NULL), -ENOENT);
    /* ... and with a forged identity appended (uid 60001, gid 60100): dropped. */
    ferry__bw_cred(&w, &(ferry_cred){.uid = OWNER.uid, .gid = GRP, .pid = 1});
    CHECK_EQ(ferry__bsend(s, FERRY__OP_CONNECT, 8, w.p, w.len, -1), 0);
    expect_dropped(s, 2000);
    close(s);

    /* LOOKUP: -ENOENT by the rules. */
    s = raw_dial(B);
    w = (ferry__bw){.p = req, .cap = sizeof req};
    ferry__bw_str(&w, "org.sec.victim");
    CHECK_EQ(raw_call(s, FERRY__OP_LOOKUP, &w, buf, &r, NULL), -ENOENT);
    close(s);

    /* ferryd's own opcodes from a client: INTRO (with a descriptor), REPLY, LOST, EVENT,
     * and ACCEPTED of an introduction never given: each dropped. The descriptor sent with
     * the INTRO is closed by ferryd. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    s = raw_dial(B);
    w = (ferry__bw){.p = req, .cap = sizeof req};
    ferry__bw_u64(&w, 1);
    ferry__bw_u32(&w, FERRY_KIND_UNIX);
    ferry__bw_cred(&w, &(ferry_cred){.uid = 0, .gid = 0, .pid = 1});
    CHECK_EQ(ferry__bsend(s, FERRY__OP_INTRO, 0, w.p, w.len, sv[1]), 0);
    close(sv[1]);
    expect_dropped(s, 2000);
    close(s);
    struct pollfd pf = {.fd = sv[0], .events = POLLIN};
    CHECK_EQ(poll(&pf, 1, 2000), 1);
    char c;
    CHECK_EQ(recv(sv[0], &c, 1, MSG_DONTWAIT), 0); /* every copy of sv[1] is closed */
    close(sv[0]);

    const int64_t ops[] = {FERRY__OP_REPLY, FERRY__OP_LOST, FERRY__OP_EVENT, FERRY__OP_ACCEPTED};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        s = raw_dial(B);
        w = (ferry__bw){.p = req, .cap = sizeof req};
        if (ops[i] == FERRY__OP_ACCEPTED) {
            ferry__bw_u64(&w, 1);
        } else if (ops[i] == FERRY__OP_LOST) {
            ferry__bw_str(&w, "org.sec.victim");
        } else {
            ferry__bw_u32(&w, 0);
            if (ops[i] == FERRY__OP_EVENT)
                ferry__bw_info(&w, &(ferry_name_info){.name = "org.sec.victim"});
        }
        CHECK_EQ(ferry__bsend(s, ops[i], 0, w.p, w.len, -1), 0);
        expect_dropped(s, 2000);
        close(s);
    }

    /* A name of our own, with a policy naming root's group: it is ours, by the kernel. */
    s = raw_dial(B);
    pol.mode = 0644;
    pol.gid = 0;
    w = (ferry__bw){.p = req, .cap = sizeof req};
    ferry__bw_register(&w, "net.free.forged", &pol);
    CHECK_EQ(raw_call(s, FERRY__OP_REGISTER, &w, buf, &r, NULL), 0);
    CHECK_EQ(ferry__br_end(&r), 0);
    CHECK(write(a->ready, "r", 1) == 1);
    CHECK(read(a->done, &c, 1) == 1);
    close(s);
}

/* Another connection, even root's, may not unregister a name it does not own. */
static void unregister_foreign(void *arg)
{
    (void)arg;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, "net.free.forged");
    int s = raw_dial(B);
    CHECK_EQ(raw_call(s, FERRY__OP_UNREGISTER, &w, buf, &r, NULL), -ENOENT);
    close(s);
}

static void test_forged(test_broker *b)
{
    B = b;
    ferry_policy p;
    ferry_policy_init(&p);
    pid_t victim = start_server(&OWNER, "org.sec.victim", &p, SRV_SERVE);
    int ready[2], done[2];
    CHECK(pipe(ready) == 0 && pipe(done) == 0);
    forge_arg a = {ready[1], done[0]};
    pid_t f = spawn_as(&OTHER, forge_as_other, &a);
    close(ready[1]);
    close(done[0]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);

    /* The name is the raw client's, as the kernel knows it. */
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("net.free.forged", &in, 5 * SEC), 0);
    CHECK_EQ(in.uid, OTHER.uid);
    CHECK_EQ(in.pid, f);
    CHECK_EQ(in.gid, 0);
    CHECK_EQ(in.mode, 0644);
    run_as(&OWNER, unregister_foreign, NULL);
    run_as(&ROOT, unregister_foreign, NULL);
    CHECK_EQ(ferry_lookup("net.free.forged", &in, 5 * SEC), 0);
    CHECK_EQ(in.pid, f);
    /* No forged request introduced anyone to the victim; it still works. */
    CHECK_EQ(ferry_lookup("org.sec.victim", &in, 5 * SEC), 0);
    CHECK_EQ(in.connects, 0);
    CHECK_EQ(in.uid, OWNER.uid);
    CHECK_EQ(in.pid, victim);
    CHECK_EQ(connect_check("org.sec.victim", FERRY_KIND_UNIX, OWNER.uid, victim), 0);

    CHECK(write(done[1], "d", 1) == 1);
    close(done[1]);
    close(ready[0]);
    wait_ok(f);
    int rc = 0;
    for (int i = 0; i < 200 && (rc = ferry_lookup("net.free.forged", &in, SEC)) == 0; i++)
        sleep_ms(5);
    CHECK_EQ(rc, -ENOENT);
    kill_wait(victim);
}

int main(void)
{
    require_root();
    test_deadline(90);
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_init(&b);
    write_file(b.policy, "# the test's system policy\n"
                         "own org.sec.* 60001\n"
                         "own org.sec.special 60003\n"
                         "own org.sec.open.* *\n"
                         "own org.grp.* @60100\n");
    broker_run(&b, NULL);
    int fds = fd_count();

    test_matrix();
    test_register();
    test_takeover();
    test_watch();
    test_forged(&b);

    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
