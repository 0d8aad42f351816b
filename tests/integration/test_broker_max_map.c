// SPDX-License-Identifier: MIT
/*
 * test_broker_max_map — in a brokered connect the client adopts the server's shape, so a
 * server could make any client map gigabytes (issue 10, bug 7). With a real ferryd: a
 * server that registers with an unbounded shape of mem_cap 4 GiB (up to 16 GiB of rings
 * of both directions, plus 7 GiB of skip queue: ~23 GiB a client would agree to) is
 * refused by a client with the default max_map (512 MiB): -E2BIG,
 * nothing mapped, no fd left; a client that raises its max_map connects and gets an echo;
 * a server with the default shape is taken by default clients.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "ferry/ferry.h"

#include <signal.h>
#include <sys/prctl.h>

#define SEC 1000000000LL

/* A server for `name` with opts: echoes one message per accepted channel, until killed. */
static pid_t serve(const char *name, const ferry_chan_opts *o)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        ferry_listener *l;
        CHECK_EQ(ferry_register(name, NULL, o, &l, 5 * SEC), 0);
        CHECK(write(ready[1], "r", 1) == 1);
        for (;;) {
            ferry_chan *ch;
            if (ferry_accept(l, &ch, 30 * SEC) != 0) continue;
            char buf[64];
            ssize_t n = ferry_recv(ch, buf, sizeof buf, 10 * SEC);
            if (n > 0) (void)ferry_send(ch, buf, (size_t)n, 10 * SEC);
            ferry_chan_close(ch);
        }
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    return pid;
}

static void echo(const char *name, const ferry_chan_opts *o)
{
    ferry_chan *ch;
    CHECK_EQ(ferry_connect(name, FERRY_KIND_SHM, o, &ch, 5 * SEC), 0);
    CHECK_EQ(ferry_send(ch, "hello", 5, SEC), 0);
    char buf[16];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    ferry_chan_close(ch);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    ferry_chan_opts big;
    ferry_chan_opts_init(&big);
    big.capacity = FERRY_UNBOUNDED;
    big.mem_cap = (size_t)4 << 30;
    pid_t greedy = serve("org.test.greedy", &big);
    pid_t plain = serve("org.test.plain", NULL);

    int before = fd_count();
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_connect("org.test.greedy", FERRY_KIND_SHM, NULL, &ch, 5 * SEC), -E2BIG);
    CHECK(ch == NULL);
    CHECK_EQ(fd_count(), before);
    ferry_chan_opts mine;
    ferry_chan_opts_init(&mine);
    mine.max_map = (size_t)32 << 30; /* this client agrees to it (it needs ~23 GiB) */
    echo("org.test.greedy", &mine);
    echo("org.test.plain", NULL);
    mine.max_map = 512 << 10; /* too little for the default shape (~744 KiB) */
    CHECK_EQ(ferry_connect("org.test.plain", FERRY_KIND_SHM, &mine, &ch, 5 * SEC), -E2BIG);
    CHECK_EQ(fd_count(), before);

    kill(greedy, SIGKILL);
    kill(plain, SIGKILL);
    CHECK(waitpid(greedy, NULL, 0) == greedy);
    CHECK(waitpid(plain, NULL, 0) == plain);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
