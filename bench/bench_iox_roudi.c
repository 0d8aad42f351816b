// SPDX-License-Identifier: MIT
/*
 * bench_iox_roudi.c — the iceoryx daemon (RouDi) for the `iceoryx` rows of `ferry bench`.
 *
 * iceoryx applications need RouDi running. The bench starts its own, once, at the first
 * iceoryx measurement of a run (bench_iox_prepare), and stops it at the end of the run
 * (bench_iox_done): starting takes ~0.3 s and a clean stop ~1.7 s, too long to pay per
 * measurement. RouDi runs with a config of our own (mempools sized for the rows: see
 * CONFIG) from a private temp directory, unpinned (it is not on the data path), and with
 * PR_SET_PDEATHSIG so that it stops by itself if the bench dies.
 *
 * Leaving nothing behind: iceoryx 2.0 uses fixed names — /dev/shm/iceoryx_mgmt, a payload
 * segment named after the user's group, /tmp/roudi, /tmp/roudi.lock,
 * /tmp/iox-unique-roudi.lock, and /tmp/<app> + /tmp/<app>.lock per application. If any of
 * the RouDi names exists before we start, another RouDi is running (or a crashed one left
 * them) and the rows fail, saying which. A clean stop removes them all; after an unclean
 * one (a killed application makes RouDi's shutdown abort), the ones that did not exist
 * before the start are removed here, with the app files of our applications (named
 * ferry-iox-<bench pid>-*).
 */
#define _GNU_SOURCE /* prctl, CPU_SET, getpwuid */
#include "bench_lib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FERRY_BENCH_IOX_ROUDI
#define FERRY_BENCH_IOX_ROUDI "iox-roudi"
#endif

#define START_NS ((int64_t)15 * 1000 * 1000 * 1000)
#define STOP_NS  ((int64_t)10 * 1000 * 1000 * 1000)

/* Mempools: payload sizes up to 256 B, 8 KiB, 68 KiB and 1 MiB + 64 KiB (each chunk also
 * holds iceoryx's header). Counts cover the worst case of a row: a subscriber queue full
 * (256 messages up to 4 KiB, 16 above), one chunk held by the receiver, one loaned by the
 * sender, for each direction. */
static const char CONFIG[] = "[general]\n"
                             "version = 1\n"
                             "\n"
                             "[[segment]]\n"
                             "\n"
                             "[[segment.mempool]]\n"
                             "size = 256\n"
                             "count = 600\n"
                             "\n"
                             "[[segment.mempool]]\n"
                             "size = 8192\n"
                             "count = 600\n"
                             "\n"
                             "[[segment.mempool]]\n"
                             "size = 69632\n"
                             "count = 64\n"
                             "\n"
                             "[[segment.mempool]]\n"
                             "size = 1114112\n"
                             "count = 64\n";

static struct {
    pid_t pid;
    char dir[PATH_MAX];
    char fixed[6][PATH_MAX]; /* the RouDi names */
    int existed[6];          /* which existed before our start */
    int nfixed;
    const char *path; /* the program */
} roudi = {.pid = -1};

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* The program: the one found at build time, else iox-roudi on PATH. */
static const char *roudi_program(void)
{
    static char found[PATH_MAX];
    if (access(FERRY_BENCH_IOX_ROUDI, X_OK) == 0 && strchr(FERRY_BENCH_IOX_ROUDI, '/'))
        return FERRY_BENCH_IOX_ROUDI;
    const char *path = getenv("PATH");
    if (!path) return NULL;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/iox-roudi", (int)len, p);
        if (len > 0 && access(found, X_OK) == 0) return found;
        p += len + (p[len] == ':');
    }
    return NULL;
}

const char *bench_iox_unavailable(void)
{
    return roudi_program() ? NULL : "iox-roudi not found (Debian package iceoryx)";
}

static void list_fixed_names(void)
{
    struct group *g = getgrgid(getgid());
    struct passwd *pw = getpwuid(getuid());
    int n = 0;
    snprintf(roudi.fixed[n++], PATH_MAX, "/dev/shm/iceoryx_mgmt");
    if (g) snprintf(roudi.fixed[n++], PATH_MAX, "/dev/shm/%s", g->gr_name);
    if (pw && (!g || strcmp(pw->pw_name, g->gr_name) != 0))
        snprintf(roudi.fixed[n++], PATH_MAX, "/dev/shm/%s", pw->pw_name);
    snprintf(roudi.fixed[n++], PATH_MAX, "/tmp/roudi");
    snprintf(roudi.fixed[n++], PATH_MAX, "/tmp/roudi.lock");
    snprintf(roudi.fixed[n++], PATH_MAX, "/tmp/iox-unique-roudi.lock");
    roudi.nfixed = n;
}

/* Remove the temp dir and what is in it (the config and the log). */
static void remove_dir(void)
{
    char p[PATH_MAX + 16];
    if (!roudi.dir[0]) return;
    snprintf(p, sizeof p, "%s/roudi.toml", roudi.dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/roudi.log", roudi.dir);
    unlink(p);
    rmdir(roudi.dir);
    roudi.dir[0] = '\0';
}

/* Does the log say RouDi is ready? */
static int log_ready(void)
{
    char p[PATH_MAX + 16], buf[4096];
    snprintf(p, sizeof p, "%s/roudi.log", roudi.dir);
    FILE *f = fopen(p, "re");
    int ready = 0;
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    ready = strstr(buf, "RouDi is ready for clients") != NULL;
    fclose(f);
    return ready;
}

/* The last line of RouDi's log, for an error message. */
static void log_tail(char *out, size_t len)
{
    char p[PATH_MAX + 16], buf[8192];
    snprintf(p, sizeof p, "%s/roudi.log", roudi.dir);
    FILE *f = fopen(p, "re");
    out[0] = '\0';
    if (!f) return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    buf[n] = '\0';
    char *last = strrchr(buf, '\n');
    snprintf(out, len, "%.150s", last ? last + 1 : buf);
}

static void exec_roudi(const char *prog)
{
    char cfg[PATH_MAX + 16], logp[PATH_MAX + 16];
    snprintf(cfg, sizeof cfg, "%s/roudi.toml", roudi.dir);
    snprintf(logp, sizeof logp, "%s/roudi.log", roudi.dir);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* stop with the bench, whatever happens */
    cpu_set_t all;                    /* unpinned: not on the data path */
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
    sched_setaffinity(0, sizeof all, &all);
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(127);
    execl(prog, prog, "-c", cfg, "-l", "warning", (char *)NULL);
    _exit(127);
}

static int start(bench_result *res)
{
    const char *prog = roudi_program();
    char p[PATH_MAX + 16];
    if (!prog) return bench_fail(res, "iox-roudi not found");
    list_fixed_names();
    for (int i = 0; i < roudi.nfixed; i++)
        if (exists(roudi.fixed[i]) && strncmp(roudi.fixed[i], "/dev/shm/", 9) != 0)
            return bench_fail(res,
                              "%s exists: another iox-roudi runs (or a crashed one left it); "
                              "stop it or remove it",
                              roudi.fixed[i]);
    for (int i = 0; i < roudi.nfixed; i++) roudi.existed[i] = exists(roudi.fixed[i]);
    if (roudi.existed[0])
        return bench_fail(res, "/dev/shm/iceoryx_mgmt exists: another iox-roudi runs (or a "
                               "crashed one left it)");

    const char *tmp = getenv("TMPDIR");
    snprintf(roudi.dir, sizeof roudi.dir, "%s/ferry-bench-iox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(roudi.dir)) {
        roudi.dir[0] = '\0';
        return bench_fail(res, "mkdtemp: %s", strerror(errno));
    }
    snprintf(p, sizeof p, "%s/roudi.toml", roudi.dir);
    FILE *f = fopen(p, "we");
    if (!f || fputs(CONFIG, f) < 0 || fclose(f) != 0) {
        remove_dir();
        return bench_fail(res, "writing the RouDi config: %s", strerror(errno));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        remove_dir();
        return bench_fail(res, "fork: %s", strerror(errno));
    }
    if (pid == 0) exec_roudi(prog);
    roudi.pid = pid;
    roudi.path = prog;

    int64_t deadline = bench_now_ns() + START_NS;
    while (!log_ready()) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char tail[200];
            log_tail(tail, sizeof tail);
            roudi.pid = -1;
            bench_iox_done();
            return bench_fail(res, "iox-roudi exited at start (status %d): %s", status, tail);
        }
        if (bench_now_ns() > deadline) {
            bench_iox_done();
            return bench_fail(res, "iox-roudi not ready after %lld s",
                              (long long)(START_NS / 1000000000));
        }
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    return 0;
}

int bench_iox_prepare(const bench_job *job, bench_result *res)
{
    (void)job;
    if (roudi.pid > 0) {
        int status;
        if (waitpid(roudi.pid, &status, WNOHANG) != roudi.pid) return 0; /* still running */
        roudi.pid = -1;
        bench_iox_done();
        return bench_fail(res, "iox-roudi died during the run (status %d)", status);
    }
    return start(res);
}

/* Remove the app files of our applications (ferry-iox-<our pid>-*) left in /tmp. */
static void remove_app_files(void)
{
    char prefix[64], p[PATH_MAX];
    snprintf(prefix, sizeof prefix, "ferry-iox-%ld-", (long)getpid());
    DIR *d = opendir("/tmp");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(p, sizeof p, "/tmp/%s", e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

void bench_iox_done(void)
{
    if (roudi.pid > 0) {
        int status = 0;
        kill(roudi.pid, SIGTERM);
        int64_t deadline = bench_now_ns() + STOP_NS;
        while (waitpid(roudi.pid, &status, WNOHANG) != roudi.pid) {
            if (bench_now_ns() > deadline) {
                kill(roudi.pid, SIGKILL);
                waitpid(roudi.pid, &status, 0);
                break;
            }
            nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
        }
        roudi.pid = -1;
    }
    /* After an unclean stop: what RouDi would have removed. */
    for (int i = 0; i < roudi.nfixed; i++)
        if (!roudi.existed[i] && exists(roudi.fixed[i])) unlink(roudi.fixed[i]);
    roudi.nfixed = 0;
    remove_app_files();
    remove_dir();
}
