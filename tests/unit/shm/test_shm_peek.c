// SPDX-License-Identifier: MIT
/*
 * test_shm_peek — what a peeked view is worth against a peer that writes the ring (issue
 * 10, bug 8). The "peer" here is the sending end in this process, whose mapping of the
 * ring is the same memory:
 *  1. plain ferry_peek: the view is the shared bytes; a write by the peer after the peek
 *     (after the crc check) shows through. This is the documented limit.
 *  2. FERRY_PEEK_PRIVATE: the view is a private copy; the same write does not show, and
 *     m->data lies outside the ring. Corruption before the peek is still caught on the
 *     copy: -EBADMSG.
 *  3. FERRY_PEEK_PRIVATE is a local choice the other transports accept (a posixmq listener, which
 * checks its flags).
 */
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/ring.h"
#include "transport/shm_chan.h"

/* The payload of the last record the sending end a committed (a 64-byte record). */
static uint8_t *last_payload(ferry_chan *a)
{
    shm_tx *t = &((shm_chan *)a)->tx;
    return t->data + ((t->head - 64) & (t->size - 1)) + FERRY__FRAME_HDR;
}

static void peek_case(uint32_t flags)
{
    int before = fd_count();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_CHECKSUM | flags;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    CHECK_EQ(ferry_send(a, "hello", 5, FERRY_NOW), 0);
    uint8_t *ring = last_payload(a);
    ferry_msg m;
    memset(&m, 0, sizeof m);
    CHECK_EQ(ferry_peek(b, 0, &m, FERRY_NOW), 0);
    CHECK_EQ(m.len, 5);
    CHECK(memcmp(m.data, "hello", 5) == 0);
    ring[0] = 'J'; /* the peer rewrites the message after the crc was checked */
    if (flags & FERRY_PEEK_PRIVATE) {
        CHECK(memcmp(m.data, "hello", 5) == 0);
        shm_rx *r = &((shm_chan *)b)->rx;
        uint8_t *lo = r->cur->data, *hi = lo + r->cur->size;
        CHECK((uint8_t *)m.data < lo || (uint8_t *)m.data >= hi);
    } else {
        CHECK(memcmp(m.data, "Jello", 5) == 0); /* only as trustworthy as the peer */
    }
    CHECK_EQ(ferry_release(b), 0);
    /* Corrupted before the peek: the crc, checked on what is handed out, catches it. */
    CHECK_EQ(ferry_send(a, "world", 5, FERRY_NOW), 0);
    last_payload(a)[1] ^= 0x20;
    CHECK_EQ(ferry_peek(b, 0, &m, FERRY_NOW), -EBADMSG);
    ferry_chan_close(a);
    ferry_chan_close(b);
    CHECK_EQ(fd_count(), before);
}

static void other_transport(void)
{
    char url[128];
    snprintf(url, sizeof url, "posixmq:///ferry-test-peek-%d", (int)getpid());
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = FERRY_PEEK_PRIVATE;
    ferry_listener *l;
    CHECK_EQ(ferry_listen(url, &o, &l), 0);
    ferry_listener_close(l);
}

int main(void)
{
    peek_case(0);
    peek_case(FERRY_PEEK_PRIVATE);
    other_transport();
    printf("ok\n");
    return 0;
}
