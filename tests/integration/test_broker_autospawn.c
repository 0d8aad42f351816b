// SPDX-License-Identifier: MIT
/*
 * test_broker_autospawn — with no ferryd running, the first call that needs one starts
 * it: several processes asking at once end up with exactly one ferryd (its lock), which
 * serves them all; FERRY_NO_AUTOSPAWN=1 gives -ECONNREFUSED instead; the started ferryd
 * detaches and is stopped (SIGTERM) by the test, removing its socket.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <dirent.h>
#include <ferry/ferry.h>
#include <signal.h>

#define SEC ((int64_t)1000000000)

/* Is pid running (not gone, not a zombie waiting for a reaper that is in no hurry)? */
static int running(pid_t pid)
{
    char path[64], st[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return p && p[1] == ' ' && p[2] != 'Z';
}

/* How many processes run ferryd with this socket path on their command line. */
static int count_ferryd(const char *sock, pid_t *pid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        char path[300], cmd[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        size_t len = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[len] = '\0';
        int is_ferryd = strstr(cmd, "ferryd") != NULL;
        int has_sock = 0;
        for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
            if (strcmp(cmd + i, sock) == 0) has_sock = 1;
        if (is_ferryd && has_sock && running((pid_t)atoi(e->d_name))) {
            n++;
            *pid = (pid_t)atoi(e->d_name);
        }
    }
    closedir(d);
    return n;
}

int main(void)
{
    test_broker b;
    broker_init(&b); /* a private path; no ferryd started */
    int fds = fd_count();
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.test.x", &in, SEC), -ECONNREFUSED);

    unsetenv("FERRY_NO_AUTOSPAWN");
    setenv("FERRY_FERRYD", FERRYD_PATH, 1);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0) {
            ferry_name_info x;
            CHECK_EQ(ferry_lookup("org.test.x", &x, 5 * SEC), -ENOENT);
            _exit(0);
        }
    }
    for (int i = 0; i < 4; i++) wait_ok(kids[i]);
    /* One serves; the others (lock taken) are on their way out. */
    pid_t d = 0;
    for (int i = 0; i < 200 && count_ferryd(b.sock, &d) > 1; i++) sleep_ms(10);
    CHECK_EQ(count_ferryd(b.sock, &d), 1);
    /* It serves: a registration and a lookup through it. */
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.test.x", NULL, NULL, &l, SEC), 0);
    CHECK_EQ(ferry_lookup("org.test.x", &in, SEC), 0);
    CHECK_EQ(in.pid, getpid());
    ferry_listener_close(l);
    /* The lock file names it. */
    char lock[200], buf[32] = "";
    snprintf(lock, sizeof lock, "%s.lock", b.sock);
    FILE *f = fopen(lock, "re");
    CHECK(f != NULL);
    CHECK(fgets(buf, sizeof buf, f) != NULL);
    fclose(f);
    CHECK_EQ(atoi(buf), d);

    CHECK_EQ(kill(d, SIGTERM), 0);
    for (int i = 0; i < 500 && running(d); i++) sleep_ms(10);
    CHECK(!running(d));
    CHECK(access(b.sock, F_OK) < 0); /* it removed its socket */
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
