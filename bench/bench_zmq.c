// SPDX-License-Identifier: MIT
/*
 * bench_zmq.c — the ZeroMQ rows of `ferry bench` (see bench_lib.h): two ZMQ_PAIR sockets,
 *   zeromq-ipc  over ipc:// in a private directory (the rendezvous's), and
 *   zeromq-tcp  over tcp://127.0.0.1 on a port the kernel picks (libzmq sets TCP_NODELAY).
 * Each child makes its own context (one I/O thread) after fork. zmq_send copies the
 * payload into a message and zmq_recv copies it out. The end marker is an empty message.
 * Options: send and receive timeouts of BENCH_OP_TIMEOUT_NS (no unbounded wait), linger
 * 1 s, and high-water marks of 1000 messages (the default) capped to 16 MiB of payload,
 * so a 1 MiB stream does not queue gigabytes.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

#define HWM_BYTES ((size_t)16 << 20)

typedef struct zsock {
    void *ctx, *sock;
} zsock;

static const char *zmq_error(int code)
{
    return zmq_strerror(-code);
}

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

__attribute__((noreturn)) static void zmq_close_and_exit(void *s, int code)
{
    zsock *z = s;
    if (z) {
        if (z->sock) zmq_close(z->sock);
        if (z->ctx) zmq_ctx_term(z->ctx);
        free(z);
    }
    _exit(code);
}

static void *zmq_open_side(const void *arg, const bench_job *job, bench_rdv *rdv, int side,
                           char *why, size_t len)
{
    const char *transport = arg;
    zsock *z = calloc(1, sizeof *z);
    int hwm = (int)(HWM_BYTES / job->size);
    if (hwm > 1000) hwm = 1000;
    if (hwm < 4) hwm = 4;
    if (!z || !(z->ctx = zmq_ctx_new()) || !(z->sock = zmq_socket(z->ctx, ZMQ_PAIR))) {
        snprintf(why, len, "zmq socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    const int tmo_ms = (int)(BENCH_OP_TIMEOUT_NS / 1000000);
    if (set_int(z->sock, ZMQ_SNDTIMEO, tmo_ms) || set_int(z->sock, ZMQ_RCVTIMEO, tmo_ms) ||
        set_int(z->sock, ZMQ_LINGER, 1000) || set_int(z->sock, ZMQ_SNDHWM, hwm) ||
        set_int(z->sock, ZMQ_RCVHWM, hwm)) {
        snprintf(why, len, "zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (side == 0) {
        char ep[sizeof rdv->endpoint];
        size_t eplen = sizeof ep;
        if (strcmp(transport, "tcp") == 0)
            snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
        else
            snprintf(ep, sizeof ep, "ipc://%s/zmq.sock", rdv->dir);
        if (zmq_bind(z->sock, ep) != 0) {
            snprintf(why, len, "zmq_bind %s: %s", ep, zmq_strerror(zmq_errno()));
            goto fail;
        }
        /* The endpoint as bound (the port the kernel chose). */
        if (zmq_getsockopt(z->sock, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0) {
            snprintf(why, len, "ZMQ_LAST_ENDPOINT: %s", zmq_strerror(zmq_errno()));
            goto fail;
        }
        bench_rdv_publish(rdv, ep);
    } else {
        const char *ep = bench_rdv_wait(rdv);
        if (!ep) {
            snprintf(why, len, "no endpoint from the other side");
            goto fail;
        }
        if (zmq_connect(z->sock, ep) != 0) {
            snprintf(why, len, "zmq_connect %s: %s", ep, zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    return z;
fail:
    if (z && z->sock) zmq_close(z->sock);
    if (z && z->ctx) zmq_ctx_term(z->ctx);
    free(z);
    return NULL;
}

static int zmq_send_one(void *s, const void *p, size_t n)
{
    zsock *z = s;
    for (;;) {
        if (zmq_send(z->sock, p, n, 0) == (int)n) return 0;
        if (zmq_errno() != EINTR) return -zmq_errno();
    }
}

static int zmq_end(void *s)
{
    return zmq_send_one(s, "", 0);
}

static ssize_t zmq_recv_one(void *s, void *p, size_t cap)
{
    zsock *z = s;
    for (;;) {
        int n = zmq_recv(z->sock, p, cap, 0);
        if (n > (int)cap) return -EMSGSIZE; /* zmq_recv truncates and reports the length */
        if (n >= 0) return n;
        if (zmq_errno() != EINTR) return -zmq_errno();
    }
}

const lib_ops BENCH_LIB_ZMQ = {
    .needs_dir = 1,
    .open = zmq_open_side,
    .send = zmq_send_one,
    .end = zmq_end,
    .recv = zmq_recv_one,
    .close_and_exit = zmq_close_and_exit,
    .error = zmq_error,
};
