// SPDX-License-Identifier: MIT
/*
 * libuv_echo — ferry channels in a libuv event loop.
 *
 * A ferry listener's descriptor and each channel's ferry_chan_poll_fd() are level-triggered
 * pollable descriptors, so libuv watches them with uv_poll_t like any socket; on
 * readiness the callback takes what is there with FERRY_NOW and never blocks the loop. A
 * uv_timer runs alongside to show the loop stays free. Four forked clients each send 200
 * numbered requests over a shared-memory channel and check every answer; the loop stops
 * when all four have hung up. Exits 0 only when 800 answers came back right.
 */
#define _GNU_SOURCE
#include <ferry/ferry.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define CLIENTS 4
#define REQS    200
#define SEC     1000000000LL

typedef struct conn {
    uv_poll_t poll;
    ferry_chan *ch;
} conn;

static ferry_listener *listener;
static long served, closed, ticks;

static void on_closed(uv_handle_t *h)
{
    conn *c = h->data;
    uv_loop_t *loop = h->loop; /* h is inside c */
    ferry_chan_close(c->ch);
    free(c);
    if (++closed == CLIENTS) uv_stop(loop);
}

static void on_chan(uv_poll_t *p, int status, int events)
{
    (void)events;
    conn *c = p->data;
    uint64_t v;
    ssize_t got = status;
    while (status == 0 && (got = ferry_recv(c->ch, &v, sizeof v, FERRY_NOW)) == sizeof v) {
        v *= 2;
        if (ferry_send(c->ch, &v, sizeof v, SEC) == 0) served++;
    }
    if (status < 0 || got != -EAGAIN) { /* -EPIPE: the client is done */
        uv_poll_stop(p);
        uv_close((uv_handle_t *)p, on_closed);
    }
}

static void on_listener(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    ferry_chan *ch;
    while (ferry_accept(listener, &ch, FERRY_NOW) == 0) {
        conn *c = calloc(1, sizeof *c);
        c->ch = ch;
        uv_poll_init(p->loop, &c->poll, ferry_chan_poll_fd(ch));
        c->poll.data = c;
        uv_poll_start(&c->poll, UV_READABLE, on_chan);
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

static void on_guard(uv_timer_t *t)
{
    fprintf(stderr, "libuv_echo: not done after 20 s\n");
    uv_stop(t->loop);
}

static int client(const char *url)
{
    ferry_chan *ch;
    if (ferry_chan_open(url, NULL, &ch, 10 * SEC) < 0) return 1;
    for (uint64_t i = 1; i <= REQS; i++) {
        uint64_t v = i;
        if (ferry_send(ch, &v, sizeof v, 10 * SEC) < 0) return 1;
        if (ferry_recv(ch, &v, sizeof v, 10 * SEC) != sizeof v || v != 2 * i) return 1;
    }
    ferry_chan_close(ch);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char url[64];
    snprintf(url, sizeof url, "shm://@ferry-uv-%d", (int)getpid());
    int rc = ferry_listen(url, NULL, &listener);
    if (rc < 0) {
        fprintf(stderr, "listen: %s\n", ferry_strerror(rc));
        return 1;
    }
    pid_t kids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        if ((kids[i] = fork()) == 0) _exit(client(url));

    uv_loop_t *loop = uv_default_loop();
    uv_poll_t lp;
    uv_poll_init(loop, &lp, ferry_listener_poll_fd(listener));
    uv_poll_start(&lp, UV_READABLE, on_listener);
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 1, 1);
    uv_timer_t guard; /* a bound: a stuck run fails instead of hanging */
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 20000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_poll_stop(&lp);
    uv_close((uv_handle_t *)&lp, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* let the closes finish */
    uv_loop_close(loop);
    ferry_listener_close(listener);
    int failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    printf("libuv_echo: %ld requests served in a libuv loop (%ld timer ticks meanwhile), %d "
           "clients failed\n",
           served, ticks, failed);
    return failed || served != CLIENTS * REQS;
}
