// SPDX-License-Identifier: MIT
/*
 * test_abi_sized — the sized-struct helpers (src/core/abi.h) on three versions of one
 * struct, as a library of version 2 sees callers built against versions 1, 2 and 3:
 *  - in: an old caller's (v1) fields are copied and the field it does not have (c) keeps
 *    the library's default; an exact caller's are copied; a newer caller's (v3) are
 *    copied when its extra field is zero, and a nonzero byte anywhere past v2 is -E2BIG;
 *    size 0, below v1's, above FERRY__SIZED_MAX is -EINVAL (also a never-prepared,
 *    0xEE-filled struct); NULL reads nothing; on an error the defaults are untouched, and
 *    the library's own size field is never overwritten;
 *  - init: an old caller's struct gets the defaults of its fields only, a newer one's
 *    extra bytes are zeroed, and nothing past the caller's size is written;
 *  - out: an old caller gets only its prefix (canary bytes after it untouched) with size
 *    = its size; a newer caller gets v2's bytes with size = sizeof(v2), its extra field
 *    untouched; a bad size is -EINVAL with nothing written;
 *  - the real options structs, as a later version whose first version lacked the last
 *    field would read them: an old caller (size = offsetof the last field) gets that
 *    field's default.
 */
#include "core/abi.h"
#include "testutil.h"

#include <stdalign.h>
#include <stdint.h>

typedef struct v1 {
    size_t size;
    uint32_t a, b;
} v1;
typedef struct v2 {
    size_t size;
    uint32_t a, b;
    uint64_t c;
} v2;
typedef struct v3 {
    size_t size;
    uint32_t a, b;
    uint64_t c;
    uint64_t d;
} v3;

#define V1_SIZE FERRY__OFFSETOFEND(v1, b) /* the first version */

static const v2 defaults = {.size = sizeof(v2), .a = 1, .b = 2, .c = 3};

/* A caller's buffer: room for any claimed size, filled with a canary. */
typedef union buf {
    max_align_t align;
    unsigned char b[FERRY__SIZED_MAX + 64];
} buf;

static void fill(buf *u, size_t size)
{
    memset(u->b, 0xEE, sizeof u->b);
    memcpy(u->b, &size, sizeof size);
}

static int untouched_from(const buf *u, size_t from)
{
    for (size_t i = from; i < sizeof u->b; i++)
        if (u->b[i] != 0xEE) return 0;
    return 1;
}

static void test_in(void)
{
    v2 d;
    /* an old caller: a and b come from it, c keeps its default */
    v1 old = {.size = sizeof(v1), .a = 10, .b = 20};
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, &old, V1_SIZE), 0);
    CHECK_EQ(d.a, 10);
    CHECK_EQ(d.b, 20);
    CHECK_EQ(d.c, 3);
    CHECK_EQ(d.size, sizeof(v2)); /* ours, not the caller's */

    /* exact */
    v2 same = {.size = sizeof(v2), .a = 11, .b = 21, .c = 31};
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, &same, V1_SIZE), 0);
    CHECK(d.a == 11 && d.b == 21 && d.c == 31 && d.size == sizeof(v2));

    /* a newer caller that leaves its new field zero */
    v3 newer;
    memset(&newer, 0, sizeof newer);
    newer.size = sizeof newer;
    newer.a = 12;
    newer.b = 22;
    newer.c = 32;
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, &newer, V1_SIZE), 0);
    CHECK(d.a == 12 && d.b == 22 && d.c == 32 && d.size == sizeof(v2));

    /* ... and one that sets it: -E2BIG, the defaults untouched */
    newer.d = 1;
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, &newer, V1_SIZE), -E2BIG);
    CHECK(memcmp(&d, &defaults, sizeof d) == 0);
    newer.d = (uint64_t)1 << 63; /* the last byte */
    CHECK_EQ(ferry__sized_in(&d, sizeof d, &newer, V1_SIZE), -E2BIG);

    /* any nonzero byte past ours, up to the caller's size; zeros up to the largest size */
    buf u;
    for (size_t at = sizeof(v2); at < FERRY__SIZED_MAX; at += 509) {
        memset(u.b, 0, sizeof u.b);
        size_t size = FERRY__SIZED_MAX;
        memcpy(u.b, &size, sizeof size);
        d = defaults;
        CHECK_EQ(ferry__sized_in(&d, sizeof d, u.b, V1_SIZE), 0);
        u.b[at] = 0x01;
        d = defaults;
        CHECK_EQ(ferry__sized_in(&d, sizeof d, u.b, V1_SIZE), -E2BIG);
        CHECK(memcmp(&d, &defaults, sizeof d) == 0);
    }
    /* a nonzero byte past the caller's size is not the caller's: not read */
    memset(u.b, 0, sizeof u.b);
    size_t size = sizeof(v3);
    memcpy(u.b, &size, sizeof size);
    u.b[sizeof(v3)] = 0xFF;
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, u.b, V1_SIZE), 0);

    /* not a prepared struct: -EINVAL, nothing read into d */
    size_t bad[] = {0,
                    1,
                    sizeof(size_t),
                    V1_SIZE - 1,
                    FERRY__SIZED_MAX + 1,
                    SIZE_MAX,
                    (size_t)0xEEEEEEEEEEEEEEEEull};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fill(&u, bad[i]);
        d = defaults;
        CHECK_EQ(ferry__sized_in(&d, sizeof d, u.b, V1_SIZE), -EINVAL);
        CHECK(memcmp(&d, &defaults, sizeof d) == 0);
    }
    fill(&u, 0);
    memset(u.b, 0xEE, sizeof(size_t)); /* never prepared: garbage everywhere */
    CHECK_EQ(ferry__sized_in(&d, sizeof d, u.b, V1_SIZE), -EINVAL);

    /* NULL: nothing to read */
    d = defaults;
    CHECK_EQ(ferry__sized_in(&d, sizeof d, NULL, V1_SIZE), 0);
    CHECK(memcmp(&d, &defaults, sizeof d) == 0);
}

static void test_init(void)
{
    buf u;
    /* an old caller: its fields' defaults, its size, nothing past it */
    fill(&u, 0);
    ferry__sized_init(u.b, sizeof(v1), &defaults, sizeof defaults);
    v1 o;
    memcpy(&o, u.b, sizeof o);
    CHECK(o.size == sizeof(v1) && o.a == 1 && o.b == 2);
    CHECK(untouched_from(&u, sizeof(v1)));

    /* a newer caller: our defaults, its extra bytes zero, nothing past its size */
    fill(&u, 0);
    ferry__sized_init(u.b, sizeof(v3), &defaults, sizeof defaults);
    v3 n;
    memcpy(&n, u.b, sizeof n);
    CHECK(n.size == sizeof(v3) && n.a == 1 && n.b == 2 && n.c == 3 && n.d == 0);
    CHECK(untouched_from(&u, sizeof(v3)));

    /* too small to hold a size: only zeroed; NULL: nothing */
    memset(u.b, 0xEE, sizeof u.b);
    ferry__sized_init(u.b, 3, &defaults, sizeof defaults);
    CHECK(u.b[0] == 0 && u.b[1] == 0 && u.b[2] == 0 && untouched_from(&u, 3));
    ferry__sized_init(NULL, sizeof(v2), &defaults, sizeof defaults);
}

static void test_out(void)
{
    const v2 full = {.size = sizeof(v2), .a = 7, .b = 8, .c = 9};
    buf u;

    /* an old caller: its prefix only, size = its size, the canary after it untouched */
    fill(&u, sizeof(v1));
    CHECK_EQ(ferry__sized_out(u.b, &full, sizeof full, V1_SIZE), 0);
    v1 o;
    memcpy(&o, u.b, sizeof o);
    CHECK(o.size == sizeof(v1) && o.a == 7 && o.b == 8);
    CHECK(untouched_from(&u, sizeof(v1)));

    /* exact */
    fill(&u, sizeof(v2));
    CHECK_EQ(ferry__sized_out(u.b, &full, sizeof full, V1_SIZE), 0);
    CHECK(memcmp(u.b, &full, sizeof full) == 0);
    CHECK(untouched_from(&u, sizeof(v2)));

    /* a newer caller: what we have, size = ours, its new field untouched */
    fill(&u, sizeof(v3));
    CHECK_EQ(ferry__sized_out(u.b, &full, sizeof full, V1_SIZE), 0);
    v3 n;
    memcpy(&n, u.b, sizeof n);
    CHECK(n.size == sizeof(v2) && n.a == 7 && n.b == 8 && n.c == 9);
    CHECK(n.d == 0xEEEEEEEEEEEEEEEEull);
    CHECK(untouched_from(&u, sizeof(v2)));

    /* a bad size: -EINVAL, nothing written (the size included) */
    size_t bad[] = {0, 1, V1_SIZE - 1, FERRY__SIZED_MAX + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fill(&u, bad[i]);
        CHECK_EQ(ferry__sized_out(u.b, &full, sizeof full, V1_SIZE), -EINVAL);
        size_t s;
        memcpy(&s, u.b, sizeof s);
        CHECK_EQ(s, bad[i]);
        CHECK(untouched_from(&u, sizeof(size_t)));
        CHECK_EQ(ferry__sized_check(u.b, V1_SIZE), -EINVAL);
    }
    CHECK_EQ(ferry__sized_out(NULL, &full, sizeof full, V1_SIZE), -EINVAL);
    CHECK_EQ(ferry__sized_check(NULL, V1_SIZE), -EINVAL);
    fill(&u, V1_SIZE);
    CHECK_EQ(ferry__sized_check(u.b, V1_SIZE), 0);
}

/* The real options structs read as a later library would read them from a caller built
 * before their last field existed (that version's first size = the offset of the last
 * field): the field keeps the library's default, the others are the caller's. */
static void test_real_old_callers(void)
{
    ferry_chan_opts co, cd;
    ferry_chan_opts_init(&cd);
    ferry_chan_opts_init(&co);
    co.size = offsetof(ferry_chan_opts, max_map);
    co.capacity = 3;
    co.max_skipped_fds = 5;
    co.max_map = 12345; /* beyond the old caller's size: not its */
    CHECK_EQ(ferry__sized_in(&cd, sizeof cd, &co, offsetof(ferry_chan_opts, max_map)), 0);
    CHECK(cd.capacity == 3 && cd.max_skipped_fds == 5 && cd.max_map == FERRY_MAX_MAP_DEFAULT);
    CHECK_EQ(cd.size, sizeof cd);

    ferry_bcast_opts bo, bd;
    ferry_bcast_opts_init(&bd);
    ferry_bcast_opts_init(&bo);
    bo.size = offsetof(ferry_bcast_opts, max_msg);
    bo.slots = 8;
    bo.max_msg = 99;
    CHECK_EQ(ferry__sized_in(&bd, sizeof bd, &bo, offsetof(ferry_bcast_opts, max_msg)), 0);
    CHECK(bd.slots == 8 && bd.max_msg == 4096);

    ferry_mailbox_opts mo, md;
    ferry_mailbox_opts_init(&md);
    ferry_mailbox_opts_init(&mo);
    mo.size = offsetof(ferry_mailbox_opts, max_msg);
    mo.capacity = 7;
    mo.max_msg = 99;
    CHECK_EQ(ferry__sized_in(&md, sizeof md, &mo, offsetof(ferry_mailbox_opts, max_msg)), 0);
    CHECK(md.capacity == 7 && md.max_msg == 4096);

    ferry_policy po, pd;
    ferry_policy_init(&pd);
    ferry_policy_init(&po);
    po.size = offsetof(ferry_policy, allow_gids);
    po.mode = 0640;
    po.allow_gids[0] = 77;
    CHECK_EQ(ferry__sized_in(&pd, sizeof pd, &po, offsetof(ferry_policy, allow_gids)), 0);
    CHECK(pd.mode == 0640 && pd.allow_gids[0] == 0 && pd.gid == (gid_t)-1);

    /* counters: an old caller without `grows` gets the prefix, grows untouched */
    ferry_chan_counters full;
    memset(&full, 0x11, sizeof full);
    full.size = sizeof full;
    ferry_chan_counters old;
    memset(&old, 0xEE, sizeof old);
    old.size = offsetof(ferry_chan_counters, grows);
    CHECK_EQ(ferry__sized_out(&old, &full, sizeof full, offsetof(ferry_chan_counters, grows)), 0);
    CHECK_EQ(old.size, offsetof(ferry_chan_counters, grows));
    CHECK_EQ(old.drops, 0x1111111111111111ull);
    CHECK_EQ(old.grows, 0xEEEEEEEEEEEEEEEEull);
}

/* The first-version sizes are this version's whole structs (nothing past the last
 * field but padding), and size sits at offset 0 of each. */
static void test_layout(void)
{
    CHECK_EQ(offsetof(ferry_chan_opts, size), 0);
    CHECK_EQ(offsetof(ferry_bcast_opts, size), 0);
    CHECK_EQ(offsetof(ferry_mailbox_opts, size), 0);
    CHECK_EQ(offsetof(ferry_policy, size), 0);
    CHECK_EQ(offsetof(ferry_chan_counters, size), 0);
    CHECK_EQ(offsetof(ferry_mailbox_counters, size), 0);
    CHECK_EQ(offsetof(ferry_event_counters, size), 0);
    /* ferry_chan_opts grew `tls` (0.3) after its first version: at or past that version's
     * sizeof; then `relay_for` and `relay_uid` (0.3, relayed identities), which end the
     * struct */
    CHECK(offsetof(ferry_chan_opts, tls) >= FERRY__CHAN_OPTS_V0);
    CHECK(offsetof(ferry_chan_opts, relay_for) >= FERRY__OFFSETOFEND(ferry_chan_opts, tls));
    CHECK(offsetof(ferry_chan_opts, relay_uid) >= FERRY__OFFSETOFEND(ferry_chan_opts, relay_for));
    CHECK(sizeof(ferry_chan_opts) - FERRY__OFFSETOFEND(ferry_chan_opts, relay_uid) <
          alignof(ferry_chan_opts));
    /* the tls structs (0.3: their first version) */
    CHECK_EQ(offsetof(ferry_tls_opts, size), 0);
    CHECK_EQ(offsetof(ferry_peer_cert, size), 0);
    CHECK(sizeof(ferry_tls_opts) - FERRY__TLS_OPTS_V0 < alignof(ferry_tls_opts));
    CHECK(sizeof(ferry_peer_cert) - FERRY__PEER_CERT_V0 < alignof(ferry_peer_cert));
    CHECK(sizeof(ferry_peer_cert) <= FERRY__SIZED_MAX);
    CHECK(sizeof(ferry_bcast_opts) - FERRY__BCAST_OPTS_V0 < alignof(ferry_bcast_opts));
    CHECK(sizeof(ferry_mailbox_opts) - FERRY__MAILBOX_OPTS_V0 < alignof(ferry_mailbox_opts));
    /* ferry_policy grew the write lists (0.3) after its first version: at or past that
     * version's sizeof, and they end the struct */
    CHECK(offsetof(ferry_policy, reserved0) >= FERRY__POLICY_V0);
    CHECK(sizeof(ferry_policy) - FERRY__OFFSETOFEND(ferry_policy, write_gids) <
          alignof(ferry_policy));
    CHECK(sizeof(ferry_chan_counters) - FERRY__CHAN_COUNTERS_V0 < alignof(ferry_chan_counters));
    /* ferry_mailbox_counters grew `waiting`, then `flags`, after its first version: they
     * start at or past that version's sizeof (no old tail padding reused), follow each
     * other, and `flags` ends the struct */
    CHECK(offsetof(ferry_mailbox_counters, waiting) >= FERRY__MAILBOX_COUNTERS_V0);
    CHECK(offsetof(ferry_mailbox_counters, waiting) % alignof(uint64_t) == 0);
    CHECK_EQ(offsetof(ferry_mailbox_counters, flags),
             FERRY__OFFSETOFEND(ferry_mailbox_counters, waiting));
    CHECK(sizeof(ferry_mailbox_counters) - FERRY__OFFSETOFEND(ferry_mailbox_counters, flags) <
          alignof(ferry_mailbox_counters));
    CHECK_EQ(offsetof(ferry_bcast_counters, size), 0);
    CHECK(sizeof(ferry_bcast_counters) - FERRY__BCAST_COUNTERS_V0 < alignof(ferry_bcast_counters));
    CHECK(sizeof(ferry_event_counters) - FERRY__EVENT_COUNTERS_V0 < alignof(ferry_event_counters));
    CHECK(sizeof(ferry_policy) <= FERRY__SIZED_MAX);
}

int main(void)
{
    test_in();
    test_init();
    test_out();
    test_real_old_callers();
    test_layout();
    printf("ok\n");
    return 0;
}
