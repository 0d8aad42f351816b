// SPDX-License-Identifier: MIT
/*
 * bench_iox.c — the `iceoryx` row of `ferry bench` (see bench_lib.h): iceoryx 2.0 through
 * its C binding, publish/subscribe both ways (service "ferry-bench", instance = the
 * measurement, events "ping" from the measuring side and "pong" from the peer), receiving
 * by polling (iox_sub_take_chunk in a loop with `pause`), as iceoryx's own latency
 * benchmark does. RouDi is the bench's own (bench_iox_roudi.c).
 *
 * What is measured is a copying channel, like ferry-shm: the sender loans a chunk, copies
 * the payload into it and publishes it; the receiver takes the chunk, copies the payload
 * out and releases it. (ferry-shm-zerocopy is the loan/peek counterpart.)
 * No message is lost: history 0, but each side waits until its publisher has the other's
 * subscriber and its subscriber is subscribed before the first message; publishers wait
 * for a full subscriber queue (WAIT_FOR_CONSUMER / BLOCK_PRODUCER). The end marker is a
 * message whose first 8 bytes are END (the C binding does not tell a chunk's size).
 * Each child registers with RouDi as ferry-iox-<bench pid>-<its pid> and leaves through
 * exit(), whose handlers deregister it (after _exit RouDi keeps a dead application, and
 * its shutdown then aborts).
 */
#define _POSIX_C_SOURCE 200809L /* getppid, nanosleep */
#include "bench_lib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>

#define END            UINT64_MAX /* never a sequence number here */
#define CONNECT_NS     ((int64_t)10 * 1000 * 1000 * 1000)
#define POLLS_PER_LOOK 1024 /* polls between two looks at the clock */
#define E_LOAN         1000 /* error codes of this file, beyond errno's */

typedef struct isock {
    iox_pub_storage_t pub_storage;
    iox_sub_storage_t sub_storage;
    iox_pub_t pub;
    iox_sub_t sub;
    size_t size;
} isock;

static int runtime_up; /* this child has registered with RouDi */

static const char *iox_error(int code)
{
    if (-code == E_LOAN) return "iox_pub_loan_chunk failed";
    return strerror(-code);
}

__attribute__((noreturn)) static void iox_close_and_exit(void *s, int code)
{
    isock *k = s;
    if (k) {
        if (k->sub) iox_sub_deinit(k->sub);
        if (k->pub) iox_pub_deinit(k->pub);
        free(k);
    }
    if (!runtime_up) _exit(code);
    /* exit(): the runtime's destructor deregisters this application from RouDi. Nothing
     * else runs: the driver registers no atexit handler and flushed stdio before fork. */
    exit(code);
}

static void *iox_open_side(const void *arg, const bench_job *job, bench_rdv *rdv, int side,
                           char *why, size_t len)
{
    char name[64], instance[64];
    (void)arg;
    isock *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    k->size = job->size;
    iox_set_loglevel(Iceoryx_LogLevel_Warn);
    snprintf(name, sizeof name, "ferry-iox-%ld-%ld", (long)getppid(), (long)getpid());
    iox_runtime_init(name);
    runtime_up = 1;

    iox_pub_options_t po;
    iox_pub_options_init(&po);
    po.historyCapacity = 0;
    po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = job->size <= 4096 ? 256 : 16; /* bench_iox_roudi.c sizes the pools */
    so.historyRequest = 0;
    so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    snprintf(instance, sizeof instance, "%u", rdv->serial);
    k->pub =
        iox_pub_init(&k->pub_storage, "ferry-bench", instance, side == 0 ? "ping" : "pong", &po);
    k->sub =
        iox_sub_init(&k->sub_storage, "ferry-bench", instance, side == 0 ? "pong" : "ping", &so);

    /* Both directions connected before the first message (history 0 would lose it). */
    int64_t deadline = bench_now_ns() + CONNECT_NS;
    while (!iox_pub_has_subscribers(k->pub) ||
           iox_sub_get_subscription_state(k->sub) != SubscribeState_SUBSCRIBED) {
        if (bench_now_ns() > deadline) {
            snprintf(why, len, "iceoryx: no connection after %lld s (RouDi running?)",
                     (long long)(CONNECT_NS / 1000000000));
            iox_close_and_exit(k, 1);
        }
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    return k;
}

static int publish(isock *k, const void *p, uint64_t marker)
{
    void *chunk = NULL;
    if (iox_pub_loan_chunk(k->pub, &chunk, (uint32_t)k->size) != AllocationResult_SUCCESS)
        return -E_LOAN;
    if (p)
        memcpy(chunk, p, k->size);
    else
        memcpy(chunk, &marker, sizeof marker);
    iox_pub_publish_chunk(k->pub, chunk);
    return 0;
}

static int iox_send(void *s, const void *p, size_t n)
{
    isock *k = s;
    if (n != k->size) return -EMSGSIZE;
    return publish(k, p, 0);
}

static int iox_end(void *s)
{
    return publish(s, NULL, END);
}

static ssize_t iox_recv(void *s, void *p, size_t cap)
{
    isock *k = s;
    const void *chunk = NULL;
    int64_t deadline = 0;
    if (cap < k->size) return -EMSGSIZE;
    for (unsigned polls = 1;; polls++) {
        if (iox_sub_take_chunk(k->sub, &chunk) == ChunkReceiveResult_SUCCESS) break;
        bench_cpu_relax();
        if (polls % POLLS_PER_LOOK == 0) {
            int64_t t = bench_now_ns();
            if (deadline == 0)
                deadline = t + BENCH_OP_TIMEOUT_NS;
            else if (t > deadline)
                return -ETIMEDOUT;
        }
    }
    uint64_t first;
    memcpy(&first, chunk, sizeof first);
    if (first != END) memcpy(p, chunk, k->size);
    iox_sub_release_chunk(k->sub, chunk);
    return first == END ? 0 : (ssize_t)k->size;
}

const lib_ops BENCH_LIB_IOX = {
    .needs_dir = 0,
    .open = iox_open_side,
    .send = iox_send,
    .end = iox_end,
    .recv = iox_recv,
    .close_and_exit = iox_close_and_exit,
    .error = iox_error,
    .prepare = bench_iox_prepare,
};
