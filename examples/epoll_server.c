// SPDX-License-Identifier: MIT
/*
 * epoll_server — one thread serves 1,000 clients through epoll.
 *
 * The server listens at a unix address, puts the listener's descriptor and every
 * channel's ferry_chan_poll_fd() in one epoll set, and answers each request (a counter) with
 * the counter plus one; nothing in it blocks. Ten client processes open 100 channels each
 * and run 10 rounds: a request on every channel, then every answer, checked. The server
 * stops once every client has hung up and checks the totals.
 * Exits 0 only when 1,000 clients were served 10 requests each, every answer right.
 */
#define _GNU_SOURCE
#include <ferry/ferry.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS  10
#define PER    100
#define ROUNDS 10
#define SEC    1000000000LL

static int client(const char *url)
{
    ferry_chan *ch[PER];
    for (int i = 0; i < PER; i++)
        if (ferry_chan_open(url, NULL, &ch[i], 10 * SEC) < 0) return 1;
    for (uint64_t r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++) {
            uint64_t v = r * 1000 + (uint64_t)i;
            if (ferry_send(ch[i], &v, sizeof v, 10 * SEC) < 0) return 1;
        }
        for (int i = 0; i < PER; i++) {
            uint64_t v;
            if (ferry_recv(ch[i], &v, sizeof v, 10 * SEC) != sizeof v) return 1;
            if (v != r * 1000 + (uint64_t)i + 1) return 1;
        }
    }
    for (int i = 0; i < PER; i++) ferry_chan_close(ch[i]);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* 1,000 channels and the epoll set need more than 1,024 fds */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char url[64];
    snprintf(url, sizeof url, "unix://@ferry-epoll-%d", (int)getpid());
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = 64;
    ferry_listener *l;
    int rc = ferry_listen(url, &o, &l);
    if (rc < 0) {
        fprintf(stderr, "listen: %s\n", ferry_strerror(rc));
        return 1;
    }
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++)
        if ((kids[p] = fork()) == 0) _exit(client(url));

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    epoll_ctl(ep, EPOLL_CTL_ADD, ferry_listener_poll_fd(l), &ev);
    long accepted = 0, closed = 0, served = 0, bad = 0;
    while (closed < PROCS * PER) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10000);
        if (n <= 0) {
            fprintf(stderr, "server: nothing for 10 s\n");
            break;
        }
        for (int k = 0; k < n; k++) {
            ferry_chan *ch = evs[k].data.ptr;
            if (!ch) { /* new clients */
                while (ferry_accept(l, &ch, FERRY_NOW) == 0) {
                    struct epoll_event ce = {.events = EPOLLIN, .data.ptr = ch};
                    epoll_ctl(ep, EPOLL_CTL_ADD, ferry_chan_poll_fd(ch), &ce);
                    accepted++;
                }
                continue;
            }
            uint64_t v;
            ssize_t got;
            while ((got = ferry_recv(ch, &v, sizeof v, FERRY_NOW)) == sizeof v) {
                v++;
                if (ferry_send(ch, &v, sizeof v, SEC) == 0) served++;
            }
            if (got == -EPIPE) { /* the client is done */
                epoll_ctl(ep, EPOLL_CTL_DEL, ferry_chan_poll_fd(ch), NULL);
                ferry_chan_close(ch);
                closed++;
            } else if (got != -EAGAIN) {
                bad++;
            }
        }
    }
    int failed = 0;
    for (int p = 0; p < PROCS; p++) {
        int st;
        waitpid(kids[p], &st, 0);
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    close(ep);
    ferry_listener_close(l);
    printf("epoll_server: one thread, %ld clients accepted, %ld requests served, %d client "
           "processes failed\n",
           accepted, served, failed);
    return failed || bad || accepted != PROCS * PER || served != PROCS * PER * ROUNDS;
}
