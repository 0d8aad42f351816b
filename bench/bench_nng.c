// SPDX-License-Identifier: MIT
/*
 * bench_nng.c — the NNG row of `ferry bench` (see bench_lib.h): `nng-ipc`, two pair1
 * sockets over ipc:// in a private directory (the rendezvous's). Each child opens its own
 * socket after fork (NNG starts its threads then). nng_send copies the payload into a
 * message and nng_recv copies it out. The end marker is an empty message.
 * Options: send and receive timeouts of BENCH_OP_TIMEOUT_NS, no receive size limit (NNG's
 * default refuses messages above 1 MiB), and send and receive buffers of as many messages
 * as ZeroMQ's high-water marks here (bench_zmq.c: 1000, capped to 16 MiB of payload)
 * instead of NNG's unbuffered default, so the two libraries queue alike.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#define BUF_BYTES ((size_t)16 << 20)

typedef struct nsock {
    nng_socket s;
    int open;
} nsock;

static const char *nng_error(int code)
{
    return nng_strerror(-code);
}

__attribute__((noreturn)) static void nng_close_and_exit(void *p, int code)
{
    nsock *n = p;
    if (n) {
        if (n->open) nng_close(n->s);
        free(n);
    }
    _exit(code);
}

static void *nng_open_side(const void *arg, const bench_job *job, bench_rdv *rdv, int side,
                           char *why, size_t len)
{
    nsock *n = calloc(1, sizeof *n);
    int r = 0;
    (void)arg;
    int depth = (int)(BUF_BYTES / job->size);
    if (depth > 1000) depth = 1000;
    if (depth < 4) depth = 4;
    if (!n) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    if ((r = nng_pair1_open(&n->s)) != 0) {
        snprintf(why, len, "nng_pair1_open: %s", nng_strerror(r));
        goto fail;
    }
    n->open = 1;
    const nng_duration tmo_ms = (nng_duration)(BENCH_OP_TIMEOUT_NS / 1000000);
    if ((r = nng_socket_set_ms(n->s, NNG_OPT_SENDTIMEO, tmo_ms)) != 0 ||
        (r = nng_socket_set_ms(n->s, NNG_OPT_RECVTIMEO, tmo_ms)) != 0 ||
        (r = nng_socket_set_size(n->s, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
        (r = nng_socket_set_int(n->s, NNG_OPT_SENDBUF, depth)) != 0 ||
        (r = nng_socket_set_int(n->s, NNG_OPT_RECVBUF, depth)) != 0) {
        snprintf(why, len, "nng options: %s", nng_strerror(r));
        goto fail;
    }
    if (side == 0) {
        char url[sizeof rdv->endpoint];
        snprintf(url, sizeof url, "ipc://%s/nng.sock", rdv->dir);
        if ((r = nng_listen(n->s, url, NULL, 0)) != 0) {
            snprintf(why, len, "nng_listen %s: %s", url, nng_strerror(r));
            goto fail;
        }
        bench_rdv_publish(rdv, url);
    } else {
        const char *url = bench_rdv_wait(rdv);
        if (!url) {
            snprintf(why, len, "no endpoint from the other side");
            goto fail;
        }
        if ((r = nng_dial(n->s, url, NULL, 0)) != 0) {
            snprintf(why, len, "nng_dial %s: %s", url, nng_strerror(r));
            goto fail;
        }
    }
    return n;
fail:
    if (n->open) nng_close(n->s);
    free(n);
    return NULL;
}

static int nng_send_one(void *p, const void *buf, size_t len)
{
    nsock *n = p;
    int r = nng_send(n->s, (void *)buf, len, 0);
    return r == 0 ? 0 : -r;
}

static int nng_end(void *p)
{
    return nng_send_one(p, "", 0);
}

static ssize_t nng_recv_one(void *p, void *buf, size_t cap)
{
    nsock *n = p;
    size_t sz = cap;
    int r = nng_recv(n->s, buf, &sz, 0);
    if (r != 0) return -r;
    return sz > cap ? -NNG_EMSGSIZE : (ssize_t)sz;
}

const lib_ops BENCH_LIB_NNG = {
    .needs_dir = 1,
    .open = nng_open_side,
    .send = nng_send_one,
    .end = nng_end,
    .recv = nng_recv_one,
    .close_and_exit = nng_close_and_exit,
    .error = nng_error,
};
