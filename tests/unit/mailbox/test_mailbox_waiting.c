// SPDX-License-Identifier: MIT
/*
 * test_mailbox_waiting — ferry_mailbox_counters.waiting: 0 with nobody waiting; the
 * receivers blocked now (threads of this process, another process), back down as they
 * get messages or time out; a receiver killed while waiting is not counted (its entry
 * in the FIFO of waiters is still there until a receiver reclaims it); an older
 * caller's struct (without the field) gets its prefix and nothing past it; and counts a
 * hostile sharer writes (every FIFO place taken, rx_wait huge) stay within 4194304
 * (PID_MAX_LIMIT). The offsets come from the test hooks (src/mailbox/internal.h).
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "testutil.h"

#include <ferry/ferry.h>

#include "core/abi.h"
#include "core/proc.h"
#include "mailbox/internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000 * 1000)

static ferry_mailbox *make(void)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = 16;
    o.max_msg = 16;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    return mb;
}

static uint64_t waiting(ferry_mailbox *mb)
{
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.size, sizeof st);
    return st.waiting;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (at most 10 s) until the mailbox shows n waiting receivers. */
static void until_waiting(ferry_mailbox *mb, uint64_t n)
{
    for (int i = 0; waiting(mb) != n; i++) {
        CHECK(i < 1000);
        sleep_ms(10);
    }
}

static void *receiver(void *arg)
{
    int v = 0;
    return (void *)(intptr_t)ferry_mailbox_recv(arg, 0, NULL, &v, sizeof v, 20000 * MS);
}

static void t_threads(void)
{
    ferry_mailbox *mb = make();
    CHECK_EQ(waiting(mb), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_create(&t[i], NULL, receiver, mb), 0);
        until_waiting(mb, (uint64_t)i + 1);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_mailbox_send(mb, 1, &i, sizeof i, FERRY_NOW), 0);
        until_waiting(mb, 2 - (uint64_t)i);
    }
    for (int i = 0; i < 3; i++) {
        void *rc;
        CHECK_EQ(pthread_join(t[i], &rc), 0);
        CHECK_EQ((intptr_t)rc, sizeof(int));
    }
    int v;
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, 30 * MS), -ETIMEDOUT);
    CHECK_EQ(waiting(mb), 0); /* a receive that timed out waits no more */
    /* an older caller (its struct ends at max_msg): nothing past its size is written */
    struct {
        ferry_mailbox_counters c;
    } old;
    memset(&old, 0xa5, sizeof old);
    old.c.size = FERRY__MAILBOX_COUNTERS_V0;
    CHECK_EQ(ferry_mailbox_stats(mb, &old.c), 0);
    CHECK_EQ(old.c.size, FERRY__MAILBOX_COUNTERS_V0);
    CHECK_EQ(old.c.waiting, UINT64_C(0xa5a5a5a5a5a5a5a5));
    ferry_mailbox_close(mb);
}

/* The memfd out of the carrier (what adopt does, as tests/security/test_scribble_mailbox.c
 * does), mapped read-write; *l: where the words are. */
static uint8_t *map_obj(ferry_mailbox *mb, ferry__mailbox_layout *l)
{
    ferry__mailbox_get_layout(mb, l);
    char buf[8];
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    CHECK(recvmsg(ferry_mailbox_fd(mb), &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) > 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS);
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof fds);
    uint8_t *p = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    CHECK(p != MAP_FAILED);
    close(fds[0]);
    close(fds[1]);
    return p;
}

/* Registered entries of the FIFO of waiters. */
static uint32_t registered(const uint8_t *m, const ferry__mailbox_layout *l)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < l->rxq_n; k++) {
        uint64_t ticket;
        memcpy(&ticket, m + l->rxq_off + (size_t)k * l->rxq_entry_len, 8);
        n += ticket != 0;
    }
    return n;
}

/* A receiver in another process counts; killed while waiting, it does not, though its
 * entry is still registered (nobody reclaimed it) and rx_wait still counts it. */
static void t_dead(void)
{
    ferry_mailbox *mb = make();
    ferry__mailbox_layout l;
    uint8_t *m = map_obj(mb, &l);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int v;
        ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, 20000 * MS);
        _exit(1);
    }
    until_waiting(mb, 1);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(registered(m, &l), 1);
    CHECK_EQ(__atomic_load_n((uint32_t *)(m + l.rx_wait_off), __ATOMIC_RELAXED), 1);
    CHECK_EQ(waiting(mb), 0);
    /* a receiver that finds nothing reclaims the entry; then one live waiter again */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, receiver, mb), 0);
    until_waiting(mb, 1);
    int one = 1;
    CHECK_EQ(ferry_mailbox_send(mb, 1, &one, sizeof one, FERRY_NOW), 0);
    void *rc;
    CHECK_EQ(pthread_join(t, &rc), 0);
    CHECK_EQ((intptr_t)rc, sizeof(int));
    CHECK_EQ(registered(m, &l), 0);
    CHECK_EQ(waiting(mb), 0);
    munmap(m, l.size);
    ferry_mailbox_close(mb);
}

static void t_hostile(void)
{
    ferry_mailbox *mb = make();
    ferry__mailbox_layout l;
    uint8_t *m = map_obj(mb, &l);
    uint64_t me = ferry__proc_self();
    /* every place of the FIFO taken by a live process (ours), rx_wait as a sharer writes */
    for (uint32_t k = 0; k < l.rxq_n; k++) {
        uint8_t *e = m + l.rxq_off + (size_t)k * l.rxq_entry_len;
        uint64_t ticket = k + 1;
        memcpy(e, &ticket, 8);
        memcpy(e + 8, &me, 8);
    }
    static const uint32_t rx[][2] = {{0, 64},
                                     {64, 64},
                                     {100, 100},
                                     {1u << 22, 1u << 22},
                                     {(1u << 22) + 64, 1u << 22},
                                     {UINT32_MAX, 1u << 22}};
    for (size_t i = 0; i < sizeof rx / sizeof *rx; i++) {
        __atomic_store_n((uint32_t *)(m + l.rx_wait_off), rx[i][0], __ATOMIC_RELAXED);
        CHECK_EQ(waiting(mb), rx[i][1]);
    }
    /* owners that are no process: not counted; a free place: rx_wait beyond is not looked at */
    for (uint32_t k = 0; k < l.rxq_n; k++) {
        uint64_t bogus = k & 1 ? 0 : UINT64_MAX;
        memcpy(m + l.rxq_off + (size_t)k * l.rxq_entry_len + 8, &bogus, 8);
    }
    __atomic_store_n((uint32_t *)(m + l.rx_wait_off), 100, __ATOMIC_RELAXED);
    CHECK_EQ(waiting(mb), 36); /* none alive, 100 - 64 beyond */
    memset(m + l.rxq_off, 0, (size_t)l.rxq_n * l.rxq_entry_len);
    __atomic_store_n((uint32_t *)(m + l.rx_wait_off), UINT32_MAX, __ATOMIC_RELAXED);
    CHECK_EQ(waiting(mb), 0);
    __atomic_store_n((uint32_t *)(m + l.rx_wait_off), 0, __ATOMIC_RELAXED);
    munmap(m, l.size);
    ferry_mailbox_close(mb);
}

static void run(const char *name, void (*fn)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn();
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s\n", name);
}

int main(void)
{
    run("threads", t_threads);
    run("dead", t_dead);
    run("hostile", t_hostile);
    return 0;
}
