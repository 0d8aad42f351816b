// SPDX-License-Identifier: MIT
/*
 * brokerutil.h — a real ferryd for a test: broker_start() makes a private directory,
 * points FERRY_BROKER at a socket in it, turns autospawn off (FERRY_NO_AUTOSPAWN=1, so a
 * test never talks to another ferryd) and starts the ferryd this build made
 * (FERRYD_PATH) in the foreground, waiting until it accepts connections.
 * broker_stop() sends SIGTERM, requires a clean exit and removes the directory (a test
 * that fails a CHECK has its ferryd killed and directory removed at exit);
 * broker_kill() is kill -9 (the socket file stays, as after a crash).
 * Include after testutil.h.
 */
#ifndef FERRY_BROKERUTIL_H
#define FERRY_BROKERUTIL_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct test_broker {
    pid_t pid;
    char dir[64];
    char sock[100];
    char policy[100];
} test_broker;

static inline int broker_connectable(const char *path)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/* Start ferryd on b->sock (made by broker_init) with extra arguments (NULL-terminated). */
static inline void broker_run(test_broker *b, const char *const *extra)
{
    const char *argv[16] = {FERRYD_PATH, "--foreground", "--socket",
                            b->sock,     "--policy",     b->policy};
    int n = 6;
    for (; extra && *extra && n < 15; extra++) argv[n++] = *extra;
    argv[n] = NULL;
    b->pid = fork();
    CHECK(b->pid >= 0);
    if (b->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies takes its ferryd along */
        execv(FERRYD_PATH, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500 && !broker_connectable(b->sock); i++) sleep_ms(10);
    CHECK(broker_connectable(b->sock));
}

static void broker_remove_files(test_broker *b);

/* A failed CHECK exits: take the test's ferryd and directory along (in the process that
 * started them only: a forked child's exit must not). */
static test_broker *broker_current;
static pid_t broker_owner;
static void broker_atexit(void)
{
    if (!broker_current || getpid() != broker_owner) return;
    if (broker_current->pid > 0) kill(broker_current->pid, SIGKILL);
    broker_remove_files(broker_current);
}

/* A private directory and socket path; FERRY_BROKER and FERRY_NO_AUTOSPAWN set. The
 * policy file is dir/policy.conf (absent unless the test writes it). */
static inline void broker_init(test_broker *b)
{
    if (!broker_current) atexit(broker_atexit);
    broker_current = b;
    broker_owner = getpid();
    snprintf(b->dir, sizeof b->dir, "/tmp/ferry-test-XXXXXX");
    CHECK(mkdtemp(b->dir) != NULL);
    chmod(b->dir, 0755); /* tests that drop to other uids must reach the socket */
    snprintf(b->sock, sizeof b->sock, "%s/ferryd.sock", b->dir);
    snprintf(b->policy, sizeof b->policy, "%s/policy.conf", b->dir);
    setenv("FERRY_BROKER", b->sock, 1);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    b->pid = -1;
}

static inline void broker_start(test_broker *b)
{
    broker_init(b);
    broker_run(b, NULL);
}

static inline void broker_kill(test_broker *b)
{
    if (b->pid <= 0) return;
    kill(b->pid, SIGKILL);
    int st;
    waitpid(b->pid, &st, 0);
    b->pid = -1;
}

/* Stop ferryd (it must exit 0 on SIGTERM) and remove everything in the directory. */
static inline void broker_stop(test_broker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        wait_ok(b->pid);
        b->pid = -1;
    }
    broker_current = NULL;
    broker_remove_files(b);
    CHECK(access(b->dir, F_OK) < 0);
}

static void broker_remove_files(test_broker *b)
{
    char p[200];
    const char *files[] = {"ferryd.sock", "ferryd.sock.lock", "policy.conf", "policy.conf.tmp",
                           "ferryd.log"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", b->dir, files[i]);
        unlink(p);
    }
    rmdir(b->dir);
}

#endif
