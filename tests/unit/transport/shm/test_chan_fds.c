// SPDX-License-Identifier: MIT
/*
 * test_chan_fds.c — descriptors per shm channel end (issue 15, item 6): an end holds one
 * descriptor, its control link (the segments' memfds are closed once mapped; the poll
 * fd and the eventfd behind it are made when ferry_chan_poll_fd is first asked). So one
 * process holds 5,000 channels, both ends of each, in 10,000 descriptors.
 * Checked, counting /proc/self/fd:
 *   - 5,000 pairs (ferry_pair) take exactly 10,000 descriptors, and every one carries a
 *     message each way;
 *   - an armed end (ferry_chan_poll_fd) takes two more (its epoll and its eventfd), and
 *     its fd polls readable while a message waits, and not after it is taken;
 *   - an unbounded channel that grows its ring keeps one descriptor per end;
 *   - a closed peer is seen: -EPIPE;
 *   - closing everything gives every descriptor back.
 * RLIMIT_NOFILE is raised to what that needs, within the hard limit (exit 77, skipped,
 * when the hard limit is lower).
 */
#include "testutil.h"

#include "ferry/ferry.h"

#include <poll.h>
#include <sys/resource.h>

#define NCHAN 5000
#define NARM  10

int main(void)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = 2 * NCHAN + 256;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        printf("SKIP: RLIMIT_NOFILE hard limit %llu < %llu\n", (unsigned long long)rl.rlim_max,
               (unsigned long long)need);
        return 77;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < need) {
        rl.rlim_cur = need;
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }

    static ferry_chan *a[NCHAN], *b[NCHAN];
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 4096; /* the smallest ring: 5,000 channels in little memory */
    int before = fd_count();
    for (int i = 0; i < NCHAN; i++) {
        int rc = ferry_pair(&o, &a[i], &b[i]);
        if (rc < 0) {
            fprintf(stderr, "ferry_pair #%d: %d, with %d descriptors open\n", i, rc, fd_count());
            return 1;
        }
    }
    int after = fd_count();
    printf("%d channels (both ends here): %d descriptors for %d ends (%.2f per end)\n", NCHAN,
           after - before, 2 * NCHAN, (double)(after - before) / (2 * NCHAN));
    CHECK_EQ(after - before, 2 * NCHAN);

    char buf[64];
    for (int i = 0; i < NCHAN; i++) {
        CHECK_EQ(ferry_send(a[i], &i, sizeof i, FERRY_NOW), 0);
        CHECK_EQ(ferry_send(b[i], &i, sizeof i, FERRY_NOW), 0);
    }
    for (int i = 0; i < NCHAN; i++) {
        int v = -1;
        CHECK_EQ(ferry_recv(b[i], &v, sizeof v, FERRY_NOW), (long long)sizeof v);
        CHECK_EQ(v, i);
        v = -1;
        CHECK_EQ(ferry_recv(a[i], &v, sizeof v, FERRY_NOW), (long long)sizeof v);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(fd_count(), after);

    /* Armed ends: two descriptors more each; readable while a message waits. */
    for (int i = 0; i < NARM; i++) {
        int pfd = ferry_chan_poll_fd(b[i]);
        CHECK(pfd >= 0);
        CHECK_EQ(ferry_chan_poll_fd(b[i]), pfd); /* the same one every time */
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_EQ(ferry_send(a[i], "x", 1, FERRY_NOW), 0);
        CHECK_EQ(poll(&p, 1, 1000), 1);
        CHECK_EQ(ferry_recv(b[i], buf, sizeof buf, FERRY_NOW), 1);
        CHECK_EQ(poll(&p, 1, 0), 0);
    }
    CHECK_EQ(fd_count(), after + 2 * NARM);

    /* Growth: an unbounded channel whose ring grows twice keeps one descriptor per end. */
    ferry_chan_opts g;
    ferry_chan_opts_init(&g);
    g.ring_bytes = 4096;
    g.capacity = FERRY_UNBOUNDED;
    g.mem_cap = 64 << 10;
    g.max_msg = 1000;
    ferry_chan *ga, *gb;
    CHECK_EQ(ferry_pair(&g, &ga, &gb), 0);
    int with_growth = fd_count();
    char big[1000];
    memset(big, 7, sizeof big);
    for (int i = 0; i < 24; i++) CHECK_EQ(ferry_send(ga, big, sizeof big, FERRY_NOW), 0);
    for (int i = 0; i < 24; i++)
        CHECK_EQ(ferry_recv(gb, big, sizeof big, FERRY_NOW), (long long)sizeof big);
    CHECK_EQ(fd_count(), with_growth);
    ferry_chan_close(ga);
    ferry_chan_close(gb);

    /* A closed peer is seen. */
    ferry_chan_close(a[0]);
    a[0] = NULL;
    CHECK_EQ(ferry_recv(b[0], buf, sizeof buf, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_send(b[0], "x", 1, FERRY_NOW), -EPIPE);

    for (int i = 0; i < NCHAN; i++) {
        ferry_chan_close(a[i]);
        ferry_chan_close(b[i]);
    }
    CHECK_EQ(fd_count(), before);
    printf("ok\n");
    return 0;
}
