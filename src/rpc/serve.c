// SPDX-License-Identifier: MIT
/*
 * serve.c — ferry_serve: a ready thread-pool RPC server (ferry.h, "RPC").
 *
 * Rules:
 *  - nthreads workers share one epoll set holding the listener's fd, every connection's
 *    channel fd (both EPOLLONESHOT) and a stop eventfd (level-triggered, so every worker
 *    sees it). The worker that gets a connection's event holds it alone: it receives one
 *    request (never waiting), re-arms the fd and only then runs the handler, so the next
 *    request of the same connection can go to another worker meanwhile.
 *  - A connection node is removed only by the worker holding its (disarmed) event, when
 *    receiving fails for good (-EPIPE: the client left): no other worker can hold a
 *    pointer to the node then. The workers' own references keep the ferry_rpc_server
 *    alive while they use it; the epoll set's reference is dropped with the node.
 *  - The node list is guarded by mu (the one memory-ordering point besides the kernel's
 *    epoll hand-over); the stop path joins every worker before freeing anything.
 */
#define _GNU_SOURCE
#include <ferry/ferry.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct node {
    ferry_rpc_server *s;
    int fd;
    struct node *prev, *next;
};

struct ferry_rpc_service {
    ferry_listener *l;
    ferry_rpc_handler handler;
    void *ctx;
    int ep, stopfd;
    unsigned nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    struct node *nodes;
};

static char stop_mark, listen_mark;

static int arm(ferry_rpc_service *v, int op, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = ptr};
    return epoll_ctl(v->ep, op, fd, &ev) < 0 ? -errno : 0;
}

static void accept_all(ferry_rpc_service *v)
{
    for (;;) {
        ferry_chan *ch;
        if (ferry_accept(v->l, &ch, FERRY_NOW) < 0) return;
        struct node *nd = calloc(1, sizeof *nd);
        if (!nd || ferry_rpc_server_create(ch, &nd->s) < 0) {
            free(nd);
            ferry_chan_close(ch);
            continue;
        }
        nd->fd = ferry_rpc_server_poll_fd(nd->s);
        pthread_mutex_lock(&v->mu);
        nd->next = v->nodes;
        if (v->nodes) v->nodes->prev = nd;
        v->nodes = nd;
        pthread_mutex_unlock(&v->mu);
        if (nd->fd < 0 || arm(v, EPOLL_CTL_ADD, nd->fd, nd) < 0) {
            pthread_mutex_lock(&v->mu);
            if (nd->prev)
                nd->prev->next = nd->next;
            else
                v->nodes = nd->next;
            if (nd->next) nd->next->prev = nd->prev;
            pthread_mutex_unlock(&v->mu);
            ferry_rpc_server_unref(nd->s);
            free(nd);
        }
    }
}

static void drop_node(ferry_rpc_service *v, struct node *nd)
{
    epoll_ctl(v->ep, EPOLL_CTL_DEL, nd->fd, NULL);
    pthread_mutex_lock(&v->mu);
    if (nd->prev)
        nd->prev->next = nd->next;
    else
        v->nodes = nd->next;
    if (nd->next) nd->next->prev = nd->prev;
    pthread_mutex_unlock(&v->mu);
    ferry_rpc_server_unref(nd->s);
    free(nd);
}

static void *worker(void *arg)
{
    ferry_rpc_service *v = arg;
    size_t cap = 4096;
    void *buf = malloc(cap);
    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(v->ep, &ev, 1, -1);
        if (n <= 0) continue;
        if (ev.data.ptr == &stop_mark) break;
        if (ev.data.ptr == &listen_mark) {
            accept_all(v);
            arm(v, EPOLL_CTL_MOD, ferry_listener_poll_fd(v->l), &listen_mark);
            continue;
        }
        struct node *nd = ev.data.ptr;
        ferry_rpc_server *s = ferry_rpc_server_ref(nd->s);
        ferry_rpc_request rq;
        memset(&rq, 0, sizeof rq);
        ssize_t rc;
        for (;;) {
            rq.msg.data = buf;
            rq.msg.cap = buf ? cap : 0;
            rc = ferry_recv_request(s, &rq, FERRY_NOW);
            if (rc != -EMSGSIZE || rq.msg.len <= cap) break;
            void *nb = realloc(buf, rq.msg.len);
            if (!nb) break; /* -EMSGSIZE: the connection is dropped below */
            buf = nb;
            cap = rq.msg.len;
        }
        if (rc >= 0 || rc == -EAGAIN) {
            arm(v, EPOLL_CTL_MOD, nd->fd, nd); /* nd is not ours to touch after this */
            if (rc >= 0) v->handler(s, &rq, v->ctx);
        } else {
            drop_node(v, nd);
        }
        ferry_rpc_server_unref(s);
    }
    free(buf);
    return NULL;
}

int ferry_serve(const char *name, ferry_rpc_handler handler, void *ctx, unsigned nthreads,
                const ferry_policy *policy, const ferry_chan_opts *opts, ferry_rpc_service **out,
                int64_t timeout_ns)
{
    if (!handler || !nthreads || nthreads > 1024 || !out) return -EINVAL;
    ferry_rpc_service *v = calloc(1, sizeof *v);
    if (!v) return -ENOMEM;
    v->handler = handler;
    v->ctx = ctx;
    v->ep = v->stopfd = -1;
    pthread_mutex_init(&v->mu, NULL);
    int rc = -ENOMEM;
    v->threads = calloc(nthreads, sizeof *v->threads);
    if (!v->threads) goto fail;
    if ((rc = ferry_register(name, policy, opts, &v->l, timeout_ns)) < 0) goto fail;
    v->ep = epoll_create1(EPOLL_CLOEXEC);
    v->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->ep < 0 || v->stopfd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stop_mark};
    if (epoll_ctl(v->ep, EPOLL_CTL_ADD, v->stopfd, &ev) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = arm(v, EPOLL_CTL_ADD, ferry_listener_poll_fd(v->l), &listen_mark)) < 0) goto fail;
    for (; v->nthreads < nthreads; v->nthreads++) {
        if ((rc = -pthread_create(&v->threads[v->nthreads], NULL, worker, v)) < 0) {
            ferry_rpc_service_close(v);
            return rc;
        }
    }
    *out = v;
    return 0;
fail:
    ferry_rpc_service_close(v);
    return rc;
}

void ferry_rpc_service_close(ferry_rpc_service *v)
{
    if (!v) return;
    if (v->stopfd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(v->stopfd, &one, sizeof one);
        (void)w;
    }
    for (unsigned i = 0; i < v->nthreads; i++) pthread_join(v->threads[i], NULL);
    while (v->nodes) drop_node(v, v->nodes);
    ferry_listener_close(v->l);
    if (v->ep >= 0) close(v->ep);
    if (v->stopfd >= 0) close(v->stopfd);
    pthread_mutex_destroy(&v->mu);
    free(v->threads);
    free(v);
}
