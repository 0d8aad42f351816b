// SPDX-License-Identifier: MIT
/*
 * test_proto_info.c — the broker protocol's name info (src/broker/proto.c): an info round
 * trips with every field (kind and since_ns included, what `ferry ls` KIND and `ferry
 * stat` uptime read; size, dev and ino for a region or a state), a kind that is neither 0 nor a
 * FERRY_OBJ_* is -EBADMSG (and reads as 0), and a short or over-long payload is -EBADMSG. No broker
 * runs.
 */
#include "testutil.h" /* first: it defines _GNU_SOURCE */

#include "broker/proto.h"

#include <stdint.h>

static int roundtrip(const ferry_name_info *in, ferry_name_info *out, size_t cut, int extra)
{
    uint8_t buf[600];
    ferry__bw w = {.p = buf, .cap = sizeof buf};
    ferry__bw_info(&w, in);
    CHECK_EQ(w.err, 0);
    if (extra) ferry__bw_u32(&w, 7);
    ferry__br r = {.p = buf, .len = w.len - cut};
    memset(out, 0x5a, sizeof *out);
    ferry__br_info(&r, out);
    return ferry__br_end(&r);
}

int main(void)
{
    ferry_name_info in, out;
    memset(&in, 0, sizeof in);
    strcpy(in.name, "org.test.info");
    in.uid = 1000;
    in.gid = 100;
    in.pid = 4242;
    in.mode = 0640;
    in.connects = 9;
    in.kind = FERRY_OBJ_MAILBOX;
    in.since_ns = 1765000000123456789ull;
    CHECK_EQ(roundtrip(&in, &out, 0, 0), 0);
    CHECK(strcmp(out.name, in.name) == 0);
    CHECK_EQ(out.uid, 1000);
    CHECK_EQ(out.gid, 100);
    CHECK_EQ(out.pid, 4242);
    CHECK_EQ(out.mode, 0640);
    CHECK_EQ(out.connects, 9);
    CHECK_EQ(out.kind, FERRY_OBJ_MAILBOX);
    CHECK(out.since_ns == in.since_ns);

    in.size = 4096;
    in.dev = 0x1234;
    in.ino = 0x987654321ull;
    for (uint32_t k = 0; k <= FERRY_OBJ_STATE; k++) { /* a server and every object kind */
        in.kind = k;
        CHECK_EQ(roundtrip(&in, &out, 0, 0), 0);
        CHECK_EQ(out.kind, k);
        /* size, dev, ino travel for a region or a state only; read 0 otherwise */
        int rg = k == FERRY_OBJ_REGION || k == FERRY_OBJ_STATE;
        CHECK(out.size == (rg ? 4096u : 0u));
        CHECK(out.dev == (rg ? 0x1234u : 0u));
        CHECK(out.ino == (rg ? 0x987654321ull : 0u));
    }
    in.kind = FERRY_OBJ_REGION;
    CHECK_EQ(roundtrip(&in, &out, 8, 0), -EBADMSG); /* ino cut short */
    const uint32_t bad[] = {FERRY_OBJ_STATE + 1, 64, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        in.kind = bad[i];
        CHECK_EQ(roundtrip(&in, &out, 0, 0), -EBADMSG);
        CHECK_EQ(out.kind, 0);
    }
    in.kind = FERRY_OBJ_SEM;
    CHECK_EQ(roundtrip(&in, &out, 1, 0), -EBADMSG);  /* since_ns cut short */
    CHECK_EQ(roundtrip(&in, &out, 12, 0), -EBADMSG); /* kind and since missing: an old ferryd */
    CHECK_EQ(roundtrip(&in, &out, 0, 1), -EBADMSG);  /* bytes left over */
    puts("test_proto_info: ok");
    return 0;
}
