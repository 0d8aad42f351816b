// SPDX-License-Identifier: MIT
/*
 * bench_rdv.c — where the two children of a bench_run_apart() measurement meet: a page
 * shared across fork that carries the endpoint the measuring side bound (e.g. a TCP port
 * the kernel chose), and optionally a private directory for socket files (mkdtemp under
 * $TMPDIR or /tmp), emptied and removed when the rendezvous is freed.
 *
 * Ordering: the binder writes the endpoint, then stores ready with release; the connecter
 * loads ready with acquire before it reads the endpoint. `ended` carries no data: relaxed.
 */
#define _DEFAULT_SOURCE /* mkdtemp, MAP_ANONYMOUS, nanosleep */
#include "bench_rdv.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define RDV_WAIT_NS ((int64_t)10 * 1000 * 1000 * 1000)

bench_rdv *bench_rdv_new(int with_dir, bench_result *res)
{
    bench_rdv *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) {
        bench_fail(res, "mmap: %s", strerror(errno));
        return NULL;
    }
    atomic_init(&r->ready, 0); /* before fork: fork orders it before the children */
    atomic_init(&r->ended, 0);
    static uint32_t serial;
    r->serial = serial++;
    r->endpoint[0] = r->dir[0] = '\0';
    if (with_dir) {
        const char *tmp = getenv("TMPDIR");
        int n =
            snprintf(r->dir, sizeof r->dir, "%s/ferry-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof r->dir) {
            bench_fail(res, "TMPDIR is too long for a socket path");
            munmap(r, sizeof *r);
            return NULL;
        }
        if (!mkdtemp(r->dir)) {
            bench_fail(res, "mkdtemp %s: %s", r->dir, strerror(errno));
            munmap(r, sizeof *r);
            return NULL;
        }
    }
    return r;
}

void bench_rdv_publish(bench_rdv *r, const char *endpoint)
{
    snprintf(r->endpoint, sizeof r->endpoint, "%s", endpoint);
    /* Release: the endpoint's bytes are visible to whoever sees ready. */
    atomic_store_explicit(&r->ready, 1, memory_order_release);
}

const char *bench_rdv_wait(bench_rdv *r)
{
    int64_t deadline = bench_now_ns() + RDV_WAIT_NS;
    /* Acquire: pairs with the release in bench_rdv_publish. */
    while (!atomic_load_explicit(&r->ready, memory_order_acquire)) {
        if (bench_now_ns() > deadline) return NULL;
        nanosleep(&(struct timespec){0, 200 * 1000}, NULL);
    }
    return r->endpoint;
}

void bench_rdv_end_received(bench_rdv *r)
{
    atomic_store_explicit(&r->ended, 1, memory_order_relaxed);
}

int bench_rdv_wait_end_received(bench_rdv *r)
{
    int64_t deadline = bench_now_ns() + BENCH_OP_TIMEOUT_NS;
    while (!atomic_load_explicit(&r->ended, memory_order_relaxed)) {
        if (bench_now_ns() > deadline) return -1;
        nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
    }
    return 0;
}

void bench_rdv_free(bench_rdv *r)
{
    if (!r) return;
    if (r->dir[0]) {
        /* A library may leave its socket file behind: remove whatever is there. */
        DIR *d = opendir(r->dir);
        struct dirent *e;
        char path[sizeof r->dir + 300];
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
            unlink(path);
        }
        if (d) closedir(d);
        rmdir(r->dir);
    }
    munmap(r, sizeof *r);
}
