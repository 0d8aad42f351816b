// SPDX-License-Identifier: MIT
/*
 * rpctest.h — shared pieces of the RPC tests: the request format and the transform the
 * servers apply, so each reply proves which request it answers.
 * A request: u32 cmd, u32 arg, then payload bytes. CMD_ECHO's reply is the payload with
 * every byte b turned into b ^ 0x5A, then the 8-byte tag 0xF00D0000 + arg.
 */
#ifndef FERRY_RPCTEST_H
#define FERRY_RPCTEST_H

#include "testutil.h"

#include <ferry/ferry.h>

#include <stdint.h>
#include <time.h>

enum {
    CMD_ECHO = 0,    /* reply transform(payload) */
    CMD_SLEEP = 1,   /* sleep arg ms, then reply like ECHO */
    CMD_BIG = 2,     /* reply arg bytes of 0xAB */
    CMD_TWICE = 3,   /* reply, then reply again (-ENOENT) and to unknown ids (-ENOENT) */
    CMD_COUNT = 4,   /* reply u64: one-way messages seen so far */
    CMD_NOREPLY = 5, /* never reply */
    CMD_FD = 8,      /* write "x" to the request's fd, reply with that fd, close it */
    CMD_RETRY = 9    /* a reply of arg bytes (-EMSGSIZE: the id stays), then like ECHO */
};

typedef struct req_head {
    uint32_t cmd, arg;
} req_head;

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Build a request into buf; returns its length. The payload is derived from seed. */
static inline size_t make_req(uint8_t *buf, uint32_t cmd, uint32_t arg, uint64_t seed, size_t plen)
{
    req_head h = {cmd, arg};
    memcpy(buf, &h, sizeof h);
    for (size_t i = 0; i < plen; i++)
        buf[sizeof h + i] = (uint8_t)(seed * 131 + i * 7 + (seed >> 8));
    return sizeof h + plen;
}

/* The reply expected for an echo of req (len bytes). */
static inline size_t expect_echo(const uint8_t *req, size_t len, uint8_t *out)
{
    req_head h;
    memcpy(&h, req, sizeof h);
    size_t plen = len - sizeof h;
    for (size_t i = 0; i < plen; i++) out[i] = req[sizeof h + i] ^ 0x5A;
    uint64_t tag = 0xF00D0000u + h.arg;
    memcpy(out + plen, &tag, sizeof tag);
    return plen + sizeof tag;
}

static inline void sleep_ms_(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/* Answer one request the standard way. Returns 0, or what ferry_reply said. */
static inline int serve_one(ferry_rpc_server *s, ferry_rpc_request *rq, uint64_t *oneways)
{
    static uint8_t out[1 << 17];
    if (rq->oneway) {
        (*oneways)++;
        return 0;
    }
    req_head h;
    CHECK(rq->msg.len >= sizeof h);
    memcpy(&h, rq->msg.data, sizeof h);
    ferry_msg r = {0};
    r.data = out;
    switch (h.cmd) {
    case CMD_NOREPLY:
        return 0;
    case CMD_SLEEP:
        sleep_ms_((int)h.arg);
        /* fall through */
    case CMD_ECHO:
        r.len = expect_echo(rq->msg.data, rq->msg.len, out);
        break;
    case CMD_BIG:
        memset(out, 0xAB, h.arg);
        r.len = h.arg;
        break;
    case CMD_COUNT:
        memcpy(out, oneways, sizeof *oneways);
        r.len = sizeof *oneways;
        break;
    case CMD_TWICE:
        r.len = expect_echo(rq->msg.data, rq->msg.len, out);
        CHECK_EQ(ferry_reply(s, rq->id, &r, FERRY_FOREVER), 0);
        CHECK_EQ(ferry_reply(s, rq->id, &r, FERRY_FOREVER), -ENOENT);
        CHECK_EQ(ferry_reply(s, rq->id + 1000000, &r, FERRY_FOREVER), -ENOENT);
        CHECK_EQ(ferry_reply(s, 0, &r, FERRY_FOREVER), -ENOENT);
        return 0;
    case CMD_RETRY: {
        uint8_t *big = calloc(1, h.arg);
        CHECK(big != NULL);
        ferry_msg b = {.data = big, .len = h.arg};
        CHECK_EQ(ferry_reply(s, rq->id, &b, FERRY_FOREVER), -EMSGSIZE);
        free(big);
        r.len = expect_echo(rq->msg.data, rq->msg.len, out);
        break;
    }
    case CMD_FD: {
        CHECK_EQ(rq->msg.nfds, 1);
        CHECK_EQ(write(rq->msg.fds[0], "x", 1), 1);
        r.len = 1;
        out[0] = 'f';
        r.nfds = 1;
        r.fds[0] = rq->msg.fds[0];
        int rc = ferry_reply(s, rq->id, &r, FERRY_FOREVER);
        close(rq->msg.fds[0]);
        return rc;
    }
    default:
        CHECK(0);
    }
    return ferry_reply(s, rq->id, &r, FERRY_FOREVER);
}

#endif
