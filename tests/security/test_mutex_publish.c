// SPDX-License-Identifier: MIT
/*
 * test_mutex_publish — issue 11 finding 2's rule for the plain ferry_mutex: a glibc robust
 * mutex in shared memory lets its sharers make each other write through pointers they
 * store in it, so ferryd hands a plain mutex only to the publisher's uid unless the
 * publisher sets FERRY_POLICY_TRUSTED_SHARERS.
 *
 * With a real ferryd: a plain mutex published 0600 or 0644 (others see it, cannot open it)
 * or with only the publisher's own uid allowed is fine; published 0666, 0660, 0606, to an
 * allowed other uid or group, without the flag: -EPERM (by root and by another uid). With
 * the flag: published, and another uid (60031) opens and uses it. A fair mutex published
 * 0666 is fine without the flag. A publisher that turns its fair mutex plain after
 * publishing it (it writes the flags word) gets it refused at open: -EPERM for another
 * uid, while its own uid gets past ferryd and is refused by adopt (-EBADMSG: no plain mutex).
 * A publisher that turns its fair mutex into a working plain one right after ferryd
 * answered an OPEN (deterministically: the opener runs ferry_mutex_open's two steps,
 * ferry__obj_open_trust then ferry__mutex_adopt_trust, and has the publisher flip the
 * object in between): another uid, and root, get -EPERM from the library (ferryd's reply
 * said "not trusted"); the publisher's own uid, and another uid under
 * FERRY_POLICY_TRUSTED_SHARERS, are told "trusted" and get a plain mutex that works, by
 * the two steps and by ferry_mutex_open itself.
 * Needs root (to become other uids); otherwise prints SKIP and passes.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "sync/obj.h"

#include <signal.h>
#include <sys/mman.h>

static const ident OPENER = {60031, 60031, 0, {0}};
static const ident PUBLISHER = {60032, 60032, 0, {0}};

static int publish(ferry_mutex *m, const char *name, unsigned mode, uint32_t flags, uid_t allow_uid,
                   gid_t allow_gid, ferry_pub **p)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = mode;
    pol.flags = flags;
    if (allow_uid != (uid_t)-1) pol.allow_uids[pol.n_uids++] = allow_uid;
    if (allow_gid != (gid_t)-1) pol.allow_gids[pol.n_gids++] = allow_gid;
    return ferry_publish(name, ferry_mutex_fd(m), FERRY_OBJ_MUTEX, &pol, p, 5 * SEC);
}

static void gone(const char *name)
{
    ferry_name_info in;
    for (int i = 0; i < 500 && ferry_lookup(name, &in, 5 * SEC) == 0; i++) sleep_ms(2);
    CHECK_EQ(ferry_lookup(name, &in, 5 * SEC), -ENOENT);
}

/* The plain-mutex rule, for a publisher of uid `me`. */
static void plain_rules(uid_t me)
{
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(0, &m), 0);
    ferry_pub *p;
    const unsigned ok_modes[] = {0600, 0644, 0640, 0604, 0700};
    for (size_t i = 0; i < sizeof ok_modes / sizeof ok_modes[0]; i++) {
        CHECK_EQ(publish(m, "org.mx.plain", ok_modes[i], 0, (uid_t)-1, (gid_t)-1, &p), 0);
        ferry_pub_close(p);
        gone("org.mx.plain");
    }
    CHECK_EQ(publish(m, "org.mx.plain", 0600, 0, me, (gid_t)-1, &p), 0); /* itself only */
    ferry_pub_close(p);
    gone("org.mx.plain");
    const unsigned bad_modes[] = {0666, 0660, 0606, 0620, 0602, 0622};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        int rc = publish(m, "org.mx.plain", bad_modes[i], 0, (uid_t)-1, (gid_t)-1, &p);
        if (rc != -EPERM) fprintf(stderr, "mode %o: %d\n", bad_modes[i], rc);
        CHECK_EQ(rc, -EPERM);
    }
    CHECK_EQ(publish(m, "org.mx.plain", 0600, 0, OPENER.uid, (gid_t)-1, &p), -EPERM);
    CHECK_EQ(publish(m, "org.mx.plain", 0600, 0, (uid_t)-1, 60100, &p), -EPERM);
    CHECK_EQ(publish(m, "org.mx.plain", 0600, FERRY_TAKEOVER, OPENER.uid, (gid_t)-1, &p), -EPERM);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.mx.plain", &in, 5 * SEC), -ENOENT); /* nothing was named */
    ferry_mutex_close(m);
}

static void publisher_rules(void *arg)
{
    (void)arg;
    plain_rules(getuid());
}

static void open_and_lock(void *arg)
{
    const char *name = arg;
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_open(name, &m, 5 * SEC), 0);
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
}

static void open_refused(void *arg)
{
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_open(arg, &m, 5 * SEC), -EPERM);
}

/* The publisher's own uid opening its flipped mutex: ferryd serves it (no -EPERM), and
 * adopt refuses what is no plain mutex (a fair mutex's layout, whose pthread kind does
 * not match). */
static void open_flipped_own(void *arg)
{
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_open(arg, &m, 5 * SEC), -EBADMSG);
}

/* A publisher (60032) that publishes a fair mutex 0666, then turns it plain by writing
 * its flags word: another uid's open is refused, its own uid's is not. */
static void flipper(void *arg)
{
    int *go = arg; /* go[0]: read end, "opened" from the parent; go[1]: write end, "ready" */
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(FERRY_MUTEX_FAIR, &m), 0);
    ferry_pub *p;
    CHECK_EQ(publish(m, "org.mx.flip", 0666, 0, (uid_t)-1, (gid_t)-1, &p), 0);
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_mutex_fd(m), 0);
    CHECK(map != MAP_FAILED);
    uint32_t plain = 0;
    memcpy((char *)map + FERRY__MUTEX_FLAGS_OFF, &plain, sizeof plain);
    munmap(map, 4096);
    CHECK(write(go[1], "r", 1) == 1);
    char c;
    CHECK(read(go[0], &c, 1) == 1); /* the parent is done */
    ferry_pub_close(p);
    ferry_mutex_close(m);
}

/* ------------------------------------------------ flipped after ferryd answered */

#define PAGE 4096
static int cmd[2], ack[2]; /* opener -> racing publisher, and its answers */

/* Ask the racing publisher to make its mutex plain ('p') or fair again ('f'). */
static void flip(char c)
{
    char a;
    CHECK(write(cmd[1], &c, 1) == 1);
    CHECK(read(ack[0], &a, 1) == 1 && a == c);
}

/* The racing publisher (60032): one fair mutex published 0666 as org.mx.race and again,
 * with FERRY_POLICY_TRUSTED_SHARERS, as org.mx.race.t. On 'p' it turns it into a working
 * plain mutex (it copies over it, flags word included, the body of a plain mutex of its
 * own: what a hostile publisher can do), on 'f' back into its fair self; it answers each
 * with the same byte; 'd' ends. */
static void race_publisher(void *arg)
{
    (void)arg;
    ferry_mutex *m, *pm;
    CHECK_EQ(ferry_mutex_create(FERRY_MUTEX_FAIR, &m), 0);
    CHECK_EQ(ferry_mutex_create(0, &pm), 0);
    ferry_pub *p, *pt;
    CHECK_EQ(publish(m, "org.mx.race", 0666, 0, (uid_t)-1, (gid_t)-1, &p), 0);
    CHECK_EQ(
        publish(m, "org.mx.race.t", 0666, FERRY_POLICY_TRUSTED_SHARERS, (uid_t)-1, (gid_t)-1, &pt),
        0);
    uint8_t *obj = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_mutex_fd(m), 0);
    uint8_t *plain = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, ferry_mutex_fd(pm), 0);
    CHECK(obj != MAP_FAILED && plain != MAP_FAILED);
    static uint8_t fair[PAGE];
    memcpy(fair, obj, PAGE);
    CHECK(write(ack[1], "r", 1) == 1);
    for (;;) {
        char c;
        CHECK(read(cmd[0], &c, 1) == 1);
        if (c == 'd') break;
        CHECK(c == 'p' || c == 'f');
        const uint8_t *src = c == 'p' ? plain : fair;
        memcpy(obj + FERRY__MUTEX_FLAGS_OFF, src + FERRY__MUTEX_FLAGS_OFF,
               PAGE - FERRY__MUTEX_FLAGS_OFF);
        CHECK(write(ack[1], &c, 1) == 1);
    }
    munmap(obj, PAGE);
    munmap((void *)plain, PAGE);
    ferry_pub_close(p);
    ferry_pub_close(pt);
    ferry_mutex_close(pm);
    ferry_mutex_close(m);
}

typedef struct race {
    const char *name;
    int trusted; /* what ferryd must say */
    int want;    /* what adopt must say once the mutex is plain */
} race;

/* ferry_mutex_open's two steps with the flip in between: ferryd sees a fair mutex and
 * hands it over; by the time the library reads the mode it is plain. */
static void open_then_flip(void *arg)
{
    const race *r = arg;
    int fd = -1, trusted = -1;
    CHECK_EQ(ferry__obj_open_trust(r->name, FERRY_OBJ_MUTEX, &fd, &trusted, 5 * SEC), 0);
    CHECK(fd >= 0);
    CHECK_EQ(trusted, r->trusted);
    flip('p');
    ferry_mutex *m = NULL;
    CHECK_EQ(ferry__mutex_adopt_trust(fd, trusted, &m), r->want);
    if (r->want == 0) { /* a trusted opener's plain mutex works */
        CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        ferry_mutex_close(m);
        /* and ferry_mutex_open itself (ferryd lets it pass: trusted) says the same */
        open_and_lock((void *)r->name);
    }
    flip('f');
}

int main(void)
{
    require_root();
    test_deadline(60);
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();

    plain_rules(0);
    run_as(&PUBLISHER, publisher_rules, NULL);

    /* With the flag: published for everyone, and another uid uses it. */
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(0, &m), 0);
    ferry_pub *p;
    CHECK_EQ(
        publish(m, "org.mx.trusted", 0666, FERRY_POLICY_TRUSTED_SHARERS, (uid_t)-1, (gid_t)-1, &p),
        0);
    run_as(&OPENER, open_and_lock, "org.mx.trusted");
    ferry_pub_close(p);
    gone("org.mx.trusted");
    /* Published 0600 without it: root's own uid opens it; another uid may not even see it. */
    CHECK_EQ(publish(m, "org.mx.own", 0600, 0, (uid_t)-1, (gid_t)-1, &p), 0);
    open_and_lock("org.mx.own");
    ferry_pub_close(p);
    gone("org.mx.own");
    ferry_mutex_close(m);

    /* A fair mutex needs no flag. */
    CHECK_EQ(ferry_mutex_create(FERRY_MUTEX_FAIR, &m), 0);
    CHECK_EQ(publish(m, "org.mx.fair", 0666, 0, (uid_t)-1, (gid_t)-1, &p), 0);
    run_as(&OPENER, open_and_lock, "org.mx.fair");
    ferry_pub_close(p);
    gone("org.mx.fair");
    ferry_mutex_close(m);

    /* Turned plain after publishing: refused at open to another uid (root included);
     * the publisher's own uid gets past ferryd and is stopped by adopt's check. */
    int to_child[2], from_child[2];
    CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
    int go[2] = {to_child[0], from_child[1]};
    pid_t pub = spawn_as(&PUBLISHER, flipper, go);
    char c;
    CHECK(read(from_child[0], &c, 1) == 1);
    run_as(&OPENER, open_refused, "org.mx.flip");
    open_refused("org.mx.flip");
    run_as(&PUBLISHER, open_flipped_own, "org.mx.flip");
    CHECK(write(to_child[1], "d", 1) == 1);
    wait_ok(pub);
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
    gone("org.mx.flip");

    /* Turned plain right after ferryd answered: only a trusted opener gets it. */
    CHECK(pipe(cmd) == 0 && pipe(ack) == 0);
    pub = spawn_as(&PUBLISHER, race_publisher, NULL);
    CHECK(read(ack[0], &c, 1) == 1);
    run_as(&OPENER, open_then_flip, &(race){"org.mx.race", 0, -EPERM});
    open_then_flip(&(race){"org.mx.race", 0, -EPERM}); /* root is another uid too */
    run_as(&PUBLISHER, open_then_flip, &(race){"org.mx.race", 1, 0});
    run_as(&OPENER, open_then_flip, &(race){"org.mx.race.t", 1, 0});
    open_then_flip(&(race){"org.mx.race.t", 1, 0});
    CHECK(write(cmd[1], "d", 1) == 1);
    wait_ok(pub);
    for (int i = 0; i < 2; i++) {
        close(cmd[i]);
        close(ack[i]);
    }
    gone("org.mx.race");
    gone("org.mx.race.t");

    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("test_mutex_publish: ok\n");
    return 0;
}
