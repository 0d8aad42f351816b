// SPDX-License-Identifier: MIT
/*
 * test_chan_limits — the configuration limits of a shm channel:
 *  - options out of range are -EINVAL and leave nothing behind: ring_bytes not a power of
 *    two, below 4096, max_msg above FERRY_MAX_MSG_LIMIT or above what the ring carries,
 *    unknown flags, FERRY_UNBOUNDED with mem_cap below the ring;
 *  - max_msg = FERRY_MAX_MSG_LIMIT (1 GiB) with ring_bytes = 0 is accepted (the ring is
 *    derived: 4 GiB of address space per direction, only touched pages cost memory);
 *    ferry_chan_max_msg says 1 GiB; a 256 MiB message goes through intact; 1 GiB + 1 is
 *    -EMSGSIZE and nothing is sent.
 */
#include "testutil.h"

#include "ferry/ferry.h"

#include <stdint.h>

static void invalid(void)
{
    int before = fd_count();
    ferry_chan *a = NULL, *b = NULL;
    ferry_chan_opts o;
    size_t bad_rings[] = {4096 + 64, 2048, 3 << 20};
    for (size_t i = 0; i < sizeof bad_rings / sizeof bad_rings[0]; i++) {
        ferry_chan_opts_init(&o);
        o.ring_bytes = bad_rings[i];
        CHECK_EQ(ferry_pair(&o, &a, &b), -EINVAL);
    }
    ferry_chan_opts_init(&o);
    o.max_msg = FERRY_MAX_MSG_LIMIT + 1;
    o.ring_bytes = 0;
    CHECK_EQ(ferry_pair(&o, &a, &b), -EINVAL);
    ferry_chan_opts_init(&o);
    o.max_msg = o.ring_bytes; /* more than a 256 KiB ring carries */
    CHECK_EQ(ferry_pair(&o, &a, &b), -EINVAL);
    ferry_chan_opts_init(&o);
    o.flags = 0x100;
    CHECK_EQ(ferry_pair(&o, &a, &b), -EINVAL);
    ferry_chan_opts_init(&o);
    o.capacity = FERRY_UNBOUNDED;
    o.mem_cap = o.ring_bytes / 2;
    CHECK_EQ(ferry_pair(&o, &a, &b), -EINVAL);
    CHECK_EQ(fd_count(), before);
}

static void one_gib(void)
{
    int before = fd_count();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 0;
    o.max_msg = FERRY_MAX_MSG_LIMIT;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    CHECK_EQ(ferry_chan_max_msg(a), FERRY_MAX_MSG_LIMIT);
    CHECK_EQ(ferry_chan_max_msg(b), FERRY_MAX_MSG_LIMIT);
    size_t len = (size_t)256 << 20;
    uint8_t *src = malloc(len), *dst = malloc(len);
    CHECK(src && dst);
    for (size_t i = 0; i < len; i += 4096) src[i] = (uint8_t)(i >> 12);
    src[len - 1] = 0x5a;
    CHECK_EQ(ferry_send(a, src, len, FERRY_NOW), 0);
    CHECK_EQ(ferry_recv(b, dst, len, FERRY_NOW), (long long)len);
    CHECK(memcmp(src, dst, len) == 0);
    /* One byte over the limit: refused whole, nothing queued. */
    CHECK_EQ(ferry_send(a, src, FERRY_MAX_MSG_LIMIT + 1, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(ferry_recv(b, dst, len, FERRY_NOW), -EAGAIN);
    free(src);
    free(dst);
    ferry_chan_close(a);
    ferry_chan_close(b);
    CHECK_EQ(fd_count(), before);
}

int main(void)
{
    invalid();
    one_gib();
    printf("test_chan_limits: ok\n");
    return 0;
}
